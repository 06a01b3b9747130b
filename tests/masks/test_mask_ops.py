"""Gathers and helpers in masks/ops.py, and the mask picture in masks/viz.py."""

from __future__ import annotations

import torch

from openjepa.masks import MultiBlockMaskSampler, mask_image
from openjepa.masks.base import MaskBatch
from openjepa.masks.ops import apply_masks, masked_mean, masks_to_dense, repeat_for_blocks, valid_or_ones


def test_apply_masks_matches_indexing():
    x = torch.randn(3, 10, 5)  # (B, N, D)
    idx = torch.tensor([[0, 2, 9], [1, 1, 3], [4, 5, 6]])  # (B, K)
    out = apply_masks(x, idx)
    assert out.shape == (3, 3, 5)
    for b in range(3):
        assert torch.equal(out[b], x[b, idx[b]])
    idx3 = torch.randint(0, 10, (3, 2, 4))  # (B, n, K)
    out3 = apply_masks(x, idx3)
    assert out3.shape == (3, 2, 4, 5) and torch.equal(out3[1, 1], x[1, idx3[1, 1]])
    pos = torch.randn(1, 10, 5)  # broadcast a (1, N, D) table
    assert torch.equal(apply_masks(pos, idx)[2], pos[0, idx[2]])


def test_apply_masks_gradient_flows():
    x = torch.randn(2, 6, 4, requires_grad=True)
    apply_masks(x, torch.tensor([[0, 1], [5, 5]])).sum().backward()
    assert x.grad[1, 5].eq(2).all() and x.grad[0, 2].eq(0).all()


def test_repeat_for_blocks_matches_flatten_blocks():
    s = MultiBlockMaskSampler((1, 8, 8))
    m = s(3, 0)
    n = m.targets.idx.shape[1]
    x = torch.arange(3).view(3, 1).float()  # row b holds b
    rep = repeat_for_blocks(x, n)  # (B*n, 1)
    assert rep.shape == (3 * n, 1) and rep.view(-1).tolist() == [b for b in range(3) for _ in range(n)]
    flat = m.targets.flatten_blocks()
    assert torch.equal(flat.idx[1 * n + 2], m.targets.idx[1, 2])  # row b*n + j is sample b, block j


def test_dense_and_masked_mean():
    mb = MaskBatch(torch.tensor([[1, 3, 0], [2, 0, 0]]), torch.tensor([[True, True, False], [True, False, False]]))
    dense = masks_to_dense(mb, 5)
    assert dense.tolist() == [[False, True, False, True, False], [False, False, True, False, False]]
    assert valid_or_ones(MaskBatch(mb.idx)).all()
    x = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]], [[5.0, 5.0], [100.0, 100.0], [100.0, 100.0]]])
    assert masked_mean(x, mb.valid).item() == (1 + 3 + 5) / 3
    assert masked_mean(x, None).item() == x.mean().item()


def test_mask_image_values():
    s = MultiBlockMaskSampler((2, 6, 6), num_targets=2, temporal_scale=(0.5, 1.0))
    m = s(2, 5)
    img = mask_image(m, s.grid, 1)
    assert img.shape == (2, 6, 6) and img.dtype == torch.long
    flat = img.view(-1)
    cv = m.context.valid[1] if m.context.valid is not None else torch.ones_like(m.context.idx[1], dtype=torch.bool)
    assert (flat[m.context.idx[1][cv]] == 1).all()
    assert int((flat == 1).sum()) == int(cv.sum())
    vals = set(flat.unique().tolist())
    assert vals <= {0, 1, 2, 3} and vals & {2, 3}
