"""Transformer MLP and the pre-norm block."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from openjepa.layers.attention import Attention


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth (Huang et al. 2016): drop the whole residual branch per sample."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)); x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, norm_eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None,
                rope: Optional[tuple[Tensor, Tensor]] = None) -> Tensor:
        """x: (B, N, D); ``rope``: rotary (cos, sin) tables for these tokens (V-JEPA 2), or None."""
        x = x + drop_path(self.attn(self.norm1(x), attn_mask, rope), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


def key_padding_mask(valid: Optional[Tensor]) -> Optional[Tensor]:
    """(B, N) validity -> (B, 1, 1, N) SDPA boolean mask, or None when every token is valid."""
    if valid is None:
        return None
    return valid[:, None, None, :].to(torch.bool)
