"""The fit loop: step-based (epochs are a view), resumable exactly, method-agnostic.

The whole path: build data, method and optimizer; for each step set lr/wd from pure schedules, run
``method.training_step``, step the optimizer, call ``method.after_optimizer_step``; log, checkpoint;
at the end save the encoder as safetensors and evaluate the frozen features.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from openjepa.config.load import to_dict, to_yaml, validate_world
from openjepa.config.schema import Config
from openjepa.data import build_dataset, dataset_info
from openjepa.engine import checkpoint as ckpt
from openjepa.engine import dist
from openjepa.engine.compile import compile_blocks
from openjepa.engine.faults import SpikeGuard, report_skipped_images, track_skipped_images
from openjepa.engine.loader import step_loader
from openjepa.engine.logging import MetricLogger, progress
from openjepa.engine.monitor import TrainingMonitor
from openjepa.engine.optim import build_optimizer, set_hparams
from openjepa.engine.precision import autocast, resolve_device, resolve_precision
from openjepa.engine.schedules import lr_at, wd_at
from openjepa.methods import JEPAMethod, build_method
from openjepa.target import momentum_at

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """Step counts derived from the config and the dataset size."""

    total: int
    warmup: int
    steps_per_epoch: int


def plan_steps(cfg: Config, n_train: int) -> Plan:
    spe = max(n_train // cfg.data.batch_size, 1)
    total = cfg.train.steps or max(int(math.ceil(cfg.train.epochs * spe)), 1)
    warmup = int(round(cfg.optim.warmup_epochs * spe)) if cfg.optim.warmup_epochs > 0 else cfg.optim.warmup_steps
    return Plan(total, min(warmup, total), spe)


def hparams_at(step: int, plan: Plan, cfg: Config) -> tuple[float, float]:
    """Learning rate and weight decay at ``step``: pure functions of the step."""
    o = cfg.optim
    lr = lr_at(step, plan.total, lr=o.lr, start_lr=o.start_lr, final_lr=o.final_lr, warmup=plan.warmup,
               schedule=o.schedule, decay_fraction=o.decay_fraction)
    return lr, wd_at(step, plan.total, weight_decay=o.weight_decay, final_weight_decay=o.final_weight_decay)


def prepare(cfg: Config) -> Config:
    """Fill settings the dataset determines (input channels) into the config."""
    info = dataset_info(cfg.data)
    cfg.model.in_chans = info.in_chans
    if cfg.data.name == "trajectories":
        from openjepa.data.trajectories import fill_world_config

        fill_world_config(cfg)  # env, env settings and action width from the collected data
    return cfg


def train(cfg: Config, resume: bool = False) -> dict[str, Any]:
    """Train ``cfg`` to the end (resuming from ``run_dir`` when asked); returns the final summary.

    Under torchrun every rank runs this function: each loads its share of the global batch, the
    method is wrapped in DDP or FSDP2 (``train.parallel``), and rank 0 alone logs, writes
    checkpoints, evaluates and writes the report.
    """
    cfg = prepare(cfg)
    device = dist.setup(resolve_device(cfg.device))
    rank, world = dist.rank(), dist.world_size()
    validate_world(cfg, world)
    precision = resolve_precision(cfg.train.precision, device)
    run_dir = Path(cfg.run_dir)
    ckpt_dir = run_dir / "checkpoints"
    if not resume and ckpt.list_checkpoints(ckpt_dir):
        raise FileExistsError(f"{ckpt_dir} already holds checkpoints: pass --resume to continue that run, "
                              f"or choose another run_dir (run_dir=...)")
    dist.barrier()  # no rank may see the checkpoint rank 0 is about to write as a stale one
    torch.manual_seed(cfg.seed)
    dataset = build_dataset(cfg.data, "train", cfg.model.img_size, seed=cfg.seed)
    track_skipped_images(dataset, run_dir, fresh=not resume)
    plan = plan_steps(cfg, len(dataset))
    method = build_method(cfg, plan.total).to(device)
    if not resume:
        method.setup_training(cfg)  # e.g. a world model's frozen pretrained encoder
    model = dist.wrap(method, cfg.train.parallel, device)  # what the loop calls; `method` stays the plain view
    opt = build_optimizer(method, cfg.optim)
    guard = SpikeGuard(cfg.train.spike_factor, cfg.train.spike_window)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    monitor = build_monitor(cfg, method, device) if rank == 0 else None

    start = 0
    if resume:
        found = ckpt.load_latest(ckpt_dir, map_location="cpu")  # loading copies onto the device
        if found is None:
            raise FileNotFoundError(f"--resume: no readable checkpoint in {ckpt_dir}")
        path, state = found
        guard.load_state_dict(state.get("spike_guard"))
        start = restore(state, method, opt, scaler, monitor)
        if rank == 0:
            print(f"resumed from {path} at step {start}")
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(to_yaml(cfg))

    if (tf := method.train_transform(cfg)) is not None:
        dataset.transform = tf  # e.g. LeJEPA's multi-view crops
    loader = step_loader(dataset, method.make_collator(cfg), global_batch=cfg.data.batch_size, seed=cfg.seed,
                         start=start, total=plan.total, rank=rank, world=world, num_workers=cfg.data.num_workers,
                         pin_memory=device.type == "cuda")
    if cfg.train.compile:
        compile_blocks(method)
    logger = MetricLogger(run_dir, enabled=rank == 0)
    bar = progress(plan.total, start, cfg.train.progress and rank == 0)
    model.train()
    t_last, seen = time.perf_counter(), 0
    shown: dict[str, str] = {}  # progress-bar postfix
    for batch in loader:
        step = batch["step"]
        lr, wd = hparams_at(step, plan, cfg)
        set_hparams(opt, lr, wd)
        batch = to_device(batch, device)
        with autocast(precision, device):
            out = model(batch, step)  # JEPAMethod.forward is training_step (DDP and FSDP2 need the call)
        if guard.allows(out.loss, step, bar.write):  # a loss spike skips the update (train.spike_factor)
            optimise(out.loss, step, method, opt, scaler, cfg.optim.clip_grad, ckpt_dir)
            method.after_optimizer_step(step)
        if monitor is not None and out.features is not None:
            monitor.update(out.features, batch["y"])

        done = step + 1
        seen += batch["x"].shape[0] * world
        bar.update(1)
        metrics: dict[str, float] = {}
        if done % cfg.train.log_every == 0 or done == plan.total:
            now = time.perf_counter()
            ips = seen / max(now - t_last, 1e-9)
            t_last, seen = now, 0
            metrics = step_metrics(out.metrics, step, plan, cfg, method, guard, device, lr=lr, wd=wd, img_per_s=ips)
            shown.update(loss=f"{metrics['loss']:.4f}", img_s=f"{ips:.0f}", lr=f"{lr:.2e}")
        if monitor is not None and (done % cfg.monitor.every == 0 or done == plan.total):
            metrics.update(monitor_metrics(monitor, done, bar))
            shown.update({k: f"{metrics[k]:.3g}" for k in ("probe_acc", "rankme") if k in metrics})
        if metrics:
            logger.log(done, metrics)
            bar.set_postfix(shown)
        if cfg.train.ckpt_every and done % cfg.train.ckpt_every == 0 and done < plan.total:
            save(snapshot(method, opt, scaler, done, cfg, monitor, guard), ckpt_dir, done, cfg.train.keep_last)
    bar.close()
    report_skipped_images(run_dir)
    logger.close()
    final = snapshot(method, opt, scaler, plan.total, cfg, monitor, guard)
    save(final, ckpt_dir, plan.total, cfg.train.keep_last)
    summary: dict[str, Any] = {"steps": plan.total, "run_dir": str(run_dir), "device": str(device),
                               "precision": precision, "world_size": world}
    if rank == 0:
        summary.update(finish(cfg, final, method, device, run_dir, monitor))
    dist.cleanup()
    return summary


def step_metrics(raw: dict, step: int, plan: Plan, cfg: Config, method: JEPAMethod, guard: SpikeGuard,
                 device: torch.device, **extra: float) -> dict[str, float]:
    """The method's metrics averaged over ranks, plus ``extra``, the epoch, the EMA momentum (methods
    with a teacher) and the spike guard's count of skipped steps (when it is on)."""
    metrics = dist.mean_over_ranks({k: float(v) for k, v in raw.items()}, device)
    metrics.update(extra, epoch=(step + 1) / plan.steps_per_epoch)
    if getattr(method, "target", None) is not None:
        metrics["ema"] = momentum_at(step, plan.total, *cfg.optim.ema)
    if guard.enabled:
        metrics["skipped_steps"] = guard.skipped
    return metrics


