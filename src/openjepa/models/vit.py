"""One Vision Transformer over a (T, H, W) token grid: images are T = 1, video tubelets T > 1.

ViT (Dosovitskiy et al. 2021) with pre-norm blocks, fixed sin-cos position embeddings and no CLS
token, as used by I-JEPA (Assran et al. 2023) and V-JEPA (Bardes et al. 2024); with ``pos="rope"``
V-JEPA 2's 3-D rotary embedding on queries and keys instead (Assran et al. 2025; no ``pos_embed``
parameter, as in the official model). Parameter names follow the common convention so official and
timm weights load with prefix edits only.

A video model (``num_frames > 1``) given an image (B, C, H, W) or a one-frame clip repeats the frame
``tubelet_size`` times, as ``transformers``' ``VJEPA2Model`` does, so that it forms one tubelet.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from openjepa.layers.init import init_weights, rescale_residuals
from openjepa.layers.rope import rope_axis_dim
from openjepa.errors import ConfigError
from openjepa.layers import (Block, PatchEmbed, grid_positions, interpolate_pos_embed, key_padding_mask, rope_tables,
                             sincos_embed)
from openjepa.masks.base import MaskBatch
from openjepa.masks.ops import apply_masks
from openjepa.registry import register_model


class VisionTransformer(nn.Module):
    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, num_frames: int = 1,
                 tubelet_size: int = 1, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.0, init_std: float = 0.02,
                 pos: str = "sincos", norm_eps: float = 1e-6):
        super().__init__()
        if pos not in ("sincos", "rope"):
            raise ConfigError(f"pos={pos!r} is not a position embedding; choose one of: sincos, rope")
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        if num_frames % tubelet_size:
            raise ValueError(f"num_frames {num_frames} is not a multiple of tubelet_size {tubelet_size}")
        self.embed_dim, self.num_heads, self.patch_size, self.pos = embed_dim, num_heads, patch_size, pos
        self.grid = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, None if num_frames == 1 else tubelet_size)
        # Fixed (not learned), but a Parameter so official checkpoints' "pos_embed" key loads as is.
        self.video = num_frames > 1  # V-JEPA's 3-D position layout, even for a clip of one tubelet
        self.pos_embed = None  # RoPE: positions enter through the attention (V-JEPA 2 has no pos_embed)
        if pos == "rope":
            rope_axis_dim(embed_dim // num_heads)  # fails early on too narrow a head
        if pos == "sincos":
            self.pos_embed = nn.Parameter(sincos_embed(embed_dim, self.grid, video=self.video)[None],
                                          requires_grad=False)
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias, rates[i], norm_eps)
                                    for i in range(depth))
        # LayerNorm eps: 1e-6 as in the official I-JEPA / V-JEPA code; Hugging Face configs carry their own.
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        init_weights(self, init_std)
        rescale_residuals(self.blocks)


    @property
    def num_tokens(self) -> int:
        return math.prod(self.grid)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"} if self.pos_embed is not None else set()

    def as_clip(self, x: Tensor) -> Tensor:
        """A video model's input as a clip: an image (B, C, H, W) or a one-frame clip becomes
        (B, C, tubelet, H, W) by repeating the frame (``VJEPA2Model``'s rule); anything else is returned as is."""
        t = self.patch_embed.tubelet_size
        if t is None:
            return x
        if x.ndim == 4:
            x = x.unsqueeze(2)  # (B, C, 1, H, W)
        return x.repeat(1, 1, t, 1, 1) if x.shape[2] == 1 else x

    def embed(self, x: Tensor) -> Tensor:
        """Patch tokens plus position embedding, resampled when ``x`` has another resolution: (B, N, D).

        With RoPE the tokens carry no position here (see :meth:`rope`)."""
        x = self.as_clip(x)
        tokens = self.patch_embed(x)
        if self.pos_embed is None:
            return tokens
        grid = self.patch_embed.grid(x)
        return tokens + interpolate_pos_embed(self.pos_embed, self.grid, grid).to(tokens.dtype)

    def rope(self, x: Tensor, idx: Optional[Tensor] = None) -> Optional[tuple[Tensor, Tensor]]:
        """RoPE (cos, sin) tables for the token grid of input ``x`` itself, at all its tokens or at ``idx`` (B, K);
        None for a sin-cos model."""
        if self.pos_embed is not None:
            return None
        grid = self.patch_embed.grid(self.as_clip(x))
        if idx is None:
            idx = torch.arange(math.prod(grid), device=x.device)  # (N,)
        return rope_tables(grid_positions(idx, grid), self.embed_dim // self.num_heads)

    def forward(self, x: Tensor, masks: Optional[MaskBatch] = None) -> Tensor:
        """x: (B, C, H, W) or (B, C, T, H, W) -> (B, N, D); with ``masks`` only the kept tokens: (B, K, D)."""
        rope = self.rope(x, None if masks is None else masks.idx)
        x = self.embed(x)
        attn_mask = None
        if masks is not None:
            x = apply_masks(x, masks.idx)  # (B, K, D)
            attn_mask = key_padding_mask(masks.valid)
        for blk in self.blocks:
            x = blk(x, attn_mask, rope)
        return self.norm(x)

    def forward_intermediates(self, x: Tensor, layers: Sequence[int], norm: bool = True) -> list[Tensor]:
        """Token outputs (B, N, D) of the blocks in ``layers`` (negative indices count from the end)."""
        want = {i % len(self.blocks) for i in layers}
        out = []
        rope = self.rope(x)
        x = self.embed(x)
        for i, blk in enumerate(self.blocks):
            x = blk(x, None, rope)
            if i in want:
                out.append(self.norm(x) if norm else x)
        return out


def _vit(embed_dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0, **kwargs) -> VisionTransformer:
    return VisionTransformer(embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio, **kwargs)


@register_model
def vit(embed_dim: int = 768, depth: int = 12, num_heads: int = 12, **kw) -> VisionTransformer:
    """Any ViT shape (``model.encoder_kwargs``: embed_dim, depth, num_heads, mlp_ratio, pos, ...), e.g. a converted one."""
    return _vit(embed_dim, depth, num_heads, **kw)


# Small sizes for CPUs and tests.
@register_model
def vit_pico(**kw) -> VisionTransformer:
    return _vit(96, 4, 3, **kw)


@register_model
def vit_nano(**kw) -> VisionTransformer:
    return _vit(128, 6, 4, **kw)


@register_model
def vit_micro(**kw) -> VisionTransformer:
    return _vit(192, 8, 3, **kw)


# The official sizes (I-JEPA / V-JEPA / V-JEPA 2).
@register_model
def vit_tiny(**kw) -> VisionTransformer:
    return _vit(192, 12, 3, **kw)


@register_model
def vit_small(**kw) -> VisionTransformer:
    return _vit(384, 12, 6, **kw)


@register_model
def vit_base(**kw) -> VisionTransformer:
    return _vit(768, 12, 12, **kw)


@register_model
def vit_large(**kw) -> VisionTransformer:
    return _vit(1024, 24, 16, **kw)


@register_model
def vit_huge(**kw) -> VisionTransformer:
    return _vit(1280, 32, 16, **kw)


@register_model
def vit_giant(**kw) -> VisionTransformer:
    return _vit(1408, 40, 16, mlp_ratio=48 / 11, **kw)
