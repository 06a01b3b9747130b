"""Token gathers and friends for masked models. Shapes in comments; B batch, N tokens, K kept, D width.

Block-ordering convention (differs from the official I-JEPA ``repeat_interleave_batch``, which is
block-major, row j*B + b): here everything is sample-major, row ``b*n + j`` is sample b, block j,
the order of ``MaskBatch.flatten_blocks`` on (B, n, K) targets.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from openjepa.masks.base import MaskBatch


def apply_masks(x: Tensor, idx: Tensor) -> Tensor:
    """Gather tokens: x (B, N, D), idx (B, K) -> (B, K, D). idx (B, n, K) gives (B, n, K, D).

    ``x`` with B = 1 (e.g. a position embedding (1, N, D)) is broadcast over idx's batch.
    Padded entries of idx (0) gather token 0; use the MaskBatch ``valid`` to ignore them.
    """
    B, D = idx.shape[0], x.shape[-1]
    if x.shape[0] == 1 and B != 1:
        x = x.expand(B, -1, -1)  # (B, N, D), no copy
    flat = idx.reshape(B, -1)  # (B, n*K)
    out = torch.gather(x, 1, flat.unsqueeze(-1).expand(-1, -1, D))  # (B, n*K, D)
    return out.reshape(*idx.shape, D)


def repeat_for_blocks(x: Tensor, n: int) -> Tensor:
    """(B, ...) -> (B*n, ...), row ``b*n + j`` = x[b]: one copy of a sample per target block."""
    return x.repeat_interleave(n, dim=0)


def valid_or_ones(m: MaskBatch) -> Tensor:
    """The validity of a MaskBatch as a bool tensor shaped like ``idx`` (all True when ``valid`` is None)."""
    return torch.ones_like(m.idx, dtype=torch.bool) if m.valid is None else m.valid


def masks_to_dense(m: MaskBatch, num_tokens: int) -> Tensor:
    """Membership: idx (B, K) or (B, n, K) -> (B, N) bool, True where a valid index names the token
    (the union over blocks for (B, n, K))."""
    B = m.idx.shape[0]
    idx = m.idx.reshape(B, -1)  # (B, n*K)
    val = valid_or_ones(m).reshape(B, -1)  # (B, n*K)
    dense = torch.zeros(B, num_tokens, dtype=torch.int32, device=idx.device)
    dense.scatter_add_(1, idx, val.to(torch.int32))  # padded entries add 0 at token 0
    return dense > 0


def masked_mean(x: Tensor, valid: Optional[Tensor]) -> Tensor:
    """Mean of x (B, K, ...) over the valid tokens (valid (B, K) bool or None = all) and every other dim."""
    if valid is None:
        return x.mean()
    w = valid.to(x.dtype).reshape(*valid.shape, *([1] * (x.dim() - valid.dim())))  # (B, K, 1...)
    per_token = x[0, 0].numel() if x.dim() > 2 else 1
    return (x * w).sum() / (w.sum() * per_token).clamp_min(1)
