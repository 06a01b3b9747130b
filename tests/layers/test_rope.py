"""V-JEPA 2's 3-D RoPE against an independent numpy implementation of the documented layout."""

import numpy as np
import pytest
import torch

from openjepa.errors import ConfigError
from openjepa.layers.rope import apply_rope, full_grid_tables, grid_positions, rope_axis_dim
from openjepa.masks.base import MaskBatch
from openjepa.models.vit import VisionTransformer


def rope_numpy(x: np.ndarray, grid: tuple[int, int, int]) -> np.ndarray:
    """x (N, hd) in raster order over grid. Per channel j < 3d: axis j // d, local c = j % d,
    angle = pos[axis] * 10000 ** (-(c mod d/2) / (d/2)); pairs (2i, 2i+1) turn as
    y[2i] = x[2i] cos a[2i] - x[2i+1] sin a[2i], y[2i+1] = x[2i+1] cos a[2i+1] + x[2i] sin a[2i+1]."""
    N, hd = x.shape
    d = 2 * ((hd // 3) // 2)
    T, H, W = grid
    y = x.astype(np.float64).copy()
    for n in range(N):
        pos = (n // (H * W), (n % (H * W)) // W, n % W)
        for j in range(3 * d):
            c = j % d
            a = pos[j // d] * 10000.0 ** (-(c % (d // 2)) / (d / 2))
            partner = -x[n, j + 1] if j % 2 == 0 else x[n, j - 1]
            y[n, j] = x[n, j] * np.cos(a) + partner * np.sin(a)
    return y


@pytest.mark.parametrize("hd,grid", [(16, (2, 3, 3)), (64, (3, 2, 4)), (12, (1, 2, 2))])
def test_rope_matches_numpy(hd, grid):
    torch.manual_seed(0)
    N = grid[0] * grid[1] * grid[2]
    x = torch.randn(2, 3, N, hd)  # (B, heads, N, hd)
    out = apply_rope(x, *full_grid_tables(grid, hd))
    for b in range(2):
        for h in range(3):
            ref = rope_numpy(x[b, h].numpy(), grid)
            np.testing.assert_allclose(out[b, h].numpy(), ref, atol=1e-5, rtol=0)
    d = rope_axis_dim(hd)
    assert torch.equal(out[..., 3 * d:], x[..., 3 * d:])  # the channels past 3d pass through


def test_axis_dims_and_narrow_heads():
    # ViT-L (64), ViT-H (80), ViT-g as released (64) and I-JEPA-style g (88), the predictor (32)
    assert [rope_axis_dim(h) for h in (64, 80, 88, 32)] == [20, 26, 28, 10]
    with pytest.raises(ConfigError, match="head width 5"):
        rope_axis_dim(5)


def test_grid_positions_inverts_raster_order():
    grid = (3, 4, 5)
    t, h, w = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing="ij")
    want = np.stack([t.ravel(), h.ravel(), w.ravel()], axis=1)
    assert np.array_equal(grid_positions(torch.arange(60), grid).numpy(), want)


def test_quirk_is_not_a_rotation():
    """The official layout tiles frequencies as halves while pairing channels interleaved: a pair's two
    channels turn by different angles, so the pair norm is not kept (a true RoPE would keep it)."""
    x = torch.randn(1, 1, 8, 16)
    out = apply_rope(x, *full_grid_tables((2, 2, 2), 16))
    pair_norm = lambda t: t[..., :12].unflatten(-1, (-1, 2)).norm(dim=-1)  # noqa: E731
    assert not torch.allclose(pair_norm(out), pair_norm(x), atol=1e-3)


def test_rope_vit_positions_travel_with_tokens():
    """Kept tokens given in any order get their own grid positions: a permuted full 'mask' permutes the output."""
    torch.manual_seed(0)
    m = VisionTransformer(img_size=8, patch_size=4, num_frames=4, tubelet_size=2, embed_dim=24, depth=2,
                          num_heads=2, pos="rope").eval()
    assert m.pos_embed is None and "pos_embed" not in m.state_dict()
    x = torch.randn(2, 3, 4, 8, 8)
    perm = torch.randperm(8)
    full = m(x)
    part = m(x, MaskBatch(perm.expand(2, -1)))
    torch.testing.assert_close(part, full[:, perm], atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="pos='learned'"):
        VisionTransformer(img_size=8, patch_size=4, embed_dim=24, depth=1, num_heads=2, pos="learned")
