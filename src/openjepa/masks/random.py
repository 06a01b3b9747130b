"""Random-token masks (MAE, He et al. 2022, arXiv 2111.06377, Sec. 3; SimMIM, Xie et al. 2022) and
tube masks for video (VideoMAE, Tong et al. 2022, arXiv 2203.12602, Sec. 3.3).

A fraction ``ratio`` of the tokens are targets (one target set per sample, shape (B, 1, Kt)); the
rest are the context (B, Kc). Sets are equal-sized by construction, so ``valid`` is always None:
``Kt = clamp(round(ratio * N), 1, N - 1)`` and ``Kc = N - Kt`` with N = T*H*W tokens. With
``tube=True`` the same ``clamp(round(ratio * H*W), 1, H*W - 1)`` spatial tokens are targets in every
frame (VideoMAE: a token hidden in one frame cannot be copied from its neighbour frame), so
``Kt = T * that``. Sample i draws from ``generator("mask", seed, step, rank, i)`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import torch
from torch import Tensor

from openjepa.layers.seed import generator
from openjepa.masks.base import MaskBatch, Masks, sample_indices

if TYPE_CHECKING:
    from openjepa.config.schema import MaskConfig


class RandomMaskSampler:
    """Uniformly random token (or tube) masks; sizes are fixed, see the module docstring."""

    def __init__(self, grid: Sequence[int] = (1, 14, 14), ratio: float = 0.75, seed: int = 0, tube: bool = False):
        grid = tuple(int(g) for g in grid)
        if len(grid) == 2:
            grid = (1, *grid)
        if len(grid) != 3 or min(grid) < 1:
            raise ValueError(f"grid must be (T, H, W) with positive sides, got {grid}")
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio must be in (0, 1), got {ratio}")
        T, H, W = grid
        self._n = H * W if tube else T * H * W  # tokens drawn from (spatial positions for tubes)
        if self._n < 2:
            raise ValueError(f"grid {grid} has {self._n} token(s) to split; need at least 2 for context and target")
        self.grid: tuple[int, int, int] = grid  # type: ignore[assignment]
        self.ratio, self.seed, self.tube = float(ratio), int(seed), bool(tube)
        self.num_drawn = min(max(round(self.ratio * self._n), 1), self._n - 1)  # targets per frame (tube) or in all
        self.num_targets_tokens = self.num_drawn * (T if tube else 1)  # Kt
        self.num_context_tokens = T * H * W - self.num_targets_tokens  # Kc

    @classmethod
    def from_config(cls, cfg: "MaskConfig", grid: Sequence[int], seed: int) -> "RandomMaskSampler":
        # ``tube`` is not (yet) a MaskConfig field; read it when the schema has it
        return cls(grid, ratio=cfg.ratio, seed=seed, tube=bool(getattr(cfg, "tube", False)))

    def __repr__(self) -> str:
        return f"RandomMaskSampler(grid={self.grid}, ratio={self.ratio}, seed={self.seed}, tube={self.tube})"

    def sample_one(self, step: int, rank: int, index: int) -> tuple[Tensor, Tensor]:
        """(context (Kc,), target (Kt,)), both sorted."""
        T, H, W = self.grid
        perm = torch.randperm(self._n, generator=generator("mask", self.seed, step, rank, index))
        hidden = torch.zeros(self._n, dtype=torch.bool)
        hidden[perm[: self.num_drawn]] = True
        if self.tube:
            hidden = hidden.repeat(T)  # (T*H*W,): the same spatial tokens in every frame
        return (~hidden).nonzero().reshape(-1), hidden.nonzero().reshape(-1)

    def __call__(self, batch_size: int, step: int, rank: int = 0,
                 indices: Optional[Sequence[int]] = None) -> Masks:
        out = [self.sample_one(step, rank, i) for i in sample_indices(batch_size, indices)]
        ctx = torch.stack([c for c, _ in out])  # (B, Kc)
        tgt = torch.stack([t for _, t in out]).unsqueeze(1)  # (B, 1, Kt)
        return Masks(context=MaskBatch(ctx, None), targets=MaskBatch(tgt, None))
