"""Sin-cos position embeddings against an independent numpy transcription of the published formulas.

1-D: Vaswani et al. 2017 (sines of all frequencies, then cosines). 2-D: I-JEPA (Assran et al.
2023), first half of the channels codes the column w, second half the row h. 3-D: V-JEPA (Bardes
et al. 2024), [t, h, w] with 2 * ceil(D / 6) channels each cut to D (uniform_power), or D/2, D/4,
D/4 without it. Tokens are in raster order, no CLS token.
"""

import math

import numpy as np
import pytest
import torch

from openjepa.errors import ConfigError
from openjepa.layers.pos_embed import sincos_1d, sincos_embed


def code_1d(dim: int, p: float) -> np.ndarray:
    """The code of one position, one channel at a time."""
    half = dim // 2
    out = np.empty(dim)
    for i in range(half):
        angle = p / 10000.0 ** (i / half)
        out[i] = math.sin(angle)
        out[half + i] = math.cos(angle)
    return out


def ijepa_2d(dim: int, H: int, W: int) -> np.ndarray:
    rows = []
    for h in range(H):
        for w in range(W):
            rows.append(np.concatenate([code_1d(dim // 2, w), code_1d(dim // 2, h)]))
    return np.stack(rows)


def vjepa_3d(dim: int, T: int, H: int, W: int, uniform_power: bool) -> np.ndarray:
    if uniform_power:
        dt = dh = dw = 2 * math.ceil(dim / 6)
    else:
        dt, dh, dw = dim // 2, dim // 4, dim // 4
    rows = []
    for t in range(T):
        for h in range(H):
            for w in range(W):
                rows.append(np.concatenate([code_1d(dt, t), code_1d(dh, h), code_1d(dw, w)])[:dim])
    return np.stack(rows)


def check(ours: torch.Tensor, expect: np.ndarray) -> None:
    assert ours.dtype == torch.float32 and tuple(ours.shape) == expect.shape
    np.testing.assert_allclose(ours.numpy().astype(np.float64), expect, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dim", [2, 6, 16])
def test_1d(dim):
    pos = torch.tensor([0.0, 1.0, 3.0, 17.0])
    expect = np.stack([code_1d(dim, float(p)) for p in pos])
    np.testing.assert_allclose(sincos_1d(dim, pos).numpy(), expect, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim,H,W", [(8, 2, 3), (16, 4, 4), (32, 3, 5), (64, 7, 2), (12, 1, 1)])
def test_2d_is_ijepa_layout(dim, H, W):
    check(sincos_embed(dim, (1, H, W)), ijepa_2d(dim, H, W))


def test_2d_channel_order_is_w_then_h():
    emb = sincos_embed(8, (1, 2, 3)).double()
    h, w = 1, 2  # token 1 * 3 + 2 = 5
    np.testing.assert_allclose(emb[5, :4].numpy(), code_1d(4, w), atol=1e-6)
    np.testing.assert_allclose(emb[5, 4:].numpy(), code_1d(4, h), atol=1e-6)
    assert not np.allclose(emb[5, :4].numpy(), code_1d(4, h), atol=1e-3)


@pytest.mark.parametrize("dim,T,H,W", [(48, 2, 2, 2), (64, 4, 3, 5), (16, 3, 1, 2), (1024, 2, 2, 2),
                                       (20, 2, 2, 3), (30, 2, 2, 1)])
def test_3d_is_vjepa_layout_uniform_power(dim, T, H, W):
    check(sincos_embed(dim, (T, H, W)), vjepa_3d(dim, T, H, W, uniform_power=True))


@pytest.mark.parametrize("dim,T,H,W", [(32, 2, 2, 2), (64, 4, 3, 5), (16, 3, 1, 2)])
def test_3d_is_vjepa_layout_without_uniform_power(dim, T, H, W):
    check(sincos_embed(dim, (T, H, W), uniform_power=False), vjepa_3d(dim, T, H, W, uniform_power=False))


def test_single_tubelet_video_uses_3d_layout():
    check(sincos_embed(48, (1, 2, 3), video=True), vjepa_3d(48, 1, 2, 3, uniform_power=True))


@pytest.mark.parametrize("dim,grid,kw", [(6, (1, 2, 2), {}), (20, (2, 2, 2), {"uniform_power": False}),
                                         (8, (2, 2, 2), {"video": False})])
def test_unusable_width_is_a_config_error(dim, grid, kw):
    with pytest.raises(ConfigError, match="embed_dim 6|embed_dim 20|one frame"):
        sincos_embed(dim, grid, **kw)
