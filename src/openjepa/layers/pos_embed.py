"""Fixed sin-cos position embeddings over a (T, H, W) grid, and their interpolation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def sincos_1d(dim: int, pos: Tensor) -> Tensor:
    """Transformer sin-cos code (Vaswani et al. 2017): pos (N,) -> (N, dim)."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dim, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega  # (dim/2,)
    out = pos.to(torch.float64)[:, None] * omega[None, :]  # (N, dim/2)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_embed(dim: int, grid: tuple[int, int, int]) -> Tensor:
    """(T*H*W, dim) embedding in raster order (t, h, w).

    Images (T == 1) use I-JEPA's 2-D layout: half the channels code h, half code w.
    Video uses V-JEPA's 3-D layout: a quarter codes t, and 3/8 each h and w (rounded to even).
    """
    T, H, W = grid
    t, h, w = torch.meshgrid(torch.arange(T), torch.arange(H), torch.arange(W), indexing="ij")
    t, h, w = t.flatten(), h.flatten(), w.flatten()
    if T == 1:
        if dim % 4:
            raise ValueError(f"2-D sin-cos embedding needs dim divisible by 4, got {dim}")
        emb = torch.cat([sincos_1d(dim // 2, h), sincos_1d(dim // 2, w)], dim=1)
    else:
        dt = dim // 4 - (dim // 4) % 2
        dh = (dim - dt) // 2 - ((dim - dt) // 2) % 2
        dw = dim - dt - dh
        emb = torch.cat([sincos_1d(dt, t), sincos_1d(dh, h), sincos_1d(dw, w)], dim=1)
    return emb.float()


def interpolate_pos_embed(pos: Tensor, src: tuple[int, int, int], dst: tuple[int, int, int]) -> Tensor:
    """Resample a (1, T*H*W, D) position embedding from grid ``src`` to grid ``dst``.

    Bicubic over (H, W) for images, trilinear over (T, H, W) for video. No CLS token is assumed
    (the official I-JEPA helper slices one off and breaks on CLS-free models).
    """
    if tuple(src) == tuple(dst):
        return pos
    D = pos.shape[-1]
    if math.prod(src) != pos.shape[1]:
        raise ValueError(f"pos_embed has {pos.shape[1]} tokens, grid {src} has {math.prod(src)}")
    x = pos.reshape(1, *src, D).permute(0, 4, 1, 2, 3).float()  # (1, D, T, H, W)
    if src[0] == 1 and dst[0] == 1:
        x = F.interpolate(x[:, :, 0], size=dst[1:], mode="bicubic", align_corners=False)[:, :, None]
    else:
        x = F.interpolate(x, size=dst, mode="trilinear", align_corners=False)
    return x.permute(0, 2, 3, 4, 1).reshape(1, -1, D).to(pos.dtype)  # (1, T'*H'*W', D)
