"""Mask samplers: which tokens the context encoder sees and which ones the predictor must predict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

from dataclasses import fields, replace

from openjepa.errors import ConfigError
from openjepa.layers.seed import mix_seed
from openjepa.masks.base import MaskBatch, MaskGroups, Masks, MaskSampler, pad_sets
from openjepa.masks.collate import MaskCollator
from openjepa.masks.multiblock import GroupedMaskSampler, MultiBlockMaskSampler
from openjepa.masks.ops import apply_masks, masked_mean, masks_to_dense, repeat_for_blocks, valid_or_ones
from openjepa.masks.random import RandomMaskSampler
from openjepa.masks.viz import mask_image

if TYPE_CHECKING:
    from openjepa.config.schema import MaskConfig

SAMPLERS = {"multiblock": MultiBlockMaskSampler, "random": RandomMaskSampler}


def group_configs(cfg: "MaskConfig") -> list["MaskConfig"]:
    """``cfg`` with each of ``cfg.groups`` applied (``[cfg]`` without groups); a bad group raises ConfigError."""
    if not cfg.groups:
        return [cfg]
    names = [f.name for f in fields(cfg) if f.name != "groups"]
    out = []
    for g, group in enumerate(cfg.groups):
        if not isinstance(group, dict):
            raise ConfigError(f"mask.groups[{g}]: expected a mapping of mask settings, got {group!r}")
        bad = sorted(set(group) - set(names))
        if bad:
            raise ConfigError(f"mask.groups[{g}]: unknown key(s) {', '.join(bad)}; choose from: {', '.join(names)}")
        out.append(replace(cfg, groups=[], **group))
    return out


def build_mask_sampler(cfg: "MaskConfig", grid: Sequence[int], seed: int
                       ) -> Union[MultiBlockMaskSampler, RandomMaskSampler, GroupedMaskSampler]:
    """The sampler ``cfg.sampler`` names, over the (T, H, W) token ``grid``; with ``cfg.groups`` one sampler per
    group (each seeded ``mix_seed(seed, "group", g)``), drawn together by a :class:`GroupedMaskSampler`."""
    cfgs = group_configs(cfg)
    for c in cfgs:
        if c.sampler not in SAMPLERS:
            raise ConfigError(f"mask.sampler={c.sampler!r} is unknown; choose one of: {', '.join(SAMPLERS)}")
    if len(cfgs) == 1 and not cfg.groups:
        return SAMPLERS[cfg.sampler].from_config(cfg, grid, seed)
    samplers = []
    for g, c in enumerate(cfgs):
        try:
            samplers.append(SAMPLERS[c.sampler].from_config(c, grid, mix_seed(seed, "group", g)))
        except ValueError as e:  # an impossible setting of this group: say which group
            raise ConfigError(f"mask.groups[{g}]: {e}") from e
    return GroupedMaskSampler(samplers, seed)


__all__ = [
    "MaskBatch", "MaskGroups", "Masks", "MaskSampler", "pad_sets", "group_configs",
    "MultiBlockMaskSampler", "GroupedMaskSampler", "RandomMaskSampler", "MaskCollator", "build_mask_sampler", "SAMPLERS",
    "apply_masks", "repeat_for_blocks", "masked_mean", "masks_to_dense", "valid_or_ones", "mask_image",
]
