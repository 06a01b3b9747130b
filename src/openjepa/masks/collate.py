"""The DataLoader collate function that draws masks (ijepa's "masks are data" idea, made pure).

Items arrive as ``(x, y, step, pos)`` from the step-tagged dataset (``engine/loader.py``): ``pos``
is the item's position in the *global* batch, so seeding each sample's masks from
``(seed, step, rank, pos)`` makes them independent of worker count, item arrival order, and, with
the default ``rank=0``, of the world size too. No shared counters: the collator is a plain,
picklable object that can run in any worker process.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from openjepa.masks.base import MaskSampler, unzip_step_batch


class MaskCollator:
    """collate(list of (x, y, step, pos)) -> {"x": (B, C, [T,] H, W), "y": (B,) long, "step": int, "masks": Masks}.

    ``seed``, when given, must equal the sampler's seed (a mismatch is a configuration bug, raised).
    Labels that are None become -1 (unlabelled data).
    """

    def __init__(self, sampler: MaskSampler, seed: Optional[int] = None, rank: int = 0):
        own = getattr(sampler, "seed", None)
        if seed is not None and own is not None and int(seed) != int(own):
            raise ValueError(f"MaskCollator seed={seed} differs from the sampler's seed={own}")
        self.sampler, self.rank = sampler, int(rank)
        self.seed = int(seed) if seed is not None else own

    def __repr__(self) -> str:
        return f"MaskCollator({self.sampler!r}, seed={self.seed}, rank={self.rank})"

    def __call__(self, batch: Sequence[tuple[Any, Any, int, int]]) -> dict[str, Any]:
        xs, ys, step, pos = unzip_step_batch(batch)
        if len(set(pos)) != len(pos):
            raise ValueError(f"items of one batch share a position: {pos}")
        x = torch.stack([torch.as_tensor(v) for v in xs])  # (B, C, H, W) or (B, C, T, H, W)
        y = torch.tensor([-1 if v is None else int(v) for v in ys], dtype=torch.long)  # (B,)
        masks = self.sampler(len(batch), step, self.rank, indices=pos)
        return {"x": x, "y": y, "step": step, "masks": masks}
