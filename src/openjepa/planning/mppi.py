"""Model predictive path integral control over action sequences (Williams et al. 2017, "Information
Theoretic MPC for Model-Based Reinforcement Learning", ICRA).

Per problem, ``iterations`` times: draw S - 1 sequences μ + σ·ε with a fixed σ = ``noise_std``,
project them into the action bounds, add μ itself as candidate 0, score all S with the energy E and
set μ to the softmin-weighted mean of the (projected) candidates a_s:

    w_s = softmax_s(-(E_s - min_s' E_s') / λ),   μ ← Σ_s w_s a_s

λ = ``temperature``; subtracting the minimum energy changes nothing but keeps exp() from
underflowing. Williams et al. update μ ← μ + Σ_s w_s ε_s, the same thing for unprojected samples;
weighting the projected samples keeps μ inside the (convex) action set. Candidates with +inf energy
get weight 0. The returned plan is the lowest-energy sequence evaluated over all iterations,
including the final μ (scored once more at the end): since μ is always a candidate, an iteration
never loses the best plan found so far.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from openjepa.planning.sampling import BoundKind, SamplingPlanner


class MPPI(SamplingPlanner):
    """Batched MPPI planner; ``plan(energy, batch, init=None, device=None) -> PlanResult`` (see
    ``SamplingPlanner.plan``). ``noise_std`` defaults to ``bound / 2``."""

    def __init__(self, horizon: int, action_dim: int, bound: float, bound_kind: BoundKind = "norm", group: int = 1,
                 samples: int = 300, iterations: int = 3, noise_std: Optional[float] = None,
                 temperature: float = 1.0, seed: int = 0) -> None:
        super().__init__(horizon, action_dim, bound, bound_kind, group, samples, iterations, seed)
        noise_std = self.bound / 2 if noise_std is None else float(noise_std)
        if not noise_std > 0:
            raise ValueError(f"noise_std must be > 0, got {noise_std}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a positive finite number, got {temperature}")
        self.noise_std, self.temperature = noise_std, float(temperature)
        self._std0 = noise_std

    def _refit(self, mean: Tensor, std: Tensor, candidates: Tensor, energies: Tensor) -> tuple[Tensor, Tensor]:
        e_min = energies.min(dim=1, keepdim=True).values  # (B, 1)
        if not torch.isfinite(e_min).all():
            bad = (~torch.isfinite(e_min[:, 0])).nonzero()[:, 0].tolist()
            raise ValueError(f"MPPI: every candidate of problem(s) {bad} has infinite energy")
        w = torch.softmax(-(energies - e_min) / self.temperature, dim=1)  # (B, S)
        return torch.einsum("bs,bsha->bha", w, candidates), std

    def __repr__(self) -> str:
        return (f"MPPI(horizon={self.horizon}, action_dim={self.action_dim}, bound={self.bound}, "
                f"bound_kind={self.bound_kind!r}, group={self.group}, samples={self.samples}, "
                f"iterations={self.iterations}, noise_std={self.noise_std}, temperature={self.temperature}, "
                f"seed={self.seed})")


__all__ = ["MPPI"]
