"""The one seed mixer (layers/seed.py) and the places that draw from it."""

import hashlib

import numpy as np
import pytest
import torch

from openjepa.data import shapes
from openjepa.data.shapes import ShapesDataset, item_seed
from openjepa.engine.loader import StepBatchSampler
from openjepa.layers.seed import generator, mix_seed
from openjepa.masks import MultiBlockMaskSampler, RandomMaskSampler, multiblock
from openjepa.objectives import slice_directions
from openjepa.planning.collect import episode_generator


def _blake2b_low63(key: str) -> int:
    """The documented mix, written out independently."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") % 2**63


@pytest.mark.parametrize("parts,key", [
    (("mask", 0, 5, 1, 7), "mask:0:5:1:7"),
    (("augment", 3, 0, 255), "augment:3:0:255"),
    (("x", -4, 2**70), f"x:-4:{2**70}"),
    ((12,), "12"),
])
def test_mix_seed_is_blake2b_of_the_joined_parts(parts, key):
    assert mix_seed(*parts) == _blake2b_low63(key)


def test_mix_seed_is_stable_and_keeps_the_shapes_key():
    # Pinned: the seed of shapes image 0 of the train split, seed 0, since the dataset's first version.
    assert mix_seed("openjepa.shapes", 0, "train", 0) == 1795449763543657901
    assert item_seed(0, "train", 0) == 1795449763543657901
    assert item_seed(4, "test", 17) == _blake2b_low63("openjepa.shapes:4:test:17")


def test_mix_seed_range_and_no_arithmetic_aliasing():
    seeds = {mix_seed("s", a, b) for a in range(40) for b in range(40)}
    assert len(seeds) == 1600 and all(0 <= s < 2**63 for s in seeds)
    assert mix_seed("s", 0, 1) != mix_seed("s", 1, 0)  # seed + step would alias these
    assert mix_seed("s", 1, 23) != mix_seed("s", 12, 3)  # and digit concatenation these
    assert mix_seed("mask", 0) != mix_seed("augment", 0)


def test_mix_seed_accepts_integer_likes_and_rejects_the_rest():
    assert mix_seed("s", np.int64(3), torch.tensor(4), True) == mix_seed("s", 3, 4, 1)
    with pytest.raises(TypeError, match="float"):
        mix_seed("s", 1.0)
    for bad in ((), ("a:b", 1), ("", 1)):
        with pytest.raises(ValueError, match="mix_seed"):
            mix_seed(*bad)


def test_generator_is_seeded_by_mix_seed():
    g = generator("mask", 1, 2, 3)
    assert g.device.type == "cpu" and g.initial_seed() == mix_seed("mask", 1, 2, 3)
    ref = torch.Generator().manual_seed(mix_seed("mask", 1, 2, 3))
    assert torch.equal(torch.rand(5, generator=g), torch.rand(5, generator=ref))


# --- every per-item stream draws from it ---------------------------------------------------------


def test_shapes_pixels_come_from_the_item_seed():
    ds = ShapesDataset(3, img_size=8, seed=2, split="test")
    g = generator("openjepa.shapes", 2, "test", 1)
    u = torch.rand(1, shapes._N_U, generator=g)  # raw_batch's draws for one image: u, then the noise
    noise = torch.randn(1, 3, 8, 8, generator=g)
    img, label = ds.raw_batch([1])
    assert torch.equal(img, shapes.render(u, noise, label, 8))


def test_random_masks_data_order_episodes_and_sigreg_draw_from_the_mixer():
    s = RandomMaskSampler((1, 4, 4), ratio=0.5, seed=9)
    m = s(3, step=5, rank=1, indices=[0, 7, 2])
    perm = torch.randperm(16, generator=generator("mask", 9, 5, 1, 7))
    assert m.targets.idx[1, 0].tolist() == sorted(perm[:8].tolist())

    assert torch.equal(StepBatchSampler(20, 4, seed=3, start=0, total=1).permutation(2),
                       torch.randperm(20, generator=generator("data-order", 3, 2)))

    assert episode_generator(4, 11).initial_seed() == mix_seed("episode", 4, 11)

    a = torch.randn(8, 16, generator=generator("sigreg", 1, 3), dtype=torch.float64)
    assert torch.equal(slice_directions(8, 16, seed=1, step=3), a / a.norm(dim=0, keepdim=True))


def test_multiblock_samples_draw_from_their_mask_generators(monkeypatch):
    calls = []

    def recording(*parts):
        calls.append(parts)
        return generator(*parts)

    monkeypatch.setattr(multiblock, "generator", recording)
    MultiBlockMaskSampler((1, 8, 8), seed=5)(2, step=7, rank=1, indices=[3, 6])
    assert calls == [("mask", 5, 7, 1, 3), ("mask", 5, 7, 1, 6)]
    calls.clear()
    MultiBlockMaskSampler((1, 8, 8), seed=5, official_compat=True)(1, step=7, rank=1)
    assert calls[0] == ("mask-batch", 5, 7, 1) and calls[1:] == [("mask", 5, 7, 1, 0)]
