"""Feeding the fit loop by step: data order, augmentations and masks are pure functions of the step.

The sampler maps step s to epoch e = s // steps_per_epoch and a slice of the permutation seeded by
(seed, e). Every item is tagged with (step, position in the global batch); augmentations run under
an RNG seeded from that tag and masks are seeded from it in the collate function (every seed here is
:func:`openjepa.layers.seed.mix_seed` of a stream name and those integers), so a resumed run
sees exactly the batches an uninterrupted one would, with any number of workers or ranks.
"""

from __future__ import annotations

import copy
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from openjepa.layers.seed import generator, mix_seed


class StepBatchSampler(Sampler[list[tuple[int, int, int]]]):
    """Yields, for steps ``start..total-1``, this rank's share of the global batch as (step, pos, index)."""

    def __init__(self, n: int, global_batch: int, seed: int, start: int, total: int, rank: int = 0, world: int = 1):
        if global_batch > n:
            raise ValueError(f"batch size {global_batch} exceeds the dataset size {n}")
        if global_batch % world:
            raise ValueError(f"batch size {global_batch} is not divisible by the world size {world}")
        self.n, self.batch, self.seed, self.start, self.total = n, global_batch, seed, start, total
        self.local = global_batch // world
        self.offset = rank * self.local
        self.steps_per_epoch = n // global_batch  # drop_last: every step sees a full batch

    def permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=generator("data-order", self.seed, epoch))

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        perm, perm_epoch = None, -1
        for step in range(self.start, self.total):
            epoch, k = divmod(step, self.steps_per_epoch)
            if epoch != perm_epoch:
                perm, perm_epoch = self.permutation(epoch), epoch
            first = k * self.batch + self.offset
            idx = perm[first: first + self.local].tolist()
            yield [(step, self.offset + j, i) for j, i in enumerate(idx)]

    def __len__(self) -> int:
        return max(self.total - self.start, 0)


class StepTagged(Dataset):
    """Wraps a dataset: item (step, pos, index) -> (x, y, step, pos), augmented under a per-item seed."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int, int]):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[tuple[int, int, int]]) -> list:
        """A batch of items; the caller's RNG state is saved once and restored afterwards.

        Datasets that render whole batches (``__getitems__``, e.g. ``shapes``) render once without
        their ``transform``, which then runs per item under that item's seed, so augmentations (the
        views of LeJEPA included) do not depend on how the global batch is split over ranks. One
        without a ``transform`` attribute is called once, seeded by (step, first position).
        """
        state = torch.get_rng_state()
        try:
            if hasattr(self.dataset, "__getitems__"):
                return self._batch_rendered(keys)
            out = []
            for step, pos, index in keys:
                torch.default_generator.manual_seed(mix_seed("augment", self.seed, step, pos))
                x, y = self.dataset[index]
                out.append((x, y, step, pos))
            return out
        finally:
            torch.set_rng_state(state)

    def _batch_rendered(self, keys: list[tuple[int, int, int]]) -> list:
        tf = getattr(self.dataset, "transform", None)
        raw = self.dataset
        if tf is not None:
            raw = copy.copy(self.dataset)
            raw.transform = None  # type: ignore[attr-defined]
        step, pos, _ = keys[0]
        torch.default_generator.manual_seed(mix_seed("augment", self.seed, step, pos))
        items = raw.__getitems__([i for _, _, i in keys])
        out = []
        for (x, y), (s, p, _) in zip(items, keys):
            if tf is not None:
                torch.default_generator.manual_seed(mix_seed("augment", self.seed, s, p))
                x = tf(x)
            out.append((x, y, s, p))
        return out


def step_loader(dataset: Dataset, collate, *, global_batch: int, seed: int, start: int, total: int, rank: int,
                world: int, num_workers: int, pin_memory: bool) -> DataLoader:
    """The DataLoader of steps ``start..total-1`` (this rank's share of each global batch).

    It has a generator of its own: otherwise starting to iterate draws a seed from the global RNG,
    which a resumed run would do after restoring the checkpoint's RNG state and an uninterrupted
    run would not, so anything random in the training step (drop path) would differ after a resume.
    """
    sampler = StepBatchSampler(len(dataset), global_batch, seed, start, total, rank, world)
    return DataLoader(StepTagged(dataset, seed), batch_sampler=sampler, collate_fn=collate,
                      num_workers=num_workers, pin_memory=pin_memory, persistent_workers=False,
                      prefetch_factor=4 if num_workers > 0 else None,
                      generator=generator("loader", seed, start, rank))


class JointLoader:
    """Two step loaders in lockstep (a video run's joint image stream, ``data.images``): each batch of ``main``
    carries the batch of ``extra`` for the same step as ``batch[key]``. Both are pure functions of the step,
    so a resumed run sees the same pairs."""

    def __init__(self, main: DataLoader, extra: DataLoader, key: str = "images"):
        self.main, self.extra, self.key = main, extra, key

    def __iter__(self) -> Iterator[dict]:
        for a, b in zip(self.main, self.extra, strict=True):
            if a["step"] != b["step"]:
                raise RuntimeError(f"joint loaders out of step: {a['step']} and {b['step']}")
            yield {**a, self.key: b}

    def __len__(self) -> int:
        return len(self.main)
