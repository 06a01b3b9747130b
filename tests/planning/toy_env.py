"""A 2-D point integrator with the batched part of ``openjepa.envs.base.Env`` that MPC uses, for tests.

state = position (N, 2) in the box [-1, 1]²; an action (N, 2) is clipped to L2 norm ``max_action``
and moves the point by ``dt * action`` (then clamped to the box); success = within ``radius`` of the
goal. ``tasks`` fixes the (start, goal) pairs that ``sample_tasks`` returns.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


class PointEnv:
    action_dim, state_dim, img_size = 2, 2, 8

    def __init__(self, max_action: float = 1.0, dt: float = 0.1, radius: float = 0.08,
                 tasks: Optional[tuple[Tensor, Tensor]] = None) -> None:
        self.max_action, self.dt, self.radius, self.tasks = max_action, dt, radius, tasks

    def step(self, state: Tensor, action: Tensor) -> Tensor:
        norm = action.norm(dim=-1, keepdim=True)
        action = action * (self.max_action / norm.clamp_min(self.max_action))
        return (state + self.dt * action).clamp(-1.0, 1.0)

    def render(self, state: Tensor) -> Tensor:
        return torch.zeros(state.shape[0], 3, self.img_size, self.img_size, dtype=torch.uint8, device=state.device)

    def sample_tasks(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        if self.tasks is not None:
            return self.tasks[0][:n].clone(), self.tasks[1][:n].clone()
        # start in [0.3, 0.9]² and goal in [-0.9, -0.3]², then a random sign per axis: 0.85 <= distance <= 1.7
        start = 0.3 + 0.6 * torch.rand(n, 2, generator=generator)
        goal = -(0.3 + 0.6 * torch.rand(n, 2, generator=generator))
        sign = torch.randint(0, 2, (n, 2), generator=generator) * 2 - 1
        return start * sign, goal * sign

    def success(self, state: Tensor, goal: Tensor) -> Tensor:
        return (self.position(state) - self.position(goal)).norm(dim=-1) < self.radius

    def position(self, state: Tensor) -> Tensor:
        return state[:, :2]
