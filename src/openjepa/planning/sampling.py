"""What the sampling-based planners share: action bounds, warm starts and the iteration loop.

A planner searches over action *sequences* ``a`` of shape (H, A) (H model steps, A numbers per step)
for the lowest ``energy(a)``, for B independent problems at once. When one model step stands for
``group`` env steps (frameskip), A = group * A_env and the A numbers are ``group`` env actions
concatenated; ``bound_kind="norm"`` then clips each of those env actions to the L2 ball separately,
as the environment itself would, so that a candidate scored by the energy is exactly what the
environment executes.

``SamplingPlanner`` is the loop of CEM (``cem.py``) and MPPI (``mppi.py``), which differ only in how
the sampling distribution is refitted to the scored candidates. Both keep the current mean as
candidate 0 of every iteration and return the lowest-energy sequence evaluated, so more iterations
never return a worse plan.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import math
from dataclasses import dataclass
from typing import Callable, Literal, Optional, Union

import torch
from torch import Tensor

BoundKind = Literal["norm", "box"]
Energy = Callable[[Tensor], Tensor]  # candidates (B, S, H, A) -> energies (B, S), lower is better
Device = Union[str, torch.device, None]


def check_bound(bound: float, kind: str, group: int, action_dim: int) -> None:
    """Raise ValueError unless bound > 0 is finite, kind is 'norm' or 'box' and group divides action_dim."""
    if not (math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound must be a positive finite number, got {bound}")
    if kind not in ("norm", "box"):
        raise ValueError(f"bound kind must be 'norm' or 'box', got {kind!r}")
    if group < 1 or action_dim % group != 0:
        raise ValueError(f"group must be a positive divisor of the action dim {action_dim}, got group={group}")


def project_actions(actions: Tensor, bound: float, kind: BoundKind = "norm", group: int = 1) -> Tensor:
    """Project actions (..., H, A) into the action set; returns a new tensor of the same shape.

    ``kind="norm"``: the last dim is ``group`` consecutive sub-actions of A/group numbers each; a
    sub-action whose L2 norm exceeds ``bound`` is rescaled to norm ``bound`` (the closest point of
    the ball), the others are returned unchanged. ``kind="box"``: every coordinate is clamped to
    [-bound, bound] (``group`` is then irrelevant but must still divide A).
    """
    A = actions.shape[-1]
    check_bound(bound, kind, group, A)
    if kind == "box":
        return actions.clamp(-bound, bound)
    sub = actions.unflatten(-1, (group, A // group))  # (..., H, group, A/group)
    norm = sub.norm(dim=-1, keepdim=True)
    scale = bound / norm.clamp_min(bound)  # exactly 1 inside the ball, bound/norm outside
    return (sub * scale).flatten(-2)


def shift_plan(plan: Tensor, steps: int = 1, fill: Literal["last", "zero"] = "last") -> Tensor:
    """Warm start (B, H, A) for the next MPC step, after the first ``steps`` actions were executed.

    Drops the first ``steps`` actions and appends ``steps`` copies of the plan's last action
    (``fill="last"``) or zeros (``fill="zero"``). ``steps >= H`` leaves only the fill.
    """
    if plan.ndim != 3:
        raise ValueError(f"plan must be (B, H, A), got shape {tuple(plan.shape)}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if fill not in ("last", "zero"):
        raise ValueError(f"fill must be 'last' or 'zero', got {fill!r}")
    H = plan.shape[1]
    k = min(steps, H)
    tail = plan[:, -1:].expand(-1, k, -1) if fill == "last" else plan.new_zeros(plan.shape[0], k, plan.shape[2])
    return torch.cat([plan[:, k:], tail], dim=1)


def uniform_actions(shape: tuple[int, ...], bound: float, kind: BoundKind = "norm", group: int = 1,
                    generator: Optional[torch.Generator] = None, device: Device = None,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """Actions (..., A) uniformly distributed over the action set of ``project_actions``.

    ``norm``: each sub-action uniform in the ball of radius ``bound`` (Gaussian direction, radius
    ``bound * U^(1/d)``, d = A/group); ``box``: each coordinate uniform in [-bound, bound].
    """
    A = shape[-1]
    check_bound(bound, kind, group, A)
    if kind == "box":
        return (torch.rand(shape, generator=generator, device=device, dtype=dtype) * 2 - 1) * bound
    d = A // group
    direction = torch.randn((*shape[:-1], group, d), generator=generator, device=device, dtype=dtype)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    radius = torch.rand((*shape[:-1], group, 1), generator=generator, device=device, dtype=dtype) ** (1.0 / d)
    return (direction * radius * bound).flatten(-2)


def planning_device(device: Device, init: Optional[Tensor]) -> torch.device:
    """``device``, else ``init``'s device, else CPU; a bare "cuda" gets the current index, so that it
    compares equal to the device of a generator or tensor created on it."""
    device = torch.device(device if device is not None else (init.device if init is not None else "cpu"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


@dataclass
class PlanResult:
    """Output of ``plan``: the lowest-energy sequence the planner evaluated, per problem."""

    actions: Tensor  # (B, H, A), within the bounds
    energy: Tensor  # (B,) energy of ``actions``


def evaluate(energy: Energy, candidates: Tensor) -> Tensor:
    """energy(candidates (B, S, H, A)) -> (B, S), checked: right shape, no NaN."""
    e = energy(candidates)
    B, S = candidates.shape[:2]
    if not isinstance(e, Tensor) or tuple(e.shape) != (B, S):
        got = tuple(e.shape) if isinstance(e, Tensor) else type(e).__name__
        raise ValueError(f"energy must map candidates {tuple(candidates.shape)} to shape {(B, S)}, got {got}")
    if torch.isnan(e).any():
        raise ValueError(f"energy returned NaN for {int(torch.isnan(e).sum())} of {B * S} candidates")
    return e


class SamplingPlanner(ABC):
    """Base of CEM and MPPI: validation, seeded generator, the iteration loop, best-so-far tracking.

    Subclasses set ``self._std0`` and implement ``_refit(mean, std, candidates, energies) -> (mean, std)``.
    Randomness comes from one ``torch.Generator`` per planner, seeded with ``seed`` and created on
    the planning device at first use: a fresh planner (or one after ``reset()``) with the same seed
    and inputs returns the same plans. Consecutive calls continue the stream.
    """

    _std0: float

    def __init__(self, horizon: int, action_dim: int, bound: float, bound_kind: BoundKind, group: int,
                 samples: int, iterations: int, seed: int) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if action_dim < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        check_bound(float(bound), bound_kind, group, action_dim)
        if samples < 2:
            raise ValueError(f"samples must be >= 2 (the mean plus at least one random candidate), got {samples}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        self.horizon, self.action_dim, self.bound = int(horizon), int(action_dim), float(bound)
        self.bound_kind, self.group = bound_kind, int(group)
        self.samples, self.iterations, self.seed = int(samples), int(iterations), int(seed)
        self._gen: Optional[torch.Generator] = None

    def reset(self) -> None:
        """Restart the random stream from ``seed``."""
        self._gen = None

    def _generator(self, device: torch.device) -> torch.Generator:
        if self._gen is None or self._gen.device != device:
            self._gen = torch.Generator(device=device).manual_seed(self.seed)
        return self._gen

    def project(self, actions: Tensor) -> Tensor:
        """``project_actions`` with this planner's bound, kind and group."""
        return project_actions(actions, self.bound, self.bound_kind, self.group)

    def _initial_mean(self, batch: int, init: Optional[Tensor], device: torch.device) -> Tensor:
        shape = (batch, self.horizon, self.action_dim)
        if init is None:
            return torch.zeros(shape, device=device)
        if tuple(init.shape) != shape:
            raise ValueError(f"init must have shape (batch, horizon, action_dim) = {shape}, got {tuple(init.shape)}")
        if not init.is_floating_point():
            raise ValueError(f"init must be a floating-point tensor, got {init.dtype}")
        return self.project(init.to(device))

    @abstractmethod
    def _refit(self, mean: Tensor, std: Tensor, candidates: Tensor, energies: Tensor) -> tuple[Tensor, Tensor]:
        """The next sampling mean and std from this iteration's candidates and energies (CEM: elites; MPPI: weights)."""

    @torch.no_grad()
    def plan(self, energy: Energy, batch: int, init: Optional[Tensor] = None, device: Device = None) -> PlanResult:
        """Minimise ``energy`` over action sequences for ``batch`` independent problems.

        ``energy`` maps candidates (B, S, H, A), always within the bounds, to (B, S); it runs
        under ``torch.no_grad``. ``init`` (B, H, A): warm-start mean (projected into the bounds);
        default zeros. ``device``: where candidates live (default: ``init``'s device, else CPU).
        Makes ``iterations`` calls with S = ``samples`` and a last one with S = 1 (the final mean).
        """
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        device = planning_device(device, init)
        g = self._generator(device)
        mean = self._initial_mean(batch, init, device)  # (B, H, A)
        std = torch.full_like(mean, self._std0)  # (B, H, A)
        best_a, best_e = mean.clone(), mean.new_full((batch,), math.inf)
        rows = torch.arange(batch, device=device)
        for _ in range(self.iterations):
            noise = torch.randn((batch, self.samples - 1, *mean.shape[1:]), generator=g, device=device,
                                dtype=mean.dtype)  # (B, S-1, H, A)
            cands = torch.cat([mean[:, None], self.project(mean[:, None] + std[:, None] * noise)], 1)  # (B, S, H, A)
            e = evaluate(energy, cands).to(mean.dtype)  # (B, S)
            best_a, best_e = _keep_best(best_a, best_e, cands, e, rows)
            mean, std = self._refit(mean, std, cands, e)
            mean = self.project(mean)  # the refit means of in-bound points are in the convex set; guard rounding
        final = mean[:, None]  # (B, 1, H, A)
        best_a, best_e = _keep_best(best_a, best_e, final, evaluate(energy, final).to(mean.dtype), rows)
        return PlanResult(actions=best_a, energy=best_e)


def _keep_best(best_a: Tensor, best_e: Tensor, cands: Tensor, e: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Per problem, replace the best sequence when a candidate has strictly lower energy."""
    e_min, i = e.min(dim=1)  # (B,)
    better = e_min < best_e
    best_a = torch.where(better[:, None, None], cands[rows, i], best_a)
    return best_a, torch.where(better, e_min, best_e)


__all__ = ["BoundKind", "Energy", "PlanResult", "SamplingPlanner", "check_bound", "evaluate", "planning_device",
           "project_actions", "shift_plan", "uniform_actions"]
