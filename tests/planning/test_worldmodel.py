"""World models end to end: collect -> train (acjepa) -> plan, the method's pieces, and the position probe."""

import json

import numpy as np
import pytest
import torch

from openjepa.cli import main
from openjepa.config import ConfigError, load_config
from openjepa.engine.trainer import load_pretrained_parts, prepare
from openjepa.report.pipeline import train_and_evaluate as train
from openjepa.eval.position import position_probe, regression_scores, ridge_fit, ridge_predict
from openjepa.methods import build_method
from openjepa.methods.acjepa import TrajectoryCollator
from openjepa.planning.collect import collect
from openjepa.planning.world import LatentWorldModel

TINY = ["model.encoder=vit_pico", "model.img_size=32", "model.patch_size=8", "data.name=trajectories",
        "data.batch_size=8", "data.num_frames=3", "data.frameskip=2", "train.method=acjepa", "train.steps=6",
        "train.progress=false", "train.ckpt_every=0", "optim.warmup_steps=1", "sigreg.weight=0.1",
        "sigreg.slices=32", "world.latent_dim=16", "world.pred_dim=32", "world.pred_depth=1", "world.pred_heads=2",
        "world.rollout_steps=2", "world.probe_frames=40", "monitor.every=3", "plan.horizon=2", "plan.samples=16",
        "plan.iterations=2", "plan.max_steps=6", "plan.episodes_at_end=2", "eval.report=true"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return collect("two_rooms", 10, 16, tmp_path_factory.mktemp("traj") / "two_rooms", seed=1,
                   env_kwargs={"img_size": 32}, progress=False)


def tiny_cfg(data_dir, run_dir, *extra):
    return load_config(None, [*TINY, f"data.root={data_dir}", f"run_dir={run_dir}", *extra])


def test_collect_train_plan_end_to_end(data_dir, tmp_path, capsys):
    run = tmp_path / "wm"
    summary = train(tiny_cfg(data_dir, run))
    ev = summary["eval"]
    assert [r["features"] for r in ev["position_probe"]] == ["world-model latent", "encoder tokens (mean)",
                                                             "random-init latent"]
    assert all(np.isfinite(r["r2"]) and r["rmse"] >= 0 for r in ev["position_probe"])
    assert [(r["planner"], r["model"]) for r in ev["planning"]] == [
        ("cem", "world model"), ("random", "none"), ("cem", "true simulator (oracle)")]
    for name in ("world_eval.json", "plan/results.json", "plan/trajectories.png", "report.html", "summary.json"):
        assert (run / name).is_file(), name
    html = (run / "report.html").read_text()
    assert "World model: planning and position probe" in html and "true simulator (oracle)" in html
    cfg = json.loads((run / "summary.json").read_text())
    assert cfg["steps"] == 6
    # openjepa plan on the saved run: the table, the files, the numbers consistent
    capsys.readouterr()
    assert main(["plan", str(run), "--episodes", "3", "--no-progress", "--out", str(tmp_path / "p"),
                 "plan.planner=mppi"]) == 0
    out = capsys.readouterr().out
    assert "success" in out and "world model" in out
    rows = json.loads((tmp_path / "p" / "results.json").read_text())["rows"]
    assert [r["planner"] for r in rows] == ["mppi", "random", "mppi"]
    assert all(r["episodes"] == 3 and 0 <= r["success"] <= 1 and r["s_per_episode"] >= 0 for r in rows)


def test_plan_refuses_an_image_run(tmp_path, capsys):
    run = tmp_path / "img"
    train(load_config(None, ["train.steps=2", "train.progress=false", "eval.at_end=false", "eval.report=false",
                             "model.encoder=vit_pico", "data.train_size=64", "data.batch_size=16",
                             f"run_dir={run}", "monitor.every=0"]))
    capsys.readouterr()
    assert main(["plan", str(run), "--episodes", "1", "--no-progress"]) == 2  # one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("openjepa plan: error:") and "world model" in err and "Traceback" not in err


def test_world_config_filled_from_the_collection(data_dir, tmp_path):
    cfg = prepare(tiny_cfg(data_dir, tmp_path / "r"))
    assert (cfg.world.env, cfg.world.action_dim) == ("two_rooms", 2 * 2)
    assert cfg.world.env_kwargs["img_size"] == 32
    from openjepa.data.base import DataError

    with pytest.raises(DataError, match="model.img_size=64"):
        prepare(tiny_cfg(data_dir, tmp_path / "r", "model.img_size=64"))


@pytest.mark.parametrize("bad,match", [
    (["data.name=shapes"], "trajectories"),
    (["world.encoder=frozen"], "world.pretrained"),
    (["sigreg.weight=0"], "SIGReg"),
    (["world.rollout_steps=5"], "rollout_steps"),
    (["world.cond=film"], "adaln, token"),
    (["plan.planner=astar"], "cem, mppi, random"),
])
def test_config_errors_name_the_key(data_dir, tmp_path, bad, match):
    with pytest.raises(ConfigError, match=match):
        prepare(tiny_cfg(data_dir, tmp_path, *bad))


def _batch(data_dir, tmp_path, n=4):
    from openjepa.data import build_dataset

    cfg = prepare(tiny_cfg(data_dir, tmp_path))
    ds = build_dataset(cfg.data, "train", cfg.model.img_size, seed=0)
    items = [(*ds[i], 5, i) for i in range(n)]
    return cfg, TrajectoryCollator()(items)


def test_collator_and_training_step(data_dir, tmp_path):
    cfg, batch = _batch(data_dir, tmp_path)
    assert batch["obs"].shape == (4, 3, 3, 32, 32) and batch["actions"].shape == (4, 2, 4)
    assert batch["step"] == 5 and set(batch) == {"obs", "actions", "states", "step"}  # nothing invented
    method = build_method(cfg, 10)
    assert method.batch_size(batch) == 4 and method.evaluation == "world_model"
    out = method.training_step(batch, 0)
    assert out.loss.requires_grad and {"teacher_forcing", "rollout", "sigreg", "loss"} <= set(out.metrics)
    out.loss.backward()
    assert all(p.grad is not None for n, p in method.named_parameters() if p.requires_grad and "pos_embed" not in n)
    assert out.features.shape == (4, method.feature_dim)


def test_frozen_encoder_loads_pretrained_and_stays_fixed(data_dir, tmp_path):
    pre = tmp_path / "pre"  # an image run on 32 px frames whose encoder the world model borrows
    train(load_config(None, ["train.steps=2", "train.progress=false", "eval.at_end=false", "eval.report=false",
                             "model.encoder=vit_pico", "model.patch_size=8", "data.train_size=64",
                             "data.batch_size=16", f"run_dir={pre}", "monitor.every=0"]))
    cfg, batch = _batch(data_dir, tmp_path)
    cfg.world.encoder, cfg.world.pretrained = "frozen", str(pre)
    method = build_method(cfg, 10)
    assert method.pretrained_sources(cfg) == {"encoder": (str(pre), "target")}
    load_pretrained_parts(method, cfg)  # what the engine does at the start of a fresh run
    from openjepa import load_pretrained

    ref = load_pretrained(pre).encoder.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in method.encoder.state_dict().items())
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-2)
    method.train()
    for _ in range(2):
        opt.zero_grad()
        method.training_step(batch, 0).loss.backward()
        opt.step()
    assert not method.encoder.training and "sigreg" not in method.training_step(batch, 0).metrics
    assert all(torch.equal(v, ref[k]) for k, v in method.encoder.state_dict().items())
    cfg.model.patch_size = 4  # another architecture: the load names the mismatch
    from openjepa.engine.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="pos_embed|patch_embed"):
        load_pretrained_parts(build_method(cfg, 10), cfg)


