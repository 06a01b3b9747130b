"""Multi-head self-attention on ``torch.nn.functional.scaled_dot_product_attention``."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from openjepa.layers.rope import apply_rope


class Attention(nn.Module):
    """Self-attention; parameter names (``qkv``, ``proj``) follow the common ViT convention."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None,
                rope: Optional[tuple[Tensor, Tensor]] = None) -> Tensor:
        """x: (B, N, D); attn_mask: (B, 1, 1, N) bool, True = this key may be attended; rope: the
        (cos, sin) tables of :func:`openjepa.layers.rope.rope_tables` for these tokens, applied to q and k."""
        B, N, D = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, N, hd)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        drop = self.attn_drop if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=drop)  # (B, nh, N, hd)
        x = x.transpose(1, 2).reshape(B, N, D)
        return self.proj_drop(self.proj(x))

    def forward_with_past(self, x: Tensor, past: Optional[tuple[Tensor, Tensor]] = None,
                          rope: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Incremental attention (a key/value cache): the new tokens x (B, M, D) attend, unmasked, to each other
        and to ``past`` = (k, v), each (B, nh, P, hd), the keys and values of earlier tokens (already rotated,
        with RoPE). ``rope``: tables (M, R) of the new tokens, applied to their queries and keys. Returns the
        output (B, M, D) and the cache extended to (B, nh, P + M, hd)."""
        B, M, D = x.shape
        qkv = self.qkv(x).reshape(B, M, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, M, hd)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)  # (B, nh, P + M, hd)
        drop = self.attn_drop if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)  # (B, nh, M, hd)
        x = x.transpose(1, 2).reshape(B, M, D)
        return self.proj_drop(self.proj(x)), (k, v)
