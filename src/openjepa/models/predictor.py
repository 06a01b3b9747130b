"""The JEPA predictor: a narrow transformer that predicts target-token embeddings from context tokens.

I-JEPA (Assran et al. 2023, Sec. 3): context tokens are projected to the predictor width; each
target position gets a learned mask token plus its position embedding; after the blocks, only the
mask-token outputs are projected back to the encoder width. Names match the official checkpoints.

V-JEPA (Bardes et al. 2024) and V-JEPA 2 (Assran et al. 2025) keep several learned mask tokens, one per
mask group (``num_mask_tokens``; ``forward(..., mask_index=i)`` picks token ``i mod num_mask_tokens``),
stored here as one (num_mask_tokens, 1, D) parameter. V-JEPA 2 adds no position embedding to the tokens:
with ``pos="rope"`` every block applies the 3-D rotary embedding at each token's grid position instead.
(The official predictor also sorts context and mask tokens by position before its blocks and unsorts them
after; without an attention mask between them, attention with per-token rotary positions is
permutation-equivariant, so that sort does not change the result and is not done here.)

V-JEPA 2.1 (``app/vjepa_2_1/models/predictor.py``) adds, as options: ``in_levels`` (the context tokens are
the encoder's L levels concatenated, (B, K, L*D), embedded by Linear(L*D, D) - GELU - Linear(D, Dp) when
L > 1), ``out_dim`` (width of the prediction, e.g. L levels of a wider teacher), ``context_proj`` (a second
head ``predictor_proj_context`` that also maps the context tokens' outputs, ``return_context=True``),
``modality_embed`` (``img_mod_embed`` / ``video_mod_embed`` added to every token before the blocks) and
``rope_layout``.
"""

from __future__ import annotations


import torch
from torch import Tensor, nn

from openjepa.layers.init import init_weights, rescale_residuals
from openjepa.errors import ConfigError
from openjepa.layers import Block, grid_positions, interpolate_pos_embed, key_padding_mask, rope_tables, sincos_embed
from openjepa.layers.rope import rope_axis_dim
from openjepa.masks.base import MaskBatch
from openjepa.masks.ops import apply_masks