def test_latent_world_model_rollout_matches_the_predictor(data_dir, tmp_path):
    cfg, batch = _batch(data_dir, tmp_path)
    method = build_method(cfg, 10).eval()
    model = LatentWorldModel(method, frameskip=2, chunk=5)  # chunks smaller than N*S: the split must not matter
    obs = ((batch["obs"][:, 0] + 1) * 127.5).round().to(torch.uint8)
    z = model.encode(obs)
    assert z.shape == (4, 1, 16)
    actions = torch.randn(4, 3, 2, 4)  # (N, S, H, A)
    pred = model.rollout(z, actions)
    assert pred.shape == (4, 3, 2, 1, 16)
    with torch.no_grad():
        ref = method.predictor.rollout(z[1:2, None], actions[1, 2][None])  # one candidate alone
    torch.testing.assert_close(pred[1, 2], ref[0], rtol=1e-5, atol=1e-6)
    d = model.distance(pred, z)
    torch.testing.assert_close(d[2, 1, 0], (pred[2, 1, 0] - z[2]).square().mean())


def test_ridge_probe_matches_numpy_least_squares():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    w = torch.randn(6, 2, generator=g)
    y = x @ w + 3.0
    fit = ridge_fit(x, y, alpha=0.0)
    xs = (x.numpy() - x.numpy().mean(0)) / x.numpy().std(0, ddof=1)
    ref, *_ = np.linalg.lstsq(np.c_[xs, np.ones(200)], y.numpy(), rcond=None)
    np.testing.assert_allclose(fit[2].numpy(), ref[:6], rtol=1e-6, atol=1e-8)
    s = regression_scores(ridge_predict(x, fit), y)
    assert s["r2"] > 0.999999 and s["rmse"] < 1e-6
    noise = regression_scores(torch.zeros(200, 2) + y.mean(0), y)
    assert abs(noise["r2"]) < 1e-9  # predicting the mean explains nothing


