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
    tokens: Tensor | None = None  # (N, T, Dt), multi-view (N, V, T, Dt), float16: for the attentive probe only


def _as_tokens(z: Tensor) -> Tensor:
    if z.ndim != 3:
        raise ValueError(f"keeping tokens needs encode_fn to return (B, N, D), got shape {tuple(z.shape)}")
    return z


def pixel_patches(x: Tensor, patch_size: int, tubelet_size: int = 1) -> Tensor:
    """(B, C, H, W) images -> (B, (H/p)(W/p), C*p*p) non-overlapping patches in raster order;
    (B, C, T, H, W) clips -> (B, (T/t)(H/p)(W/p), C*t*p*p) tubelets of ``t = tubelet_size`` frames.

    The raw-pixel baseline's "tokens" for the attentive probe: each patch (tubelet) flattened in
    the (C, p, p) ((C, t, p, p)) order of a ViT's patch-embedding weights, in the token order of
    its (T, H, W) grid.
    """
    if x.ndim == 4:
        x = x.unsqueeze(2)  # (B, C, 1, H, W): an image is a one-frame clip of tubelet 1
        tubelet_size = 1
    if x.ndim != 5:
        raise ValueError(f"pixel patches need (B, C, H, W) images or (B, C, T, H, W) clips, got shape {tuple(x.shape)}")
    b, c, t, h, w = x.shape
    p, k = patch_size, tubelet_size
    if h % p or w % p:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {p}")
    if t % k:
        raise ValueError(f"{t} frames are not a multiple of the tubelet size {k}")
    x = x.reshape(b, c, t // k, k, h // p, p, w // p, p)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, T/k, H/p, W/p, C, k, p, p)
    return x.reshape(b, (t // k) * (h // p) * (w // p), c * k * p * p)


def split_views(x: Tensor) -> tuple[Tensor, int]:
    """``(views, V)``: multi-view clips (B, V, C, T, H, W) as (B*V, C, T, H, W), item-major; else ``(x, 1)``.

    The layout of a video evaluation item of ``K`` clips x ``S`` spatial views (``V = K*S``, see
    :mod:`openjepa.data.video`); images (B, C, H, W) and single clips (B, C, T, H, W) are one view.
    """
    if x.ndim == 6:
        return x.flatten(0, 1), x.shape[1]
    return x, 1


def frame_averaged(encode_fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """An image encoder read as a clip encoder: ``encode_fn`` on each frame, tokens averaged over frames.

    (B, C, T, H, W) -> frames (B*T, C, H, W) -> ``encode_fn`` -> (B*T, N, D) -> mean over T ->
    (B, N, D): the frame-averaged image baseline of video evaluation, blind to the order of the
    frames by construction.
    """
    def encode(x: Tensor) -> Tensor:
        if x.ndim != 5:
            raise ValueError(f"a frame-averaged encoder needs (B, C, T, H, W) clips, got shape {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B, T, C, H, W) -> (B*T, C, H, W)
        z = encode_fn(frames)
        if z.ndim == 2:
            z = z.unsqueeze(1)  # (B*T, D) -> one token per frame
        return z.reshape(b, t, *z.shape[1:]).mean(dim=1)  # (B, T, N, D) -> (B, N, D)
    return encode


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

    Multi-view items (B, V, C, T, H, W) (video evaluation: K clips x S views, see
    :func:`split_views`) run ``encode_fn`` on all B*V views; an item's pooled features are the
    mean of its views' pooled features (so a linear probe's logits are the mean of its logits
    over the views: the multi-clip, multi-view averaging of V-JEPA, arXiv 2404.08471), and its
    tokens are kept per view, (B, V, N, D), for the attentive probe, which averages its logits
    over the views (:func:`openjepa.eval.attentive.predict_attentive`).
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
            xv, v = split_views(x)
            with autocast(amp, device):
                z = encode_fn(xv.to(device, non_blocking=True))
                pooled = pool(z)
            if pooled.shape[0] != y.shape[0] * v:
                raise ValueError(f"encode_fn returned {pooled.shape[0]} rows for a batch of {y.shape[0]}"
                                 + (f" x {v} views" if v > 1 else ""))
            # (B*V, D) -> mean over the V views of each item -> (B, D)
            feats.append(pooled.float().reshape(y.shape[0], v, -1).mean(dim=1).cpu())
            labels.append(y.long().cpu())
            if keep_tokens:
                t = tokenize(z)
                t = t.reshape(y.shape[0], v, *t.shape[1:]) if v > 1 else t  # (B*V, N, D) -> (B, V, N, D)
                tokens.append(t.to(torch.float16).cpu())
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
