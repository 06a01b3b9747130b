"""Mask contracts in masks/base.py: MaskBatch reshapes and moves, padding, seeds, step-tagged batches."""

from __future__ import annotations


import pytest
import torch

from openjepa.masks.base import MaskBatch, Masks, pad_sets, sample_indices, unzip_step_batch


def test_flatten_blocks_and_to_keep_idx_and_valid():
    idx = torch.arange(12).view(2, 3, 2)  # (B, n, K)
    valid = torch.tensor([[[True, False], [True, True], [False, False]], [[True, True]] * 3])
    flat = MaskBatch(idx, valid).flatten_blocks()
    assert torch.equal(flat.idx, idx.view(6, 2)) and torch.equal(flat.valid, valid.view(6, 2))
    assert MaskBatch(idx).flatten_blocks().valid is None
    moved = MaskBatch(idx, valid).to("cpu")
    assert torch.equal(moved.idx, idx) and torch.equal(moved.valid, valid)
    assert MaskBatch(idx).to("cpu").valid is None
    m = Masks(MaskBatch(idx[:, 0]), MaskBatch(idx, valid)).to("cpu")
    assert m.context.valid is None and torch.equal(m.targets.valid, valid)


def test_pad_sets_valid_is_none_only_when_every_set_is_full():
    full = pad_sets([torch.tensor([3, 1]), torch.tensor([0, 2])])
    assert full.valid is None and full.idx.tolist() == [[3, 1], [0, 2]]
    ragged = pad_sets([torch.tensor([4]), torch.tensor([5, 6, 7]), torch.tensor([8, 9])])
    assert ragged.idx.tolist() == [[4, 0, 0], [5, 6, 7], [8, 9, 0]]
    assert ragged.valid.tolist() == [[True, False, False], [True, True, True], [True, True, False]]


def test_sample_indices_and_unzip_step_batch():
    assert sample_indices(3) == [0, 1, 2] and sample_indices(2, [5, 1]) == [5, 1]
    with pytest.raises(ValueError, match="2 sample indices for a batch of 3"):
        sample_indices(3, [0, 1])
    one = unzip_step_batch([("x", 4, 9, 3)])  # a batch of one item is fine
    assert one == (("x",), (4,), 9, [3])
    xs, ys, step, pos = unzip_step_batch([("a", 0, 2, 5), ("b", 1, 2, 4)])
    assert xs == ("a", "b") and ys == (0, 1) and step == 2 and pos == [5, 4]
    with pytest.raises(ValueError, match="empty"):
        unzip_step_batch([])
    with pytest.raises(ValueError, match=r"different steps \[2, 3\]"):
        unzip_step_batch([("a", 0, 2, 0), ("b", 0, 3, 1)])
