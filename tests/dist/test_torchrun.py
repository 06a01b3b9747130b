"""Two ranks under torchrun (gloo, CPU) train exactly like one process with the same global batch.

Launched the way users launch it (``python -m torch.distributed.run --nproc_per_node=2 -m openjepa
train ...``). ``digits`` renders items one at a time, so every sample, augmentation and mask is
the same whichever rank draws it; the loss is normalised by the global token count, so 2 ranks
and 1 rank follow the same trajectory up to float summation order.

LeJEPA and the world model (acjepa) too: their batch-normed projector / latent head feed SIGReg,
a statistic of the global batch, so the BatchNorm statistics must be global as well, and LeJEPA's
views (on ``shapes``, which renders whole batches) must be augmented per item, not per rank.
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
from openjepa.engine.logging import read_metrics
from openjepa.report.pipeline import train_and_evaluate as train
from openjepa.engine.runs import load_run
from openjepa.planning.collect import collect
from tests.tiny import tiny

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["data.name=digits", "data.batch_size=16", "train.steps=6", "train.ckpt_every=3", "eval.at_end=false",
        "monitor.every=0", "optim.clip_grad=1.0"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(run_dir: Path, *extra: str, resume: bool = False, base: list[str] = ARGS) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "openjepa", "train", *tiny(run_dir, *base, *extra)] + (["--resume"] if resume else [])
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def final(run_dir: Path) -> dict:
    return ckpt.load_latest(run_dir / "checkpoints")[1]


def metric_rows(run_dir: Path) -> list[dict]:
    """The rows of ``run_dir/metrics.jsonl``; a run's own file has no unreadable line."""
    rows, bad = read_metrics(run_dir / "metrics.jsonl")
    assert bad == 0 and rows, f"{run_dir}/metrics.jsonl: {bad} unreadable line(s), {len(rows)} rows"
    return rows


def losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in metric_rows(run_dir) if "loss" in r]


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


LEJEPA = ["train.method=lejepa", "data.batch_size=16", "train.steps=6", "train.ckpt_every=0", "eval.at_end=false",
          "monitor.every=0", "views.num_local=2", "model.proj_hidden=32", "model.proj_dim=16", "sigreg.slices=32",
          "sigreg.weight=0.5", "data.train_transforms=[{name: ColorJitter, brightness: 0.4}]"]
# Averaged over ranks, these are the one-process values (proj_std / latent_std are per-rank spreads: not).
OBJECTIVE = ("loss", "pred_loss", "sigreg", "teacher_forcing", "rollout")
# Tensors that float round-off alone moves: the Linear biases in front of a BatchNorm and the encoder's
# last LayerNorm bias (pooled, projected, batch-normed) have a gradient of exactly zero, which AdamW
# turns into steps of up to lr in the direction of the round-off; the BatchNorm running means follow them.
# So does the key third of an attention's qkv bias (q·b_k is the same for every key: softmax drops it).
GAUGE = ("encoder.norm.bias", "projector.0.bias", "projector.3.bias", "running_mean")


def without_key_bias(name: str, v: torch.Tensor) -> torch.Tensor:
    if not name.endswith("qkv.bias"):
        return v
    d = v.numel() // 3
    return torch.cat([v[:d], v[2 * d:]])  # (q, k, v) thirds, see layers/attention.py


def objective(run_dir: Path) -> dict[str, list[float]]:
    rows = [r for r in metric_rows(run_dir) if "loss" in r]
    return {k: [r[k] for r in rows] for k in OBJECTIVE if k in rows[0]}


def assert_same_trajectory(one: Path, two: Path, params: bool) -> None:
    """Every objective term at every step; the BatchNorm running variances; ``params``: every other
    tensor of the final state within 1e-3 of its norm (per element, AdamW's division by the root
    of the second moment lets round-off move near-zero-gradient entries by up to lr)."""
    a, b = final(one), final(two)
    assert len(b["rng_ranks"]) == 2 and a["step"] == b["step"]
    ta, tb = objective(one), objective(two)
    assert ta.keys() == tb.keys() and {"loss", "sigreg"} <= ta.keys()
    for k in ta:
        assert tb[k] == pytest.approx(ta[k], rel=1e-4), k
    assert set(a["method"]) == set(b["method"])
    for k, v in a["method"].items():
        if k.endswith("running_var"):
            assert torch.allclose(v, b["method"][k], rtol=1e-3), k
        elif params and v.is_floating_point() and not k.endswith(GAUGE):
            u, w = without_key_bias(k, v), without_key_bias(k, b["method"][k])
            assert (u - w).norm() <= 1e-3 * u.norm(), k


@pytest.mark.slow
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_lejepa_two_ranks_match_one_rank(tmp_path, parallel):
    train(load_config(None, tiny(tmp_path / "one", *LEJEPA)))
    torchrun(tmp_path / "two", f"train.parallel={parallel}", base=LEJEPA)
    assert_same_trajectory(tmp_path / "one", tmp_path / "two", params=True)


WORLD = ["model.img_size=32", "model.patch_size=8", "data.name=trajectories", "data.batch_size=8",
         "data.num_frames=3", "data.frameskip=2", "train.method=acjepa", "train.steps=6", "train.ckpt_every=0",
         "optim.warmup_steps=1", "sigreg.weight=0.1", "sigreg.slices=32", "world.latent_dim=16", "world.pred_dim=32",
         "world.pred_depth=1", "world.pred_heads=2", "world.rollout_steps=2", "eval.at_end=false", "monitor.every=0"]


@pytest.mark.slow
def test_world_model_two_ranks_match_one_rank(tmp_path):
    """Objective terms and running variances only: on these nearly identical frames the encoder's
    gradients are so small that a one-process run on 1 thread and one on 2 threads already end
    5e-3 apart (relative norm) on some encoder biases; the 2-rank run is no further off."""
    root = collect("two_rooms", 10, 16, tmp_path / "two_rooms", seed=1, env_kwargs={"img_size": 32}, progress=False)
    args = [*WORLD, f"data.root={root}"]
    train(load_config(None, tiny(tmp_path / "one", *args)))
    torchrun(tmp_path / "two", base=args)
    assert_same_trajectory(tmp_path / "one", tmp_path / "two", params=False)
