"""No lost work: the loss-spike guard, atomic and corruption-tolerant checkpoints, safe loads."""

import ast
import logging
import os
from pathlib import Path

import pytest
import torch

from openjepa.cli import main
from openjepa.config import load_config
from openjepa.engine import checkpoint as ckpt
from openjepa.engine.faults import SpikeGuard
from openjepa.report.pipeline import train_and_evaluate as train
from openjepa.methods.ijepa import IJEPA
from tests.tiny import tiny

SRC = Path(__file__).resolve().parents[2] / "src"


# --- the spike guard -----------------------------------------------------------------------------

def test_spike_guard_judges_against_the_recent_mean():
    lines = []
    g = SpikeGuard(factor=3.0, window=4)
    assert all(g.allows(v, s, lines.append) for s, v in enumerate([1.0, 1.2, 0.8, 1.0]))  # filling the window
    assert g.allows(2.9, 4, lines.append)  # below 3 × mean 1.0: taken, and enters the window
    assert not g.allows(100.0, 5, lines.append)  # 100 > 3 × mean(1.2, 0.8, 1.0, 2.9) = 4.425
    assert lines == ["skipped step 5: loss 100 > 3 × recent mean 1.475"]
    assert g.skipped == 1 and list(g.losses) == [1.2, 0.8, 1.0, 2.9]  # a skipped loss never enters the window
    assert g.allows(torch.tensor(1.1), 6, lines.append)
    assert g.allows(float("nan"), 7, lines.append)  # non-finite is the trainer's to stop on, not a spike
    assert g.allows(float("inf"), 8, lines.append)


def test_spike_guard_waits_for_history_and_stays_off_by_default():
    g = SpikeGuard(factor=2.0, window=50)
    assert all(g.allows(v, s) for s, v in enumerate([1.0, 1.0, 1.0, 1.0]))
    assert g.allows(1000.0, 4)  # only 4 losses so far: too few to judge
    off = SpikeGuard()
    assert not off.enabled and off.allows(1e30, 0) and off.skipped == 0
    with pytest.raises(ValueError, match="greater than 1"):
        SpikeGuard(factor=0.5)


def test_spike_guard_state_round_trips_and_a_shift_is_an_error():
    g = SpikeGuard(factor=2.0, window=5)
    for s, v in enumerate([1.0, 2.0, 1.5, 1.0, 1.25]):
        g.allows(v, s)
    g.allows(10.0, 5, lambda line: None)
    h = SpikeGuard(factor=2.0, window=5)
    h.load_state_dict(g.state_dict())
    assert h.state_dict() == g.state_dict() == {"losses": [1.0, 2.0, 1.5, 1.0, 1.25], "skipped": 1, "consecutive": 1}
    h.load_state_dict(None)  # a checkpoint written before the guard existed
    assert h.skipped == 1
    with pytest.raises(FloatingPointError, match="5 steps in a row.*shift"):
        for s in range(6, 12):
            g.allows(10.0, s, lambda line: None)


def spike_at(step_to_spike):
    original = IJEPA.training_step

    def training_step(self, batch, step):
        out = original(self, batch, step)
        if step == step_to_spike:
            out.loss = out.loss * 1000
        return out

    return training_step


