"""Fixed sin-cos position embeddings over a (T, H, W) grid, and their interpolation.

The layouts are those of the published code, so that official weights and our models agree
channel for channel (all codes are computed in float64 and returned as float32, as the official
code does with ``torch.from_numpy(...).float()``):

* 1-D (Vaswani et al. 2017, as used by both papers): for ``dim`` channels and position ``p``,
  ``omega_i = 1 / 10000 ** (i / (dim / 2))`` for ``i < dim / 2``, and the code is
  ``[sin(p * omega_0..), cos(p * omega_0..)]`` (all sines first, then all cosines, no interleaving).
* 2-D, I-JEPA (Assran et al. 2023): tokens in raster order (row h, then column w); the first
  ``dim / 2`` channels code the column w and the last ``dim / 2`` the row h. (The official code
  builds ``np.meshgrid(grid_w, grid_h)`` and codes ``grid[0]``, which is w, first, although its
  comment says h.) Non-square grids extend the same rule.
* 3-D, V-JEPA (Bardes et al. 2024): tokens in raster order (t, h, w); channels are concatenated as
  [t, h, w]. With ``uniform_power`` (what every released V-JEPA config uses) each axis gets
  ``2 * ceil(dim / 6)`` channels and the concatenation is cut to ``dim`` (so for dim = 1024 or
  1280 the last cosines of w are dropped); without it t gets ``dim / 2`` and h and w
  ``dim / 4`` each.

No CLS token is ever included.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from openjepa.errors import ConfigError


def sincos_1d(dim: int, pos: Tensor) -> Tensor:
    """Transformer sin-cos code (Vaswani et al. 2017): pos (N,) -> float64 (N, dim), sines then cosines."""
    if dim % 2:
        raise ConfigError(f"embed_dim {dim}: a sin-cos position embedding needs an even width")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega  # (dim/2,)
    out = pos.to(torch.float64)[:, None] * omega[None, :]  # (N, dim/2)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def _sincos_2d(dim: int, h: Tensor, w: Tensor) -> Tensor:
    """I-JEPA's 2-D layout: [code(w), code(h)], dim/2 channels each."""
    if dim % 4:
        raise ConfigError(f"embed_dim {dim}: a 2-D sin-cos position embedding needs a multiple of 4")
    return torch.cat([sincos_1d(dim // 2, w), sincos_1d(dim // 2, h)], dim=1)


def _sincos_3d(dim: int, t: Tensor, h: Tensor, w: Tensor, uniform_power: bool) -> Tensor:
    """V-JEPA's 3-D layout: [code(t), code(h), code(w)], cut to ``dim`` channels."""
    if uniform_power:
        dt = dh = dw = 2 * math.ceil(dim / 6)
    else:
        if dim % 8:
            raise ConfigError(f"embed_dim {dim}: a 3-D sin-cos position embedding without uniform_power "
                              "needs a multiple of 8")
        dt, dh, dw = dim // 2, dim // 4, dim // 4
    emb = torch.cat([sincos_1d(dt, t), sincos_1d(dh, h), sincos_1d(dw, w)], dim=1)  # (N, dt + dh + dw)
    return emb[:, :dim]


def sincos_embed(dim: int, grid: tuple[int, int, int], *, video: bool | None = None,
                 uniform_power: bool = True) -> Tensor:
    """Fixed position embedding, float32 (T*H*W, dim), tokens in raster order (t, h, w).

    Images use I-JEPA's 2-D layout (Assran et al. 2023), video V-JEPA's 3-D layout (Bardes et al.
    2024); see the module docstring for the exact channel order. ``video`` defaults to ``T > 1``;
    pass ``video=True`` for a video model whose clip is a single tubelet (V-JEPA picks the 3-D code
    from ``num_frames > 1``, not from the token grid). ``uniform_power`` only affects video.
    """
    T, H, W = grid
    t, h, w = torch.meshgrid(torch.arange(T), torch.arange(H), torch.arange(W), indexing="ij")  # (T, H, W) each
    t, h, w = t.flatten(), h.flatten(), w.flatten()  # (T*H*W,)
    if video is None:
        video = T > 1
    if video:
        return _sincos_3d(dim, t, h, w, uniform_power).float()
    if T != 1:
        raise ConfigError(f"a 2-D sin-cos embedding needs one frame, got a grid of {T} frames")
    return _sincos_2d(dim, h, w).float()


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
