"""The I-JEPA predictor: its forward against a step-by-step reference, padding, defaults and initialisation."""

from __future__ import annotations

import math

import torch

from openjepa.layers import interpolate_pos_embed, sincos_embed
from openjepa.masks.base import MaskBatch
from openjepa.models import Predictor


def tiny(**kw) -> Predictor:
    return Predictor((1, 4, 4), embed_dim=32, predictor_embed_dim=16, depth=2, num_heads=2, **kw).eval()


def reference(p: Predictor, ctx: torch.Tensor, cidx: torch.Tensor, tidx: torch.Tensor, grid=None) -> torch.Tensor:
    """I-JEPA Sec. 3, spelt out per sample: project the context, add its positions; one mask token plus the
    position of every target; run the blocks on [context, queries]; norm and project only the queries."""
    pos = p.predictor_pos_embed if grid is None else interpolate_pos_embed(p.predictor_pos_embed, p.grid, grid)
    out = []
    for b in range(ctx.shape[0]):
        x = p.predictor_embed(ctx[b]) + pos[0, cidx[b]]  # (Kc, Dp)
        q = p.mask_token[0, 0] + pos[0, tidx[b]]  # (Kt, Dp)
        h = torch.cat([x, q])[None]
        for blk in p.predictor_blocks:
            h = blk(h)
        out.append(p.predictor_proj(p.predictor_norm(h[0, len(cidx[b]):])))
    return torch.stack(out)


def test_forward_matches_the_reference_and_depends_on_target_positions():
    torch.manual_seed(0)
    p = tiny()
    with torch.no_grad():
        p.mask_token.normal_()  # a visible mask token: its sign and presence matter
    ctx = torch.randn(2, 3, 32)
    cidx, tidx = torch.tensor([[0, 1, 2], [4, 9, 15]]), torch.tensor([[5, 6], [3, 12]])
    out = p(ctx, MaskBatch(cidx), MaskBatch(tidx))
    torch.testing.assert_close(out, reference(p, ctx, cidx, tidx))
    moved = p(ctx, MaskBatch(cidx), MaskBatch(tidx + 1))  # same context, other target places
    assert (moved - out).abs().max() > 1e-3  # a predictor that ignored where its targets are would fail here
    swapped = p(ctx, MaskBatch(cidx), MaskBatch(tidx.flip(-1)))
    torch.testing.assert_close(swapped, out.flip(1))  # queries are permutation-equivariant


def test_forward_on_another_grid_uses_the_resampled_positions():
    torch.manual_seed(0)
    p = tiny()
    ctx = torch.randn(1, 4, 32)
    cidx, tidx = torch.tensor([[0, 9, 30, 63]]), torch.tensor([[17, 40]])
    out = p(ctx, MaskBatch(cidx), MaskBatch(tidx), grid=(1, 8, 8))
    torch.testing.assert_close(out, reference(p, ctx, cidx, tidx, grid=(1, 8, 8)))
    same = MaskBatch(torch.tensor([[0, 1, 2, 3]])), MaskBatch(torch.tensor([[5, 6]]))
    torch.testing.assert_close(p(ctx, *same, grid=(1, 4, 4)), p(ctx, *same))


def test_padding_in_context_only_or_targets_only_is_ignored():
    torch.manual_seed(0)
    p = tiny()
    ctx = torch.randn(1, 3, 32)
    c, t = MaskBatch(torch.tensor([[0, 1, 2]])), MaskBatch(torch.tensor([[5, 6]]))
    out = p(ctx, c, t)
    c_pad = MaskBatch(torch.tensor([[0, 1, 2, 0]]), torch.tensor([[True, True, True, False]]))
    ctx_pad = torch.cat([ctx, 100 * torch.randn(1, 1, 32)], 1)
    torch.testing.assert_close(p(ctx_pad, c_pad, t), out)
    t_pad = MaskBatch(torch.tensor([[5, 6, 0]]), torch.tensor([[True, True, False]]))
    torch.testing.assert_close(p(ctx, c, t_pad)[:, :2], out)


def test_defaults_are_ijepa_and_initialisation():
    """I-JEPA's predictor: width 384, depth 6, 12 heads, MLP ratio 4, qkv bias, trunc-normal(0.02)
    weights, zero biases, residual projections of block l divided by sqrt(2 l)."""
    torch.manual_seed(0)
    p = Predictor((1, 4, 4), embed_dim=64)
    assert p.predictor_embed.out_features == 384 and p.predictor_proj.out_features == 64
    assert len(p.predictor_blocks) == 6
    blk = p.predictor_blocks[0]
    assert blk.attn.num_heads == 12 and blk.mlp.fc1.out_features == 4 * 384 and blk.attn.qkv.bias is not None
    assert all(b.drop_path == 0.0 for b in p.predictor_blocks) and p.predictor_norm.eps == 1e-6
    assert p.grid == (1, 4, 4) and p.no_weight_decay() == {"predictor_pos_embed", "mask_token"}
    assert p.mask_token.shape == (1, 1, 384) and p.mask_token.requires_grad
    assert 0.015 < p.mask_token.std().item() < 0.025  # trunc_normal(std=0.02), not zeros
    assert not p.predictor_pos_embed.requires_grad
    torch.testing.assert_close(p.predictor_pos_embed, sincos_embed(384, (1, 4, 4))[None])
    assert 0.019 < p.predictor_embed.weight.std().item() < 0.021 and not p.predictor_embed.bias.any()
    for i, b in enumerate(p.predictor_blocks, 1):  # BEiT / I-JEPA rescaling of the residual branches
        for w in (b.attn.proj.weight, b.mlp.fc2.weight):
            assert abs(w.std().item() * math.sqrt(2 * i) / 0.02 - 1) < 0.05, (i, w.std().item())
    small = Predictor((1, 4, 4), embed_dim=32, predictor_embed_dim=16, depth=2, num_heads=2, init_std=0.05)
    assert 0.045 < small.predictor_embed.weight.std().item() < 0.055


def test_drop_path_rates_rise_linearly_over_depth():
    p = Predictor((1, 4, 4), embed_dim=32, predictor_embed_dim=16, depth=5, num_heads=2, drop_path=0.4)
    assert [b.drop_path for b in p.predictor_blocks] == [0.0, 0.1, 0.2, 0.30000000000000004, 0.4]
    one = Predictor((1, 4, 4), embed_dim=32, predictor_embed_dim=16, depth=1, num_heads=2, drop_path=0.4)
    assert [b.drop_path for b in one.predictor_blocks] == [0.0]
    two = Predictor((1, 4, 4), embed_dim=32, predictor_embed_dim=16, depth=2, num_heads=2, drop_path=0.4)
    assert [b.drop_path for b in two.predictor_blocks] == [0.0, 0.4]  # the last block gets the full rate
