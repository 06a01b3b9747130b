"""One Vision Transformer over a (T, H, W) token grid: images are T = 1, video tubelets T > 1.

ViT (Dosovitskiy et al. 2021) with pre-norm blocks, fixed sin-cos position embeddings and no CLS
token, as used by I-JEPA (Assran et al. 2023) and V-JEPA (Bardes et al. 2024); with ``pos="rope"``
V-JEPA 2's 3-D rotary embedding on queries and keys instead (Assran et al. 2025; no ``pos_embed``
parameter, as in the official model). Parameter names follow the common convention so official and
timm weights load with prefix edits only.

A video model (``num_frames > 1``) given an image (B, C, H, W) or a one-frame clip repeats the frame
``tubelet_size`` times, as ``transformers``' ``VJEPA2Model`` does, so that it forms one tubelet.

V-JEPA 2.1's options (``facebookresearch/vjepa2``, ``app/vjepa_2_1/models/vision_transformer.py``):

* ``image_patch_embed``: a second patch embedding ``patch_embed_img`` (a Conv3d of tubelet 1) for images and
  one-frame clips, which then form a (1, H, W) grid instead of one repeated tubelet;
* ``modality_embed``: learned ``img_mod_embed`` / ``video_mod_embed`` vectors (1, 1, D) added to every token of
  an image or a clip right after the patch embedding;
* ``level_layers``: the blocks whose outputs are the model's levels, each with its own LayerNorm
  (``level_norms``, and ``norm`` for the last level, which must be the last block); :meth:`forward_levels`
  returns them, :meth:`forward` the last one only (the official evaluation output);
* ``rope_layout="interleaved"`` and ``rope_ref_grid``: see :mod:`openjepa.layers.rope`.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence

import torch
from torch import Tensor, nn

from openjepa.layers.init import init_weights, rescale_residuals
from openjepa.layers.rope import rescale_positions, rope_axis_dim, rope_frequencies
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
                 pos: str = "sincos", norm_eps: float = 1e-6, rope_layout: str = "tiled",
                 rope_ref_grid: Optional[int] = None, image_patch_embed: bool = False, modality_embed: bool = False,
                 level_layers: Optional[Sequence[int]] = None):
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
        self.rope_layout, self.rope_ref_grid = rope_layout, rope_ref_grid
        if pos == "rope":
            rope_axis_dim(embed_dim // num_heads)  # fails early on too narrow a head
            rope_frequencies(2, layout=rope_layout)  # fails early on an unknown layout
        self.patch_embed_img = PatchEmbed(patch_size, in_chans, embed_dim, 1) if image_patch_embed else None
        self.img_mod_embed = self.video_mod_embed = None
        if modality_embed:
            self.img_mod_embed = nn.Parameter(torch.zeros(1, 1, embed_dim))
            self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if pos == "sincos":
            self.pos_embed = nn.Parameter(sincos_embed(embed_dim, self.grid, video=self.video)[None],
                                          requires_grad=False)
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias, rates[i], norm_eps)
                                    for i in range(depth))
        # LayerNorm eps: 1e-6 as in the official I-JEPA / V-JEPA code; Hugging Face configs carry their own.
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.level_layers = list(level_layers) if level_layers is not None else [depth - 1]
        if self.level_layers[-1] != depth - 1 or sorted(set(self.level_layers)) != self.level_layers:
            raise ConfigError(f"level_layers={self.level_layers}: expected increasing block indices ending at the "
                              f"last block ({depth - 1})")
        self.level_norms = nn.ModuleList(nn.LayerNorm(embed_dim, eps=norm_eps) for _ in self.level_layers[:-1])
        init_weights(self, init_std)
        if modality_embed:  # official init: N(0, 1e-6)
            nn.init.normal_(self.img_mod_embed, std=1e-6)
            nn.init.normal_(self.video_mod_embed, std=1e-6)
        rescale_residuals(self.blocks)


    @property
    def num_tokens(self) -> int:
        return math.prod(self.grid)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"} if self.pos_embed is not None else set()

    def is_image(self, x: Tensor) -> bool:
        """Whether ``x`` takes the image path: (B, C, H, W), or a one-frame clip into a model with ``patch_embed_img``."""
        return x.ndim == 4 or (self.patch_embed_img is not None and x.shape[2] == 1)

    def as_clip(self, x: Tensor) -> Tensor:
        """A video model's input as a clip: an image (B, C, H, W) or a one-frame clip becomes
        (B, C, tubelet, H, W) by repeating the frame (``VJEPA2Model``'s rule), or (B, C, 1, H, W) for a model with
        ``patch_embed_img``; anything else is returned as is."""
        t = self.patch_embed.tubelet_size
        if t is None:
            return x
        if x.ndim == 4:
            x = x.unsqueeze(2)  # (B, C, 1, H, W)
        if self.patch_embed_img is not None:
            return x
        return x.repeat(1, 1, t, 1, 1) if x.shape[2] == 1 else x

    def _patcher(self, x: Tensor) -> PatchEmbed:
        return self.patch_embed_img if self.patch_embed_img is not None and x.shape[2] == 1 else self.patch_embed

    def token_grid(self, x: Tensor) -> tuple[int, int, int]:
        """The (T, H, W) token grid of input ``x``."""
        x = self.as_clip(x)
        return self._patcher(x).grid(x)

    def embed(self, x: Tensor) -> Tensor:
        """Patch tokens plus position embedding, resampled when ``x`` has another resolution: (B, N, D).

        With RoPE the tokens carry no position here (see :meth:`rope`)."""
        image = self.is_image(x)
        x = self.as_clip(x)
        patcher = self._patcher(x)
        tokens = patcher(x)
        if self.img_mod_embed is not None:
            tokens = tokens + (self.img_mod_embed if image else self.video_mod_embed).to(tokens.dtype)
        if self.pos_embed is None:
            return tokens
        return tokens + interpolate_pos_embed(self.pos_embed, self.grid, patcher.grid(x)).to(tokens.dtype)

    def rope(self, x: Tensor, idx: Optional[Tensor] = None) -> Optional[tuple[Tensor, Tensor]]:
        """RoPE (cos, sin) tables for the token grid of input ``x`` itself, at all its tokens or at ``idx`` (B, K);
        None for a sin-cos model."""
        if self.pos_embed is not None:
            return None
        grid = self.token_grid(x)
        if idx is None:
            idx = torch.arange(math.prod(grid), device=x.device)  # (N,)
        pos = rescale_positions(grid_positions(idx, grid), grid, self.rope_ref_grid)
        return rope_tables(pos, self.embed_dim // self.num_heads, self.rope_layout)

    def _run(self, x: Tensor, masks: Optional[MaskBatch] = None) -> Iterator[tuple[int, Tensor]]:
        """Embed ``x`` (keeping only the ``masks`` tokens) and yield (block index, output) after every block."""
        rope = self.rope(x, None if masks is None else masks.idx)
        x = self.embed(x)
        attn_mask = None
        if masks is not None:
            x = apply_masks(x, masks.idx)  # (B, K, D)
            attn_mask = key_padding_mask(masks.valid)
        for i, blk in enumerate(self.blocks):
            x = blk(x, attn_mask, rope)
            yield i, x

    def forward(self, x: Tensor, masks: Optional[MaskBatch] = None) -> Tensor:
        """x: (B, C, H, W) or (B, C, T, H, W) -> (B, N, D); with ``masks`` only the kept tokens: (B, K, D)."""
        for _, x in self._run(x, masks):
            pass
        return self.norm(x)

    def forward_levels(self, x: Tensor, masks: Optional[MaskBatch] = None) -> list[Tensor]:
        """The outputs of the ``level_layers`` blocks, each through its own norm: a list of (B, N or K, D)."""
        norms = dict(zip(self.level_layers, [*self.level_norms, self.norm]))
        return [norms[i](h) for i, h in self._run(x, masks) if i in norms]

    def forward_intermediates(self, x: Tensor, layers: Sequence[int], norm: bool = True) -> list[Tensor]:
        """Token outputs (B, N, D) of the blocks in ``layers`` (negative indices count from the end)."""
        want = {i % len(self.blocks) for i in layers}
        return [self.norm(h) if norm else h for i, h in self._run(x) if i in want]


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
