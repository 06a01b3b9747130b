"""Multi-view augmentation for LeJEPA-style training: V_g global and V_l local random crops per image.

LeJEPA (Balestriero & LeCun 2025, arXiv 2511.08544, Sec. 5) trains on 2 global views (224 px,
RandomResizedCrop scale 0.3-1) and several local views (96-98 px, scale 0.05-0.3) of each image,
the multi-crop recipe of DINO (Caron et al. 2021). Each view is the data pipeline of
``data/transforms.py`` with its own RandomResizedCrop and flip in front, so configured
``data.train_transforms`` (colour jitter, blur, ...) apply to every view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import torch
from torch import Tensor

from openjepa.data.transforms import build_pipeline
from openjepa.masks.base import unzip_step_batch


class MultiView:
    """image -> tuple of views (each a normalised float tensor (C, size_v, size_v)), globals first."""

    def __init__(self, pipelines: Sequence[Callable[[Any], Tensor]]):
        self.pipelines = list(pipelines)

    def __call__(self, img: Any) -> tuple[Tensor, ...]:
        return tuple(p(img) for p in self.pipelines)

    def __repr__(self) -> str:
        return f"MultiView({len(self.pipelines)} views)"


def multiview_transform(num_global: int, num_local: int, global_size: int, local_size: int,
                        global_scale: Sequence[float], local_scale: Sequence[float], extra: Sequence[Any],
                        mean: Sequence[float], std: Sequence[float]) -> MultiView:
    """Global views first, then local ones; ``extra`` are the configured ``data.train_transforms``."""
    def view(size: int, scale: Sequence[float]) -> Callable[[Any], Tensor]:
        crop = [{"name": "RandomResizedCrop", "size": size, "scale": [float(s) for s in scale], "antialias": True},
                {"name": "RandomHorizontalFlip", "p": 0.5}]
        return build_pipeline([*crop, *extra], size, mean, std)

    return MultiView([view(global_size, global_scale)] * num_global + [view(local_size, local_scale)] * num_local)


class ViewCollator:
    """collate(list of (views, y, step, pos)) -> {"views": [(B, C, H_v, W_v) per view], "y": (B,), "step": int}."""

    def __call__(self, batch: Sequence[tuple[Any, Any, int, int]]) -> dict[str, Any]:
        views, ys, step, _ = unzip_step_batch(batch)
        if not isinstance(views[0], tuple):
            raise TypeError("ViewCollator needs datasets whose transform returns a tuple of views (MultiView)")
        stacked = [torch.stack(v) for v in zip(*views)]  # V x (B, C, H_v, W_v)
        y = torch.tensor([-1 if v is None else int(v) for v in ys], dtype=torch.long)  # (B,)
        return {"views": stacked, "y": y, "step": step}


__all__ = ["MultiView", "ViewCollator", "multiview_transform"]
