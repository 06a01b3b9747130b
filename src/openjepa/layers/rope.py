"""V-JEPA 2's 3-D rotary position embedding, with the channel layout of the released weights.

Rotary embeddings (Su et al. 2021, RoFormer) turn query and key channels by angles proportional to the
token's position, so that attention scores depend on relative positions. V-JEPA 2 (Assran et al. 2025,
Sec. 2) applies them separately along the three axes of the (T, H, W) token grid. The layout below is
that of the official code (``facebookresearch/vjepa2``, ``src/models/utils/modules.py``) and of
``transformers``' ``VJEPA2RopeAttention``, which agree:

* **Split of the head dimension.** For head width ``hd`` each axis gets ``d = 2 * ((hd // 3) // 2)``
  channels, in the order [t | h | w] from channel 0; the last ``hd - 3 d`` channels are not rotated
  (hd = 64: d = 20 and 4 channels pass through; hd = 80: d = 26, 2 pass; hd = 32: d = 10, 2 pass).
* **Frequencies.** Within an axis block, ``omega_i = 1 / 10000 ** (i / (d / 2))`` for ``i < d / 2``.
* **Pairs.** Channels are paired interleaved, ``(2i, 2i + 1)``:
  ``y[2i] = x[2i] cos(a[2i]) - x[2i+1] sin(a[2i])`` and ``y[2i+1] = x[2i+1] cos(a[2i+1]) + x[2i] sin(a[2i+1])``.
* **The quirk the released weights depend on.** The angle of channel ``j`` of a block is
  ``a[j] = p * omega[j mod (d / 2)]``: the official code tiles the ``d / 2`` frequencies as two halves
  (``repeat``) while it pairs channels interleaved, so the two channels of one pair turn by *different*
  angles and the map is not a rotation. The official repository documents this as a bug it keeps for
  compatibility with the pretrained models (vjepa2 PR #15); the released V-JEPA 2 weights were trained
  with it, so it is kept here exactly.
* **Positions** are integer token coordinates ``(t, h, w)`` of the token grid of the *actual input*
  (raster order ``i = t*H*W + h*W + w``), so another clip length or resolution only gives other
  coordinates: nothing is interpolated. (The official encoder reads the grid from the input with
  ``handle_nonsquare_inputs=True``; ``transformers``' ``VJEPA2Model`` always decomposes indices with
  ``config.crop_size // config.patch_size``, so it agrees at another clip length but needs
  ``crop_size`` set to the input resolution at another resolution.)

V-JEPA 2.1 (``app/vjepa_2_1/models/utils/modules.py`` of the same repository) changes two things, both
options here:

* ``layout="interleaved"``: the frequencies are repeated per pair (``repeat_interleave``), so channel ``j``
  turns by ``p * omega[j // 2]`` and each pair is a true rotation (RoFormer's rule). ``layout="tiled"`` (the
  default) is V-JEPA 2's quirk above.
* ``ref_grid``: the encoder's height and width coordinates are rescaled to a reference grid,
  ``h' = h * (ref - 1) / (H - 1)`` (``interpolate_rope=True``; ref = 256 / 16 = 16 for patch 16, 252 / 14 = 18
  for patch 14), so that any resolution spans the coordinate range the model was pretrained on; time is not
  rescaled. At H = 1 the official formula divides by zero; here the single row keeps coordinate 0.

Angles are computed in float32 (the official code computes them in the query's dtype) and cast to the
query's dtype when applied.
"""

from __future__ import annotations

import torch
from torch import Tensor

from openjepa.errors import ConfigError


