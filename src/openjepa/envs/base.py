"""The environment contract: pure, batched, pure-torch 2-D worlds rendered to small RGB images.

An :class:`Env` holds only constants (geometry, limits, colours); the state lives in tensors that
the caller passes in, so ``step`` is a pure function that planners can call on thousands of
imagined states at once. Every function takes a leading batch dimension N and works on the device
of its inputs (float32). :class:`EnvBatch` adds the state for the usual reset / step loop.

Coordinates are continuous units in ``[0, size]``. Images follow the image convention (as
``matplotlib.pyplot.imshow`` shows them): column ``j`` covers ``x`` in ``[j, j+1) * size / img_size``
and row ``i`` covers ``y`` in ``[i, i+1) * size / img_size``, so ``y`` grows downwards.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from openjepa.errors import ConfigError

Rect = Tuple[float, float, float, float]  # (x0, y0, x1, y1), x0 < x1, y0 < y1

BACKGROUND = (235, 235, 225)
WALL = (70, 70, 80)
AGENT = (220, 40, 40)
MIN_AGENT_PX = 2.0  # rendered disk radius in pixels at least: the agent is >= 3 px across at any img_size


class Env(ABC):
    """A batched 2-D environment with a disk-shaped agent.

    Subclasses set the attributes below in ``__init__`` and implement ``_dynamics``,
    ``sample_free`` and ``kwargs``; everything else is shared. This is the one environment type
    of the library: :func:`openjepa.planning.mpc.run_mpc` takes an ``Env`` too, and calls only
    its pure, batched part (``step``, ``render``, ``sample_tasks``, ``success``, ``position``,
    ``action_dim``).
    """

    name: str
    state_dim: int
    action_dim: int = 2
    max_action: float  # largest L2 norm of an action; longer actions are scaled down
    size: float  # the arena is [0, size] x [0, size]
    img_size: int  # rendered images are img_size x img_size pixels
    goal_radius: float  # success: position within goal_radius of the goal's position
    agent_radius: float
    min_task_distance: float  # sample_tasks: start and goal positions at least this far apart

    # ---- to implement -------------------------------------------------------------------------

    @abstractmethod
    def _dynamics(self, state: Tensor, action: Tensor) -> Tensor:
        """Next state from a valid state and an already clipped action, both batched."""

    @abstractmethod
    def sample_free(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` states uniform over the free space (zero velocity), on ``generator.device``: (n, S)."""

    @abstractmethod
    def kwargs(self) -> Dict[str, Any]:
        """The constructor arguments (resolved): ``make_env(env.name, **env.kwargs())`` rebuilds it."""

    def walls(self) -> List[Rect]:
        """Wall rectangles ``(x0, y0, x1, y1)`` in world units (for plotting and rendering)."""
        return []

    # ---- shared -------------------------------------------------------------------------------

    def clip_action(self, action: Tensor) -> Tensor:
        """Scale actions longer than ``max_action`` (L2) down to ``max_action``, keeping the direction.

        action: (N, A). A NaN or infinite action raises ``ValueError``.
        """
        self._check(action, self.action_dim, "action")
        if not torch.isfinite(action).all():
            raise ValueError(f"{self.name}: actions must be finite, got {action[~torch.isfinite(action).all(-1)][:3]}")
        # Norm as an explicit per-row sum (no batched reduction kernel): a row gives the same bits
        # whatever else is in the batch, which keeps batch and single-env stepping identical.
        sq = action[:, 0] * action[:, 0]
        for i in range(1, action.shape[1]):
            sq = sq + action[:, i] * action[:, i]
        norm = torch.sqrt(sq)
        scale = torch.where(norm > self.max_action, self.max_action / norm.clamp_min(1e-30), torch.ones_like(norm))
        return action * scale[:, None]

    def step(self, state: Tensor, action: Tensor) -> Tensor:
        """The next state: (N, S) x (N, A) -> (N, S). Pure; the action is clipped first."""
        self._check(state, self.state_dim, "state")
        action = self.clip_action(action)
        if action.shape[0] != state.shape[0]:
            raise ValueError(f"{self.name}: {state.shape[0]} states but {action.shape[0]} actions")
        return self._dynamics(state, action.to(state.dtype))

    def position(self, state: Tensor) -> Tensor:
        """The agent's (x, y): (N, S) -> (N, 2)."""
        return state[:, :2]

    def success(self, state: Tensor, goal: Tensor) -> Tensor:
        """Whether each agent is within ``goal_radius`` of its goal's position: bool (N,)."""
        d = self.position(state) - self.position(goal)
        return torch.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) <= self.goal_radius

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
        """``n`` (start, goal) state pairs, free, at least ``min_task_distance`` apart: (n, S) each."""
        start = self.sample_free(n, generator)
        goal = self.sample_free(n, generator)
        return start, self._redraw_close(start, goal, lambda idx: self.sample_free(idx.numel(), generator))

    def render(self, state: Tensor) -> Tensor:
        """RGB images of the states: (N, S) -> uint8 (N, 3, img_size, img_size).

        Background, walls, and the agent as a filled disk (radius ``agent_radius``, at least
        2 pixels), drawn by comparing a pixel-centre grid with the positions (no loop over N).
        """
        self._check(state, self.state_dim, "state")
        dev, px = state.device, self.img_size
        c = (torch.arange(px, device=dev, dtype=torch.float32) + 0.5) * (self.size / px)  # pixel centres
        pos = self.position(state).float()
        r = max(self.agent_radius, MIN_AGENT_PX * self.size / px)
        dx = c[None, None, :] - pos[:, 0, None, None]  # (N, 1, W)
        dy = c[None, :, None] - pos[:, 1, None, None]  # (N, H, 1)
        agent = (dx * dx + dy * dy) <= r * r  # (N, H, W)
        wall = torch.zeros(px, px, dtype=torch.bool, device=dev)
        for x0, y0, x1, y1 in self.walls():
            wall |= ((c[None, :] >= x0) & (c[None, :] < x1)) & ((c[:, None] >= y0) & (c[:, None] < y1))
        colours = torch.tensor([BACKGROUND, WALL, AGENT], dtype=torch.uint8, device=dev)  # (3 kinds, RGB)
        kind = torch.where(agent, 2, wall.long()[None].expand_as(agent))  # (N, H, W) in {0, 1, 2}
        return colours[kind].permute(0, 3, 1, 2).contiguous()  # (N, H, W, 3) -> (N, 3, H, W)

    # ---- helpers for subclasses ---------------------------------------------------------------

    def _check(self, x: Tensor, dim: int, what: str) -> None:
        if x.dim() != 2 or x.shape[1] != dim:
            raise ValueError(f"{self.name}: {what} must have shape (N, {dim}), got {tuple(x.shape)}")

    def _uniform(self, n: int, lo: Tensor, hi: Tensor, generator: torch.Generator) -> Tensor:
        """(n, 2) points uniform in the boxes [lo, hi] (lo, hi: (n, 2) or (2,))."""
        u = torch.rand(n, 2, generator=generator, device=generator.device)
        return lo + u * (hi - lo)

    def _redraw_close(self, start: Tensor, goal: Tensor, draw: Callable[[Tensor], Tensor]) -> Tensor:
        """Redraw the goals closer than ``min_task_distance`` to their start until none is.

        ``draw(idx)`` gives new goals for the task indices ``idx`` (long (k,)) -> (k, S).
        """
        goal = goal.clone()
        pending = torch.arange(goal.shape[0], device=goal.device)
        for _ in range(1000):
            d = self.position(goal[pending]) - self.position(start[pending])
            pending = pending[(d * d).sum(-1) < self.min_task_distance**2]
            if pending.numel() == 0:
                return goal
            goal[pending] = draw(pending)
        raise RuntimeError(f"{self.name}: could not sample tasks with min_task_distance={self.min_task_distance}")

    def _validate_common(self) -> None:
        checks = {"size": self.size, "max_action": self.max_action, "goal_radius": self.goal_radius,
                  "agent_radius": self.agent_radius}
        for k, v in checks.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{self.name}: {k} must be a positive number, got {v!r}")
        if not (isinstance(self.img_size, int) and self.img_size >= 8):
            raise ConfigError(f"{self.name}: img_size must be an int >= 8, got {self.img_size!r}")
        if 2 * self.agent_radius >= self.size:
            raise ConfigError(f"{self.name}: agent_radius={self.agent_radius} does not fit in size={self.size}")
        if not 0 <= self.min_task_distance < self.size - 2 * self.agent_radius:
            raise ConfigError(f"{self.name}: min_task_distance must be in [0, size - 2*agent_radius = "
                              f"{self.size - 2 * self.agent_radius}), got {self.min_task_distance}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs().items())
        return f"{type(self).__name__}({args})"


class EnvBatch:
    """``n`` copies of ``env`` with state: reset to seeded tasks, step, check for success.

    ``reset(seed)`` draws ``n`` (start, goal) tasks with :meth:`Env.sample_tasks` from a generator
    seeded with ``seed``; ``reset()`` without a seed continues the generator seeded at construction
    (a new, still reproducible, set of tasks each time).
    """

    def __init__(self, env: Env, n: int, seed: int = 0, device: torch.device | str = "cpu"):
        if n < 1:
            raise ValueError(f"EnvBatch: n must be >= 1, got {n}")
        self.env, self.n, self.device = env, int(n), torch.device(device)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.state: Tensor = torch.zeros(self.n, env.state_dim, device=self.device)
        self.goal: Tensor = torch.zeros(self.n, env.state_dim, device=self.device)

    def reset(self, seed: Optional[int] = None) -> Tensor:
        """New tasks; returns the start observations: uint8 (n, 3, H, W)."""
        if seed is not None:
            self.generator.manual_seed(int(seed))
        start, goal = self.env.sample_tasks(self.n, self.generator)
        self.state, self.goal = start.to(self.device), goal.to(self.device)
        return self.env.render(self.state)

    def step(self, actions: Tensor) -> Tensor:
        """Advance every copy by one action (n, A); returns the new observations uint8 (n, 3, H, W)."""
        self.state = self.env.step(self.state, actions.to(self.device))
        return self.env.render(self.state)

    def reached(self) -> Tensor:
        """Whether each copy is at its goal: bool (n,)."""
        return self.env.success(self.state, self.goal)

    def goal_obs(self) -> Tensor:
        """Images of the goal states: uint8 (n, 3, H, W)."""
        return self.env.render(self.goal)