class Predictor(nn.Module):
    def __init__(self, grid: tuple[int, int, int], embed_dim: int, predictor_embed_dim: int = 384, depth: int = 6,
                 num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.0,
                 init_std: float = 0.02, video: bool | None = None, pos: str = "sincos", num_mask_tokens: int = 1,
                 in_levels: int = 1, out_dim: int | None = None, context_proj: bool = False,
                 modality_embed: bool = False, rope_layout: str = "tiled"):
        super().__init__()
        if pos not in ("sincos", "rope"):
            raise ConfigError(f"pos={pos!r} is not a position embedding; choose one of: sincos, rope")
        self.grid = tuple(grid)  # video: the 3-D position layout (default: more than one token along T)
        self.head_dim = predictor_embed_dim // num_heads
        self.rope_layout = rope_layout
        if in_levels > 1:
            self.predictor_embed: nn.Module = nn.Sequential(nn.Linear(in_levels * embed_dim, embed_dim), nn.GELU(),
                                                            nn.Linear(embed_dim, predictor_embed_dim))
        else:
            self.predictor_embed = nn.Linear(embed_dim, predictor_embed_dim)
        self.img_mod_embed = self.video_mod_embed = None
        if modality_embed:
            self.img_mod_embed = nn.Parameter(torch.zeros(1, 1, predictor_embed_dim))
            self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, predictor_embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(num_mask_tokens, 1, predictor_embed_dim))
        self.predictor_pos_embed = None
        if pos == "sincos":
            self.predictor_pos_embed = nn.Parameter(
                sincos_embed(predictor_embed_dim, self.grid, video=video)[None], requires_grad=False)
        else:
            rope_axis_dim(self.head_dim)  # fails early on too narrow a head
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.predictor_blocks = nn.ModuleList(
            Block(predictor_embed_dim, num_heads, mlp_ratio, qkv_bias, rates[i]) for i in range(depth))
        self.predictor_norm = nn.LayerNorm(predictor_embed_dim, eps=1e-6)
        self.predictor_proj = nn.Linear(predictor_embed_dim, out_dim or embed_dim)
        self.predictor_proj_context = nn.Linear(predictor_embed_dim, out_dim or embed_dim) if context_proj else None
        nn.init.trunc_normal_(self.mask_token, std=init_std)
        init_weights(self, init_std)
        if modality_embed:  # official init: N(0, 1e-6)
            nn.init.normal_(self.img_mod_embed, std=1e-6)
            nn.init.normal_(self.video_mod_embed, std=1e-6)
        rescale_residuals(self.predictor_blocks)

    def no_weight_decay(self) -> set[str]:
        return {"predictor_pos_embed", "mask_token"} if self.predictor_pos_embed is not None else {"mask_token"}

    def forward(self, context_tokens: Tensor, context: MaskBatch, target: MaskBatch,
                grid: tuple[int, int, int] | None = None, mask_index: int = 0, modality: str = "video",
                return_context: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """context_tokens: (B, Kc, D) at ``context.idx`` (B, Kc) -> predictions (B, Kt, D) at ``target.idx``.

        ``grid``: the token grid of the input (default: the configured one); ``mask_index``: which mask
        token the targets start from (V-JEPA: the mask group; the official code and ``VJEPA2Model`` use 1);
        ``modality``: ``"image"`` or ``"video"``, which modality embedding to add (``modality_embed`` only);
        ``return_context``: also return the context tokens' outputs through ``predictor_proj_context``."""
        if modality not in ("image", "video"):
            raise ConfigError(f"modality={modality!r}; choose one of: image, video")
        B, Kc, _ = context_tokens.shape
        Kt = target.idx.shape[1]
        grid = tuple(grid or self.grid)
        x = self.predictor_embed(context_tokens)  # (B, Kc, Dp)
        q = self.mask_token[mask_index % self.mask_token.shape[0]].to(x.dtype).expand(B, Kt, -1)  # (B, Kt, Dp)
        rope = None
        if self.predictor_pos_embed is not None:
            pos = interpolate_pos_embed(self.predictor_pos_embed, self.grid, grid).expand(B, -1, -1)
            x = x + apply_masks(pos, context.idx).to(x.dtype)
            q = q + apply_masks(pos, target.idx).to(x.dtype)
        else:
            idx = torch.cat([context.idx, target.idx], dim=1)  # (B, Kc + Kt)
            rope = rope_tables(grid_positions(idx, grid), self.head_dim, self.rope_layout)  # each (B, Kc + Kt, R)
        x = torch.cat([x, q], dim=1)  # (B, Kc + Kt, Dp)
        if self.img_mod_embed is not None:
            x = x + (self.img_mod_embed if modality == "image" else self.video_mod_embed).to(x.dtype)
        attn_mask = None
        if context.valid is not None or target.valid is not None:
            cv = context.valid if context.valid is not None else torch.ones(B, Kc, dtype=torch.bool, device=x.device)
            tv = target.valid if target.valid is not None else torch.ones(B, Kt, dtype=torch.bool, device=x.device)
            attn_mask = key_padding_mask(torch.cat([cv, tv], dim=1))
        for blk in self.predictor_blocks:
            x = blk(x, attn_mask, rope)
        if not return_context:
            return self.predictor_proj(self.predictor_norm(x[:, Kc:]))  # (B, Kt, out)
        if self.predictor_proj_context is None:
            raise ConfigError("return_context=True needs a predictor built with context_proj=True")
        x = self.predictor_norm(x)  # (B, Kc + Kt, Dp)
        return self.predictor_proj(x[:, Kc:]), self.predictor_proj_context(x[:, :Kc])
