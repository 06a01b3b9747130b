"""Load, merge, validate and save configs: schema defaults <- YAML file <- ``key=value`` overrides.

Every error names the offending key and the valid choices; nothing from a config is ever executed
(YAML is parsed safely by OmegaConf, and transforms are looked up by name).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from pathlib import Path
from typing import Any, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from openjepa.config.schema import EVAL_PROTOCOLS, Config
from openjepa.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"  # the repo's configs/ (editable installs)


def resolve_config_path(name: str) -> Path:
    """A path as given, else ``configs/NAME(.yaml)`` in the working directory or the repo."""
    candidates = [Path(name)]
    for base in (Path.cwd() / "configs", CONFIG_DIR):
        candidates += [base / name, base / f"{name}.yaml"]
    for p in candidates:
        if p.is_file():
            return p
    names = ", ".join(available_configs()) or "none found"
    raise ConfigError(f"config {name!r} not found (looked at {', '.join(str(c) for c in candidates)}); "
                      f"shipped configs: {names}")


def available_configs() -> list[str]:
    if not CONFIG_DIR.is_dir():
        return []
    return sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))


def _valid_keys(path: str) -> list[str]:
    root = OmegaConf.structured(Config)
    node = OmegaConf.select(root, path) if path else root
    return [str(k) for k in node.keys()] if OmegaConf.is_dict(node) else []


def _explain(e: OmegaConfBaseException, source: str) -> ConfigError:
    key = getattr(e, "full_key", None) or ""
    if isinstance(e, (ConfigKeyError, ConfigAttributeError)):
        parent, _, leaf = key.rpartition(".")
        valid = _valid_keys(parent)
        close = difflib.get_close_matches(leaf, valid, n=1)
        hint = f" (did you mean {(parent + '.' if parent else '') + close[0]!r}?)" if close else ""
        where = f"'{parent}'" if parent else "the top level"
        return ConfigError(f"unknown config key {key!r} in {source}{hint}; valid keys in {where}: {', '.join(valid)}")
    if isinstance(e, ValidationError):
        return ConfigError(f"bad value for config key {key!r} in {source}: {e.msg}")
    return ConfigError(f"invalid config in {source}: {e}")


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Config:
    """Schema defaults, then the YAML file at ``path`` (if any), then ``key=value`` overrides."""
    return _finish(_merge_file(OmegaConf.structured(Config), path), overrides)


def load_config_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """``cfg`` with ``key=value`` overrides applied and validated."""
    return _finish(OmegaConf.structured(cfg), overrides)


def _merge_file(cfg: DictConfig, path: str | os.PathLike | None) -> DictConfig:
    if path is not None:
        p = resolve_config_path(str(path))
        try:
            data = OmegaConf.load(p)
        except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot parse config file {p}: {e}") from e
        if not OmegaConf.is_dict(data):
            raise ConfigError(f"config file {p} must hold a mapping of keys, not {type(data).__name__}")
        try:
            cfg = OmegaConf.merge(cfg, data)
        except OmegaConfBaseException as e:
            raise _explain(e, str(p)) from e
    return cfg


def _finish(cfg: DictConfig, overrides: Sequence[str]) -> Config:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. optim.lr=1e-3)")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as e:
            raise _explain(e, f"override {item!r}") from e
    obj = OmegaConf.to_object(cfg)
    validate(obj)
    return obj


CHOICES = {
    "mask.sampler": ("multiblock", "random"),
    "data.name": ("shapes", "digits", "fashion_mnist", "folder", "trajectories"),
    "data.on_error": ("skip", "raise"),
    "optim.schedule": ("cosine", "wsd", "constant"),
    "train.loss": ("l1", "l2", "smooth_l1"),
    "train.precision": ("auto", "fp32", "bf16", "fp16"),
    "eval.encoder": ("target", "context"),
    "train.parallel": ("ddp", "fsdp"),
    "train.target": ("ema", "online"),
    "sigreg.combine": ("convex", "add"),
    "sigreg.statistic": ("per_view", "all_views"),
    "sigreg.input": ("pooled", "tokens"),
    "world.encoder": ("train", "frozen"),
    "world.latent": ("pooled", "patch"),
    "world.cond": ("adaln", "token"),
    "plan.planner": ("cem", "mppi", "random"),
    "plan.energy": ("final", "sum", "min"),
}


def validate_world(cfg: Config, world_size: int) -> None:
    """Settings that depend on the number of ranks (known only once torchrun has started them)."""
    if cfg.data.batch_size % world_size:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} is the global batch and must be divisible by "
                          f"the world size {world_size} (each rank takes batch_size / world_size)")


def validate(cfg: Config) -> None:
    """Choices and impossible settings, reported by key before any model is built."""
    for key, choices in CHOICES.items():
        section, leaf = key.split(".")
        value = getattr(getattr(cfg, section), leaf)
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(choices)}")
    from openjepa.methods import method_names
    from openjepa.registry import list_models

    if cfg.train.method not in method_names():
        raise ConfigError(f"train.method={cfg.train.method!r} is not valid; choose one of: {', '.join(method_names())}")
    if cfg.model.encoder not in list_models():
        close = difflib.get_close_matches(cfg.model.encoder, list_models(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"model.encoder={cfg.model.encoder!r} is not registered{hint}; "
                          f"choose one of: {', '.join(list_models())}")
    _validate_ranges(cfg)
    m = cfg.model
    if m.img_size % m.patch_size:
        raise ConfigError(f"model.img_size={m.img_size} is not a multiple of model.patch_size={m.patch_size}")
    for key in ("target_scale", "target_aspect", "context_scale", "context_aspect", "temporal_scale"):
        lo_hi = getattr(cfg.mask, key)
        if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1]:
            raise ConfigError(f"mask.{key}={lo_hi} must be [low, high] with 0 < low <= high")
    tokens = (m.num_frames // m.tubelet_size) * (m.img_size // m.patch_size) ** 2
    if cfg.mask.min_keep > tokens:
        raise ConfigError(f"mask.min_keep={cfg.mask.min_keep} exceeds the {tokens} tokens of the grid")
    if cfg.data.name == "shapes" and cfg.data.batch_size > cfg.data.train_size:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} exceeds data.train_size={cfg.data.train_size} "
                          f"(the shapes training images)")
    if cfg.train.steps < 0 or (cfg.train.steps == 0 and cfg.train.epochs <= 0):
        raise ConfigError("set train.steps > 0 or train.epochs > 0")
    if len(cfg.optim.ema) != 2:
        raise ConfigError(f"optim.ema={cfg.optim.ema} must be [start, end]")
    if cfg.monitor.every < 0 or cfg.monitor.buffer < 2 or not 0 <= cfg.monitor.collapse_ratio < 1:
        raise ConfigError(f"monitor: every={cfg.monitor.every} must be >= 0, buffer={cfg.monitor.buffer} >= 2, "
                          f"collapse_ratio={cfg.monitor.collapse_ratio} in [0, 1)")
    _validate_eval(cfg)
    if cfg.train.target == "online" and cfg.sigreg.weight <= 0:
        raise ConfigError("train.target=online (no EMA, no stop-gradient) collapses without a regulariser: "
                          "set sigreg.weight > 0 (e.g. 0.05)")
    if not 0 <= cfg.sigreg.weight <= (1 if cfg.sigreg.combine == "convex" else float("inf")):
        raise ConfigError(f"sigreg.weight={cfg.sigreg.weight} must be in [0, 1] with sigreg.combine=convex")
    _validate_world_model(cfg)
    if cfg.train.method == "lejepa" and cfg.views.num_global < 1:
        raise ConfigError(f"views.num_global={cfg.views.num_global} must be at least 1 for lejepa")


def _validate_world_model(cfg: Config) -> None:
    """World models: their method and the trajectory data go together; widths, frames and the encoder source."""
    w, d = cfg.world, cfg.data
    if (cfg.train.method == "acjepa") != (d.name == "trajectories"):
        raise ConfigError(f"train.method={cfg.train.method!r} with data.name={d.name!r}: the world-model method "
                          f"acjepa trains on data.name=trajectories (from `openjepa collect`), and only it does")
    if w.pred_dim % w.pred_heads:
        raise ConfigError(f"world.pred_dim={w.pred_dim} is not a multiple of world.pred_heads={w.pred_heads}")
    if cfg.train.method == "acjepa":
        if d.num_frames < 2:
            raise ConfigError(f"data.num_frames={d.num_frames} must be at least 2: a world model predicts the next frame")
        if w.rollout_steps > d.num_frames - 1:
            raise ConfigError(f"world.rollout_steps={w.rollout_steps} exceeds the {d.num_frames - 1} future frames "
                              f"of a data.num_frames={d.num_frames} sub-trajectory")
        if w.encoder == "frozen" and not w.pretrained:
            raise ConfigError("world.encoder=frozen needs world.pretrained=PATH (an openjepa run, checkpoint or "
                              "encoder.safetensors)")
        if w.encoder == "train" and cfg.sigreg.weight <= 0:
            raise ConfigError("world.encoder=train learns the encoder from scratch and collapses without SIGReg: "
                              "set sigreg.weight > 0 (e.g. 0.1)")
    if not 0 < cfg.plan.elite_frac <= 1:
        raise ConfigError(f"plan.elite_frac={cfg.plan.elite_frac} must be in (0, 1]")


AT_LEAST_1 = ("model.img_size", "model.patch_size", "model.num_frames", "model.tubelet_size", "model.in_chans",
              "model.predictor_embed_dim", "model.predictor_depth", "model.predictor_heads", "mask.num_targets",
              "mask.num_context", "data.batch_size", "train.log_every", "train.spike_window", "eval.knn_k",
              "eval.probe_epochs", "eval.probe_batch_size", "data.frameskip", "world.latent_dim", "world.pred_dim",
              "world.pred_depth", "world.pred_heads", "plan.horizon", "plan.samples", "plan.iterations",
              "plan.replan_every", "plan.max_steps", "plan.episodes")
AT_LEAST_0 = ("mask.min_keep", "data.num_workers", "data.train_size", "data.test_size", "optim.lr", "optim.start_lr",
              "optim.final_lr", "optim.warmup_steps", "optim.warmup_epochs", "optim.weight_decay",
              "optim.final_weight_decay", "optim.clip_grad", "train.ckpt_every", "train.keep_last",
              "train.spike_factor", "eval.max_train_samples", "eval.max_test_samples", "eval.attentive_wd",
              "eval.lowshot_wd", "world.rollout_steps", "world.rollout_weight", "world.probe_frames",
              "plan.episodes_at_end", "plan.batch")
POSITIVE = ("optim.eps", "eval.knn_temperature", "eval.lowshot_lr", "monitor.probe_lr", "plan.temperature")


def _get(cfg: Config, key: str) -> Any:
    section, leaf = key.split(".")
    return getattr(getattr(cfg, section), leaf)


def _validate_ranges(cfg: Config) -> None:
    """Numbers out of range (a zero patch size, a negative learning rate, a NaN), by key."""
    for name, section in vars(cfg).items():
        for leaf, value in (vars(section).items() if dataclasses.is_dataclass(section) else ()):
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise ConfigError(f"{name}.{leaf}={value} must be a finite number")
    for keys, ok, what in ((AT_LEAST_1, lambda v: v >= 1, "at least 1"), (AT_LEAST_0, lambda v: v >= 0, ">= 0"),
                           (POSITIVE, lambda v: v > 0, "> 0")):
        for key in keys:
            if not ok(_get(cfg, key)):
                raise ConfigError(f"{key}={_get(cfg, key)} must be {what}")
    for key, lo, hi in (("data.val_fraction", 0.0, 1.0), ("model.drop_path", 0.0, 1.0)):
        if not lo <= _get(cfg, key) < hi:
            raise ConfigError(f"{key}={_get(cfg, key)} must be in [{lo:g}, {hi:g})")
    if not 0 < cfg.mask.ratio < 1:
        raise ConfigError(f"mask.ratio={cfg.mask.ratio} must be in (0, 1): the fraction of tokens that are targets")
    if not 0 <= cfg.optim.decay_fraction <= 1:
        raise ConfigError(f"optim.decay_fraction={cfg.optim.decay_fraction} must be in [0, 1]")
    m, t = cfg.model, cfg.train
    if m.num_frames % m.tubelet_size:
        raise ConfigError(f"model.num_frames={m.num_frames} is not a multiple of model.tubelet_size={m.tubelet_size}")
    if m.predictor_embed_dim % m.predictor_heads:
        raise ConfigError(f"model.predictor_embed_dim={m.predictor_embed_dim} is not a multiple of "
                          f"model.predictor_heads={m.predictor_heads}")
    if 0 < t.spike_factor <= 1:
        raise ConfigError(f"train.spike_factor={t.spike_factor} must be 0 (off) or greater than 1: a step is "
                          f"skipped when its loss exceeds spike_factor × the recent mean")


def check_protocols(protocols: Sequence[str], key: str = "eval.protocols") -> list[str]:
    """``protocols`` as a list, each one of :data:`EVAL_PROTOCOLS` (duplicates dropped, order kept)."""
    if isinstance(protocols, str) or not protocols:
        raise ConfigError(f"{key}={protocols!r} must be a non-empty list; choose from: {', '.join(EVAL_PROTOCOLS)}")
    bad = [p for p in protocols if p not in EVAL_PROTOCOLS]
    if bad:
        raise ConfigError(f"{key}: unknown protocol {bad[0]!r}; choose from: {', '.join(EVAL_PROTOCOLS)}")
    return list(dict.fromkeys(protocols))


def _validate_eval(cfg: Config) -> None:
    ev = cfg.eval
    check_protocols(ev.protocols)
    if not ev.attentive_lrs or min(ev.attentive_lrs) <= 0:
        raise ConfigError(f"eval.attentive_lrs={ev.attentive_lrs} must be a non-empty list of positive rates")
    for key in ("attentive_epochs", "attentive_batch_size", "attentive_heads", "attentive_queries", "lowshot_seeds"):
        if getattr(ev, key) < 1:
            raise ConfigError(f"eval.{key}={getattr(ev, key)} must be at least 1")
    if any(k < 1 for k in ev.lowshot_shots):
        raise ConfigError(f"eval.lowshot_shots={ev.lowshot_shots} must hold counts >= 1")
    if any(not 0 < f <= 1 for f in ev.lowshot_fractions):
        raise ConfigError(f"eval.lowshot_fractions={ev.lowshot_fractions} must hold fractions in (0, 1]")
    if "lowshot" in ev.protocols and not (ev.lowshot_shots or ev.lowshot_fractions):
        raise ConfigError("eval.protocols has lowshot but eval.lowshot_shots and eval.lowshot_fractions are both empty")
    if ev.batch_size < 1:
        raise ConfigError(f"eval.batch_size={ev.batch_size} must be at least 1")
    if ev.precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"eval.precision={ev.precision!r} is not valid; choose one of: auto, fp32, bf16")


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def from_dict(d: dict) -> Config:
    """A Config from a saved (resolved) dict, e.g. the one inside a checkpoint."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), d))
    except OmegaConfBaseException as e:
        raise _explain(e, "saved config") from e
