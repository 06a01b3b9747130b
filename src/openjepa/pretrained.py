"""``openjepa.load_pretrained(PATH)``: any loadable encoder with the preprocessing it expects.

PATH is an openjepa run directory, training checkpoint (``.pt``), exported ``encoder.safetensors`` or
``openjepa convert`` folder, or a released checkpoint in a format a converter knows (see
:mod:`openjepa.interop.sources`). Loads are ``weights_only`` or safetensors: nothing in a checkpoint runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from openjepa.config.schema import Config
from openjepa.data import dataset_info, eval_pipeline
from openjepa.interop.sources import Source, load_source


@dataclass(frozen=True)
class Preprocessing:
    """What the encoder expects as input: size, channels, normalisation and, for video, the clip."""

    img_size: int
    in_chans: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_frames: int = 1  # frames per clip (1: images)
    frame_step: int = 1  # video: source frames between sampled frames

    def transform(self, cfg: Config) -> Any:
        """The deterministic per-image pipeline (resize, to tensor, normalise) as the run's evaluation applies it."""
        return eval_pipeline(cfg.data, self.img_size)


@dataclass
class Pretrained:
    """A loaded encoder (eval mode), its preprocessing, the config that rebuilds it, and where it came from."""

    encoder: nn.Module
    preprocessing: Preprocessing
    config: Config
    format: str
    predictor: nn.Module | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        """Encoder tokens (B, N, D) of preprocessed input."""
        return self.encoder(x)

    def state_dict(self) -> dict[str, Tensor]:
        """The encoder's state dict."""
        return self.encoder.state_dict()


def preprocessing_of(source: Source) -> Preprocessing:
    cfg = source.config
    if cfg.data.mean is not None and cfg.data.std is not None:  # a converted model states its own
        mean, std = tuple(cfg.data.mean), tuple(cfg.data.std)
    else:
        info = dataset_info(cfg.data)
        mean, std = tuple(info.mean), tuple(info.std)
    return Preprocessing(cfg.model.img_size, cfg.model.in_chans, mean, std, cfg.model.num_frames,
                         int(source.extra.get("frame_step", 1)))


def load_pretrained(path: str | Path, which: str = "target", predictor: bool = False,
                    map_location: str | torch.device = "cpu") -> Pretrained:
    """The encoder at ``path`` (``which``: the target or context encoder of a run), with its preprocessing;
    ``predictor=True`` also brings the predictor where the source has one."""
    src = load_source(path, which=which, predictor=predictor, map_location=map_location)
    return Pretrained(src.encoder, preprocessing_of(src), src.config, src.format, src.predictor, src.extra)
