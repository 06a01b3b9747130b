"""Plan one action per model step and hold it for the step's ``frameskip`` env steps.

A world model trained with ``data.frameskip = k`` takes the k env actions of a model step
concatenated (DINO-WM's frameskip actions, Zhou et al. 2024). Searching that (H, k·A) space
directly gives the planner k times more dimensions than the task needs; holding one action per
model step (action repeat, as in PlaNet, Hafner et al. 2019) searches (H, A) and tiles it.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor

from openjepa.planning.sampling import PlanResult


class HeldActions:
    """Wraps a planner built over (H, A) actions so that it answers for (H, frameskip·A) blocks."""

    def __init__(self, planner: Any, frameskip: int):
        if frameskip < 1:
            raise ValueError(f"frameskip must be >= 1, got {frameskip}")
        self.planner, self.frameskip = planner, int(frameskip)

    def reset(self) -> None:
        self.planner.reset()

    def tile(self, actions: Tensor) -> Tensor:
        """(..., H, A) -> (..., H, frameskip·A): the action repeated for every env step of its model step."""
        return actions.repeat(*([1] * (actions.ndim - 1)), self.frameskip)  # [a, a, ..., a] along the last dim

    def plan(self, energy: Callable[[Tensor], Tensor], batch: int, init: Optional[Tensor] = None,
             device: Any = None) -> PlanResult:
        a = None if init is None else init[..., : init.shape[-1] // self.frameskip]  # (B, H, A): the held action
        result = self.planner.plan(lambda cands: energy(self.tile(cands)), batch, a, device)
        return PlanResult(self.tile(result.actions), result.energy)


__all__ = ["HeldActions"]
