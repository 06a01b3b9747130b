"""Load a trained encoder for feature extraction: from a run directory, its ``encoder.safetensors``,
or a training checkpoint (``.pt``, loaded with ``weights_only=True``)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from openjepa.config.load import from_dict
from openjepa.engine.checkpoint import CheckpointError, load_state_strict
from openjepa.methods import build_encoder
from openjepa.models import VisionTransformer


def load_pretrained(path: str | Path, map_location: str | torch.device = "cpu") -> VisionTransformer:
    """The target encoder of a run, in eval mode. ``path``: run dir, ``.safetensors`` or ``.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / "encoder.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"no encoder weights at {path}")
    if path.suffix == ".pt":
        from openjepa.eval.frozen import load_run

        _, method, _, _ = load_run(path, map_location)
        target = getattr(method, "target", None)  # LeJEPA, online I-JEPA and world models have no EMA teacher
        return (method.encoder if target is None else target.encoder).eval()
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != "openjepa-encoder-v1" or "config" not in meta:
            raise CheckpointError(f"{path} has no openjepa encoder metadata (format={meta.get('format')!r})")
        cfg = from_dict(yaml.safe_load(meta["config"]))
        weights = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, yaml.YAMLError) as e:
        raise CheckpointError(f"cannot read encoder weights {path} (truncated or corrupt): "
                              f"{type(e).__name__}: {e}") from e
    enc = build_encoder(cfg)
    load_state_strict(enc, weights, f"encoder built from {path}'s config")
    return enc.eval()
