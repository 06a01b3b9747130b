"""The fit loop: step-based (epochs are a view), resumable exactly, method-agnostic.

``train(cfg)`` builds data, method and optimizer (or restores them from the newest checkpoint),
then for each step sets lr/wd from pure schedules, runs ``method.training_step``, steps the
optimizer, calls ``method.after_optimizer_step``, logs and checkpoints; it returns the trained
method and its final state. It calls only the method contract (:mod:`openjepa.methods.base`).
What follows training (exporting the encoder, evaluating, the report) runs above the engine, in
:mod:`openjepa.report.pipeline`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from openjepa.config.load import to_dict, to_yaml, validate_world
from openjepa.config.schema import Config
from openjepa.data import build_dataset, dataset_info, image_stream, prepare_config
from openjepa.engine import checkpoint as ckpt
from openjepa.engine import dist
from openjepa.engine.compile import compile_blocks
from openjepa.engine.faults import SpikeGuard, report_skipped_images, track_skipped_images
from openjepa.engine.loader import JointLoader, step_loader
from openjepa.engine.logging import MetricLogger, progress
from openjepa.engine.monitor import TrainingMonitor
from openjepa.engine.optim import build_optimizer, set_hparams
from openjepa.engine.precision import autocast, resolve_device, resolve_precision
from openjepa.engine.runs import check_fresh, check_resume, load_encoder
from openjepa.engine.schedules import lr_at, wd_at
from openjepa.errors import ConfigError
from openjepa.layers.seed import mix_seed
from openjepa.methods import JEPAMethod, build_method, check_config


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
    """Check the config against the registries and the method, then fill what the dataset determines."""
    check_config(cfg)
    prepare_config(cfg)
    return cfg


@dataclass
class Fit:
    """Everything the loop touches: built fresh or restored from a checkpoint by :func:`build_fit`."""

    cfg: Config
    device: torch.device
    precision: str
    run_dir: Path
    plan: Plan
    method: JEPAMethod  # the plain module: what the contract is called on
    model: torch.nn.Module  # what the loop calls: the method, or its DDP / FSDP2 wrapper
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    guard: SpikeGuard
    monitor: TrainingMonitor | None
    start: int
    saved: dict | None  # the checkpoint resumed from
    loader: Any = None  # step-tagged batches from ``start`` to ``plan.total`` (built last)

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"


@dataclass
class TrainResult:
    """What :func:`train` hands to whatever runs after it (evaluation, export, report)."""

    cfg: Config  # the prepared config
    method: JEPAMethod  # the plain method (under FSDP2: still sharded; rebuild from ``state``)
    state: dict  # the final checkpoint's contents (full state dicts)
    device: torch.device
    precision: str
    rank: int  # this process's rank (the process group is closed by the time anyone reads it)
    world_size: int
    trained: bool  # False when the run had already finished and nothing was trained

    @property
    def collapse_warning(self) -> dict | None:
        monitor = self.state.get("monitor") or {}
        return monitor.get("warning")


def train(cfg: Config, resume: bool = False, allow_config_change: bool = False,
          load: PartLoader | None = None) -> TrainResult:
    """Train ``cfg`` to ``train.steps`` (resuming from ``run_dir`` when asked).

    Under torchrun every rank runs this: each loads its share of the global batch, the method is
    wrapped in DDP or FSDP2 (``train.parallel``), and rank 0 alone logs and writes checkpoints. The
    process group is closed before returning, so whatever runs next (rank 0's evaluation) never
    holds the other ranks in a collective. ``load(source, part)`` reads the parts a fresh run starts from
    (``method.pretrained_sources``; default: the target encoder of openjepa's own formats).
    """
    fit = build_fit(cfg, resume, allow_config_change, load)
    rank, world = dist.rank(), dist.world_size()
    if fit.start >= fit.plan.total:
        if dist.is_main():
            print(f"{fit.run_dir} already finished at step {fit.start} (train.steps={fit.plan.total}): nothing to "
                  f"train. Raise train.steps to continue it; `openjepa eval {fit.run_dir}` evaluates it again.")
        dist.cleanup()
        return TrainResult(fit.cfg, fit.method, fit.saved or {}, fit.device, fit.precision, rank, world, False)
    run_steps(fit)
    final = snapshot(fit, fit.plan.total)
    save(final, fit.ckpt_dir, fit.plan.total, fit.cfg.train.keep_last)
    report_skipped_images(fit.run_dir)
    dist.cleanup()
    return TrainResult(fit.cfg, fit.method, final, fit.device, fit.precision, rank, world, True)


def build_fit(cfg: Config, resume: bool, allow_config_change: bool = False,
              load: PartLoader | None = None) -> Fit:
    """Build (or restore) the method, optimizer and monitor; refuse a run directory that is not this run's."""
    cfg = prepare(cfg)
    device = dist.setup(resolve_device(cfg.device))
    validate_world(cfg, dist.world_size())
    run_dir = Path(cfg.run_dir)
    saved = resume_state(run_dir, cfg, allow_config_change) if resume else None
    if saved is None:
        check_fresh(run_dir)
    dist.barrier()  # no rank may see the files rank 0 is about to write as another run's
    torch.manual_seed(cfg.seed)
    dataset = build_dataset(cfg.data, "train", cfg.model.img_size, seed=cfg.seed)
    track_skipped_images(dataset, run_dir, fresh=saved is None)
    plan = plan_steps(cfg, len(dataset))
    method = build_method(cfg, plan.total).to(device)
    if saved is None:
        load_pretrained_parts(method, cfg, load or load_target_part)
    precision = resolve_precision(cfg.train.precision, device)
    fit = Fit(cfg, device, precision, run_dir, plan, method, dist.wrap(method, cfg.train.parallel, device),
              build_optimizer(method, cfg.optim), torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
              SpikeGuard(cfg.train.spike_factor, cfg.train.spike_window),
              build_monitor(cfg, method, device) if dist.is_main() else None, 0, saved)
    if saved is not None:
        fit.start = restore(fit, saved)
        if fit.start > plan.total:
            raise ConfigError(f"--resume: the checkpoint is at step {fit.start}, past train.steps={plan.total}")
    if dist.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(to_yaml(cfg))
    fit.loader = build_loader(cfg, method, dataset, fit.start, plan.total, device, run_dir)
    if cfg.train.compile:
        compile_blocks(method)
    return fit


def build_loader(cfg: Config, method: JEPAMethod, dataset: Any, start: int, total: int, device: torch.device,
                 run_dir: Path | None = None) -> Any:
    """This rank's step-tagged batches of steps ``start..total-1``, in the method's data pipeline (its collate
    and train transform); with ``data.images`` each batch also carries the joint image stream's as
    ``batch["images"]`` (:class:`~openjepa.engine.loader.JointLoader`). ``run_dir``: where the image stream's
    unreadable files are listed, beside the main dataset's. ConfigError for a method without an image
    collate, or a global batch larger than its dataset."""
    pipe = method.data_pipeline(cfg)
    if pipe.transform is not None:
        dataset.transform = pipe.transform  # e.g. LeJEPA's multi-view crops
    loader = _step_loader(dataset, pipe.collate, cfg.data, cfg.seed, start, total, device)
    stream = image_stream(cfg)
    if stream is not None:  # V-JEPA 2: a batch of images beside every batch of clips
        if pipe.image_collate is None:
            raise ConfigError(f"train.method={cfg.train.method} does not train on a joint image stream; "
                              f"unset data.images")
        images = build_dataset(stream, "train", cfg.model.img_size, seed=cfg.seed)
        if run_dir is not None:
            track_skipped_images(images, run_dir, fresh=False)  # the same list as the clips'
        loader = JointLoader(loader, _step_loader(images, pipe.image_collate, stream, mix_seed("images", cfg.seed),
                                                  start, total, device, "data.images.batch_size"))
    return loader


def _step_loader(dataset: Any, collate: Any, data: Any, seed: int, start: int, total: int, device: torch.device,
                 key: str = "data.batch_size") -> Any:
    """:func:`~openjepa.engine.loader.step_loader` of ``dataset`` on this rank; ConfigError naming ``key`` when the
    global batch does not fit in the dataset."""
    if data.batch_size > len(dataset):
        raise ConfigError(f"{key}={data.batch_size} exceeds the {len(dataset)} training items of "
                          f"data.name={data.name} (lower {key} or add data)")
    return step_loader(dataset, collate, global_batch=data.batch_size, seed=seed, start=start, total=total,
                       rank=dist.rank(), world=dist.world_size(), num_workers=data.num_workers,
                       pin_memory=device.type == "cuda")


def run_steps(fit: Fit) -> None:
    """The loop, from ``fit.start`` to ``fit.plan.total``; checkpoints every ``train.ckpt_every`` steps."""
    cfg, method, plan = fit.cfg, fit.method, fit.plan
    main = dist.is_main()
    logger = MetricLogger(fit.run_dir, enabled=main)
    bar = progress(plan.total, fit.start, cfg.train.progress and main)
    meter = Throughput()
    fit.model.train()
    for batch in fit.loader:
        step = batch["step"]
        lr, wd = hparams_at(step, plan, cfg)
        set_hparams(fit.opt, lr, wd)
        batch = to_device(batch, fit.device)
        with autocast(fit.precision, fit.device):
            out = fit.model(batch, step)  # JEPAMethod.forward is training_step (DDP and FSDP2 need the call)
        if fit.guard.allows(out.loss, step, bar.write):  # a loss spike skips the update (train.spike_factor)
            optimise(out.loss, step, method, fit.opt, fit.scaler, cfg.optim.clip_grad, fit.ckpt_dir)
            method.after_optimizer_step(step)
        if fit.monitor is not None and out.features is not None:
            fit.monitor.update(out.features, batch.get("y"))
        meter.add(method.batch_size(batch) * dist.world_size())
        bar.update(1)
        log_step(fit, step + 1, out.metrics, lr, wd, meter, logger, bar)
        done = step + 1
        if cfg.train.ckpt_every and done % cfg.train.ckpt_every == 0 and done < plan.total:
            save(snapshot(fit, done), fit.ckpt_dir, done, cfg.train.keep_last)
    bar.close()
    logger.close()


class Throughput:
    """Samples per second since the last reading."""

    def __init__(self) -> None:
        self.t, self.n = time.perf_counter(), 0

    def add(self, n: int) -> None:
        self.n += n

    def read(self) -> float:
        now = time.perf_counter()
        rate = self.n / max(now - self.t, 1e-9)
        self.t, self.n = now, 0
        return rate


def log_step(fit: Fit, done: int, raw: dict, lr: float, wd: float, meter: Throughput, logger: MetricLogger,
             bar: Any) -> None:
    """Every ``train.log_every`` steps: the method's metrics averaged over ranks (a collective), the epoch,
    lr, wd, throughput and the spike guard's count; every ``monitor.every`` steps the monitor's."""
    cfg, total = fit.cfg, fit.plan.total
    metrics: dict[str, float] = {}
    if done % cfg.train.log_every == 0 or done == total:
        metrics = dist.mean_over_ranks({k: float(v) for k, v in raw.items()}, fit.device)
        metrics.update(lr=lr, wd=wd, samples_per_s=meter.read(), epoch=done / fit.plan.steps_per_epoch)
        if fit.guard.enabled:
            metrics["skipped_steps"] = fit.guard.skipped
    if fit.monitor is not None and cfg.monitor.every and (done % cfg.monitor.every == 0 or done == total):
        had_warning = fit.monitor.warning is not None
        metrics.update(fit.monitor.compute(done))
        if fit.monitor.warning is not None and not had_warning:
            bar.write(f"WARNING: {fit.monitor.warning['message']}")
    if metrics:
        logger.log(done, metrics)
        shown = {k: f"{metrics[k]:.3g}" for k in ("loss", "samples_per_s", "probe_acc", "rankme") if k in metrics}
        bar.set_postfix(shown)


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
    """``batch`` with every tensor (or mask batch) on ``device``, nested batches (``batch["images"]``) included."""
    non_blocking = device.type == "cuda"
    return {k: (to_device(v, device) if isinstance(v, dict) else
                v.to(device, non_blocking=non_blocking) if hasattr(v, "to") else v) for k, v in batch.items()}


def snapshot(fit: Fit, step: int) -> dict:
    """Everything a resumed run needs; data order and masks follow from (seed, step).

    Collective under torchrun (every rank calls it): the model and optimizer states are gathered
    in full to rank 0 (``dist.full_state``), the RNG states of every rank are kept.
    """
    model_sd, optim_sd = dist.full_state(fit.method, fit.opt)
    rngs = dist.gather_objects(ckpt.rng_state())
    return {"step": step, "method": model_sd, "optimizer": optim_sd, "scaler": fit.scaler.state_dict(),
            "rng": rngs[0], "rng_ranks": rngs, "config": to_dict(fit.cfg),
            "monitor": None if fit.monitor is None else fit.monitor.extra_state(), "format": "openjepa-checkpoint-v2",
            "spike_guard": fit.guard.state_dict()}


def resume_state(run_dir: Path, cfg: Config, allow_change: bool) -> dict:
    """The newest readable checkpoint of ``run_dir``, whose config must agree with ``cfg`` (see check_resume)."""
    found = ckpt.load_latest(run_dir / "checkpoints", map_location="cpu")  # loading copies onto the device
    if found is None:
        raise FileNotFoundError(f"--resume: no readable checkpoint in {run_dir / 'checkpoints'}")
    path, state = found
    changes = check_resume(state.get("config") or {}, cfg, allow_change)
    if dist.is_main():
        print(f"resuming from {path} at step {state['step']}"
              + (f" (changed: {', '.join(changes)})" if changes else ""))
    return state


def restore(fit: Fit, state: dict) -> int:
    ckpt.check_state_keys(fit.method, state["method"], "method")
    dist.load_full_state(fit.method, fit.opt, state["method"], state["optimizer"])
    if state.get("scaler"):
        fit.scaler.load_state_dict(state["scaler"])
    if fit.monitor is not None and state.get("monitor"):
        fit.monitor.load_extra_state(state["monitor"])
    fit.guard.load_state_dict(state.get("spike_guard"))
    rngs = state.get("rng_ranks") or [state["rng"]]
    ckpt.set_rng_state(rngs[dist.rank()] if len(rngs) == dist.world_size() else state["rng"])
    return int(state["step"])


PartLoader = Callable[[str, str], "torch.nn.Module | None"]


def load_target_part(source: str, part: str) -> torch.nn.Module | None:
    """The engine's own loader: openjepa's formats, the target encoder only (other parts: None)."""
    return load_encoder(source) if part == "target" else None


def load_pretrained_parts(method: JEPAMethod, cfg: Config, load: PartLoader = load_target_part) -> None:
    """A fresh run's ``method.pretrained_sources``: each submodule loads its part of a source strictly.

    A ``context`` encoder the source does not have falls back to its target encoder; a ``predictor`` it
    does not have leaves the method's own (initialised) predictor, with a note."""
    for name, (source, part) in method.pretrained_sources(cfg).items():
        loaded = load(source, part)
        if loaded is None and part == "context":
            loaded, part = load(source, "target"), "target"
        if loaded is None:
            if dist.is_main():
                print(f"{source} has no {part}: {name} starts from its own initialisation")
            continue
        module = method.get_submodule(name)
        ckpt.load_state_strict(module, _own_fixed_tables(module, loaded.state_dict()),
                               f"{source}'s {part} into {name} ({cfg.model.encoder}, img_size {cfg.model.img_size}, "
                               f"patch {cfg.model.patch_size}: set model.* to the source's)")


def _own_fixed_tables(module: torch.nn.Module, state: dict) -> dict:
    """``state`` with each fixed (not trained) sin-cos table of another shape replaced by ``module``'s own.

    Such a table is a function of the token grid alone and gives a token at grid position (t, h, w) the same
    code whatever the grid's size, so a run that continues another at longer clips or a higher resolution
    (V-JEPA 2's progressive cool-down, Assran et al. 2025, Sec. 2.4) keeps every position's code and gains
    the new ones, as RoPE (no table at all) does.
    """
    own = module.state_dict()
    fixed = {n for n, p in module.named_parameters() if not p.requires_grad and n.endswith("pos_embed")}
    return {k: own[k] if k in fixed and k in own and own[k].shape != v.shape else v for k, v in state.items()}


def build_monitor(cfg: Config, method: JEPAMethod, device: torch.device) -> TrainingMonitor | None:
    """The online monitor (probe, RankMe, spread, collapse warning), or None when ``monitor.every`` is 0."""
    if cfg.monitor.every <= 0:
        return None
    return TrainingMonitor(method.feature_dim, dataset_info(cfg.data).num_classes, cfg.monitor).to(device)
