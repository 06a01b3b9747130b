"""The JEPA predictor: a narrow transformer that predicts target-token embeddings from context tokens.

I-JEPA (Assran et al. 2023, Sec. 3): context tokens are projected to the predictor width; each
target position gets a learned mask token plus its position embedding; after the blocks, only the
mask-token outputs are projected back to the encoder width. Names match the official checkpoints.
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from openjepa.layers.init import init_weights, rescale_residuals
from openjepa.layers import Block, interpolate_pos_embed, key_padding_mask, sincos_embed
from openjepa.masks.base import MaskBatch
from openjepa.masks.ops import apply_masks


class Predictor(nn.Module):
    def __init__(self, grid: tuple[int, int, int], embed_dim: int, predictor_embed_dim: int = 384, depth: int = 6,
                 num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.0,
                 init_std: float = 0.02, video: bool | None = None):
        super().__init__()
        self.grid = tuple(grid)  # video: the 3-D position layout (default: more than one token along T)
        self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, predictor_embed_dim))
        self.predictor_pos_embed = nn.Parameter(sincos_embed(predictor_embed_dim, self.grid, video=video)[None],
                                                requires_grad=False)
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.predictor_blocks = nn.ModuleList(
            Block(predictor_embed_dim, num_heads, mlp_ratio, qkv_bias, rates[i]) for i in range(depth))
        self.predictor_norm = nn.LayerNorm(predictor_embed_dim, eps=1e-6)
        self.predictor_proj = nn.Linear(predictor_embed_dim, embed_dim)
        nn.init.trunc_normal_(self.mask_token, std=init_std)
        init_weights(self, init_std)
        rescale_residuals(self.predictor_blocks)

    def no_weight_decay(self) -> set[str]:
        return {"predictor_pos_embed", "mask_token"}

    def forward(self, context_tokens: Tensor, context: MaskBatch, target: MaskBatch,
                grid: tuple[int, int, int] | None = None) -> Tensor:
        """context_tokens: (B, Kc, D) at ``context.idx`` (B, Kc) -> predictions (B, Kt, D) at ``target.idx``."""
        B, Kc, _ = context_tokens.shape
        Kt = target.idx.shape[1]
        pos = interpolate_pos_embed(self.predictor_pos_embed, self.grid, grid or self.grid).expand(B, -1, -1)
        x = self.predictor_embed(context_tokens) + apply_masks(pos, context.idx).to(context_tokens.dtype)
        q = self.mask_token.to(x.dtype) + apply_masks(pos, target.idx).to(x.dtype)  # (B, Kt, Dp)
        x = torch.cat([x, q], dim=1)  # (B, Kc + Kt, Dp)
        attn_mask = None
        if context.valid is not None or target.valid is not None:
            cv = context.valid if context.valid is not None else torch.ones(B, Kc, dtype=torch.bool, device=x.device)
            tv = target.valid if target.valid is not None else torch.ones(B, Kt, dtype=torch.bool, device=x.device)
            attn_mask = key_padding_mask(torch.cat([cv, tv], dim=1))
        for blk in self.predictor_blocks:
            x = blk(x, attn_mask)
        x = self.predictor_norm(x[:, Kc:])  # (B, Kt, Dp)
        return self.predictor_proj(x)