def test_position_probe_reads_a_linear_code():
    g = torch.Generator().manual_seed(1)
    pos = torch.rand(300, 2, generator=g) * 64
    frames = torch.cat([pos / 64, torch.rand(300, 3, generator=g)], 1)[:, :, None, None]  # (M, 5, 1, 1)
    scores = position_probe(lambda f: f.flatten(1)[:, :4] * 2.0, (frames[:200], pos[:200]), (frames[200:], pos[200:]),
                            torch.device("cpu"), alpha=1e-8)
    assert scores["r2"] > 0.999 and scores["rmse"] < 0.01
    blind = position_probe(lambda f: f.flatten(1)[:, 2:], (frames[:200], pos[:200]), (frames[200:], pos[200:]),
                           torch.device("cpu"))
    assert blind["r2"] < 0.1  # features without the position cannot read it


def test_point_mass_world_model_trains_and_plans(tmp_path, capsys):
    data = collect("point_mass", 6, 12, tmp_path / "pm", seed=2, env_kwargs={"img_size": 32}, progress=False)
    run = tmp_path / "pm_run"
    summary = train(tiny_cfg(data, run, "train.steps=3", "plan.episodes_at_end=1", "eval.report=false",
                             "world.cond=token", "world.latent=patch"))
    assert summary["eval"]["planning"][0]["episodes"] == 1
    assert json.loads((run / "plan" / "results.json").read_text())["env"] == "point_mass"
    capsys.readouterr()
    assert main(["plan", str(run), "--env", "two_rooms", "--episodes", "1", "--no-progress"]) == 2
    assert "trained on 'point_mass'" in capsys.readouterr().err


def test_world_model_resume_is_exact(data_dir, tmp_path):
    """A world-model run resumed from its step-3 checkpoint ends with the uninterrupted run's weights
    (batch-norm running statistics included) and optimizer state."""
    from openjepa.engine import checkpoint as ckpt

    args = ("train.steps=5", "train.ckpt_every=3", "eval.at_end=false", "eval.report=false")
    train(tiny_cfg(data_dir, tmp_path / "a", *args))
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    (tmp_path / "b" / "checkpoints" / "step_00000003.pt").write_bytes(
        (tmp_path / "a" / "checkpoints" / "step_00000003.pt").read_bytes())
    train(tiny_cfg(data_dir, tmp_path / "b", *args), resume=True)
    a, b = (ckpt.load_latest(tmp_path / r / "checkpoints")[1] for r in ("a", "b"))
    assert a["step"] == b["step"] == 5
    assert any("running_mean" in k for k in a["method"])
    assert all(torch.equal(a["method"][k], b["method"][k]) for k in a["method"])
