"""Device and mixed-precision choices."""

from __future__ import annotations

import contextlib

import torch

from openjepa.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICE_TYPES = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    """The ``device`` values this machine accepts: auto, cpu, then cuda, cuda:0 … and mps where present."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    if _mps_available():
        names.append("mps")
    return names


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are checked
    against this machine. Anything else, or a device this machine lacks, raises :class:`ConfigError`
    naming the value and :func:`available_devices`."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    choices = ", ".join(available_devices())
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"device={name!r} is not a device name; choose {choices}") from e
    if dev.type not in DEVICE_TYPES:
        raise ConfigError(f"device={name!r} is not supported; choose {choices}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r}: CUDA is not available here; choose {choices}")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device={name!r}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                          f"choose {choices}")
    if dev.type == "mps" and not _mps_available():
        raise ConfigError(f"device={name!r}: MPS is not available here; choose {choices}")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision={precision!r} is not valid; choose one of: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast for bf16/fp16; a no-op for fp32. Parameters and optimizer state stay in fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
