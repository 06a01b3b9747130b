"""Load, merge, validate and save configs: schema defaults <- YAML file <- ``key=value`` overrides.

Every error names the offending key and the valid choices; nothing from a config is ever executed
(YAML is parsed safely by OmegaConf, and transforms are looked up by name).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from pathlib import Path
from typing import Any, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from openjepa.config.schema import EVAL_PROTOCOLS, Config, choice_fields
from openjepa.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"  # openjepa/configs/, shipped in the wheel


def resolve_config_path(name: str) -> Path:
    """A path as given, else ``NAME(.yaml)`` under ``./configs/`` (the user's own) or the shipped configs.

    An unknown name is a :class:`ConfigError` in one line, with the closest shipped name (if any) and all of them.
    """
    candidates = [Path(name)]
    for base in (Path.cwd() / "configs", CONFIG_DIR):
        candidates += [base / name, base / f"{name}.yaml"]
    for p in candidates:
        if p.is_file():
            return p
    shipped = available_configs()
    close = difflib.get_close_matches(_config_stem(name), shipped, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"config {name!r} not found{hint}; shipped configs: {', '.join(shipped) or 'none found'}")


def _config_stem(name: str) -> str:
    """``configs/ijepa/x.yaml`` or ``ijepa/x.yaml`` -> ``ijepa/x``: a path written as in a source checkout."""
    parts = Path(name.removesuffix(".yaml")).parts
    if "configs" in parts:
        parts = parts[len(parts) - parts[::-1].index("configs"):]  # what follows the last configs/ folder
    return "/".join(parts)


def available_configs() -> list[str]:
    """The shipped config names (``ijepa/fashion_mnist``, ...), sorted: what ``openjepa config list`` prints."""
    if not CONFIG_DIR.is_dir():
        return []
    return sorted(p.relative_to(CONFIG_DIR).with_suffix("").as_posix() for p in CONFIG_DIR.rglob("*.yaml"))


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
        expected = _expected(key)
        if expected is not None:
            return ConfigError(f"{key}: expected {expected}, got {_shown(getattr(e, 'value', None))} (in {source})")
        return ConfigError(f"bad value for config key {key!r} in {source}: {_first_line(e.msg)}")
    return ConfigError(f"invalid config in {source}: {_first_line(str(e))}")


def _first_line(text: object) -> str:
    """OmegaConf's message without the ``full_key: ... reference_type=...`` lines it appends."""
    return str(text).strip().splitlines()[0] if str(text).strip() else "invalid value"


def _field_type(key: str) -> Any:
    """The schema's annotation of ``key`` (``optim.lr`` -> float; ``data.mean[0]`` -> float, the
    element type), or None when ``key`` is not a schema field."""
    base, _, index = key.partition("[")
    cls: Any = Config
    for part in base.split("."):
        if not dataclasses.is_dataclass(cls) or part not in (hints := typing.get_type_hints(cls)):
            return None
        cls = hints[part]
    if index:
        args = [a for a in typing.get_args(cls) if a is not type(None)]
        inner = args[0] if typing.get_origin(cls) is typing.Union and args else cls
        cls = typing.get_args(inner)[0] if typing.get_origin(inner) is list and typing.get_args(inner) else Any
    return cls


_TYPE_NAMES = {bool: ("true or false", "booleans"), int: ("an integer", "integers"), float: ("a number", "numbers"),
               str: ("a string", "strings")}


def _describe(t: Any, plural: bool = False) -> str:
    """A schema annotation in words: ``Optional[List[float]]`` -> "a list of numbers or null"."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return " or ".join([*(_describe(a, plural) for a in rest), "null"])
    if origin is list:
        inner = args[0] if args else Any
        return "lists" if plural else ("a list" if inner is Any else f"a list of {_describe(inner, plural=True)}")
    if origin is dict or t is dict:
        return "mappings" if plural else "a mapping"
    if t in _TYPE_NAMES:
        return _TYPE_NAMES[t][plural]
    return "values" if plural else "a value"


def _expected(key: str) -> str | None:
    """What the schema wants at ``key``, in words; None where any value goes or ``key`` is unknown."""
    t = _field_type(key)
    return None if t is None or t is Any or dataclasses.is_dataclass(t) else _describe(t)


def _shown(value: Any) -> str:
    """A user's value as they wrote it: 'abc', 1.5, true, null, a list [1, 2], a mapping {'a': 1}."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return f"a list {list(value)}"
    if isinstance(value, dict):
        return f"a mapping {value}"
    return repr(value)


def _check_sections(data: Any, source: str, cls: Any = Config, prefix: str = "") -> None:
    """Reject a value where the schema has a section (``train=5``, ``train: [1]``); OmegaConf's own
    error names no key for these. Unknown keys and wrong leaf types are left to the merge."""
    if not isinstance(data, dict):
        return
    hints = typing.get_type_hints(cls)
    for k, v in data.items():
        t = hints.get(k)
        if t is None or not dataclasses.is_dataclass(t):
            continue
        key = f"{prefix}{k}"
        if not isinstance(v, dict):
            keys = [f.name for f in dataclasses.fields(t)]
            raise ConfigError(f"{key}: is a section, not a value; set its keys, e.g. {_example(key, t)} "
                              f"(keys: {', '.join(keys)}; got {_shown(v)} in {source})")
        _check_sections(v, source, t, f"{key}.")


def _example(key: str, section: Any) -> str:
    """``key.leaf=default`` for the section's first numeric field (e.g. train.steps=300), else its first field."""
    fields = [(f.name, getattr(section(), f.name)) for f in dataclasses.fields(section)]
    scalars = [(n, v) for n, v in fields if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    numbers = [(n, v) for n, v in scalars if not isinstance(v, str)]
    name, value = (numbers or scalars or fields)[0]
    return f"{key}.{name}={value}"


def _merge(cfg: DictConfig, data: DictConfig, source: str) -> DictConfig:
    """``cfg`` with ``data`` merged in; every error names the key (and ``source``) in one line."""
    _check_sections(OmegaConf.to_container(data, resolve=False), source)
    try:
        return OmegaConf.merge(cfg, data)
    except OmegaConfBaseException as e:
        raise _explain(e, source) from e


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                base: dict | None = None) -> Config:
    """Schema defaults, then ``base`` (a partial config dict, e.g. a source run's model and data), then the YAML
    file at ``path`` (if any), then ``key=value`` overrides.

    A file that sets no ``run_dir`` runs in ``runs/<file stem>``, never in the quickstart's directory.
    """
    base = OmegaConf.merge(OmegaConf.structured(Config), base) if base else OmegaConf.structured(Config)
    if path is not None:
        base.run_dir = f"runs/{resolve_config_path(str(path)).stem}"
    return _finish(_merge_file(base, path), overrides)


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
        cfg = _merge(cfg, data, str(p))
    return cfg


def _finish(cfg: DictConfig, overrides: Sequence[str]) -> Config:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. optim.lr=1e-3)")
        source = f"override {item!r}"
        try:
            data = OmegaConf.from_dotlist([item])
        except yaml.YAMLError as e:  # the value is parsed as YAML: "model.encoder=[unclosed"
            value = item.split("=", 1)[1]
            raise ConfigError(f"{source}: cannot parse the value {value!r}: "
                              f"{getattr(e, 'problem', None) or _first_line(e)}") from e
        except OmegaConfBaseException as e:
            raise _explain(e, source) from e
        cfg = _merge(cfg, data, source)
    obj = OmegaConf.to_object(cfg)
    validate(obj)
    return obj


