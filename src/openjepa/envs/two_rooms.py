"""``two_rooms``: two rooms joined by a door, the standard navigation test for latent planners.

A vertical wall of ``wall_thickness`` centred at ``x = size/2`` spans the full height except a
door of ``door_width`` centred at ``y = door_center``. The state is the position ``(x, y)``; an
action is a displacement of length at most ``max_action``. A planner has to find the door: the
straight line to a goal in the other room usually runs into the wall.

Collisions treat the agent as a disk of ``agent_radius``, i.e. the point ``(x, y)`` moves among the
walls expanded by that radius. Motion is resolved one axis at a time (x, then y), stopping at the
first expanded boundary in the way, so an agent pushed diagonally into a wall slides along it.
A step shorter than the expanded wall (``max_action < wall_thickness + 2 * agent_radius``, checked)
cannot tunnel through it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from openjepa.errors import ConfigError

from .base import Env, Rect


class TwoRooms(Env):
    """Two rooms (left: 0, right: 1) separated by a wall with a door; state (x, y)."""

    name = "two_rooms"
    state_dim = 2

    def __init__(self, size: float = 64.0, img_size: int = 64, wall_thickness: float = 4.0,
                 door_width: float = 12.0, door_center: Optional[float] = None, agent_radius: float = 1.5,
                 max_action: float = 2.5, goal_radius: float = 4.0, min_task_distance: float = 16.0):
        self.size, self.img_size = float(size), img_size
        self.wall_thickness, self.door_width = float(wall_thickness), float(door_width)
        self.door_center = float(size) / 2 if door_center is None else float(door_center)
        self.agent_radius, self.max_action = float(agent_radius), float(max_action)
        self.goal_radius, self.min_task_distance = float(goal_radius), float(min_task_distance)
        self._validate_common()
        r, t = self.agent_radius, self.wall_thickness
        if not 0 < t < self.size - 4 * r:
            raise ConfigError(f"two_rooms: wall_thickness must be in (0, size - 4*agent_radius = "
                              f"{self.size - 4 * r}) so both rooms have room, got {t}")
        if self.max_action >= t + 2 * r:
            raise ConfigError(f"two_rooms: max_action={self.max_action} must be < wall_thickness + 2*agent_radius "
                              f"= {t + 2 * r}, or one step could jump through the wall")
        if self.door_width <= 2 * r:
            raise ConfigError(f"two_rooms: door_width={self.door_width} must be > 2*agent_radius = {2 * r}, "
                              "or the agent cannot pass the door")
        lo, hi = self.door_center - self.door_width / 2, self.door_center + self.door_width / 2
        if lo < 0 or hi > self.size:
            raise ConfigError(f"two_rooms: the door [{lo}, {hi}] (door_center ± door_width/2) must lie in "
                              f"[0, {self.size}]")
        # The expanded wall, in which the point (x, y) may only be inside the door corridor.
        self._wx = (self.size / 2 - t / 2 - r, self.size / 2 + t / 2 + r)  # its x extent
        self._door_y = (max(lo + r, r), min(hi - r, self.size - r))  # the corridor's free y range

    def kwargs(self) -> Dict[str, Any]:
        return {"size": self.size, "img_size": self.img_size, "wall_thickness": self.wall_thickness,
                "door_width": self.door_width, "door_center": self.door_center, "agent_radius": self.agent_radius,
                "max_action": self.max_action, "goal_radius": self.goal_radius,
                "min_task_distance": self.min_task_distance}

    def walls(self) -> List[Rect]:
        x0, x1 = self.size / 2 - self.wall_thickness / 2, self.size / 2 + self.wall_thickness / 2
        lo, hi = self.door_center - self.door_width / 2, self.door_center + self.door_width / 2
        return [r for r in ((x0, 0.0, x1, lo), (x0, hi, x1, self.size)) if r[3] > r[1]]

    def room(self, pos: Tensor) -> Tensor:
        """0 for positions left of the wall's centre line, 1 otherwise: (N, 2) -> long (N,)."""
        return (pos[:, 0] >= self.size / 2).long()

    def _dynamics(self, state: Tensor, action: Tensor) -> Tensor:
        r, s = self.agent_radius, self.size
        (wl, wr), (dlo, dhi) = self._wx, self._door_y
        x, y = state[:, 0], state[:, 1]
        # x first: blocked by the wall unless the agent's y is inside the door.
        nx = (x + action[:, 0]).clamp(r, s - r)
        walled = (y < dlo) | (y > dhi)
        nx = torch.where(walled & (x <= wl) & (nx > wl), torch.full_like(nx, wl), nx)
        nx = torch.where(walled & (x >= wr) & (nx < wr), torch.full_like(nx, wr), nx)
        # then y: inside the door corridor the door's edges stop it.
        ny = (y + action[:, 1]).clamp(r, s - r)
        corridor = (nx > wl) & (nx < wr)
        ny = torch.where(corridor, ny.clamp(dlo, dhi), ny)
        return torch.stack([nx, ny], dim=1)

    def _room_boxes(self) -> Tuple[Tuple[float, float], Tuple[float, float]]:
        """Free x ranges of the left and right rooms (the door corridor belongs to neither)."""
        r, (wl, wr) = self.agent_radius, self._wx
        return (r, wl), (wr, self.size - r)

    def sample_free(self, n: int, generator: torch.Generator) -> Tensor:
        """Uniform over the free area: both rooms and the door corridor (rejection sampling)."""
        r, s, dev = self.agent_radius, self.size, generator.device
        (wl, wr), (dlo, dhi) = self._wx, self._door_y
        out = torch.empty(0, 2, device=dev)
        while out.shape[0] < n:
            p = self._uniform(2 * n, torch.tensor([r, r], device=dev), torch.tensor([s - r, s - r], device=dev),
                              generator)
            inside = (p[:, 0] > wl) & (p[:, 0] < wr) & ((p[:, 1] < dlo) | (p[:, 1] > dhi))
            out = torch.cat([out, p[~inside]])
        return out[:n]

    def _sample_rooms(self, rooms: Tensor, generator: torch.Generator) -> Tensor:
        """One position uniform in each given room's free area: long (n,) -> (n, 2)."""
        (l0, l1), (r0, r1) = self._room_boxes()
        dev, n = generator.device, rooms.shape[0]
        right = rooms.to(dev).bool()
        x_lo = torch.where(right, torch.tensor(r0, device=dev), torch.tensor(l0, device=dev))
        x_hi = torch.where(right, torch.tensor(r1, device=dev), torch.tensor(l1, device=dev))
        lo = torch.stack([x_lo, torch.full_like(x_lo, self.agent_radius)], 1)  # (n, 2)
        hi = torch.stack([x_hi, torch.full_like(x_hi, self.size - self.agent_radius)], 1)
        return self._uniform(n, lo, hi, generator)

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        """Start and goal uniform in different rooms (which room starts is random), at least
        ``min_task_distance`` apart."""
        start_room = torch.randint(0, 2, (n,), generator=generator, device=generator.device)
        start = self._sample_rooms(start_room, generator)
        goal_room = 1 - start_room
        goal = self._sample_rooms(goal_room, generator)
        return start, self._redraw_close(start, goal, lambda idx: self._sample_rooms(goal_room[idx], generator))
