"""Label-free representation diagnostics: effective rank (RankMe) and a collapse indicator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def rankme(features: Tensor, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023, arXiv 2210.02885, Eq. 1): the smooth effective rank of (N, D) features.

    With singular values sigma_k of the feature matrix, p_k = sigma_k / ||sigma||_1 + eps and
    RankMe = exp(-sum_k p_k log p_k). It lies in [1, min(N, D)]: ~D for isotropic features, ~1
    for collapsed ones. Features are not centred (as in the paper). Computed in float64 (on the
    CPU for MPS, which lacks float64).
    """
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {tuple(features.shape)}")
    x = features.detach()
    if x.device.type == "mps":
        x = x.cpu()
    s = torch.linalg.svdvals(x.double())  # (min(N, D),)
    p = s / s.sum().clamp_min(torch.finfo(torch.float64).tiny) + eps
    return torch.exp(-(p * p.log()).sum()).item()


@torch.no_grad()
def feature_std(features: Tensor) -> float:
    """Mean over dimensions of the per-dimension std of L2-normalised (N, D) features.

    A collapse indicator (SimSiam, Chen & He 2021, arXiv 2011.10566, Sec. 4.1): ~0 when every
    sample maps to the same direction, ~1/sqrt(D) for features spread uniformly on the sphere.
    """
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (N >= 2, D), got shape {tuple(features.shape)}")
    return F.normalize(features.float(), dim=1).std(dim=0).mean().item()
