"""Receding-horizon model-predictive control (MPC) with a sampling planner, for a learned world model
or the true simulator alike, as in the goal-reaching evaluations of PlaNet (Hafner et al. 2019) and
DINO-WM (Zhou et al. 2024, arXiv 2411.04983).

Per episode: encode the goal once; then repeatedly encode the current observation, plan an action
sequence whose predicted latents end (or pass) close to the goal latent, execute its first
``replan_every`` model steps and plan again, warm-started with the rest of the previous plan
(``shift_plan``). One model step is ``model.frameskip`` env steps; the planner's action of
A_model = frameskip * env.action_dim numbers is split into frameskip env actions. Success is
checked after every env step, so a goal passed in the middle of a block counts; an episode that
succeeds is frozen (no more env steps, no more planning) and its steps-to-goal recorded.

The environment is an :class:`openjepa.envs.base.Env`, used only through its batched, pure part:
``step``, ``render``, ``sample_tasks``, ``success``, ``position``, ``action_dim`` (any object with
these works, e.g. a test double).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal, Optional, Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from openjepa.envs.base import Env
from openjepa.planning.sampling import (BoundKind, Device, Energy, PlanResult, check_bound, evaluate,
                                        planning_device, shift_plan, uniform_actions)

EnergyKind = Literal["final", "sum", "min"]


class PlanningModel(Protocol):
    """What MPC plans with: a learned world model, or ``OracleModel`` (the simulator itself)."""

    frameskip: int  # env steps per model step; A_model = frameskip * env.action_dim

    def encode(self, obs: Tensor, state: Tensor) -> Tensor: ...  # uint8 (N, 3, H, W), (N, S) -> latent (N, *L)
    def rollout(self, z: Tensor, actions: Tensor) -> Tensor: ...  # (N, *L), (N, K, H, A_model) -> (N, K, H, *L)
    def distance(self, pred: Tensor, goal: Tensor) -> Tensor: ...  # (N, K, H, *L), (N, *L) -> (N, K, H)


class Planner(Protocol):
    """CEM, MPPI, RandomPlanner: ``plan`` as in ``SamplingPlanner.plan``; ``reset`` restarts the random stream."""

    def plan(self, energy: Energy, batch: int, init: Optional[Tensor] = None, device: Device = None) -> PlanResult: ...
    def reset(self) -> None: ...


class OracleModel:
    """The true simulator as a PlanningModel: the latent is the state, rollouts are env steps and
    the distance is the Euclidean distance between ``env.position`` of the predicted and goal states."""

    def __init__(self, env: Env, frameskip: int = 1) -> None:
        if frameskip < 1:
            raise ValueError(f"frameskip must be >= 1, got {frameskip}")
        self.env, self.frameskip = env, int(frameskip)

    def encode(self, obs: Tensor, state: Tensor) -> Tensor:
        return state

    def rollout(self, z: Tensor, actions: Tensor) -> Tensor:
        N, K, H, A = actions.shape
        a = self.env.action_dim
        if A != self.frameskip * a:
            raise ValueError(f"actions have {A} numbers per model step; expected frameskip * env.action_dim "
                             f"= {self.frameskip} * {a}")
        s = z[:, None].expand(N, K, z.shape[-1]).reshape(N * K, -1)  # (N*K, S)
        acts = actions.reshape(N * K, H, self.frameskip, a)
        out = []
        for h in range(H):
            for j in range(self.frameskip):
                s = self.env.step(s, acts[:, h, j])
            out.append(s)
        return torch.stack(out, 1).view(N, K, H, -1)  # (N, K, H, S)

    def distance(self, pred: Tensor, goal: Tensor) -> Tensor:
        p = self.env.position(pred.reshape(-1, pred.shape[-1])).view(*pred.shape[:-1], -1)  # (N, K, H, 2)
        return (p - self.env.position(goal)[:, None, None]).norm(dim=-1)


class RandomPlanner:
    """The random-action baseline: ``plan`` returns sequences drawn uniformly from the action set
    (``uniform_actions``) and their energy (one energy call with S = 1)."""

    def __init__(self, horizon: int, action_dim: int, bound: float, bound_kind: BoundKind = "norm", group: int = 1,
                 seed: int = 0) -> None:
        if horizon < 1 or action_dim < 1:
            raise ValueError(f"horizon and action_dim must be >= 1, got {horizon} and {action_dim}")
        check_bound(float(bound), bound_kind, group, action_dim)
        self.horizon, self.action_dim, self.bound = int(horizon), int(action_dim), float(bound)
        self.bound_kind, self.group, self.seed = bound_kind, int(group), int(seed)
        self._gen: Optional[torch.Generator] = None

    def reset(self) -> None:
        self._gen = None

    @torch.no_grad()
    def plan(self, energy: Energy, batch: int, init: Optional[Tensor] = None, device: Device = None) -> PlanResult:
        """Random sequences (batch, H, A) within the bounds; ``init`` only sets the default device."""
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        device = planning_device(device, init)
        if self._gen is None or self._gen.device != device:
            self._gen = torch.Generator(device=device).manual_seed(self.seed)
        a = uniform_actions((batch, self.horizon, self.action_dim), self.bound, self.bound_kind, self.group,
                            self._gen, device)
        return PlanResult(actions=a, energy=evaluate(energy, a[:, None])[:, 0])


@dataclass
class MPCResult:
    """Outcome of ``run_mpc`` (all tensors on CPU)."""

    success: Tensor  # (E,) bool
    steps: Tensor  # (E,) long: env steps until success; max_steps when not reached
    positions: Tensor  # (E, max_steps + 1, 2): env.position after each env step, the final one repeated
    starts: Tensor  # (E, S)
    goals: Tensor  # (E, S)
    plan_seconds_total: float  # wall time inside planner.plan, summed over calls
    plan_calls: int  # planner.plan calls (each plans for all unfinished episodes of a chunk at once)
    plan_episode_calls: int  # (episode, planning call) pairs: sum over calls of the episodes planned for

    @property
    def episodes(self) -> int:
        return int(self.success.shape[0])

    @property
    def success_rate(self) -> float:
        return int(self.success.sum()) / self.episodes

    @property
    def mean_steps(self) -> float:
        """Mean env steps to the goal over successful episodes (nan if none succeeded)."""
        return float(self.steps[self.success].double().mean()) if bool(self.success.any()) else math.nan

    @property
    def seconds_per_episode(self) -> float:
        """Planning wall time divided by the number of episodes."""
        return self.plan_seconds_total / self.episodes

    @property
    def seconds_per_step(self) -> float:
        """Planning wall time divided by the number of (episode, planning call) pairs: the time to
        plan one step for one episode when episodes are planned for in batches."""
        return self.plan_seconds_total / self.plan_episode_calls if self.plan_episode_calls else math.nan

    def summary(self) -> dict[str, float]:
        return {"episodes": float(self.episodes), "success_rate": self.success_rate, "mean_steps": self.mean_steps,
                "plan_seconds_total": float(self.plan_seconds_total), "plan_calls": float(self.plan_calls),
                "seconds_per_episode": self.seconds_per_episode, "seconds_per_step": self.seconds_per_step}


def reduce_distances(d: Tensor, kind: EnergyKind) -> Tensor:
    """Per-step distances (N, K, H) -> energies (N, K): the last step's, their sum, or their minimum."""
    if kind == "final":
        return d[..., -1]
    if kind == "sum":
        return d.sum(-1)
    if kind == "min":
        return d.min(-1).values
    raise ValueError(f"energy must be 'final', 'sum' or 'min', got {kind!r}")


