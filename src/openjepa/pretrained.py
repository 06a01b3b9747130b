"""Load a trained encoder for feature extraction: from a run directory, its ``encoder.safetensors``,
or a training checkpoint (``.pt``, loaded with ``weights_only=True``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from openjepa.engine.runs import load_encoder


def load_pretrained(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """The target encoder of a run, in eval mode. ``path``: run dir, ``.safetensors`` or ``.pt``."""
    return load_encoder(path, map_location)
