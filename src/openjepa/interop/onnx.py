"""Export an encoder to ONNX with a dynamic batch axis, and check it in onnxruntime.

The graph comes from ``torch.onnx.export(..., dynamo=True)`` (torch.export, then onnxscript); the input
is ``pixel_values`` (B, C, H, W) for images or (B, C, T, H, W) for clips at the model's own size, the
output ``tokens`` (B, N, D): the encoder's last layer after its final norm, as ``encoder(x)`` gives.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import torch
from torch import nn

from openjepa.errors import ConfigError


def input_shape(encoder: nn.Module) -> tuple[int, ...]:
    """(C, H, W) or (C, T, H, W) of one sample at the encoder's native size."""
    T, H, W = encoder.grid
    p, C = encoder.patch_size, encoder.patch_embed.proj.in_channels
    frames = T * getattr(encoder.patch_embed, "tubelet_size", 1) if getattr(encoder, "video", False) else 1
    return (C, H * p, W * p) if frames == 1 else (C, frames, H * p, W * p)


def export_onnx(encoder: nn.Module, path: str | Path, opset: int = 18, verbose: bool = False) -> Path:
    """Write ``encoder`` (eval mode, fp32) to ``path`` as ONNX; the batch axis is dynamic."""
    try:
        import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
    except ImportError as e:
        raise ConfigError("--format onnx needs the onnx extra: pip install 'openjepa[onnx]'") from e
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = encoder.training
    encoder.eval()
    x = torch.randn(2, *input_shape(encoder))
    batch = torch.export.Dim("batch", min=1, max=65536)
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink, _quiet(None if verbose else ("onnx_ir", "onnxscript", "torch.onnx")), torch.no_grad():
        torch.onnx.export(encoder, (x,), str(path), dynamo=True, opset_version=opset, input_names=["pixel_values"],
                          output_names=["tokens"], dynamic_shapes={"x": {0: batch}}, external_data=False)
    encoder.train(was_training)
    return path


@contextlib.contextmanager
def _quiet(loggers: tuple[str, ...] | None):
    """The exporter's INFO chatter off for the duration of the export (levels restored after)."""
    if not loggers:
        yield
        return
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def check_onnx(path: str | Path, encoder: nn.Module, batch: int = 3, atol: float = 1e-4) -> float:
    """Run the exported graph in onnxruntime on a random batch; returns the max abs difference to ``encoder``
    (raises :class:`~openjepa.errors.CheckpointError` above ``atol``)."""
    import onnxruntime as ort

    from openjepa.errors import CheckpointError

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(batch, *input_shape(encoder), generator=torch.Generator().manual_seed(0))
    got = torch.from_numpy(session.run(None, {"pixel_values": x.numpy()})[0])
    with torch.no_grad():
        want = encoder.eval()(x)
    diff = (got - want).abs().max().item()
    if diff > atol:
        raise CheckpointError(f"{path}: onnxruntime's output differs from the encoder's by {diff:.2e} > {atol:g}")
    return diff
