"""A run interrupted after a checkpoint and resumed ends with exactly the uninterrupted run's weights."""

import pytest
import torch

from openjepa.config import load_config
from openjepa.engine import checkpoint as ckpt
from openjepa.report.pipeline import train_and_evaluate as train
from openjepa.methods.ijepa import IJEPA
from tests.tiny import tiny


def final_state(run_dir):
    _, state = ckpt.load_latest(run_dir / "checkpoints")
    return state


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    args = ["train.steps=6", "train.ckpt_every=3", "eval.at_end=false"]
    train(load_config(None, tiny(tmp_path / "a", *args)))

    original = IJEPA.after_optimizer_step

    def crash_at_4(self, step):
        if step == 4:
            raise KeyboardInterrupt("simulated kill")
        original(self, step)

    monkeypatch.setattr(IJEPA, "after_optimizer_step", crash_at_4)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(None, tiny(tmp_path / "b", *args)))
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "b" / "checkpoints")] == ["step_00000003.pt"]
    monkeypatch.setattr(IJEPA, "after_optimizer_step", original)
    train(load_config(None, tiny(tmp_path / "b", *args)), resume=True)

    a, b = final_state(tmp_path / "a"), final_state(tmp_path / "b")
    assert a["step"] == b["step"] == 6
    for k in a["method"]:
        assert torch.equal(a["method"][k], b["method"][k]), k
    for k, v in a["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg"], b["optimizer"]["state"][k]["exp_avg"])
    # The online monitor (probe head, feature buffer) resumes exactly too.
    for k, v in a["monitor"]["module"].items():
        assert torch.equal(v, b["monitor"]["module"][k]), k


def test_refuses_to_overwrite_a_run(tmp_path):
    cfg = load_config(None, tiny(tmp_path, "train.steps=2", "eval.at_end=false"))
    train(cfg)
    with pytest.raises(FileExistsError, match="--resume"):
        train(load_config(None, tiny(tmp_path, "train.steps=2", "eval.at_end=false")))


def test_corrupt_newest_checkpoint_falls_back(tmp_path):
    d = tmp_path / "checkpoints"
    ckpt.save_checkpoint({"step": 1, "x": torch.ones(2)}, d, 1, keep_last=5)
    ckpt.save_checkpoint({"step": 2, "x": torch.ones(2)}, d, 2, keep_last=5)
    (d / "step_00000002.pt").write_bytes(b"\x00garbage")
    path, state = ckpt.load_latest(d)
    assert path.name == "step_00000001.pt" and state["step"] == 1


def test_keep_last(tmp_path):
    for s in range(1, 5):
        ckpt.save_checkpoint({"step": s}, tmp_path, s, keep_last=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000003.pt", "step_00000004.pt"]


def test_mismatched_state_names_keys():
    m = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match=r"missing keys \(1\): bias.*unexpected keys \(1\): extra"):
        ckpt.load_state_strict(m, {"weight": torch.zeros(2, 2), "extra": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="shape mismatches"):
        ckpt.load_state_strict(m, {"weight": torch.zeros(3, 2), "bias": torch.zeros(2)})


def test_bf16_autocast_path_runs(tmp_path):
    """The GPU default (bf16 autocast) runs through the same loop; checked here with CPU autocast."""
    summary = train(load_config(None, tiny(tmp_path, "train.steps=2", "train.precision=bf16", "eval.at_end=false")))
    assert summary["steps"] == 2
    state = final_state(tmp_path)
    assert all(v.dtype == torch.float32 for k, v in state["method"].items() if v.is_floating_point())


def test_nonfinite_loss_stops_with_the_step_and_keeps_checkpoints(tmp_path, monkeypatch):
    original = IJEPA.training_step

    def nan_at_3(self, batch, step):
        out = original(self, batch, step)
        if step == 3:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(IJEPA, "training_step", nan_at_3)
    with pytest.raises(FloatingPointError, match="at step 3"):
        train(load_config(None, tiny(tmp_path, "train.steps=6", "train.ckpt_every=2", "eval.at_end=false")))
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "checkpoints")] == ["step_00000002.pt"]
