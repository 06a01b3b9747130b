"""Augmentations do not depend on how a step's global batch is split over ranks.

``shapes`` renders a whole batch per call (``__getitems__``); its transform (LeJEPA's multi-view
crops here) must still run under each item's (seed, step, position) seed, as for item-wise datasets,
so rank 1's half of the batch is the second half of the one-process batch.
"""

import torch

from openjepa.data.shapes import ShapesDataset
from openjepa.data.views import multiview_transform
from openjepa.engine.loader import StepBatchSampler, StepTagged


def _views(world: int, rank: int):
    tf = multiview_transform(2, 2, 16, 8, [0.3, 1.0], [0.05, 0.3], [{"name": "ColorJitter", "brightness": 0.4}],
                             [0.5] * 3, [0.25] * 3)
    ds = StepTagged(ShapesDataset(size=32, img_size=16, seed=0, transform=tf), seed=3)
    keys = list(StepBatchSampler(32, 8, seed=3, start=0, total=2, rank=rank, world=world))
    return [ds.__getitems__(k) for k in keys]  # per step: [(views, y, step, pos)]


def test_batch_rendered_views_do_not_depend_on_the_rank_split():
    one = _views(1, 0)
    halves = [_views(2, r) for r in range(2)]
    for step in range(2):
        merged = halves[0][step] + halves[1][step]
        assert [(y, s, p) for _, y, s, p in merged] == [(y, s, p) for _, y, s, p in one[step]]
        for (va, *_), (vb, *_) in zip(merged, one[step]):
            assert all(torch.equal(a, b) for a, b in zip(va, vb))
    assert not torch.equal(one[0][0][0][0], one[0][0][0][1])  # two global views of an image differ: random crops
