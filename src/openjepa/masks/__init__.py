"""Mask samplers: which tokens the context encoder sees and which ones the predictor must predict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

from openjepa.masks.base import MaskBatch, Masks, MaskSampler, pad_sets
from openjepa.masks.collate import MaskCollator
from openjepa.masks.multiblock import MultiBlockMaskSampler
from openjepa.masks.ops import apply_masks, masked_mean, masks_to_dense, repeat_for_blocks, valid_or_ones
from openjepa.masks.random import RandomMaskSampler
from openjepa.masks.viz import mask_image

if TYPE_CHECKING:
    from openjepa.config.schema import MaskConfig

SAMPLERS = {"multiblock": MultiBlockMaskSampler, "random": RandomMaskSampler}


def build_mask_sampler(cfg: "MaskConfig", grid: Sequence[int], seed: int) -> Union[MultiBlockMaskSampler, RandomMaskSampler]:
    """The sampler ``cfg.sampler`` names, over the (T, H, W) token ``grid``."""
    if cfg.sampler not in SAMPLERS:
        raise ValueError(f"unknown mask sampler {cfg.sampler!r}; choose one of: {', '.join(SAMPLERS)}")
    return SAMPLERS[cfg.sampler].from_config(cfg, grid, seed)


__all__ = [
    "MaskBatch", "Masks", "MaskSampler", "pad_sets",
    "MultiBlockMaskSampler", "RandomMaskSampler", "MaskCollator", "build_mask_sampler", "SAMPLERS",
    "apply_masks", "repeat_for_blocks", "masked_mean", "masks_to_dense", "valid_or_ones", "mask_image",
]
