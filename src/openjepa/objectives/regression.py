"""Regression in representation space: the JEPA prediction loss.

I-JEPA (Assran et al. 2023, Eq. 1): (1/M) Σ_i ‖ŝ_y(i) − s_y(i)‖ over the M target blocks, with the
targets layer-normalised (Sec. 4: "layer normalization ... of the target-encoder output") and no
gradient through them. The official I-JEPA code uses smooth-L1; V-JEPA (Bardes et al. 2024, Eq. 1)
uses L1. Padded target tokens (``valid`` False) contribute nothing.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

LOSSES = ("l1", "l2", "smooth_l1")


def regression_loss(pred: Tensor, target: Tensor, valid: Optional[Tensor] = None, kind: str = "smooth_l1") -> Tensor:
    """Mean over valid tokens of the per-token mean distance. pred, target: (B, K, D); valid: (B, K) bool."""
    pred, target = pred.float(), target.float()  # in fp32 even under bf16 autocast: late losses are ~1e-3
    if kind == "l1":
        d = (pred - target).abs()
    elif kind == "l2":
        d = (pred - target).square()
    elif kind == "smooth_l1":
        d = F.smooth_l1_loss(pred, target, reduction="none", beta=1.0)
    else:
        raise ValueError(f"unknown loss {kind!r}; choose one of: {', '.join(LOSSES)}")
    per_token = d.mean(dim=-1)  # (B, K)
    w = torch.ones_like(per_token) if valid is None else valid.to(per_token.dtype)
    return (per_token * w).sum() / _count_per_rank(w.sum()).clamp_min(1.0)


def _count_per_rank(count: Tensor) -> Tensor:
    """The mean valid-token count per rank (``count`` itself on one process).

    DDP and FSDP average gradients over ranks. Dividing each rank's sum by the *mean* count per rank
    makes that average the gradient of (global sum) / (global count): the loss of one process with
    the whole global batch, even though each rank's local batch holds a different number of valid
    target tokens. The count carries no gradient.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return count
    total = count.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def normalized_targets(h: Tensor) -> Tensor:
    """Layer-norm over the feature dim without affine parameters (I-JEPA's target normalisation)."""
    return F.layer_norm(h, h.shape[-1:])


__all__ = ["LOSSES", "normalized_targets", "regression_loss"]