@pytest.mark.parametrize("factor", [5.0, 0.0])
def test_spike_skips_the_update_only_when_the_guard_is_on(tmp_path, monkeypatch, capsys, factor):
    monkeypatch.setattr(IJEPA, "training_step", spike_at(7))
    ema_steps = []
    original_ema = IJEPA.after_optimizer_step
    monkeypatch.setattr(IJEPA, "after_optimizer_step", lambda self, step: (ema_steps.append(step),
                                                                           original_ema(self, step)))
    args = ["train.steps=9", "train.ckpt_every=1", "train.keep_last=0", "eval.at_end=false", "monitor.every=0",
            f"train.spike_factor={factor}", "train.spike_window=5"]
    train(load_config(None, tiny(tmp_path, *args)))
    d = tmp_path / "checkpoints"
    before, after = (ckpt.load_file(d / f"step_{s:08d}.pt") for s in (7, 8))  # before and after step 7
    same = all(torch.equal(before["method"][k], after["method"][k]) for k in before["method"])
    out = capsys.readouterr().out
    if factor:
        assert same and 7 not in ema_steps and len(ema_steps) == 8
        assert before["optimizer"]["state"].keys() == after["optimizer"]["state"].keys()
        for key, st in before["optimizer"]["state"].items():  # Adam moments and step counts untouched
            assert all(torch.equal(torch.as_tensor(v), torch.as_tensor(after["optimizer"]["state"][key][k]))
                       for k, v in st.items()), key
        assert "skipped step 7: loss " in out and "> 5 × recent mean " in out
        assert after["spike_guard"]["skipped"] == 1 and len(after["spike_guard"]["losses"]) == 5
        rows = [r for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
        assert '"skipped_steps": 0' in rows[6] and '"skipped_steps": 1' in rows[7]
    else:
        assert not same and 7 in ema_steps and "skipped step" not in out
        assert '"skipped_steps"' not in (tmp_path / "metrics.jsonl").read_text()


def test_resume_with_the_guard_is_exact(tmp_path, monkeypatch):
    """The guard's window is in the checkpoint: a resumed run skips exactly the uninterrupted run's steps."""
    monkeypatch.setattr(IJEPA, "training_step", spike_at(6))
    args = ["train.steps=8", "train.ckpt_every=5", "eval.at_end=false", "monitor.every=0", "train.spike_factor=5",
            "train.spike_window=4"]
    train(load_config(None, tiny(tmp_path / "a", *args)))
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    (tmp_path / "b" / "checkpoints" / "step_00000005.pt").write_bytes(
        (tmp_path / "a" / "checkpoints" / "step_00000005.pt").read_bytes())
    train(load_config(None, tiny(tmp_path / "b", *args)), resume=True)
    a, b = (ckpt.load_latest(tmp_path / r / "checkpoints")[1] for r in ("a", "b"))
    assert a["spike_guard"] == b["spike_guard"] and a["spike_guard"]["skipped"] == 1
    assert all(torch.equal(a["method"][k], b["method"][k]) for k in a["method"])


def test_resume_with_drop_path_is_exact(tmp_path):
    """Drop path draws from the global RNG: the checkpoint's RNG state must be the one the next step sees."""
    args = ["train.steps=5", "train.ckpt_every=3", "eval.at_end=false", "model.drop_path=0.2", "monitor.every=0"]
    train(load_config(None, tiny(tmp_path / "a", *args)))
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    (tmp_path / "b" / "checkpoints" / "step_00000003.pt").write_bytes(
        (tmp_path / "a" / "checkpoints" / "step_00000003.pt").read_bytes())
    train(load_config(None, tiny(tmp_path / "b", *args)), resume=True)
    a, b = (ckpt.load_latest(tmp_path / r / "checkpoints")[1] for r in ("a", "b"))
    assert all(torch.equal(a["method"][k], b["method"][k]) for k in a["method"])
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


# --- checkpoints: atomic writes, corrupt files, safe loads ------------------------------------------

def test_save_fsyncs_the_file_and_the_directory_then_renames(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = ckpt.save_checkpoint({"step": 1}, tmp_path / "ck", 1)
    assert len(synced) == 2 and ".tmp." in synced[0]  # the temporary file, before the rename
    assert synced[1] == str((tmp_path / "ck").resolve())  # then the directory entry
    assert [p.name for p in (tmp_path / "ck").iterdir()] == [path.name]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_corrupt_newest_checkpoint_is_named_and_the_previous_used(tmp_path, caplog, damage):
    d = tmp_path / "checkpoints"
    for s in (1, 2):
        ckpt.save_checkpoint({"step": s, "w": torch.randn(100, 100)}, d, s, keep_last=5)
    newest = d / "step_00000002.pt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(len(data)))
    with caplog.at_level(logging.WARNING, logger="openjepa.engine.checkpoint"):
        path, state = ckpt.load_latest(d)
    assert path.name == "step_00000001.pt" and state["step"] == 1
    [record] = caplog.records
    assert "step_00000002.pt" in record.getMessage() and "previous" in record.getMessage()
    with pytest.raises(ckpt.CheckpointError, match=r"step_00000002\.pt.*(truncated|corrupt)"):
        ckpt.load_file(newest)


def test_every_torch_load_is_weights_only():
    """Audit: a checkpoint can never execute code, so every torch.load in src/ passes weights_only=True."""
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                calls.append((f"{path.relative_to(SRC)}:{node.lineno}", ok))
    assert calls and all(ok for _, ok in calls), calls


def test_checkpoint_of_another_architecture_names_the_keys(tmp_path, capsys):
    run = tmp_path / "run"
    train(load_config(None, tiny(run, "train.steps=1", "eval.at_end=false", "monitor.every=0")))
    state = ckpt.load_file(run / "checkpoints" / "step_00000001.pt")
    state["config"]["model"]["encoder"] = "vit_tiny"  # weights of vit_pico, config says vit_tiny
    edited = tmp_path / "edited.pt"
    torch.save(state, edited)
    capsys.readouterr()
    assert main(["eval", str(edited)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("openjepa eval: error: method built from")
    assert "does not match the checkpoint" in err[0] and "shape mismatches" in err[0]
    assert "missing keys" in err[0] and "encoder.blocks.11" in err[0]  # vit_tiny is deeper than vit_pico
    with pytest.raises(ckpt.CheckpointError, match="unexpected keys"):
        ckpt.load_state_strict(torch.nn.Linear(2, 2), {"weight": torch.zeros(2, 2), "bias": torch.zeros(2),
                                                       "extra": torch.zeros(1)})


def test_resume_with_a_changed_architecture_is_a_clean_error(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *tiny(run, "train.steps=1", "eval.at_end=false", "monitor.every=0")]) == 0
    capsys.readouterr()
    changed = tiny(run, "train.steps=2", "eval.at_end=false", "monitor.every=0", "model.predictor_depth=2")
    assert main(["train", *changed, "--resume"]) == 2  # refused by the config comparison, by key
    err = capsys.readouterr().err
    assert "--resume: the config differs from the run's" in err and "model.predictor_depth: 1 -> 2" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["train", *changed, "--resume", "--allow-config-change"]) == 2  # then by the checkpoint's keys
    err = capsys.readouterr().err
    assert "openjepa train: error: method does not match the checkpoint; missing keys" in err
    assert "predictor.predictor_blocks.1." in err and "Traceback" not in err


@pytest.mark.slow
def test_spike_guard_decides_alike_on_every_rank(tmp_path):
    """Under DDP a rank that skipped alone would hang the others in the gradient all-reduce."""
    import torch.multiprocessing as mp

    from tests.engine.guard_ranks import guard_on_rank

    mp.spawn(guard_on_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["taken"] == r1["taken"] == [True] * 6 + [False]  # mean 3.0 is taken; mean 10.5 > 3 × 1.4 is not
    assert r0["state"] == r1["state"]
    assert r0["lines"] == ["skipped step 6: loss 10.5 > 3 × recent mean 1.4"] and r1["lines"] == []  # rank 0 says it
