"""A run killed with SIGKILL mid-run and resumed ends with exactly the uninterrupted run's state.

The runs are real ``python -m openjepa train`` processes (the same environment for all three, so
the arithmetic is identical); the kill lands a few steps after a checkpoint, so the resumed run
must redo work that was lost, from the checkpoint's step, data position and RNG states.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from openjepa.engine import checkpoint as ckpt
from tests.tiny import tiny

ROOT = Path(__file__).resolve().parents[2]
STEPS, CKPT_EVERY, KILL_AFTER = 40, 10, 13  # kill once step 13 is logged: 3 steps after the step-10 checkpoint
# Drop path draws from the global RNG, so that must resume exactly; so must the online monitor
# (probe head, feature buffer), computed every 7 steps.
ARGS = [f"train.steps={STEPS}", f"train.ckpt_every={CKPT_EVERY}", "train.keep_last=2", "eval.at_end=false",
        "monitor.every=7", "model.drop_path=0.1"]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), e.get("PYTHONPATH", "")])
    e["OMP_NUM_THREADS"] = "1"  # identical thread counts: identical floating-point reductions
    return e


def command(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "openjepa", "train", *tiny(run_dir, *ARGS), *extra]


def logged_steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.endswith("}")]


def plain(value):
    """``value`` with tuples as lists (a loaded optimizer state may hold either for the same setting)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def final_state(run_dir: Path) -> dict:
    path, state = ckpt.load_latest(run_dir / "checkpoints")
    assert path.name == f"step_{STEPS:08d}.pt"
    return state


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_is_exact(tmp_path):
    a, b = tmp_path / "uninterrupted", tmp_path / "killed"
    done = subprocess.run(command(a), env=env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]

    proc = subprocess.Popen(command(b), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not any(s >= KILL_AFTER for s in logged_steps(b)):
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "the run never reached the step to kill it at"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    kept = ckpt.list_checkpoints(b / "checkpoints")
    assert f"step_{CKPT_EVERY:08d}.pt" in [p.name for p in kept] and max(logged_steps(b)) < STEPS, kept

    resumed = subprocess.run(command(b, "--resume"), env=env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {kept[-1]}" in resumed.stdout

    sa, sb = final_state(a), final_state(b)
    assert sa["method"].keys() == sb["method"].keys()
    for k in sa["method"]:
        assert torch.equal(sa["method"][k], sb["method"][k]), k
    assert plain(sa["optimizer"]["param_groups"]) == plain(sb["optimizer"]["param_groups"])  # lr, wd, betas, ...
    for i, st in sa["optimizer"]["state"].items():
        for k, v in st.items():
            assert torch.equal(v, sb["optimizer"]["state"][i][k]), (i, k)
    for k, v in sa["monitor"]["module"].items():
        assert torch.equal(v, sb["monitor"]["module"][k]), k
    assert torch.equal(sa["rng"]["torch"], sb["rng"]["torch"])