def rope_axis_dim(head_dim: int) -> int:
    """Channels rotated per axis (t, h or w) for a head of width ``head_dim``: ``2 * ((hd // 3) // 2)``."""
    d = 2 * ((head_dim // 3) // 2)
    if d == 0:
        raise ConfigError(f"head width {head_dim}: 3-D RoPE needs at least 6 channels per attention head")
    return d


LAYOUTS = ("tiled", "interleaved")


def rope_frequencies(d: int, device: torch.device | str | None = None, layout: str = "tiled") -> Tensor:
    """Per-channel frequency of one axis block of ``d`` channels, float32 (d,): ``omega[j mod d/2]`` for
    ``layout="tiled"`` (V-JEPA 2's quirk), ``omega[j // 2]`` for ``"interleaved"`` (V-JEPA 2.1)."""
    if layout not in LAYOUTS:
        raise ConfigError(f"rope layout {layout!r} is unknown; choose one of: {', '.join(LAYOUTS)}")
    omega = torch.arange(d // 2, dtype=torch.float32, device=device) / (d / 2.0)
    omega = 1.0 / 10000**omega  # (d/2,)
    if layout == "tiled":
        return omega.repeat(2)  # (d,): [omega, omega]
    return omega.repeat_interleave(2)  # (d,): [o0, o0, o1, o1, ...]


def grid_positions(idx: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """Flat raster indices (...,) in a (T, H, W) grid -> integer coordinates (..., 3) as (t, h, w)."""
    _, H, W = grid
    t = idx // (H * W)
    h = (idx % (H * W)) // W
    w = idx % W
    return torch.stack([t, h, w], dim=-1)


def rescale_positions(pos: Tensor, grid: tuple[int, int, int], ref_grid: int | None) -> Tensor:
    """Coordinates (..., 3) with h and w rescaled from the input ``grid`` to ``ref_grid`` points (V-JEPA 2.1's
    ``interpolate_rope``), float32: ``h * (ref - 1) / (H - 1)``; unchanged (as float) when ``ref_grid`` is None."""
    pos = pos.to(torch.float32)
    if ref_grid is None:
        return pos
    _, H, W = grid
    t, h, w = pos.unbind(-1)
    h = h * (ref_grid - 1) / (H - 1) if H > 1 else h  # same order of operations as the official code
    w = w * (ref_grid - 1) / (W - 1) if W > 1 else w
    return torch.stack([t, h, w], dim=-1)


def rope_tables(pos: Tensor, head_dim: int, layout: str = "tiled") -> tuple[Tensor, Tensor]:
    """cos and sin tables for token coordinates ``pos`` (..., N, 3): each float32 (..., N, 3 d).

    Channel block k (t, h, w in turn) holds the angles ``pos[..., k] * rope_frequencies(d, layout=layout)``.
    """
    d = rope_axis_dim(head_dim)
    freq = rope_frequencies(d, pos.device, layout)  # (d,)
    angles = pos.to(torch.float32)[..., :, None] * freq  # (..., N, 3, d)
    angles = angles.flatten(-2)  # (..., N, 3d): [t block | h block | w block]
    return angles.cos(), angles.sin()


def full_grid_tables(grid: tuple[int, int, int], head_dim: int, device: torch.device | str | None = None,
                     layout: str = "tiled", ref_grid: int | None = None) -> tuple[Tensor, Tensor]:
    """Tables for every token of ``grid`` in raster order: each (T*H*W, 3 d)."""
    idx = torch.arange(grid[0] * grid[1] * grid[2], device=device)
    return rope_tables(rescale_positions(grid_positions(idx, grid), grid, ref_grid), head_dim, layout)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate queries or keys x (B, nh, N, hd) by tables (N, R) or (B, N, R); channels R.. pass through."""
    if cos.ndim == 3:  # per-sample positions: (B, N, R) -> (B, 1, N, R), shared by the heads
        cos, sin = cos[:, None], sin[:, None]
    R = cos.shape[-1]
    rot, rest = x[..., :R], x[..., R:]
    pairs = rot.unflatten(-1, (-1, 2))  # (..., R/2, 2): channels (2i, 2i+1)
    swapped = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)  # (-x[2i+1], x[2i])
    out = rot * cos.to(x.dtype) + swapped * sin.to(x.dtype)
    return torch.cat([out, rest], dim=-1) if rest.shape[-1] else out
