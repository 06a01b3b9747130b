"""Mask contracts: what a sampler returns and how it is seeded.

Tokens are numbered in raster order over the (T, H, W) token grid: ``i = t*H*W + h*W + w``.
A sampler never truncates: sets of different sizes are padded and carry a validity mask.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Protocol, Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence


class MaskBatch(NamedTuple):
    """Padded token indices and their validity.

    idx:   (..., K) int64 token indices into the flattened (T*H*W) grid; padded entries hold 0.
    valid: (..., K) bool, True where ``idx`` is a real token; ``None`` means every entry is real.
    Context sets have shape (B, K); target sets (B, n_targets, K).
    """

    idx: Tensor
    valid: Optional[Tensor] = None

    def flatten_blocks(self) -> "MaskBatch":
        """(B, n, K) -> (B*n, K): one row per target block."""
        k = self.idx.shape[-1]
        valid = None if self.valid is None else self.valid.reshape(-1, k)
        return MaskBatch(self.idx.reshape(-1, k), valid)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "MaskBatch":
        valid = None if self.valid is None else self.valid.to(device, non_blocking=non_blocking)
        return MaskBatch(self.idx.to(device, non_blocking=non_blocking), valid)


class Masks(NamedTuple):
    """What a sampler returns for one batch: context (B, Kc) and targets (B, n_targets, Kt)."""

    context: MaskBatch
    targets: MaskBatch

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Masks":
        return Masks(self.context.to(device, non_blocking), self.targets.to(device, non_blocking))


class MaskGroups(tuple):
    """Several :class:`Masks` of one batch, one per mask group (V-JEPA: short- and long-range blocks)."""

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "MaskGroups":
        return MaskGroups(m.to(device, non_blocking) for m in self)


class MaskSampler(Protocol):
    """A pure function of (seed, step, rank, sample index) -> masks for a batch.

    ``grid`` is the (T, H, W) token grid. ``__call__(batch_size, step, rank)`` returns ``Masks``;
    sample i draws from ``openjepa.layers.seed.generator("mask", seed, step, rank, indices[i])`` when
    ``indices`` is given (e.g. its position in the global batch), else with i in place of ``indices[i]``.
    """

    grid: tuple[int, int, int]

    def __call__(self, batch_size: int, step: int, rank: int = 0,
                 indices: Optional[Sequence[int]] = None) -> Masks: ...


def pad_sets(sets: list[Tensor]) -> MaskBatch:
    """Stack 1-D index tensors of different lengths into a padded MaskBatch (B, K)."""
    lengths = torch.tensor([int(s.numel()) for s in sets])  # (B,)
    idx = pad_sequence([s.reshape(-1).long() for s in sets], batch_first=True, padding_value=0)  # (B, K)
    if bool((lengths == idx.shape[1]).all()):
        return MaskBatch(idx, None)
    valid = torch.arange(idx.shape[1]) < lengths[:, None]  # (B, K): real entries come first
    return MaskBatch(idx, valid)


def sample_indices(batch_size: int, indices: Optional[Sequence[int]] = None) -> list[int]:
    """The per-sample indices a sampler seeds from: ``indices`` if given (checked), else 0..B-1."""
    if indices is None:
        return list(range(batch_size))
    out = [int(i) for i in indices]
    if len(out) != batch_size:
        raise ValueError(f"got {len(out)} sample indices for a batch of {batch_size}")
    return out


def unzip_step_batch(batch: Sequence[tuple[Any, Any, int, int]]) -> tuple[tuple, tuple, int, list[int]]:
    """Items of :class:`~openjepa.engine.loader.StepTagged`, each (input, label, step, position) -> (inputs,
    labels, the batch's one step, positions): where collate functions start. An empty batch, or items
    of different steps, raise ValueError."""
    if len(batch) == 0:
        raise ValueError("cannot collate an empty batch")
    xs, ys, steps, pos = zip(*batch)
    steps_seen = sorted({int(s) for s in steps})
    if len(steps_seen) != 1:
        raise ValueError(f"items of one batch carry different steps {steps_seen}")
    return xs, ys, steps_seen[0], [int(p) for p in pos]
