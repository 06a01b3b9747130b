"""Export trained encoders: safetensors (openjepa's own folder), ONNX and, by architecture, Hugging Face.

``encoder.safetensors`` loads back with :func:`openjepa.load_pretrained`: its metadata holds the format
tag and the resolved config (as YAML) that rebuilds the encoder and its preprocessing.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from openjepa.config.load import to_yaml
from openjepa.config.schema import Config
from openjepa.engine.checkpoint import save_safetensors
from openjepa.engine.runs import ENCODER_FORMAT
from openjepa.methods import JEPAMethod

EXPORT_FORMATS = ("safetensors", "onnx", "hf")


def save_encoder(encoder: nn.Module, cfg: Config, path: str | Path) -> Path:
    """``encoder``'s weights as safetensors at ``path``, with ``cfg`` (which rebuilds it) as metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    return save_safetensors(tensors, path, metadata={"format": ENCODER_FORMAT, "config": to_yaml(cfg)})


def export_encoder(method: JEPAMethod, cfg: Config, path: str | Path) -> Path:
    """The target encoder of a trained method (``method.eval_encoder("target")``) as safetensors."""
    return save_encoder(method.eval_encoder("target"), cfg, path)


def export_to(encoder: nn.Module, cfg: Config, fmt: str, out_dir: Path) -> list[str]:
    """Write ``encoder`` to ``out_dir`` in ``fmt`` (one of :data:`EXPORT_FORMATS`); returns lines to print."""
    from openjepa.errors import ConfigError

    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        return [f"wrote {save_encoder(encoder, cfg, out_dir / 'encoder.safetensors')}"]
    if fmt == "onnx":
        from openjepa.interop.onnx import check_onnx, export_onnx

        path = export_onnx(encoder, out_dir / "encoder.onnx")
        return [f"wrote {path}", f"onnxruntime matches the encoder (max abs difference {check_onnx(path, encoder):.1e})"]
    if fmt == "hf":
        from openjepa.interop.hf import save_hf

        return [f"wrote {p}" for p in save_hf(encoder, out_dir)]
    raise ConfigError(f"--format {fmt!r} is not valid; choose one of: {', '.join(EXPORT_FORMATS)}")
