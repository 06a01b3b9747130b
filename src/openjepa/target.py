"""The EMA target encoder (BYOL, Grill et al. 2020; I-JEPA, Assran et al. 2023, Sec. 3).

ξ ← m·ξ + (1 − m)·θ after every optimizer step, with m rising linearly from ``start`` to ``end``
over training: a pure function of the step, so resuming needs the step only.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def momentum_at(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """Linear EMA momentum schedule: ``start`` at step 0, ``end`` at ``total_steps``."""
    if total_steps <= 0:
        return end
    frac = min(max(step / total_steps, 0.0), 1.0)
    return start + (end - start) * frac


class EMATarget(nn.Module):
    """A frozen copy of an encoder, updated as an exponential moving average of it.

    The copy always runs in eval mode, whatever ``.train()`` is called on the method that holds
    it: the teacher is a deterministic function of ξ, so stochastic depth and dropout never apply
    to the targets (BatchNorm, if any, uses its running statistics, which are averaged like ξ).
    """

    def __init__(self, online: nn.Module):
        super().__init__()
        self.encoder = copy.deepcopy(online)
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True) -> "EMATarget":
        """Record ``mode`` on this wrapper only; the teacher itself stays in eval mode."""
        self.training = mode
        self.encoder.eval()
        return self

    def forward(self, *args, **kwargs):
        return self.encoder(*args, **kwargs)

    @torch.no_grad()
    def update(self, online: nn.Module, momentum: float) -> None:
        """ξ ← m·ξ + (1 − m)·θ for every floating parameter and buffer, vectorised with ``_foreach``."""
        tgt, src = [], []
        for (n_t, t), (n_s, s) in zip(self.encoder.state_dict(keep_vars=True).items(),
                                      online.state_dict(keep_vars=True).items()):
            if n_t != n_s:
                raise RuntimeError(f"EMA target and online encoder differ: {n_t!r} vs {n_s!r}")
            if t.is_floating_point():
                tgt.append(t.data)
                src.append(s.data.to(t.dtype))
        torch._foreach_lerp_(tgt, src, 1.0 - momentum)  # ξ + (1 − m)(θ − ξ) = m·ξ + (1 − m)·θ