def _synced_clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


@dataclass
class _Clock:
    seconds: float = 0.0
    calls: int = 0
    episode_calls: int = 0


@torch.no_grad()
def _run_chunk(env: Env, model: PlanningModel, planner: Planner, start: Tensor, goal: Tensor, max_steps: int,
               replan_every: int, energy: EnergyKind, clock: _Clock, bar: tqdm) -> tuple[Tensor, Tensor, Tensor]:
    """MPC for N episodes at once -> success (N,), steps (N,), positions (N, max_steps + 1, 2)."""
    N, a, fs = start.shape[0], env.action_dim, model.frameskip
    state = start.clone()
    z_goal = model.encode(env.render(goal), goal)  # (N, *L)
    done = env.success(state, goal).clone()  # (N,) bool; a task solved at the start takes 0 steps
    steps = torch.where(done, 0, max_steps).long()
    positions = [env.position(state).clone()]  # t + 1 entries of (N, 2); clone: position may be a view of state
    prev: Optional[Tensor] = None  # (N, H, A_model): every episode's latest plan, for the warm start
    t = 0
    while t < max_steps and not bool(done.all()):
        active = (~done).nonzero()[:, 0]  # (n,) episodes still planned for
        z = model.encode(env.render(state[active]), state[active])  # (n, *L)
        at = active.to(z.device)
        zg = z_goal[at.to(z_goal.device)]

        def cost(cands: Tensor) -> Tensor:  # (n, K, H, A_model) -> (n, K)
            return reduce_distances(model.distance(model.rollout(z, cands), zg), energy)

        init = shift_plan(prev[at], replan_every) if prev is not None else None
        t0 = _synced_clock(z.device)
        plan = planner.plan(cost, len(active), init, z.device).actions  # (n, H, A_model)
        clock.seconds += _synced_clock(z.device) - t0
        clock.calls, clock.episode_calls = clock.calls + 1, clock.episode_calls + len(active)
        if plan.ndim != 3 or plan.shape[0] != len(active) or plan.shape[2] != fs * a or plan.shape[1] < replan_every:
            raise ValueError(f"planner returned actions of shape {tuple(plan.shape)}; expected ({len(active)}, H, "
                             f"{fs * a}) = (episodes, horizon >= replan_every={replan_every}, frameskip * "
                             f"env.action_dim = {fs} * {a})")
        if prev is None:
            prev = plan.new_zeros(N, *plan.shape[1:])
        prev[at] = plan
        acts = plan[:, :replan_every].to(state.device).reshape(len(active), replan_every * fs, a)  # env actions
        for i in range(replan_every * fs):
            moving = ~done[active]  # (n,) episodes of this plan that have not reached their goal yet
            if t == max_steps or not bool(moving.any()):
                break
            rows = active[moving]
            state[rows] = env.step(state[rows], acts[moving, i])
            t += 1
            reached = env.success(state, goal) & ~done
            steps[reached] = t
            done |= reached
            positions.append(env.position(state).clone())
            bar.set_postfix(solved=f"{int(done.sum())}/{N}", refresh=False)
            bar.update(1)  # one env step of this chunk's episodes
    bar.update(max_steps - t)  # the chunk ended early: all its episodes reached their goals
    pos = torch.stack(positions, 1)  # (N, t + 1, 2)
    pos = torch.cat([pos, pos[:, -1:].expand(-1, max_steps - t, -1)], 1)  # (N, max_steps + 1, 2)
    return done.cpu(), steps.cpu(), pos.float().cpu()


