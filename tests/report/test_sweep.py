"""``openjepa sweep``: the grid, its run directories, resuming, the table and the plot."""

import json

import pytest
import torch

from openjepa.cli import main
from openjepa.config import load_config
from openjepa.engine.flops import train_step_flops
from openjepa.engine.trainer import prepare
from openjepa.errors import ConfigError
from openjepa.report.sweep import parse_grid, point_name, split_values
from tests.tiny import TINY


def test_values_split_outside_brackets():
    assert split_values("[0.1,0.15],[0.15,0.2]") == ["[0.1,0.15]", "[0.15,0.2]"]
    assert split_values("vit_pico, vit_nano") == ["vit_pico", "vit_nano"]
    assert split_values("{a: 1, b: 2},{a: 3}") == ["{a: 1, b: 2}", "{a: 3}"]
    assert split_values("'x,y',z") == ["'x,y'", "z"]
    assert parse_grid(["optim.lr=3", "optim.lr=1,2"]) == ([], [("optim.lr", ["1", "2"])])  # the axis wins
    fixed, axes = parse_grid(["eval.protocols=[linear,knn]", "model.encoder=vit_pico,vit_nano",
                              "mask.target_scale=[0.1,0.15],[0.15,0.2]"])
    assert fixed == ["eval.protocols=[linear,knn]"]
    assert axes == [("model.encoder", ["vit_pico", "vit_nano"]), ("mask.target_scale", ["[0.1,0.15]", "[0.15,0.2]"])]
    assert point_name({"mask.target_scale": "[0.1, 0.15]", "model.encoder": "vit_pico"}) == \
        "mask.target_scale=0.1-0.15__model.encoder=vit_pico"
    assert point_name({"data.train_transforms": "[]"}) == "data.train_transforms=none"
    for bad in (["lr"], ["optim.lr=1,1"], ["optim.lr=1,"], ["optim.lr=1,2", "optim.lr=3,4"]):
        with pytest.raises(ConfigError):
            parse_grid(bad)


def test_flops_of_a_step_match_the_matmuls():
    """A ViT step's counted FLOPs grow with the batch exactly linearly (one more batch, the same again)."""
    base = [x for x in TINY if not x.startswith("data.batch_size")] + ["train.steps=1", "monitor.every=0"]
    f16, f32 = (train_step_flops(prepare(load_config(None, [*base, f"data.batch_size={b}"]))) for b in (16, 32))
    assert f16 > 0 and f32 == pytest.approx(2 * f16, rel=0.02)


def test_sweep_runs_the_grid_resumes_and_tabulates(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", *TINY, "train.steps=3", "eval.at_end=true", "eval.protocols=[linear]", "eval.baselines=true",
            "model.predictor_depth=1,2", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    table = json.loads((out / "sweep.json").read_text())
    assert table["axes"] == ["model.predictor_depth"] and len(table["rows"]) == 2
    for r, depth in zip(table["rows"], ("1", "2")):
        assert r["model.predictor_depth"] == depth and r["done"]
        run = out / f"model.predictor_depth={depth}"
        summary = json.loads((run / "summary.json").read_text())
        assert r["linear"] == summary["eval"][0]["linear"] and 0 <= r["linear"] <= 1
        assert r["pixels_linear"] == summary["eval"][2]["linear"] and r["wall_s"] > 0
        assert (run / "checkpoints" / "step_00000003.pt").exists() and (run / "config.yaml").exists()
    assert table["rows"][1]["flops_per_step"] > table["rows"][0]["flops_per_step"]  # a deeper predictor costs more
    md = (out / "sweep.md").read_text()
    assert "| model.predictor_depth | linear | raw pixels linear |" in md.replace("random-init linear | ", "")
    assert (out / "sweep.png").stat().st_size > 10_000 and (out / "sweep.csv").read_text().count("\n") == 3
    capsys.readouterr()
    # Again: nothing to train, the same table.
    mtime = (out / "model.predictor_depth=1" / "summary.json").stat().st_mtime
    assert main(args) == 0
    assert "2 done, 0 to run" in capsys.readouterr().out
    assert (out / "model.predictor_depth=1" / "summary.json").stat().st_mtime == mtime


def test_an_interrupted_point_resumes(tmp_path, capsys):
    """A point with checkpoints but no summary (killed mid-run) continues from its checkpoint with --resume."""
    out = tmp_path / "sweep"
    args = ["sweep", *TINY, "train.steps=4", "train.ckpt_every=2", "eval.at_end=false", "optim.lr=1e-3",
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    run = out / "run"  # no axis: one point
    full = torch.load(run / "checkpoints" / "step_00000004.pt", weights_only=True)["method"]
    (run / "checkpoints" / "step_00000004.pt").unlink()
    (run / "summary.json").unlink()
    assert main(args) == 0
    assert "0 done, 1 to run" in capsys.readouterr().out
    again = torch.load(run / "checkpoints" / "step_00000004.pt", weights_only=True)["method"]
    assert all(torch.equal(full[k], again[k]) for k in full)


def test_bad_settings_fail_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", *TINY, "model.encoder=vit_pico,vit_nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "vit_nope" in err and "(point model.encoder=vit_nope)" in err and not out.exists()
    assert main(["sweep", *TINY, "optim.lrr=1,2", "--out", str(out)]) == 2
    assert "optim.lrr" in capsys.readouterr().err
    assert main(["sweep", *TINY, "run_dir=x", "--out", str(out)]) == 2
