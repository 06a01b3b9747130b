"""Weighted k-nearest-neighbour classifier on frozen features.

The non-parametric classifier of InstDisc (Wu et al. 2018, "Unsupervised Feature Learning via
Non-Parametric Instance Discrimination", CVPR, Sec. 3.4) as used by DINO (Caron et al. 2021,
arXiv 2104.14294, ``eval_knn.py``): features are L2-normalised, the k training samples with the
highest cosine similarity s_i vote for their labels with weight exp(s_i / T), and the class with
the largest summed weight wins. Computed in test batches on the features' device, so the
(N_test, N_train) similarity matrix is never held at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def knn_classify(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    batch_size: int = 1024,
) -> Tensor:
    """Predicted labels (N_test,) int64, on ``train_x``'s device.

    ``k`` is clamped to the number of training samples. Ties between classes with equal summed
    weight go to the lowest class index.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    device = train_x.device
    train_n = F.normalize(train_x.float(), dim=1)  # (Ntr, D)
    train_y = train_y.long().to(device)
    if num_classes is None:
        num_classes = int(train_y.max().item()) + 1
    k = min(k, train_n.shape[0])
    preds = []
    for i in range(0, test_x.shape[0], batch_size):
        q = F.normalize(test_x[i : i + batch_size].float().to(device), dim=1)  # (B, D)
        sims, idx = (q @ train_n.T).topk(k, dim=1)  # (B, k)
        weights = (sims / temperature).exp()  # (B, k)
        votes = torch.zeros(q.shape[0], num_classes, device=device, dtype=weights.dtype)
        votes.scatter_add_(1, train_y[idx], weights)  # (B, C)
        preds.append(votes.argmax(dim=1))
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long, device=device)


def knn_accuracy(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    batch_size: int = 1024,
) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of :func:`knn_classify` on ``(test_x, test_y)``."""
    preds = knn_classify(train_x, train_y, test_x, k, temperature, num_classes, batch_size)
    return (preds == test_y.to(preds.device)).float().mean().item()