def finish(cfg: Config, final: dict, method: JEPAMethod, device: torch.device, run_dir: Path,
           monitor: TrainingMonitor | None) -> dict[str, Any]:
    """Rank 0, after the last step: export the encoder, evaluate, write summary.json and the report."""
    if dist.is_sharded(method):  # FSDP2: evaluate an unsharded copy built from the gathered weights
        method = build_method(cfg, final["step"]).to(device)
        ckpt.load_state_strict(method, final["method"], "method")
    method.eval()
    export_encoder(method, cfg, run_dir / "encoder.safetensors")
    warning = None if monitor is None else monitor.warning
    summary: dict[str, Any] = {"collapse_warning": warning and warning["message"], "collapse": warning}
    if warning is not None:
        print(f"WARNING: {warning['message']}")
    if cfg.eval.at_end:
        summary["eval"] = method.evaluate(cfg, device, run_dir, final["step"])
    (run_dir / "summary.json").write_text(json.dumps({"steps": final["step"], "run_dir": str(run_dir),
                                                      **summary}, indent=2))
    if cfg.eval.report:
        from openjepa.report import write_report

        print(f"report: {write_report(run_dir, device=str(device), progress=cfg.train.progress)}")
    return summary


def save(state: dict, ckpt_dir: Path, step: int, keep_last: int) -> None:
    """Rank 0 writes (the state was gathered by every rank); the others wait until it is on disk."""
    if dist.is_main():
        ckpt.save_checkpoint(state, ckpt_dir, step, keep_last)
    dist.barrier()


