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


def stratified_split(labels: Sequence[int], val_fraction: float, seed: int) -> Tuple[List[int], List[int]]:
    """Deterministic stratified split of ``range(len(labels))`` into (train, held-out) indices.

    Each class keeps ``round(n_class * val_fraction)`` items for the held-out split, chosen by a
    ``torch.Generator`` seeded with ``seed``; both index lists come back in a seeded random order
    (so any prefix of either split mixes the classes). Unlabelled items (-1) form one stratum.
    """
    f = check_fraction(val_fraction)
    by_class: dict[int, List[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    g = torch.Generator().manual_seed(int(seed))
    train: List[int] = []
    held: List[int] = []
    for y in sorted(by_class):
        idx = by_class[y]
        perm = torch.randperm(len(idx), generator=g).tolist()
        n_held = int(round(len(idx) * f))
        held.extend(idx[p] for p in perm[:n_held])
        train.extend(idx[p] for p in perm[n_held:])
    train = [train[p] for p in torch.randperm(len(train), generator=g).tolist()]
    held = [held[p] for p in torch.randperm(len(held), generator=g).tolist()]
    return train, held


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
