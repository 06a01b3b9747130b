"""Cross-entropy method over action sequences (Rubinstein 1999, "The cross-entropy method for
combinatorial and continuous optimization"), the planner of PlaNet (Hafner et al. 2019, arXiv
1811.04551, "Planning algorithm") and DINO-WM (Zhou et al. 2024, arXiv 2411.04983).

Per problem, a diagonal Gaussian N(μ, σ²) over sequences (H, A) is refitted ``iterations`` times:
draw S - 1 sequences μ + σ·ε, project them into the action bounds, add μ itself as candidate 0,
score all S with the energy, and set μ, σ to the mean and (biased) standard deviation of the K =
round(elite_frac · S) lowest-energy candidates (the elites):

    μ ← m·μ + (1 - m)·mean(elites),   σ ← max(m·σ + (1 - m)·std(elites), min_std)

with momentum m (0: plain CEM). The returned plan is the lowest-energy sequence evaluated over all
iterations, including the final μ (scored once more at the end): since μ is always a candidate, an
iteration never loses the best plan found so far.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from openjepa.planning.sampling import BoundKind, SamplingPlanner


class CEM(SamplingPlanner):
    """Batched CEM planner; ``plan(energy, batch, init=None, device=None) -> PlanResult`` (see
    ``SamplingPlanner.plan``). ``init_std`` defaults to ``bound``."""

    def __init__(self, horizon: int, action_dim: int, bound: float, bound_kind: BoundKind = "norm", group: int = 1,
                 samples: int = 300, iterations: int = 5, elite_frac: float = 0.1, init_std: Optional[float] = None,
                 min_std: float = 0.0, momentum: float = 0.0, seed: int = 0) -> None:
        super().__init__(horizon, action_dim, bound, bound_kind, group, samples, iterations, seed)
        if not 0.0 < elite_frac <= 1.0:
            raise ValueError(f"elite_frac must be in (0, 1], got {elite_frac}")
        self.elites = round(elite_frac * self.samples)
        if self.elites < 1:
            raise ValueError(f"elite_frac * samples = {elite_frac} * {samples} rounds to 0 elites; need >= 1")
        init_std = self.bound if init_std is None else float(init_std)
        if not init_std > 0:
            raise ValueError(f"init_std must be > 0, got {init_std}")
        if min_std < 0:
            raise ValueError(f"min_std must be >= 0, got {min_std}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.elite_frac, self.min_std, self.momentum = float(elite_frac), float(min_std), float(momentum)
        self._std0 = init_std

    def _refit(self, mean: Tensor, std: Tensor, candidates: Tensor, energies: Tensor) -> tuple[Tensor, Tensor]:
        idx = energies.topk(self.elites, dim=1, largest=False).indices  # (B, K)
        elites = candidates.gather(1, idx[:, :, None, None].expand(-1, -1, *candidates.shape[2:]))  # (B, K, H, A)
        m = self.momentum
        new_mean = m * mean + (1 - m) * elites.mean(1)
        new_std = m * std + (1 - m) * elites.std(1, unbiased=False)
        return new_mean, new_std.clamp_min(self.min_std)

    def __repr__(self) -> str:
        return (f"CEM(horizon={self.horizon}, action_dim={self.action_dim}, bound={self.bound}, "
                f"bound_kind={self.bound_kind!r}, group={self.group}, samples={self.samples}, "
                f"iterations={self.iterations}, elites={self.elites}, init_std={self._std0}, "
                f"min_std={self.min_std}, momentum={self.momentum}, seed={self.seed})")


__all__ = ["CEM"]
