"""Classification heads on encoder tokens (B, N, D): the attentive probe's pooler and a linear head.

Shared by the frozen-feature attentive probe (:mod:`openjepa.eval.attentive`) and full fine-tuning
(:mod:`openjepa.methods.finetune`).

The attentive classifier is V-JEPA's (Bardes et al. 2024, arXiv 2404.08471, attentive probing): a
learned query cross-attends over the tokens in one pre-norm block,

    q <- q + CrossAttn(q, LayerNorm(tokens));   q <- q + MLP(LayerNorm(q));   logits = Linear(q)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from openjepa.layers import Mlp


def heads_for(dim: int, requested: int) -> int:
    """The largest divisor of ``dim`` not above ``requested`` (multi-head attention splits ``dim``)."""
    return max(h for h in range(1, max(1, min(requested, dim)) + 1) if dim % h == 0)


class CrossAttention(nn.Module):
    """Multi-head attention of queries (B, Q, D) over tokens (B, T, D), on SDPA."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: Tensor, x: Tensor) -> Tensor:
        (b, nq, d), t, h = q.shape, x.shape[1], self.num_heads
        q = self.q(q).reshape(b, nq, h, d // h).transpose(1, 2)  # (B, h, Q, hd)
        k, v = self.kv(x).reshape(b, t, 2, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, T, hd)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, Q, hd)
        return self.proj(out.transpose(1, 2).reshape(b, nq, d))


class AttentiveClassifier(nn.Module):
    """Learned queries -> one pre-norm cross-attention block -> linear classifier (V-JEPA's probe)."""

    def __init__(self, dim: int, num_classes: int, num_heads: int = 4, num_queries: int = 1,
                 mlp_ratio: float = 4.0, init_std: float = 0.02):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, num_queries, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.xattn = CrossAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.head = nn.Linear(num_queries * dim, num_classes)
        # Init as the official pooler: truncated normal (std 0.02), zero biases, and the two
        # residual-branch outputs scaled by 1/sqrt(2) (GPT-2 style depth rescaling, depth 1).
        nn.init.trunc_normal_(self.query, std=init_std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=init_std)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.xattn.proj.weight.div_(math.sqrt(2.0))
            self.mlp.fc2.weight.div_(math.sqrt(2.0))

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (B, T, D) -> logits (B, C)."""
        q = self.query.expand(tokens.shape[0], -1, -1)  # (B, Q, D)
        q = q + self.xattn(q, self.norm1(tokens))
        q = q + self.mlp(self.norm2(q))
        return self.head(q.flatten(1))  # (B, Q*D) -> (B, C)


class LinearClassifier(nn.Module):
    """Average-pooled tokens -> LayerNorm -> Linear (the fine-tuning head of MAE / I-JEPA's linear evaluation)."""

    def __init__(self, dim: int, num_classes: int, init_std: float = 0.02):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=init_std)
        nn.init.zeros_(self.head.bias)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.head(self.norm(tokens.mean(dim=1)))  # (B, N, D) -> (B, C)
