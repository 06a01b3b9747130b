"""A mask as a picture: which tokens of sample i are dropped, context, or in target block j."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from openjepa.masks.base import MaskGroups, Masks


def mask_image(masks: Masks, grid: Sequence[int], i: int) -> Tensor:
    """(T, H, W) long: 0 = dropped, 1 = context, 2 + j = target block j of sample i.

    Where sets overlap (allow_overlap, or overlapping target blocks) the later one wins:
    targets over context, block j over blocks < j.
    """
    if isinstance(masks, MaskGroups):
        raise TypeError("mask_image draws one mask group; use group_mask_images for MaskGroups")
    T, H, W = (1, *grid) if len(grid) == 2 else tuple(grid)
    img = torch.zeros(T * H * W, dtype=torch.long)

    def paint(idx: Tensor, valid: Tensor | None, value: int) -> None:
        img[idx if valid is None else idx[valid]] = value

    ctx, tgt = masks.context, masks.targets
    paint(ctx.idx[i], None if ctx.valid is None else ctx.valid[i], 1)
    for j in range(tgt.idx.shape[1]):
        paint(tgt.idx[i, j], None if tgt.valid is None else tgt.valid[i, j], 2 + j)
    return img.reshape(T, H, W)


def group_mask_images(masks: Masks | MaskGroups, grid: Sequence[int], i: int) -> list[Tensor]:
    """One :func:`mask_image` (T, H, W) per mask group of sample i (V-JEPA's short- and long-range
    groups, Bardes et al. 2024, Sec. 3.2); a single :class:`Masks` is one group."""
    groups = tuple(masks) if isinstance(masks, MaskGroups) else (masks,)
    return [mask_image(m, grid, i) for m in groups]