def validate_world(cfg: Config, world_size: int) -> None:
    """Settings that depend on the number of ranks (known only once torchrun has started them)."""
    if cfg.data.batch_size % world_size:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} is the global batch and must be divisible by "
                          f"the world size {world_size} (each rank takes batch_size / world_size)")


def validate(cfg: Config) -> None:
    """Choices, ranges and impossible combinations of generic settings, by key, before anything is built.

    What depends on a registry (the method, encoder and dataset names) or on one method or dataset
    is checked by :func:`openjepa.methods.check_config` and the builders, not here.
    """
    for key, value, valid in choice_fields(cfg):
        if value not in valid:
            raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(valid)}")
    _validate_ranges(cfg)
    m = cfg.model
    if m.img_size % m.patch_size:
        raise ConfigError(f"model.img_size={m.img_size} is not a multiple of model.patch_size={m.patch_size}")
    for key in ("target_scale", "target_aspect", "context_scale", "context_aspect", "temporal_scale"):
        lo_hi = getattr(cfg.mask, key)
        if len(lo_hi) != 2 or not 0 < lo_hi[0] <= lo_hi[1]:
            raise ConfigError(f"mask.{key}={lo_hi} must be [low, high] with 0 < low <= high")
    tokens = max(m.num_frames // m.tubelet_size, 1) * (m.img_size // m.patch_size) ** 2
    if cfg.mask.min_keep > tokens:
        raise ConfigError(f"mask.min_keep={cfg.mask.min_keep} exceeds the {tokens} tokens of the grid")
    if cfg.train.steps < 0 or (cfg.train.steps == 0 and cfg.train.epochs <= 0):
        raise ConfigError("set train.steps > 0 or train.epochs > 0")
    if len(cfg.optim.ema) != 2:
        raise ConfigError(f"optim.ema={cfg.optim.ema} must be [start, end]")
    if cfg.monitor.every < 0 or cfg.monitor.buffer < 2 or not 0 <= cfg.monitor.collapse_ratio < 1:
        raise ConfigError(f"monitor: every={cfg.monitor.every} must be >= 0, buffer={cfg.monitor.buffer} >= 2, "
                          f"collapse_ratio={cfg.monitor.collapse_ratio} in [0, 1)")
    _validate_eval(cfg)
    if not 0 <= cfg.sigreg.weight <= (1 if cfg.sigreg.combine == "convex" else float("inf")):
        raise ConfigError(f"sigreg.weight={cfg.sigreg.weight} must be in [0, 1] with sigreg.combine=convex")
    if not 0 < cfg.plan.elite_frac <= 1:
        raise ConfigError(f"plan.elite_frac={cfg.plan.elite_frac} must be in (0, 1]")
    if not 0 < cfg.finetune.layer_decay <= 1 or not 0 <= cfg.finetune.label_smoothing < 1:
        raise ConfigError(f"finetune.layer_decay={cfg.finetune.layer_decay} must be in (0, 1] and "
                          f"finetune.label_smoothing={cfg.finetune.label_smoothing} in [0, 1)")


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
    if not 0 < cfg.data.image_weight < 1:
        raise ConfigError(f"data.image_weight={cfg.data.image_weight} must be in (0, 1): the joint image batch's share "
                          f"of the loss (data.images)")
    if not 0 <= cfg.optim.decay_fraction <= 1:
        raise ConfigError(f"optim.decay_fraction={cfg.optim.decay_fraction} must be in [0, 1]")
    m, t = cfg.model, cfg.train
    if m.num_frames > 1 and m.num_frames % m.tubelet_size:  # video datasets set num_frames later (prepare_config)
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
