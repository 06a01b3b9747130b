"""Every loadable source of an encoder, by format: openjepa's own and the released JEPAs' (converted).

:func:`load_source` tries each registered format's ``detect(path)`` in registration order and loads
with the first that claims the path; the result is a :class:`Source`: the encoder (in eval mode), the
config that rebuilds it (model settings and the preprocessing: ``model.img_size``, ``data.mean`` /
``data.std``, ``model.num_frames``), the predictor when asked for and present, and the converter's
report. openjepa's own formats (a run directory, a training checkpoint, an exported
``encoder.safetensors`` or a ``openjepa convert`` folder) are registered here; the converters of
released checkpoints register theirs in their modules.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from openjepa.config.schema import Config
from openjepa.engine import checkpoint as ckpt
from openjepa.engine.runs import load_encoder, load_run, saved_config
from openjepa.errors import CheckpointError
from openjepa.interop.convert import Conversion
from openjepa.registry import Registry


@dataclass
class Source:
    encoder: nn.Module
    config: Config
    format: str
    predictor: nn.Module | None = None
    conversion: Conversion | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific facts (e.g. frames per clip, frame step)


@dataclass(frozen=True)
class SourceFormat:
    detect: Callable[[Path], bool]
    load: Callable[..., Source]  # (path, which, predictor, map_location) -> Source


SOURCE_FORMATS: Registry[SourceFormat] = Registry("source format", "format")


def register_source(name: str, detect: Callable[[Path], bool]) -> Callable:
    def deco(load: Callable[..., Source]) -> Callable[..., Source]:
        SOURCE_FORMATS.add(name, SourceFormat(detect, load))
        return load
    return deco


def load_source(path: str | Path, which: str = "target", predictor: bool = False,
                map_location: str | torch.device = "cpu") -> Source:
    """The encoder at ``path`` in any registered format (see the module docstring)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no model at {path} (a run directory, checkpoint, encoder.safetensors, "
                                f"Hugging Face folder or official checkpoint)")
    for name in SOURCE_FORMATS.in_order():  # registration order
        fmt = SOURCE_FORMATS.get(name)
        if fmt.detect(path):
            return fmt.load(path, which=which, predictor=predictor, map_location=map_location)
    raise CheckpointError(f"{path}: not a format openjepa reads (tried: {', '.join(SOURCE_FORMATS.in_order())})")


def load_part(source: str | Path, part: str) -> nn.Module | None:
    """One part of any loadable source for a run to start from: ``target`` / ``context`` encoder or ``predictor``;
    None when the source has no such part (a lone encoder has no context encoder nor predictor)."""
    if part == "target":
        return load_source(source).encoder
    try:
        src = load_source(source, which="context") if part == "context" else load_source(source, predictor=True)
    except (CheckpointError, FileNotFoundError) as e:  # this source's format holds no such part
        print(f"{source}: no {part} ({e})")
        return None
    return src.encoder if part == "context" else src.predictor


def is_torch_zip(path: Path) -> bool:
    return path.is_file() and zipfile.is_zipfile(path)


def torch_file_keys(path: Path) -> set[str]:
    """Top-level keys of a ``torch.save``d dict, loaded safely (``weights_only=True``)."""
    return set(ckpt.load_file(path))


def _is_run(path: Path) -> bool:
    return path.is_dir() and ((path / "checkpoints").is_dir() or (path / "encoder.safetensors").is_file())


def _is_openjepa_checkpoint(path: Path) -> bool:
    if path.suffix != ".pt" or not is_torch_zip(path):
        return False
    return {"config", "method"} <= torch_file_keys(path)


def _load_openjepa(path: Path, which: str = "target", predictor: bool = False,
                   map_location: str | torch.device = "cpu") -> Source:
    exported_only = path.suffix == ".safetensors" or (path.is_dir() and (path / "encoder.safetensors").is_file())
    if not exported_only or which != "target" or predictor:  # the context encoder, predictor: from the checkpoint
        cfg, method, _, _ = load_run(path, map_location)
        pred = getattr(method, "predictor", None) if predictor else None
        return Source(method.eval_encoder(which).eval(), cfg, "openjepa-checkpoint", pred)
    return Source(load_encoder(path, map_location), saved_config(path), "openjepa-encoder")


register_source("openjepa-run", _is_run)(_load_openjepa)
register_source("openjepa-checkpoint", _is_openjepa_checkpoint)(_load_openjepa)
register_source("openjepa-encoder", lambda p: p.suffix == ".safetensors" and p.is_file())(_load_openjepa)
