"""The fit loop (engine/trainer.py): step plan, schedules applied to the optimizer, log, monitor and
checkpoint cadences, throughput. One tiny run of 5 steps shared by the checks."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch

from openjepa.config import load_config
from openjepa.config.schema import Config
from openjepa.engine import checkpoint as ckpt
from openjepa.engine import trainer
from openjepa.engine.logging import read_metrics
from openjepa.engine.schedules import lr_at, wd_at
from openjepa.engine.trainer import Throughput, hparams_at, plan_steps, train
from tests.tiny import tiny

STEPS = 5
ARGS = [f"train.steps={STEPS}", "train.log_every=2", "train.ckpt_every=2", "train.keep_last=5", "monitor.every=2",
        "optim.warmup_steps=2", "optim.lr=1e-3", "optim.start_lr=1e-4", "optim.final_lr=1e-5",
        "optim.weight_decay=0.04", "optim.final_weight_decay=0.4", "eval.at_end=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("fit")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):  # where a progress bar would go
        result = train(load_config(None, tiny(d, *ARGS)))
    return d, result, err.getvalue()


def _lr(step):  # the shipped cosine schedule, computed here from the run's settings
    return lr_at(step, STEPS, lr=1e-3, start_lr=1e-4, final_lr=1e-5, warmup=2)


def _wd(step):
    return wd_at(step, STEPS, weight_decay=0.04, final_weight_decay=0.4)


def test_the_run_trains_to_the_last_step_and_checkpoints_on_cadence(run):
    d, result, err = run
    assert result.trained and result.state["step"] == STEPS and result.world_size == 1 and result.rank == 0
    names = [p.name for p in ckpt.list_checkpoints(d / "checkpoints")]
    assert names == ["step_00000002.pt", "step_00000004.pt", "step_00000005.pt"]  # every 2 steps, and the end
    assert ckpt.load_latest(d / "checkpoints")[1]["step"] == STEPS
    assert result.collapse_warning is None
    assert "step/s" not in err and "train:" not in err  # train.progress=false: no progress bar


def test_metrics_are_logged_every_log_every_steps_and_at_the_end(run):
    d, _, _ = run
    rows, bad = read_metrics(d / "metrics.jsonl")
    assert bad == 0
    loss_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in loss_rows] == [2, 4, 5]
    for r in loss_rows:  # the step that ran was step - 1 (rows are numbered by steps done)
        assert r["lr"] == pytest.approx(_lr(r["step"] - 1), rel=1e-12)
        assert r["wd"] == pytest.approx(_wd(r["step"] - 1), rel=1e-12)
        assert r["epoch"] == pytest.approx(r["step"] / 6)  # 192 images, batch 32: 6 steps per epoch
        assert r["samples_per_s"] > 0 and math.isfinite(r["loss"])
        assert "skipped_steps" not in r  # the spike guard is off
    monitor_rows = [r["step"] for r in rows if "rankme" in r]
    assert monitor_rows == [2, 4, 5]  # monitor.every = 2, and the end


def test_the_optimizer_ran_with_the_last_steps_hparams(run):
    _, result, _ = run
    groups = result.state["optimizer"]["param_groups"]
    assert all(g["lr"] == pytest.approx(_lr(STEPS - 1), rel=1e-12) for g in groups)
    decayed = [g for g in groups if g["weight_decay"] > 0]
    assert decayed and all(g["weight_decay"] == pytest.approx(_wd(STEPS - 1), rel=1e-12) for g in decayed)


def test_plan_steps_and_hparams_at():
    cfg = Config()
    cfg.data.batch_size, cfg.train.steps, cfg.train.epochs = 32, 0, 1.5
    cfg.optim.warmup_epochs = 0.5
    plan = plan_steps(cfg, 200)  # 6 full batches per epoch
    assert (plan.total, plan.warmup, plan.steps_per_epoch) == (9, 3, 6)
    cfg.optim.warmup_epochs, cfg.optim.warmup_steps = 0.0, 50
    assert plan_steps(cfg, 200).warmup == 9  # warm-up never outlasts training
    cfg.train.steps = 20
    assert plan_steps(cfg, 10) == trainer.Plan(20, 20, 1)  # fewer images than a batch: one step per epoch
    o = cfg.optim
    lr, wd = hparams_at(7, plan_steps(cfg, 200), cfg)
    assert lr == lr_at(7, 20, lr=o.lr, start_lr=o.start_lr, final_lr=o.final_lr, warmup=20, schedule=o.schedule,
                       decay_fraction=o.decay_fraction)
    assert wd == wd_at(7, 20, weight_decay=o.weight_decay, final_weight_decay=o.final_weight_decay)


def test_throughput_counts_samples_per_second(monkeypatch):
    clock = iter([100.0, 102.0, 102.0])
    monkeypatch.setattr(trainer.time, "perf_counter", lambda: next(clock))
    meter = Throughput()
    meter.add(6)
    meter.add(4)
    assert meter.read() == 5.0  # 10 samples in 2 s
    assert meter.read() == 0.0  # reset by the reading; no division by a zero interval


def test_resuming_a_finished_run_restores_every_state_and_trains_nothing(run):
    d, _, _ = run
    saved = ckpt.load_latest(d / "checkpoints")[1]
    fit = trainer.build_fit(load_config(None, tiny(d, *ARGS)), resume=True)
    assert fit.start == STEPS
    for k, v in fit.method.state_dict().items():
        assert torch.equal(v, saved["method"][k]), k
    for k, v in fit.monitor.extra_state()["module"].items():  # the online monitor resumes too
        torch.testing.assert_close(v, saved["monitor"]["module"][k], rtol=0, atol=0, equal_nan=True)
    assert fit.monitor.extra_state()["module"]["counts"].sum() > 0  # a real state, not a fresh monitor's
    assert fit.guard.state_dict() == saved["spike_guard"]
    again = train(load_config(None, tiny(d, *ARGS)), resume=True)
    assert not again.trained and again.state["step"] == STEPS


def test_collapse_warning_comes_from_the_monitor_state():
    warning = {"step": 40, "message": "spread fell"}
    result = trainer.TrainResult(Config(), None, {"monitor": {"warning": warning}}, torch.device("cpu"), "fp32", 0, 1,
                                 True)
    assert result.collapse_warning == warning
    assert trainer.TrainResult(Config(), None, {"monitor": None}, torch.device("cpu"), "fp32", 0, 1,
                               True).collapse_warning is None


def test_gradient_clipping_applies_to_unscaled_gradients(tmp_path):
    """Under a GradScaler (fp16), clipping must see the true gradient: unscale first, then clip."""
    def update(scaler):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1, bias=False)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        before = model.weight.detach().clone()
        loss = (model(torch.ones(2, 3)) - 10.0).square().mean()  # a gradient of norm far above 0.5
        trainer.optimise(loss, 0, model, opt, scaler, 0.5, tmp_path)
        return model.weight.detach() - before

    step = update(torch.amp.GradScaler("cpu", init_scale=1024.0))
    assert step.norm().item() == pytest.approx(0.5, rel=1e-5)  # lr 1 x the clipped norm
    torch.testing.assert_close(step, update(torch.amp.GradScaler("cpu", enabled=False)))
