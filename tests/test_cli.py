"""End to end through the command line, as a user runs it."""

import json
import subprocess
import sys

from openjepa.cli import main
from tests.tiny import tiny


def test_train_then_eval(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *tiny(run, "train.steps=4", "eval.baselines=true")]) == 0
    out = capsys.readouterr().out
    assert "raw pixels" in out and "random-init encoder" in out and "linear" in out
    for name in ["config.yaml", "metrics.jsonl", "eval.json", "encoder.safetensors", "checkpoints/step_00000004.pt"]:
        assert (run / name).exists(), name
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all("loss" in r and "lr" in r for r in rows)
    assert list((run / "tb").iterdir())  # TensorBoard event file
    first = (run / "eval.json").read_text()
    assert main(["eval", str(run), "eval.baselines=false", "eval.encoder=context"]) == 0
    assert "ijepa (context encoder)" in capsys.readouterr().out
    assert (run / "eval.json").read_text() == first  # the training-time table is kept
    assert json.loads((run / "eval_step00000004_context_knn-linear.json").read_text())["rows"][0]["dim"] == 96


def test_bad_key_exit_code_and_message(tmp_path, capsys):
    assert main(["train", f"run_dir={tmp_path}", "optim.lrr=1"]) == 2
    assert "optim.lrr" in capsys.readouterr().err


def test_missing_data_path(tmp_path, capsys):
    code = main(["train", f"run_dir={tmp_path}", "data.name=folder", f"data.root={tmp_path / 'nope'}"])
    assert code == 2 and "nope" in capsys.readouterr().err


def test_help_on_every_subcommand():
    for cmd in ([], ["train"], ["eval"], ["embed"], ["collect"], ["plan"], ["report"], ["models"], ["config"]):
        r = subprocess.run([sys.executable, "-m", "openjepa", *cmd, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "usage: openjepa" in r.stdout


def test_models_and_config_show(capsys):
    assert main(["models", "vit_*"]) == 0
    assert "vit_huge" in capsys.readouterr().out
    assert main(["config", "show", "ijepa/vit_h14_in1k", "optim.lr=5e-4"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.0005" in out and "vit_huge" in out


def test_load_pretrained_matches_checkpoint(tmp_path):
    import torch

    from openjepa import load_pretrained

    run = tmp_path / "run"
    assert main(["train", *tiny(run, "train.steps=2", "eval.at_end=false")]) == 0
    a, b = load_pretrained(run), load_pretrained(run / "checkpoints" / "step_00000002.pt")
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(a(x), b(x))


def test_eval_protocols_attentive_lowshot_end_to_end(tmp_path, capsys):
    import pytest
    from safetensors import safe_open

    run = tmp_path / "run"
    assert main(["train", *tiny(run, "train.steps=2", "eval.at_end=false")]) == 0
    capsys.readouterr()
    # overrides after --protocol are still overrides
    assert main(["eval", str(run), "--protocol", "attentive", "lowshot", "eval.attentive_epochs=2",
                 "eval.lowshot_seeds=2", "eval.probe_epochs=3"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("features "))
    assert [c.strip() for c in header.split("|")] == ["features", "dim", "attentive", "1-shot", "5-shot", "1%",
                                                      "10%", "RankMe"]
    assert " ± " in out
    doc = json.loads((run / "eval_step00000002_target_attentive-lowshot.json").read_text())
    assert doc["protocols"] == ["attentive", "lowshot"] and doc["step"] == 2
    row = doc["rows"][0]
    assert 0.0 <= row["attentive"] <= 1.0 and "linear" not in row
    assert list(row["lowshot"]) == ["1-shot", "5-shot", "1%", "10%"]
    assert row["lowshot"]["5-shot"]["n_labelled"] == 50 and len(row["lowshot"]["5-shot"]["accuracies"]) == 2
    with safe_open(str(run / "features" / "step00000002_target_train.safetensors"), "pt") as f:
        assert "tokens" in f.keys()

    assert main(["eval", str(run), "--protocol", "linear", "knnn"]) == 2
    err = capsys.readouterr().err
    assert "'knnn'" in err and "choose from: linear, attentive, knn, lowshot" in err
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "--protocol {linear,attentive,knn,lowshot}" in capsys.readouterr().out
