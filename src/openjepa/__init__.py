"""openjepa: Joint-Embedding Predictive Architectures in PyTorch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openjepa.models import create_model, list_models

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "load_pretrained"]


def load_pretrained(path, which="target", predictor=False, map_location="cpu"):
    """An encoder with its preprocessing, from a run, checkpoint, ``encoder.safetensors`` or a released model
    (see :func:`openjepa.pretrained.load_pretrained`)."""
    from openjepa.pretrained import load_pretrained as _load

    return _load(path, which=which, predictor=predictor, map_location=map_location)


def __getattr__(name: str) -> Any:
    """``create_model`` and ``list_models`` from :mod:`openjepa.models`, imported on first use (PEP 562),
    so that importing the package (``openjepa --version``, ``--help``) does not load torch."""
    if name in ("create_model", "list_models"):
        from openjepa import models

        return getattr(models, name)
    raise AttributeError(f"module 'openjepa' has no attribute {name!r}")