def run_mpc(env: Env, model: PlanningModel, planner: Planner, episodes: int, max_steps: int = 200,
            replan_every: int = 1, energy: EnergyKind = "final", seed: int = 0, batch: Optional[int] = None,
            progress: bool = True) -> MPCResult:
    """Goal-reaching MPC on ``episodes`` tasks from ``env.sample_tasks`` (generator seeded by ``seed``).

    ``replan_every``: model steps executed per plan (<= the planner's horizon). ``energy``: how the
    per-step distances (N, K, H) of a candidate's rollout to the goal latent become its energy:
    the distance after the last step (``final``, DINO-WM), the sum, or the minimum over the steps.
    ``batch``: episodes run in parallel chunks of this size (default: all at once). The planner's
    ``reset()`` is called first, so a run is a function of ``seed`` and the planner's own seed.
    Planning time is wall time around each ``planner.plan`` call (CUDA synchronised).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if replan_every < 1:
        raise ValueError(f"replan_every must be >= 1, got {replan_every}")
    if energy not in ("final", "sum", "min"):
        raise ValueError(f"energy must be 'final', 'sum' or 'min', got {energy!r}")
    if batch is not None and batch < 1:
        raise ValueError(f"batch must be >= 1 or None, got {batch}")
    if int(model.frameskip) < 1:
        raise ValueError(f"model.frameskip must be >= 1, got {model.frameskip}")
    starts, goals = env.sample_tasks(episodes, torch.Generator().manual_seed(seed))
    planner.reset()
    chunk, clock, parts = batch or episodes, _Clock(), []
    # Counted in env steps of each chunk (max_steps each; a chunk that finishes early jumps to its end),
    # so the bar moves during a chunk and its ETA is an upper bound.
    n_chunks = -(-episodes // (batch or episodes))
    with tqdm(total=n_chunks * max_steps, disable=not progress, desc="mpc", unit="env-step",
              dynamic_ncols=True) as bar:
        for i in range(0, episodes, chunk):
            parts.append(_run_chunk(env, model, planner, starts[i:i + chunk], goals[i:i + chunk], max_steps,
                                    replan_every, energy, clock, bar))
    success, steps, positions = (torch.cat(p) for p in zip(*parts))
    return MPCResult(success=success, steps=steps, positions=positions, starts=starts.cpu(), goals=goals.cpu(),
                     plan_seconds_total=clock.seconds, plan_calls=clock.calls, plan_episode_calls=clock.episode_calls)


__all__ = ["MPCResult", "OracleModel", "PlanningModel", "Planner", "RandomPlanner", "reduce_distances",
           "run_mpc"]
