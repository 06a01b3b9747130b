"""Frozen-feature extraction: run an encoder over a loader once, keep pooled features on the CPU.

Every evaluation in ``openjepa.eval`` (linear probe, kNN, low-shot, RankMe) works on the (N, D)
float32 tensors this returns, so the encoder runs once per split no matter how many probes follow
(and :mod:`openjepa.eval.cache` keeps them on disk between runs). Token outputs (B, N, D) are
average-pooled over tokens, the frozen-feature protocol of I-JEPA (Assran et al. 2023, arXiv
2301.08243, Sec. 5: "average pool ... of the target encoder"). The attentive probe (V-JEPA, Bardes
et al. 2024, arXiv 2404.08471) pools the tokens itself, so :func:`extract` can also keep them,
as float16 (half the memory; the probe computes in float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from openjepa.engine.precision import autocast, resolve_precision


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


@dataclass
class Features:
    """One split's frozen features, on the CPU."""

    x: Tensor  # (N, D) float32 pooled features
    y: Tensor  # (N,) int64 labels
    tokens: Tensor | None = None  # (N, T, Dt) float16 patch tokens, kept for the attentive probe only


def _as_tokens(z: Tensor) -> Tensor:
    if z.ndim != 3:
        raise ValueError(f"keeping tokens needs encode_fn to return (B, N, D), got shape {tuple(z.shape)}")
    return z


def pixel_patches(x: Tensor, patch_size: int) -> Tensor:
    """(B, C, H, W) images -> (B, (H/p)(W/p), C*p*p) non-overlapping patches in raster order.

    The raw-pixel baseline's "tokens" for the attentive probe: each patch flattened in the
    (C, p, p) order of a ViT's patch-embedding weights.
    """
    if x.ndim != 4:
        raise ValueError(f"pixel patches need (B, C, H, W) images, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {p}")
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)  # (B, H/p, W/p, C, p, p)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


def extract(
    encode_fn: Callable[[Tensor], Tensor],
    loader: DataLoader,
    device: torch.device | str,
    max_items: int = 0,
    progress: bool = True,
    keep_tokens: bool = False,
    pool: Callable[[Tensor], Tensor] = _pool,
    tokenize: Callable[[Tensor], Tensor] = _as_tokens,
    precision: str = "auto",
    desc: str = "features",
) -> Features:
    """Encode every batch of ``loader``: pooled features, labels and (``keep_tokens``) the tokens.

    ``encode_fn(x)`` gets ``x`` on ``device`` and returns ``z``; the pooled features are
    ``pool(z)`` (default: (B, D) kept, (B, N, D) averaged over N) and the tokens ``tokenize(z)``
    (default: ``z`` itself, which must then be (B, N, D)). It runs under ``torch.no_grad()`` and
    the autocast of ``precision`` (``eval.precision``: auto = bf16 on CUDA, fp32 elsewhere; see
    :func:`openjepa.engine.precision.resolve_precision`). Put the model in eval mode before
    calling. ``max_items > 0`` stops after that many items (the loader's first ones). The
    progress bar (``desc``, images/s and ETA) shows when ``progress``.
    """
    device = torch.device(device)
    amp = resolve_precision(precision, device)
    total = _total_items(loader, max_items)
    feats: list[Tensor] = []
    labels: list[Tensor] = []
    tokens: list[Tensor] = []
    seen = 0
    with torch.no_grad(), tqdm(
        total=total, disable=not progress, unit="img", desc=desc, dynamic_ncols=True
    ) as bar:
        for batch in loader:
            x, y = _split_batch(batch)
            if max_items > 0:
                take = min(x.shape[0], max_items - seen)
                x, y = x[:take], y[:take]
            with autocast(amp, device):
                z = encode_fn(x.to(device, non_blocking=True))
                pooled = pool(z)
            if pooled.shape[0] != y.shape[0]:
                raise ValueError(f"encode_fn returned {pooled.shape[0]} rows for a batch of {y.shape[0]}")
            feats.append(pooled.float().cpu())
            labels.append(y.long().cpu())
            if keep_tokens:
                tokens.append(tokenize(z).to(torch.float16).cpu())
            seen += y.shape[0]
            bar.update(y.shape[0])
            if 0 < max_items <= seen:
                break
    if not feats:
        raise ValueError("the loader yielded no batches")
    return Features(torch.cat(feats), torch.cat(labels), torch.cat(tokens) if keep_tokens else None)


def extract_features(
    encode_fn: Callable[[Tensor], Tensor],
    loader: DataLoader,
    device: torch.device | str,
    max_items: int = 0,
    progress: bool = True,
    precision: str = "auto",
    desc: str = "features",
) -> tuple[Tensor, Tensor]:
    """Encode every batch of ``loader`` and return ``(features (N, D) float32 CPU, labels (N,) int64 CPU)``.

    ``encode_fn(x)`` gets ``x`` on ``device`` and returns (B, D) or (B, N, D) (pooled here).
    It runs under ``torch.no_grad()`` and the autocast of ``precision`` (as :func:`extract`). Put
    the model in eval mode before calling. ``max_items > 0`` stops after that many items (the
    loader's first ones).
    """
    f = extract(encode_fn, loader, device, max_items, progress, precision=precision, desc=desc)
    return f.x, f.y
