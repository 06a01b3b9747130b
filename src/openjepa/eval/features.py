"""Frozen-feature extraction: run an encoder over a loader once, keep pooled features on the CPU.

Every evaluation in ``openjepa.eval`` (linear probe, kNN, RankMe) works on the (N, D) float32
tensors this returns, so the encoder runs once per split no matter how many probes follow.
Token outputs (B, N, D) are average-pooled over tokens, the frozen-feature protocol of I-JEPA
(Assran et al. 2023, arXiv 2301.08243, Sec. 5: "average pool ... of the target encoder").
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm


def _split_batch(batch: Any) -> tuple[Tensor, Tensor]:
    """A batch is ``(x, y)`` (tuple/list, extra items ignored) or a dict with keys ``x`` and ``y``."""
    if isinstance(batch, dict):
        missing = [k for k in ("x", "y") if k not in batch]
        if missing:
            raise KeyError(f"batch dict lacks keys {missing}; has {sorted(batch)}")
        x, y = batch["x"], batch["y"]
    elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
        x, y = batch[0], batch[1]
    else:
        raise TypeError(f"a batch must be (x, y) or {{'x': ..., 'y': ...}}, got {type(batch).__name__}")
    return x, torch.as_tensor(y)


def _pool(z: Tensor) -> Tensor:
    """(B, D) stays; (B, N, D) tokens are averaged over N."""
    if z.ndim == 3:
        return z.mean(dim=1)
    if z.ndim == 2:
        return z
    raise ValueError(f"encode_fn must return (B, D) or (B, N, D), got shape {tuple(z.shape)}")


def _total_items(loader: DataLoader, max_items: int) -> int | None:
    """How many items the progress bar expects, when the dataset has a length."""
    try:
        n = len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        return max_items or None
    return min(n, max_items) if max_items > 0 else n


def extract_features(
    encode_fn: Callable[[Tensor], Tensor],
    loader: DataLoader,
    device: torch.device | str,
    max_items: int = 0,
    progress: bool = True,
) -> tuple[Tensor, Tensor]:
    """Encode every batch of ``loader`` and return ``(features (N, D) float32 CPU, labels (N,) int64 CPU)``.

    ``encode_fn(x)`` gets ``x`` on ``device`` and returns (B, D) or (B, N, D) (pooled here).
    It runs under ``torch.no_grad()`` and, on CUDA, bf16 autocast. Put the model in eval mode
    before calling. ``max_items > 0`` stops after that many items (the loader's first ones).
    """
    device = torch.device(device)
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    total = _total_items(loader, max_items)
    feats: list[Tensor] = []
    labels: list[Tensor] = []
    seen = 0
    with torch.no_grad(), tqdm(
        total=total, disable=not progress, unit="img", desc="features", dynamic_ncols=True
    ) as bar:
        for batch in loader:
            x, y = _split_batch(batch)
            if max_items > 0:
                take = min(x.shape[0], max_items - seen)
                x, y = x[:take], y[:take]
            with autocast:
                z = _pool(encode_fn(x.to(device, non_blocking=True)))
            if z.shape[0] != y.shape[0]:
                raise ValueError(f"encode_fn returned {z.shape[0]} rows for a batch of {y.shape[0]}")
            feats.append(z.float().cpu())
            labels.append(y.long().cpu())
            seen += y.shape[0]
            bar.update(y.shape[0])
            if 0 < max_items <= seen:
                break
    if not feats:
        raise ValueError("the loader yielded no batches")
    return torch.cat(feats), torch.cat(labels)

