"""MaskCollator (a picklable collate function) and build_mask_sampler."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from openjepa.config.schema import MaskConfig
from openjepa.masks import MaskCollator, MultiBlockMaskSampler, RandomMaskSampler, build_mask_sampler


def _items(B, shape=(3, 16, 16), step=5):
    return [(torch.full(shape, float(i)), i % 3, step, i) for i in range(B)]


def test_collate_image_and_video_shapes():
    s = MultiBlockMaskSampler((1, 4, 4), seed=0)
    out = MaskCollator(s, seed=0)(_items(6))
    assert out["x"].shape == (6, 3, 16, 16) and out["y"].dtype == torch.long and out["y"].tolist() == [0, 1, 2] * 2
    assert out["step"] == 5 and isinstance(out["step"], int)
    assert out["masks"].context.idx.shape[0] == 6 and out["masks"].targets.idx.shape[:2] == (6, 4)
    v = MaskCollator(RandomMaskSampler((2, 4, 4), tube=True))(_items(3, shape=(3, 4, 16, 16)))
    assert v["x"].shape == (3, 3, 4, 16, 16) and v["masks"].targets.idx.shape == (3, 1, 2 * 12)


def _rows(m):
    """Unpadded (context, targets) per sample as lists."""
    def real(mb, i):
        return mb.idx[i] if mb.valid is None else mb.idx[i][mb.valid[i]]
    n = m.targets.idx.shape[1]
    ctx = [real(m.context, i).tolist() for i in range(m.context.idx.shape[0])]
    tgt = [[(m.targets.idx[i, j] if m.targets.valid is None else m.targets.idx[i, j][m.targets.valid[i, j]]).tolist()
            for j in range(n)] for i in range(m.targets.idx.shape[0])]
    return ctx, tgt


def test_masks_follow_item_positions():
    s = MultiBlockMaskSampler((1, 8, 8), seed=2)
    items = _items(4)
    order = (2, 0, 3, 1)
    a, b = MaskCollator(s)(items), MaskCollator(s)([items[i] for i in order])
    assert _rows(a["masks"]) == _rows(s(4, 5))
    (ca, ta), (cb, tb) = _rows(a["masks"]), _rows(b["masks"])
    for row, pos in enumerate(order):  # an item keeps its masks wherever it lands in the batch
        assert cb[row] == ca[pos] and tb[row] == ta[pos]
    assert b["y"].tolist() == [items[i][1] for i in order]


def test_collate_rejects_mixed_steps_and_seed_mismatch():
    s = MultiBlockMaskSampler((1, 4, 4), seed=0)
    items = _items(3)
    items[1] = (items[1][0], 0, 6, 1)
    with pytest.raises(ValueError, match="different steps"):
        MaskCollator(s)(items)
    with pytest.raises(ValueError, match="seed"):
        MaskCollator(s, seed=1)


def test_collator_pickles_and_runs_in_a_worker():
    c = MaskCollator(MultiBlockMaskSampler((1, 4, 4), seed=3), seed=3)
    c2 = pickle.loads(pickle.dumps(c))
    a, b = c(_items(4)), c2(_items(4))
    assert torch.equal(a["masks"].context.idx, b["masks"].context.idx)

    class Tagged(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(3, 16, 16), i, 5, i

    (batch,) = list(DataLoader(Tagged(), batch_size=4, collate_fn=c, num_workers=1))
    assert torch.equal(batch["masks"].targets.idx, a["masks"].targets.idx)


def test_build_mask_sampler():
    cfg = MaskConfig()
    s = build_mask_sampler(cfg, (1, 8, 8), seed=7)
    assert isinstance(s, MultiBlockMaskSampler) and s.seed == 7 and s.num_targets == cfg.num_targets
    cfg.sampler, cfg.ratio = "random", 0.5
    r = build_mask_sampler(cfg, (1, 8, 8), seed=7)
    assert isinstance(r, RandomMaskSampler) and r.num_targets_tokens == 32
    cfg.sampler = "blocks"
    with pytest.raises(ValueError, match="'blocks'.*multiblock, random"):
        build_mask_sampler(cfg, (1, 8, 8), seed=7)


def test_collator_seed_labels_and_positions():
    s = MultiBlockMaskSampler((1, 4, 4), seed=4)
    c = MaskCollator(s)
    assert c.seed == 4 and repr(c).endswith("seed=4, rank=0)")  # taken from the sampler
    assert MaskCollator(s, seed=4, rank=2).rank == 2

    class NoSeed:  # a sampler without a ``seed`` attribute: the collator's seed is the one given
        grid = (1, 4, 4)

        def __call__(self, batch_size, step, rank=0, indices=None):
            return s(batch_size, step, rank, indices)

    assert MaskCollator(NoSeed(), seed=9).seed == 9 and MaskCollator(NoSeed()).seed is None
    items = [(torch.zeros(3, 16, 16), None, 0, 0), (torch.zeros(3, 16, 16), 2, 0, 1)]
    assert c(items)["y"].tolist() == [-1, 2]  # unlabelled items become -1
    with pytest.raises(ValueError, match=r"share a position: \[0, 0\]"):
        c([items[0], (items[1][0], 2, 0, 0)])
