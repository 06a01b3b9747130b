"""Data order is a pure function of (seed, step); ranks split the global batch exactly."""

import torch
from torch.utils.data import Dataset

from openjepa.engine.loader import StepBatchSampler, StepTagged


def flat(sampler):
    return [key for batch in sampler for key in batch]


def test_resume_midway_yields_the_same_batches():
    full = list(StepBatchSampler(100, 10, seed=3, start=0, total=25))
    tail = list(StepBatchSampler(100, 10, seed=3, start=17, total=25))
    assert full[17:] == tail


def test_each_epoch_is_a_permutation_and_epochs_differ():
    batches = list(StepBatchSampler(50, 10, seed=0, start=0, total=10))
    e0 = [i for b in batches[:5] for _, _, i in b]
    e1 = [i for b in batches[5:] for _, _, i in b]
    assert sorted(e0) == sorted(e1) == list(range(50))
    assert e0 != e1


def test_ranks_partition_the_global_batch():
    one = list(StepBatchSampler(64, 16, seed=1, start=0, total=8))
    ranks = [list(StepBatchSampler(64, 16, seed=1, start=0, total=8, rank=r, world=4)) for r in range(4)]
    for step in range(8):
        merged = sorted(k for r in range(4) for k in ranks[r][step])
        assert merged == sorted(one[step])


class Noisy(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.rand(3), i


def test_augmentation_seeded_per_item_not_by_global_rng():
    ds = StepTagged(Noisy(), seed=0)
    a = ds[(5, 2, 7)]
    torch.manual_seed(123)
    b = ds[(5, 2, 7)]
    assert torch.equal(a[0], b[0]) and a[1:] == (7, 5, 2)
    assert not torch.equal(ds[(6, 2, 7)][0], a[0])
    state = torch.get_rng_state()
    ds[(1, 1, 1)]
    assert torch.equal(state, torch.get_rng_state())  # the training RNG is untouched


def test_workers_give_the_same_batches_and_masks():
    from openjepa.config import load_config
    from openjepa.data import build_dataset
    from openjepa.engine.loader import step_loader
    from openjepa.masks import MaskCollator, build_mask_sampler

    cfg = load_config(None, ["data.train_size=64", "model.img_size=16", "model.patch_size=4", "mask.min_keep=2",
                             "data.train_transforms=[{name: RandomHorizontalFlip, p: 0.5}]"])
    ds = build_dataset(cfg.data, "train", 16, seed=0)
    sampler = build_mask_sampler(cfg.mask, (1, 4, 4), seed=0)

    def batches(workers):
        loader = step_loader(ds, MaskCollator(sampler, 0), global_batch=16, seed=0, start=0, total=6, rank=0,
                             world=1, num_workers=workers, pin_memory=False)
        return list(loader)

    a, b = batches(0), batches(2)
    for x, y in zip(a, b):
        assert x["step"] == y["step"]
        assert torch.equal(x["x"], y["x"]) and torch.equal(x["y"], y["y"])
        assert torch.equal(x["masks"].context.idx, y["masks"].context.idx)
        assert torch.equal(x["masks"].targets.idx, y["masks"].targets.idx)


def test_to_device_moves_masks_too():
    """Every tensor of a batch, mask indices included, lands on the training device (a CUDA run
    failed in gather when the masks stayed on the CPU)."""
    from openjepa.config.schema import MaskConfig
    from openjepa.engine.trainer import to_device
    from openjepa.masks import build_mask_sampler

    masks = build_mask_sampler(MaskConfig(), (1, 8, 8), seed=0)(4, 0)
    out = to_device({"x": torch.zeros(4, 3, 8, 8), "masks": masks, "step": 3}, torch.device("meta"))
    assert out["x"].is_meta and out["step"] == 3
    tensors = [out["masks"].context.idx, out["masks"].targets.idx, out["masks"].targets.valid]
    tensors += [] if out["masks"].context.valid is None else [out["masks"].context.valid]
    assert all(t.is_meta for t in tensors)
