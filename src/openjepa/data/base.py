"""Helpers shared by the datasets: deterministic splits, the eval view, raw-pixel features.

Every dataset in this package returns ``(image, label)`` with ``image`` the output of its
``transform`` (a normalised float tensor (C, H, W) when built by :func:`openjepa.data.build_dataset`)
and ``label`` an ``int`` (-1 for unlabelled images). Each also carries ``eval_transform``, the
deterministic pipeline that :func:`eval_view` switches to for feature extraction.
"""

from __future__ import annotations

import copy
from typing import List, Sequence, Tuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from openjepa.errors import DataError  # noqa: F401  (re-exported: data code raises it)


def check_fraction(val_fraction: float) -> float:
    """Validate a held-out fraction: 0 <= f < 1."""
    f = float(val_fraction)
    if not 0.0 <= f < 1.0:
        raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    return f


def stratified_split(labels: Sequence[int] | Tensor, val_fraction: float, seed: int,
                     keep_both: bool = False) -> Tuple[List[int], List[int]]:
    """Deterministic stratified split of ``range(len(labels))`` into (train, held-out) indices.

    Each class keeps ``round(n_class * val_fraction)`` items for the held-out split, chosen by a
    ``torch.Generator`` seeded with ``seed`` (classes in ascending order, one ``randperm`` each);
    both index lists come back in a seeded random order (so any prefix of either split mixes the
    classes). Unlabelled items (-1) form one stratum. ``keep_both``: every class with at least two
    items keeps at least one in each split (a probe's validation split must see every class it
    can, and must not take a class's only training items); a class of one item stays in train.
    ``labels`` may be a sequence of ints or a 1-D integer tensor (any device).
    """
    f = check_fraction(val_fraction)
    y = (labels.detach().cpu() if isinstance(labels, Tensor) else torch.as_tensor(list(labels))).long().view(-1)
    order = torch.argsort(y, stable=True)  # (N,): indices grouped by class, ascending within a class
    counts = torch.unique_consecutive(y[order], return_counts=True)[1].tolist()
    g = torch.Generator().manual_seed(int(seed))
    train: List[Tensor] = []
    held: List[Tensor] = []
    for idx in torch.split(order, counts):
        n = idx.numel()
        idx = idx[torch.randperm(n, generator=g)]
        n_held = int(round(n * f))
        if keep_both:
            n_held = min(max(n_held, 1), n - 1) if n >= 2 else 0
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    train_idx, held_idx = (torch.cat(p) if p else torch.zeros(0, dtype=torch.long) for p in (train, held))
    train_idx = train_idx[torch.randperm(train_idx.numel(), generator=g)]
    held_idx = held_idx[torch.randperm(held_idx.numel(), generator=g)]
    return train_idx.tolist(), held_idx.tolist()


def eval_view(dataset: Dataset) -> Dataset:
    """A shallow copy of ``dataset`` that applies its ``eval_transform`` (no random augmentation).

    Datasets without an ``eval_transform`` (or with ``None``) are returned unchanged.
    """
    eval_tf = getattr(dataset, "eval_transform", None)
    if eval_tf is None or getattr(dataset, "transform", None) is eval_tf:
        return dataset
    view = copy.copy(dataset)
    view.transform = eval_tf  # type: ignore[attr-defined]
    return view


def raw_pixels(dataset: Dataset, max_items: int = 0, batch_size: int = 256, num_workers: int = 0) -> Tuple[Tensor, Tensor]:
    """Flattened, normalised pixels for the raw-pixel baseline probe.

    Uses the dataset's eval pipeline (see :func:`eval_view`), batched through a DataLoader, on the
    first ``max_items`` items (0: all), the same items a feature extractor that stops after
    ``max_items`` sees. Every dataset here is ordered so that any prefix mixes the classes.
    Returns ``X``: (N, C*H*W) float32 and ``y``: (N,) int64 (-1 where unlabelled).
    """
    ds = eval_view(dataset)
    n = len(ds)  # type: ignore[arg-type]
    if max_items > 0:
        n = min(n, max_items)
    loader = DataLoader(Subset(ds, range(n)), batch_size=batch_size, shuffle=False, num_workers=num_workers)
    xs: List[Tensor] = []
    ys: List[Tensor] = []
    for x, y in loader:
        xs.append(torch.as_tensor(x).flatten(1).float())
        ys.append(torch.as_tensor(y).long())
    if not xs:
        raise ValueError("raw_pixels: the dataset is empty")
    return torch.cat(xs), torch.cat(ys)
