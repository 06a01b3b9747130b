"""Does the world model know where it is? A linear probe from frame embeddings to the agent's position.

Fitted by ridge regression (closed form, features standardised on the training frames) on frames
of the training episodes, scored on frames of held-out episodes: R² per coordinate (averaged) and
the root-mean-square position error in environment units. The same probe on a random-init copy
of the encoder is the baseline (a latent that knows nothing about position scores R² ≈ 0 only if
the pixels themselves are not linearly informative; the gap is what training added).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def ridge_fit(x: Tensor, y: Tensor, alpha: float = 1e-3) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Standardise x (M, D) and solve (XᵀX + alpha·M·I) W = Xᵀ(y - ȳ) -> (mean, std, W (D, K), ȳ (K,))."""
    x, y = x.double(), y.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)
    xs = (x - mean) / std
    y_mean = y.mean(0)
    gram = xs.T @ xs + alpha * x.shape[0] * torch.eye(x.shape[1], dtype=x.dtype)
    w = torch.linalg.solve(gram, xs.T @ (y - y_mean))
    return mean, std, w, y_mean


def ridge_predict(x: Tensor, fit: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
    mean, std, w, y_mean = fit
    return ((x.double() - mean) / std) @ w + y_mean


def regression_scores(pred: Tensor, y: Tensor) -> dict[str, float]:
    """R² averaged over coordinates and the RMS Euclidean error, for predictions (M, K) of targets (M, K)."""
    pred, y = pred.double(), y.double()
    ss_res = (pred - y).square().sum(0)
    ss_tot = (y - y.mean(0)).square().sum(0).clamp_min(1e-12)
    return {"r2": float((1 - ss_res / ss_tot).mean()), "rmse": float((pred - y).square().sum(1).mean().sqrt())}


@torch.no_grad()
def embed_frames(embed: Callable[[Tensor], Tensor], obs: Tensor, device: torch.device, batch: int = 256) -> Tensor:
    """obs (M, C, H, W) float in the model's scaling -> embeddings flattened per frame (M, n*L), in batches."""
    return torch.cat([embed(obs[i:i + batch].to(device)).float().flatten(1).cpu()
                      for i in range(0, obs.shape[0], batch)])


def position_probe(embed: Callable[[Tensor], Tensor], train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
                   device: torch.device, alpha: float = 1e-3) -> dict[str, float]:
    """Fit on ``train`` = (frames (M, C, H, W), positions (M, 2)), score on ``test``: {"r2", "rmse"}."""
    f_train = embed_frames(embed, train[0], device)
    f_test = embed_frames(embed, test[0], device)
    fit = ridge_fit(f_train, train[1], alpha)
    return regression_scores(ridge_predict(f_test, fit), test[1])


__all__ = ["embed_frames", "position_probe", "regression_scores", "ridge_fit", "ridge_predict"]
