"""Export to a Hugging Face folder, by architecture: a RoPE video ViT (V-JEPA 2) becomes a ``VJEPA2Model``
folder, a sin-cos image ViT (I-JEPA) an ``IJepaModel`` folder; both load with ``from_pretrained(DIR)``."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from openjepa.errors import ConfigError
from openjepa.models.vit import VisionTransformer


def save_hf(encoder: nn.Module, out_dir: str | Path) -> list[Path]:
    """Write ``config.json`` + ``model.safetensors`` for ``encoder``; returns the files written."""
    out_dir = Path(out_dir)
    if not isinstance(encoder, VisionTransformer):
        raise ConfigError(f"--format hf: a {type(encoder).__name__} has no Hugging Face counterpart; "
                          f"IJepaModel and VJEPA2Model are ViTs (export it as safetensors or onnx)")
    if encoder.pos == "rope":
        from openjepa.interop.vjepa import save_hf_vjepa2

        save_hf_vjepa2(encoder, out_dir)
    elif encoder.grid[0] == 1 and not encoder.video:
        from openjepa.interop.ijepa import save_hf_ijepa

        save_hf_ijepa(encoder, out_dir)
    else:
        raise ConfigError("--format hf: a sin-cos video ViT (V-JEPA 1) has no transformers model; V-JEPA 2 "
                          "(pos=rope) exports as VJEPA2Model, image ViTs as IJepaModel")
    return [out_dir / "config.json", out_dir / "model.safetensors"]