def optimise(loss: torch.Tensor, step: int, method: JEPAMethod, opt: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler, clip_grad: float, ckpt_dir: Path) -> None:
    """Backward, optional gradient clipping, optimizer step; a non-finite loss stops the run by name."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"loss is {loss.item()} at step {step}; the last good checkpoint is in "
                                 f"{ckpt_dir} (resume with --resume after lowering optim.lr)")
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip_grad > 0:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(method.parameters(), clip_grad)
    scaler.step(opt)
    scaler.update()


def to_device(batch: dict, device: torch.device) -> dict:
    non_blocking = device.type == "cuda"
    return {k: (v.to(device, non_blocking=non_blocking) if hasattr(v, "to") else v) for k, v in batch.items()}


def snapshot(method: JEPAMethod, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, step: int,
             cfg: Config, monitor: TrainingMonitor | None = None, guard: SpikeGuard | None = None) -> dict:
    """Everything a resumed run needs; data order and masks follow from (seed, step).

    Collective under torchrun (every rank calls it): the model and optimizer states are gathered
    in full to rank 0 (``dist.full_state``), the RNG states of every rank are kept.
    """
    model_sd, optim_sd = dist.full_state(method, opt)
    rngs = dist.gather_objects(ckpt.rng_state())
    return {"step": step, "method": model_sd, "optimizer": optim_sd, "scaler": scaler.state_dict(),
            "rng": rngs[0], "rng_ranks": rngs, "config": to_dict(cfg),
            "monitor": None if monitor is None else monitor.extra_state(), "format": "openjepa-checkpoint-v2",
            "spike_guard": None if guard is None else guard.state_dict()}


def restore(state: dict, method: JEPAMethod, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
            monitor: TrainingMonitor | None = None) -> int:
    ckpt.check_state_keys(method, state["method"], "method")
    dist.load_full_state(method, opt, state["method"], state["optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    if monitor is not None and state.get("monitor"):
        monitor.load_extra_state(state["monitor"])
    rngs = state.get("rng_ranks") or [state["rng"]]
    ckpt.set_rng_state(rngs[dist.rank()] if len(rngs) == dist.world_size() else state["rng"])
    return int(state["step"])


def build_monitor(cfg: Config, method: JEPAMethod, device: torch.device) -> TrainingMonitor | None:
    """The online monitor (probe, RankMe, spread, collapse warning), or None when ``monitor.every`` is 0."""
    if cfg.monitor.every <= 0:
        return None
    num_classes = dataset_info(cfg.data).num_classes
    dim = getattr(method, "feature_dim", method.encoder.embed_dim)  # width of StepOutput.features
    return TrainingMonitor(dim, num_classes, cfg.monitor).to(device)


def monitor_metrics(monitor: TrainingMonitor, step: int, bar: Any) -> dict[str, float]:
    """The monitor's metrics at ``step``; prints the collapse warning the first time it is raised."""
    had_warning = monitor.warning is not None
    metrics = monitor.compute(step)
    if monitor.warning is not None and not had_warning:
        bar.write(f"WARNING: {monitor.warning['message']}")
    return metrics


def export_encoder(method: JEPAMethod, cfg: Config, path: Path) -> None:
    """The target encoder's weights as safetensors, with the model settings as metadata."""
    enc = getattr(method, "target", None)
    enc = enc.encoder if enc is not None else method.encoder
    tensors = {k: v.detach().contiguous().cpu() for k, v in enc.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "openjepa-encoder-v1", "config": to_yaml(cfg)})
