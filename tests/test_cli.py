"""End to end through the command line, as a user runs it."""

import json
import subprocess
import sys

import pytest

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
    for cmd in ([], ["train"], ["sweep"], ["eval"], ["embed"], ["collect"], ["plan"], ["report"], ["models"], ["config"]):
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
    assert (a.format, b.format) == ("openjepa-encoder", "openjepa-checkpoint")
    from openjepa.data.shapes import MEAN, STD

    assert a.preprocessing == b.preprocessing
    assert (a.preprocessing.img_size, a.preprocessing.in_chans, a.preprocessing.mean, a.preprocessing.std) == (
        16, 3, MEAN, STD)
    ctx = load_pretrained(run, which="context")  # the online encoder: after 2 EMA steps it differs from the target
    assert not torch.equal(ctx(x), a(x)) and ctx.predictor is None
    assert load_pretrained(run, predictor=True).predictor is not None
    import pytest

    from openjepa.errors import CheckpointError

    (tmp_path / "junk.bin").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a format openjepa reads"):
        load_pretrained(tmp_path / "junk.bin")


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
    # the run's own device setting (here overridden) goes through the same check as --device
    line = one_error_line(capsys, "eval", str(run), "device=gpu")
    assert line.startswith("openjepa eval: error: device='gpu' is not a device name; choose auto, cpu")
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "--protocol {linear,attentive,knn,lowshot}" in capsys.readouterr().out


def one_error_line(capsys, *argv: str) -> str:
    """Run the command line in-process; assert exit code 2 and exactly one line on stderr, and return it."""
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's own errors exit from inside the parser
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    return err.strip()


@pytest.fixture
def cpu_only(monkeypatch):
    """This machine as one without CUDA or MPS, whatever it has."""
    import torch

    for module in (torch.cuda, torch.backends.mps):
        monkeypatch.setattr(module, "is_available", always(False, module.is_available))


def always(value, like):
    """A function returning ``value``, wrapping ``like`` (torch._dynamo reads ``is_available.__wrapped__``)."""
    import functools

    return functools.wraps(like)(lambda: value)


@pytest.mark.parametrize("device, why", [("cuda", "CUDA is not available here"),
                                         ("cuda:0", "CUDA is not available here"), ("mps", "MPS is not available here"),
                                         ("gpu", "is not a device name"), ("meta", "is not supported")])
def test_unavailable_device_is_one_line_on_every_command(tmp_path, capsys, cpu_only, device, why):
    missing = str(tmp_path / "no_run")
    sep = ":" if why.startswith(("CUDA", "MPS")) else ""
    expected = f"error: device={device!r}{sep} {why}; choose auto, cpu"
    for argv in (["train", f"run_dir={tmp_path / 'run'}", f"device={device}"],
                 ["eval", missing, "--device", device], ["report", missing, "--device", device],
                 ["plan", missing, "--device", device],
                 ["embed", missing, str(tmp_path), "--out", str(tmp_path / "f.npy"), "--device", device]):
        assert one_error_line(capsys, *argv) == f"openjepa {argv[0]}: {expected}"
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_resolve_device_checks_this_machine(monkeypatch, cpu_only):
    import torch

    from openjepa.engine.precision import available_devices, resolve_device
    from openjepa.errors import ConfigError

    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    assert available_devices() == ["auto", "cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", always(True, torch.cuda.is_available))
    monkeypatch.setattr(torch.cuda, "device_count", always(2, torch.cuda.device_count))
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError) as e:
        resolve_device("cuda:2")
    assert str(e.value) == ("device='cuda:2': this machine has 2 CUDA device(s); "
                            "choose auto, cpu, cuda, cuda:0, cuda:1")


def test_config_type_errors_are_one_plain_line(tmp_path, capsys):
    line = one_error_line(capsys, "train", f"run_dir={tmp_path}", "optim.lr=abc")
    assert line == "openjepa train: error: optim.lr: expected a number, got 'abc' (in override 'optim.lr=abc')"
    line = one_error_line(capsys, "config", "show", "train=5")
    assert line.startswith("openjepa config: error: train: is a section, not a value; set its keys, "
                           "e.g. train.steps=300 (keys: method, target, loss, steps, epochs,")


def test_config_without_action_names_the_actions(capsys):
    assert one_error_line(capsys, "config") == ("openjepa config: error: choose an action: show [NAME] "
                                                "[key=value ...] (print a resolved config) or list (the shipped "
                                                "config names)")
    line = one_error_line(capsys, "config", "sho")
    assert "invalid choice: 'sho' (choose from 'show', 'list')" in line
    with pytest.raises(SystemExit):
        main(["config", "--help"])
    assert capsys.readouterr().out.startswith("usage: openjepa config [-h] {show [NAME] [key=value ...] | list}\n")


def test_version(capsys, monkeypatch):
    import importlib.metadata

    import openjepa

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"openjepa {importlib.metadata.version('openjepa')}\n"

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    monkeypatch.setattr(openjepa, "__version__", "9.8.7")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == "openjepa 9.8.7\n"


def test_plain_bad_input_is_one_line(tmp_path, capsys):
    from openjepa.models import list_models

    from PIL import Image

    missing = tmp_path / "no_run"
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    for command in ("eval", "plan"):
        line = one_error_line(capsys, command, str(missing))
        assert line == f"openjepa {command}: error: no run directory or checkpoint at {missing}"
    assert one_error_line(capsys, "report", str(missing)) == f"openjepa report: error: no run directory at {missing}"
    line = one_error_line(capsys, "embed", str(missing), str(tmp_path / "a.png"), "--out", str(tmp_path / "f.npy"))
    assert line == f"openjepa embed: error: no run directory or checkpoint at {missing}"
    assert one_error_line(capsys, "models", "--params", "nomatch") == (
        f"openjepa models: error: no registered model matches 'nomatch'; models: {', '.join(list_models())}")
    line = one_error_line(capsys, "frob")
    assert "invalid choice: 'frob'" in line and "'train', 'sweep', 'finetune', 'convert', 'export', 'eval', 'embed'" in line
    line = one_error_line(capsys, "eval")
    assert "required: checkpoint;" in line and "key=value" not in line
    embed = ["embed", "r", "x", "--out", "f.npy"]
    for argv, option, low, got in (([*embed, "--batch-size", "-1"], "--batch-size", 1, "-1"),
                                   ([*embed, "--num-workers", "-2"], "--num-workers", 0, "-2"),
                                   (["report", "r", "--max-images", "-5"], "--max-images", 0, "-5"),
                                   (["plan", "r", "--episodes", "0"], "--episodes", 1, "0"),
                                   (["plan", "r", "--episodes", "many"], "--episodes", 1, "'many'")):
        line = one_error_line(capsys, *argv)
        assert line.startswith(f"openjepa {argv[0]}: error: argument {option}: ") and f">= {low}, got {got};" in line


def test_embed_batch_size_defaults_to_the_runs_setting():
    from openjepa.cli import build_parser

    assert build_parser().parse_args(["embed", "r", "x", "--out", "f.npy"]).batch_size is None  # -> eval.batch_size
    assert build_parser().parse_args(["embed", "r", "x", "--out", "f.npy", "--batch-size", "8"]).batch_size == 8
