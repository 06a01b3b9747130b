"""The plain collate function of labelled training items (supervised fine-tuning)."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from openjepa.masks.base import unzip_step_batch


class LabelledCollator:
    """collate(list of (x, y, step, pos)) -> {"x": (B, C, [T,] H, W), "y": (B,) long, "step": int}; no label: -1."""

    def __call__(self, batch: Sequence[tuple[Any, Any, int, int]]) -> dict[str, Any]:
        xs, ys, step, _ = unzip_step_batch(batch)
        x = torch.stack([torch.as_tensor(v) for v in xs])
        y = torch.tensor([-1 if v is None else int(v) for v in ys], dtype=torch.long)
        return {"x": x, "y": y, "step": step}
