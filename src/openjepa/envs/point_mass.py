"""``point_mass``: a damped point mass in an open arena, the simplest environment with momentum.

The state is ``(x, y, vx, vy)`` and an action is an acceleration of length at most ``max_action``:

    v' = damping * v + a,    p' = p + v'

then ``p'`` is clamped to ``[agent_radius, size - agent_radius]`` and the velocity component along
each clamped axis is zeroed (the agent stops at the fence). The speed stays below
``max_action / (1 - damping)``. Unlike ``two_rooms`` the image does not show the velocity, so a
world model has to infer it from more than one frame.
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from torch import Tensor

from openjepa.errors import ConfigError

from .base import Env


class PointMass(Env):
    """A damped point mass in an empty square arena; state (x, y, vx, vy)."""

    name = "point_mass"
    state_dim = 4

    def __init__(self, size: float = 64.0, img_size: int = 64, max_action: float = 1.0, damping: float = 0.8,
                 agent_radius: float = 1.5, goal_radius: float = 4.0, min_task_distance: float = 16.0):
        self.size, self.img_size, self.max_action = float(size), img_size, float(max_action)
        self.damping, self.agent_radius = float(damping), float(agent_radius)
        self.goal_radius, self.min_task_distance = float(goal_radius), float(min_task_distance)
        self._validate_common()
        if not 0.0 <= self.damping < 1.0:
            raise ConfigError(f"point_mass: damping must be in [0, 1), got {damping}")

    def kwargs(self) -> Dict[str, Any]:
        return {"size": self.size, "img_size": self.img_size, "max_action": self.max_action, "damping": self.damping,
                "agent_radius": self.agent_radius, "goal_radius": self.goal_radius,
                "min_task_distance": self.min_task_distance}

    def _dynamics(self, state: Tensor, action: Tensor) -> Tensor:
        r = self.agent_radius
        v = self.damping * state[:, 2:] + action  # (N, 2)
        p = state[:, :2] + v
        hit = (p < r) | (p > self.size - r)
        p = p.clamp(r, self.size - r)
        v = torch.where(hit, torch.zeros_like(v), v)
        return torch.cat([p, v], dim=1)

    def sample_free(self, n: int, generator: torch.Generator) -> Tensor:
        """Positions uniform in ``[agent_radius, size - agent_radius]^2``, zero velocity."""
        r, s = self.agent_radius, self.size
        p = self._uniform(n, torch.tensor([r, r], device=generator.device),
                          torch.tensor([s - r, s - r], device=generator.device), generator)
        return torch.cat([p, torch.zeros_like(p)], dim=1)
