"""SIGReg (provisional single-process version; replaced by the full objective)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SIGReg(nn.Module):
    def __init__(self, slices: int = 256, knots: int = 17, t_max: float = 3.0):
        super().__init__()
        self.slices, self.knots, self.t_max = slices, knots, t_max

    def forward(self, z: Tensor, seed: int = 0, step: int = 0) -> Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        a = torch.randn(z.shape[1], self.slices, generator=g).to(z)
        a = a / a.norm(dim=0, keepdim=True)
        x = z @ a  # (N, M)
        t = torch.linspace(0, self.t_max, self.knots, device=z.device, dtype=z.dtype)
        xt = x.unsqueeze(-1) * t  # (N, M, K)
        err = (xt.cos().mean(0) - torch.exp(-t**2 / 2)).square() + xt.sin().mean(0).square()
        w = torch.exp(-t**2 / 2)
        return torch.trapezoid(err * w, t, dim=-1).mean() * z.shape[0]
