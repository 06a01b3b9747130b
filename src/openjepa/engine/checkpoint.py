"""Checkpoints that resume exactly, written atomically, loaded safely.

A checkpoint holds the method (encoder, predictor, EMA target), the optimizer, the grad scaler, the
step, the RNG states and the resolved config. Data order, augmentations and masks are pure
functions of (seed, step), so the step is the whole data state. Files are written to a temporary
name, fsynced and renamed (and the directory fsynced), so a crash never leaves a half-written
``step_*.pt``. Loads use ``torch.load(weights_only=True)``: a checkpoint can never execute code. A
file that cannot be read (truncated, corrupt, not a checkpoint) or does not fit the model raises
:class:`CheckpointError` naming it; :func:`load_latest` reports such a file and falls back to the
previous one.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from openjepa.errors import CheckpointError

log = logging.getLogger(__name__)
_NAME = re.compile(r"^step_(\d+)\.pt$")
# What torch.load(weights_only=True) raises on a file that is not a readable checkpoint (found by
# fuzzing truncated, random and bit-flipped files and foreign pickles): the zip reader raises
# RuntimeError, the restricted unpickler UnpicklingError (a refused global), EOFError, ValueError
# (UnicodeDecodeError, bad ints), IndexError, KeyError and struct.error (a damaged opcode stream),
# the file system OSError; OverflowError stands for a size field that decodes to nonsense. Bugs and
# resource problems (TypeError, AttributeError, MemoryError, CUDA out of memory) are not in it:
# they propagate instead of being reported as a corrupt file that an older checkpoint replaces.
READ_ERRORS: tuple[type[BaseException], ...] = (
    RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError, KeyError, IndexError, OverflowError,
    struct.error)
# RuntimeError subclasses that are resource problems, never a bad file.
_NOT_READ_ERRORS: tuple[type[BaseException], ...] = (torch.cuda.OutOfMemoryError,)


def _reason(e: BaseException) -> str:
    """One line saying why a load failed (torch's weights-only message is a page of advice)."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    line = " ".join(text.split())
    return f"{type(e).__name__}: {line[:300]}" if line else type(e).__name__


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to ``path`` via a temporary file + fsync + rename (POSIX-atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                     metadata: dict[str, str] | None = None) -> Path:
    """``safetensors.torch.save_file`` to ``path`` via a temporary file + fsync + rename, like :func:`atomic_save`.

    The file gets the mode a plain ``open()`` gives (0o666 & ~umask, e.g. 0644), not the 0600 of
    the temporary file safetensors writes through: the kernel applies the umask when the temporary
    name is first created here, and that mode is restored after safetensors has replaced it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        mode = os.fstat(fd).st_mode & 0o777  # 0o666 & ~umask, read without touching the process umask
    finally:
        os.close(fd)
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.chmod(tmp, mode)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)
    return path


def _fsync(path: str | os.PathLike) -> None:
    """fsync a file or a directory (its entries) by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[Path]:
    """``step_*.pt`` files in ``ckpt_dir``, oldest step first."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(state: dict, ckpt_dir: str | os.PathLike, step: int, keep_last: int = 2) -> Path:
    path = Path(ckpt_dir) / f"step_{step:08d}.pt"
    atomic_save(state, path)
    if keep_last > 0:
        for old in list_checkpoints(ckpt_dir)[:-keep_last]:
            old.unlink()
    return path


def load_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Safe load (``weights_only=True``); a truncated or corrupt file raises :class:`CheckpointError` naming it."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except _NOT_READ_ERRORS:
        raise
    except READ_ERRORS as e:
        raise CheckpointError(f"cannot read checkpoint {path} (truncated, corrupt or not a checkpoint): "
                              f"{_reason(e)}") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a dict")
    return obj


def load_latest(ckpt_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[Path, dict] | None:
    """Newest readable checkpoint; an unreadable newer one is reported by name (a logged warning with
    the error) and skipped in favour of the one before it. None when no file is readable."""
    for path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return path, load_file(path, map_location)
        except CheckpointError as e:
            log.warning("skipping unreadable checkpoint %s, trying the previous one: %s", path.name, e)
    return None


def load_state_strict(module: nn.Module, state: dict, what: str = "model") -> None:
    """``load_state_dict`` that reports missing, unexpected and mis-shaped keys together, by name."""
    check_state_keys(module, state, what)
    module.load_state_dict(state, strict=True)


def check_state_keys(module: nn.Module, state: dict, what: str = "model") -> None:
    """Raise, naming them, if ``state``'s keys or shapes differ from ``module``'s (also for sharded modules)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
            if keys:
                parts.append(f"{label} ({len(keys)}): {', '.join(keys[:20])}{' ...' if len(keys) > 20 else ''}")
        raise CheckpointError(f"{what} does not match the checkpoint; " + "; ".join(parts))


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore RNG states; they must be CPU byte tensors, whatever ``map_location`` the checkpoint had."""
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
