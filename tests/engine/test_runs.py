"""Runs that cannot be silently corrupted, and the engine that only trains (engine/runs.py, engine/trainer.py)."""

from __future__ import annotations

import json

import pytest
import torch

from openjepa.cli import main
from openjepa.config import load_config
from openjepa.engine.runs import FREE_TO_CHANGE, check_resume, config_changes
from openjepa.engine.trainer import TrainResult, train
from openjepa.errors import ConfigError
from openjepa.config.load import to_dict
from tests.tiny import tiny

QUIET = ("eval.at_end=false", "eval.report=false", "monitor.every=0")


def test_a_user_yaml_without_run_dir_runs_in_runs_stem(tmp_path):
    f = tmp_path / "my_recipe.yaml"
    f.write_text("optim:\n  lr: 0.002\n")
    assert load_config(f).run_dir == "runs/my_recipe"
    assert load_config(f, ["run_dir=elsewhere"]).run_dir == "elsewhere"
    f.write_text("run_dir: mine\n")
    assert load_config(f).run_dir == "mine"
    assert load_config(None).run_dir == "runs/quickstart"


def test_the_engine_only_trains(tmp_path):
    """train() returns the method and its final state; exporting, evaluating and the report run above it."""
    run = tmp_path / "r"
    result = train(load_config(None, tiny(run, "train.steps=3", "monitor.every=0")))
    assert isinstance(result, TrainResult) and result.trained and result.rank == 0
    assert result.state["step"] == 3 and set(result.state["method"]) == set(result.method.state_dict())
    assert not torch.distributed.is_initialized()
    made = {p.name for p in run.iterdir()}
    assert {"checkpoints", "config.yaml", "metrics.jsonl"} <= made
    assert not made & {"encoder.safetensors", "eval.json", "summary.json", "report.html"}


def test_a_directory_with_another_runs_files_is_refused_and_untouched(tmp_path, capsys):
    run = tmp_path / "killed"  # a quickstart killed before its first checkpoint
    run.mkdir()
    (run / "config.yaml").write_text("seed: 7\n")
    (run / "metrics.jsonl").write_text('{"step": 10, "loss": 1.0}\n')
    assert main(["train", *tiny(run, "train.steps=2", *QUIET)]) == 2
    err = capsys.readouterr().err
    assert "holds another run's files (config.yaml, metrics.jsonl) but no checkpoint" in err
    assert len(err.strip().splitlines()) == 1
    assert (run / "config.yaml").read_text() == "seed: 7\n"
    assert (run / "metrics.jsonl").read_text() == '{"step": 10, "loss": 1.0}\n'
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", *tiny(empty, "train.steps=1", *QUIET)]) == 0  # an empty directory is fine


def test_resume_refuses_a_changed_meaning_and_keeps_the_run(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", *tiny(run, "train.steps=2", *QUIET)]) == 0
    saved_cfg = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", *tiny(run, "train.steps=2", *QUIET, "optim.lr=0.5", "seed=3"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr: 0.001 -> 0.5" in err and "seed: 0 -> 3" in err and "--allow-config-change" in err
    assert (run / "config.yaml").read_text() == saved_cfg  # refused before anything was written


def test_resuming_a_finished_run_says_so_and_more_steps_continue_it(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", *tiny(run, "train.steps=2", "eval.report=false", "monitor.every=0")]) == 0
    eval_before = (run / "eval.json").read_text()
    capsys.readouterr()
    assert main(["train", *tiny(run, "train.steps=2", "eval.report=false", "monitor.every=0"), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "already finished at step 2" in out and "Raise train.steps" in out and "run saved" not in out
    assert (run / "eval.json").read_text() == eval_before  # no evaluation re-run behind the user's back
    assert main(["train", *tiny(run, "train.steps=4", *QUIET), "--resume"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 4 and sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step_00000004.pt"


def test_check_resume_accepts_only_free_settings():
    cfg = load_config(None, tiny("r"))
    saved = to_dict(cfg)
    free = load_config(None, tiny("elsewhere", "train.progress=true", "eval.knn_k=5", "plan.horizon=3",
                                  "train.steps=900", "monitor.every=7"))
    assert set(check_resume(saved, free)) == {"run_dir", "train.progress", "eval.knn_k", "plan.horizon",
                                               "train.steps", "monitor.every"}
    for key in ("optim.lr=0.5", "model.encoder=vit_nano", "mask.num_targets=2", "data.name=digits",
                "train.method=lejepa", "optim.ema=[0.9,1.0]"):
        changed = load_config(None, tiny("r", key))
        with pytest.raises(ConfigError, match=key.split("=")[0].replace(".", r"\.")):
            check_resume(saved, changed)
        assert key.split("=")[0] in check_resume(saved, changed, allow_change=True)
    assert config_changes(cfg, cfg) == {}
    assert all(f.endswith(".") or f.count(".") <= 1 for f in FREE_TO_CHANGE)
