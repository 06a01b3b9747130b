"""Run directories: load what a run saved, and keep a run from being silently corrupted.

- :func:`load_run` / :func:`load_encoder` read a run directory, a checkpoint (``.pt``, loaded with
  ``weights_only=True``) or an exported ``encoder.safetensors``.
- :func:`check_fresh` refuses to start a new run in a directory that holds another run's files.
- :func:`check_resume` compares a checkpoint's config with the one given to ``--resume`` and refuses,
  naming every changed key, unless only settings that do not change what is trained changed
  (:data:`FREE_TO_CHANGE`) or the user said so (``--allow-config-change``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file as load_safetensors
from torch import nn

from openjepa.config.load import from_dict, to_dict
from openjepa.config.schema import Config
from openjepa.engine import checkpoint as ckpt
from openjepa.errors import CheckpointError, ConfigError
from openjepa.methods import JEPAMethod, build_encoder, build_method

ENCODER_FORMAT = "openjepa-encoder-v1"
# Files a run writes beside its checkpoints: a directory holding any of them belongs to a run.
RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "encoder.safetensors", "eval.json", "report.html")
# Settings a resumed run may change without changing what it trains: progress and logging cadence,
# evaluation, planning, where it runs, and its length (raising train.steps continues a finished run).
FREE_TO_CHANGE = ("run_dir", "device", "data.num_workers", "train.progress", "train.log_every", "train.ckpt_every",
                  "train.keep_last", "train.compile", "train.steps", "train.epochs", "monitor.every", "eval.", "plan.")


def load_run(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Config, JEPAMethod, Path, int]:
    """A run directory or checkpoint file -> (config, method with weights loaded, run_dir, step).

    An unreadable file, a file that is not an openjepa checkpoint, or one whose weights do not fit
    the architecture its config describes raises :class:`~openjepa.errors.CheckpointError` naming
    the file (or the missing and unexpected keys); a run directory with no readable checkpoint
    raises ``FileNotFoundError``.
    """
    path = Path(path)
    if path.is_dir():
        found = ckpt.load_latest(path / "checkpoints", map_location)
        if found is None:
            raise FileNotFoundError(f"no readable checkpoint in {path / 'checkpoints'}")
        file, state = found
        run_dir = path
    elif path.is_file():
        file, state = path, ckpt.load_file(path, map_location)
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    else:
        raise FileNotFoundError(f"no run directory or checkpoint at {path}")
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("method"), dict):
        keys = ", ".join(sorted(str(k) for k in state)) or "none"
        raise CheckpointError(f"{file} is not an openjepa checkpoint (no 'config' and 'method' dicts; keys: {keys})")
    cfg = from_dict(state["config"])
    method = build_method(cfg, total_steps=1)
    ckpt.load_state_strict(method, state["method"], f"method built from {file}'s config")
    return cfg, method, run_dir, int(state.get("step", 0))


def is_run(path: str | Path) -> bool:
    """Whether ``path`` is an openjepa run directory (with checkpoints) or training checkpoint (``step_*.pt``)."""
    path = Path(path)
    if path.is_dir():
        return (path / "checkpoints").is_dir()
    return path.is_file() and path.suffix == ".pt" and {"config", "method"} <= set(_keys(path))


def _keys(path: Path) -> list[str]:
    try:
        return list(ckpt.load_file(path))
    except CheckpointError:
        return []


def load_encoder(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """The target encoder of a run, in eval mode. ``path``: run dir, ``encoder.safetensors`` or ``.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / "encoder.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"no encoder weights at {path}")
    if path.suffix == ".pt":
        _, method, _, _ = load_run(path, map_location)
        return method.eval_encoder("target").eval()
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != ENCODER_FORMAT or "config" not in meta:
            raise CheckpointError(f"{path} has no openjepa encoder metadata (format={meta.get('format')!r})")
        cfg = from_dict(yaml.safe_load(meta["config"]))
        weights = load_safetensors(str(path), device=str(map_location))
    except (SafetensorError, OSError, yaml.YAMLError) as e:
        raise CheckpointError(f"cannot read encoder weights {path} (truncated or corrupt): "
                              f"{type(e).__name__}: {e}") from e
    enc = build_encoder(cfg)
    ckpt.load_state_strict(enc, weights, f"encoder built from {path}'s config")
    return enc.eval()


def saved_config(path: str | Path) -> Config:
    """The config a run directory, checkpoint or exported ``encoder.safetensors`` was trained with."""
    path = Path(path)
    if path.is_dir() and (path / "config.yaml").is_file():
        return from_dict(yaml.safe_load((path / "config.yaml").read_text()))
    if path.suffix == ".safetensors" or (path.is_dir() and (path / "encoder.safetensors").is_file()):
        file = path / "encoder.safetensors" if path.is_dir() else path
        try:
            with safe_open(str(file), framework="pt") as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"cannot read {file}: {type(e).__name__}: {e}") from e
        if "config" not in meta:
            raise CheckpointError(f"{file} has no openjepa config metadata")
        return from_dict(yaml.safe_load(meta["config"]))
    return load_run(path)[0]


def check_fresh(run_dir: Path) -> None:
    """A new run may start only in a missing or empty directory, or one holding no run's files."""
    if ckpt.list_checkpoints(run_dir / "checkpoints"):
        raise FileExistsError(f"{run_dir / 'checkpoints'} already holds checkpoints: pass --resume to continue that "
                              f"run, or choose another run_dir (run_dir=...)")
    found = [n for n in RUN_FILES if (run_dir / n).exists()] + sorted(p.name for p in run_dir.glob("events.out.*"))
    if found:
        raise FileExistsError(f"{run_dir} holds another run's files ({', '.join(found)}) but no checkpoint to resume: "
                              f"choose another run_dir (run_dir=...) or delete {run_dir}")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}." if isinstance(v, dict) and v else f"{prefix}{k}"))
    return out


def config_changes(saved: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """``{key: (saved value, new value)}`` for every setting that differs."""
    a, b = _flat(to_dict(saved)), _flat(to_dict(new))
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def check_resume(saved: dict, cfg: Config, allow_change: bool = False) -> dict[str, tuple[Any, Any]]:
    """Refuse a resume whose config changes what the run trains; returns the changes that were accepted.

    ``saved`` is the checkpoint's config dict. Changes outside :data:`FREE_TO_CHANGE` raise
    :class:`~openjepa.errors.ConfigError` naming each key with its old and new value, unless
    ``allow_change`` (``--allow-config-change``).
    """
    changes = config_changes(from_dict(saved), cfg)
    meaning = {k: v for k, v in changes.items() if not any(k == f or (f.endswith(".") and k.startswith(f))
                                                           for f in FREE_TO_CHANGE)}
    if meaning and not allow_change:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in meaning.items())
        raise ConfigError(f"--resume: the config differs from the run's in settings that change what is trained "
                          f"({listed}); resume with the run's own settings, choose another run_dir, or pass "
                          f"--allow-config-change to continue anyway")
    return changes
