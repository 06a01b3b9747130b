"""Two ranks under torchrun (gloo, CPU) train exactly like one process with the same global batch.

Launched the way users launch it (``python -m torch.distributed.run --nproc_per_node=2 -m openjepa
train ...``). ``digits`` renders items one at a time, so every sample, augmentation and mask is
the same whichever rank draws it; the loss is normalised by the global token count, so 2 ranks
and 1 rank follow the same trajectory up to float summation order.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openjepa.config import load_config
from openjepa.engine import checkpoint as ckpt
from openjepa.engine.logging import read_jsonl
from openjepa.engine.trainer import train
from openjepa.engine.runs import load_run
from tests.tiny import tiny

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["data.name=digits", "data.batch_size=16", "train.steps=6", "train.ckpt_every=3", "eval.at_end=false",
        "monitor.every=0", "optim.clip_grad=1.0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(run_dir: Path, *extra: str, resume: bool = False) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "openjepa", "train", *tiny(run_dir, *ARGS, *extra)] + (["--resume"] if resume else [])
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def final(run_dir: Path) -> dict:
    return ckpt.load_latest(run_dir / "checkpoints")[1]


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r]


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_ranks_match_one_rank(tmp_path, parallel):
    train(load_config(None, tiny(tmp_path / "one", *ARGS)))
    torchrun(tmp_path / "two", f"train.parallel={parallel}")
    one, two = final(tmp_path / "one"), final(tmp_path / "two")
    assert len(two["rng_ranks"]) == 2 and two["step"] == one["step"] == 6
    assert losses(tmp_path / "two") == pytest.approx(losses(tmp_path / "one"), rel=1e-4)
    assert set(one["method"]) == set(two["method"])  # the same full-state format at any world size
    for k, v in one["method"].items():
        assert torch.allclose(v, two["method"][k], rtol=1e-4, atol=1e-5), k


@pytest.mark.slow
def test_fsdp_checkpoint_resumes_exactly_and_loads_on_one_process(tmp_path):
    run = tmp_path / "fsdp"
    torchrun(run, "train.parallel=fsdp")
    ck = run / "checkpoints"
    uninterrupted = final(run)
    (ck / "step_00000006.pt").unlink()  # as if killed after the step-3 checkpoint
    torchrun(run, "train.parallel=fsdp", resume=True)
    resumed = final(run)
    for k, v in uninterrupted["method"].items():
        assert torch.equal(v, resumed["method"][k]), k
    _, method, _, step = load_run(run)  # a sharded run's checkpoint is a full one: loads without torchrun
    assert step == 6 and sum(p.numel() for p in method.parameters()) > 0
