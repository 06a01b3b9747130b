"""Record trajectories of an environment under a simple exploration policy, for world-model training.

``collect`` writes ``out_dir/meta.json`` and shards ``shard_00000.safetensors``, ... each holding a
block of ``shard_size`` episodes (the last may be shorter)::

    obs      uint8   (E, T+1, 3, H, W)   env.render(states)
    actions  float32 (E, T, A)           the policy's actions; step t takes states[:, t] to states[:, t+1]
    states   float32 (E, T+1, S)         states[:, 0] uniform over the free space (env.sample_free)

Episode ``e`` is a pure function of ``(seed, e)`` (its own generator), so the files depend only
on the arguments (not on ``shard_size`` or the machine's thread count); the shards of a
collection are simulated as one batch each. The stored actions are the policy's raw actions; the
environment clips them when stepping, so ``env.step(states[:, t], actions[:, t]) == states[:, t+1]``
exactly. :class:`openjepa.data.trajectories.TrajectoryDataset` reads the result.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor
from tqdm.auto import tqdm

from openjepa.engine.checkpoint import save_safetensors
from openjepa.envs import Env, make_env
from openjepa.errors import ConfigError
from openjepa.layers.seed import generator

FORMAT = "openjepa.trajectories"
VERSION = 1
META = "meta.json"
SHARD_RE = re.compile(r"shard_\d{5}\.safetensors")
# What an earlier collection may leave beside its shards: the temporary file of a shard whose
# write was killed (engine.checkpoint.save_safetensors writes ".<name>.tmp.<pid>", then renames it).
SHARD_TMP_RE = re.compile(r"\.shard_\d{5}\.safetensors\.tmp\.\d+")
ARRAYS = {
    "obs": "uint8 (E, T+1, 3, H, W): env.render(states)",
    "actions": "float32 (E, T, A): policy actions (clipped to max_action by env.step); "
               "env.step(states[:, t], actions[:, t]) == states[:, t+1]",
    "states": "float32 (E, T+1, S): env states, states[:, 0] from env.sample_free",
}
TURN_STD = 0.35  # noisy policy: std of the heading change per step (radians)


def random_policy(env: Env, n: int, steps: int, generator: torch.Generator) -> Tensor:
    """I.i.d. actions uniform over the disk of radius ``max_action``: (n, steps, A)."""
    u = torch.rand(n, steps, 2, generator=generator)
    radius = env.max_action * torch.sqrt(u[..., 0])  # sqrt: uniform over the area, not the radius
    angle = 2 * math.pi * u[..., 1]
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)


def noisy_policy(env: Env, n: int, steps: int, generator: torch.Generator) -> Tensor:
    """A correlated random walk: a heading that turns by N(0, TURN_STD) radians a step, at a speed
    uniform in [0.5, 1] * max_action each step. It travels far (and through doors) where i.i.d.
    actions would jitter in place. Returns (n, steps, A)."""
    heading0 = 2 * math.pi * torch.rand(n, 1, generator=generator)
    turns = TURN_STD * torch.randn(n, steps, generator=generator)
    heading = heading0 + torch.cumsum(turns, dim=1)  # (n, steps)
    speed = env.max_action * (0.5 + 0.5 * torch.rand(n, steps, generator=generator))
    return torch.stack([speed * torch.cos(heading), speed * torch.sin(heading)], dim=-1)


POLICIES: Dict[str, Callable[[Env, int, int, torch.Generator], Tensor]] = {
    "random": random_policy,
    "noisy": noisy_policy,
}


def episode_generator(seed: int, episode: int) -> torch.Generator:
    """The generator of episode ``episode``: ``openjepa.layers.seed.generator("episode", seed, episode)``."""
    return generator("episode", int(seed), int(episode))


def rollout(env: Env, start: Tensor, actions: Tensor) -> Tensor:
    """States visited from ``start`` (E, S) under ``actions`` (E, T, A): (E, T+1, S)."""
    states = [start]
    for t in range(actions.shape[1]):
        states.append(env.step(states[-1], actions[:, t]))
    return torch.stack(states, dim=1)


def render_episodes(env: Env, states: Tensor) -> Tensor:
    """``env.render`` over episodes: (E, T+1, S) -> uint8 (E, T+1, 3, H, W), one time step at a time."""
    return torch.stack([env.render(states[:, t]) for t in range(states.shape[1])], dim=1)


def collect(env_name: str, episodes: int, steps: int, out_dir: str | os.PathLike, seed: int = 0,
            policy: str = "noisy", env_kwargs: Optional[Dict[str, Any]] = None, shard_size: int = 100,
            progress: bool = True) -> Path:
    """Run ``episodes`` episodes of ``steps`` steps of ``env_name`` and write them to ``out_dir``.

    ``out_dir`` must be new, empty, or a previous collection (which is replaced). Returns its path.
    """
    if policy not in POLICIES:
        raise ConfigError(f"unknown policy {policy!r}; valid policies: {', '.join(sorted(POLICIES))}")
    for k, v in {"episodes": episodes, "steps": steps, "shard_size": shard_size}.items():
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"collect: {k} must be a positive int, got {v!r}")
    env = make_env(env_name, **(env_kwargs or {}))
    out = Path(out_dir)
    _prepare(out)
    shards: List[str] = []
    with tqdm(total=episodes, disable=not progress, desc="collect", unit="episode", dynamic_ncols=True) as bar:
        for first in range(0, episodes, shard_size):
            ids = range(first, min(first + shard_size, episodes))
            starts, actions = [], []
            for e in ids:
                g = episode_generator(seed, e)
                starts.append(env.sample_free(1, g))
                actions.append(POLICIES[policy](env, 1, steps, g))
            states = rollout(env, torch.cat(starts), torch.cat(actions))
            name = f"shard_{len(shards):05d}.safetensors"
            save_safetensors({"obs": render_episodes(env, states), "actions": torch.cat(actions).contiguous(),
                              "states": states.contiguous()}, out / name)
            shards.append(name)
            bar.update(len(ids))
    meta = {"format": FORMAT, "version": VERSION, "env": env.name, "env_kwargs": env.kwargs(),
            "episodes": episodes, "steps": steps, "seed": seed, "policy": policy, "img_size": env.img_size,
            "state_dim": env.state_dim, "action_dim": env.action_dim, "shard_size": shard_size,
            "shards": shards, "arrays": ARRAYS}
    tmp = out / (META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / META)  # meta.json last: a folder without it is an unfinished collection
    return out


def _prepare(out: Path) -> None:
    """Make ``out`` an empty folder; refuse anything that is not empty or an earlier collection."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"collect: output {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in out.iterdir()]
    foreign = [n for n in names if n not in (META, META + ".tmp") and not SHARD_RE.fullmatch(n)
               and not SHARD_TMP_RE.fullmatch(n)]
    if foreign or (META in names and not _is_collection(out / META)):
        what = ", ".join(sorted(foreign)[:3]) or META + " of another format"
        raise FileExistsError(f"collect: output folder {out} is not empty and not a trajectory collection "
                              f"(found {what}); choose a new folder or empty it")
    if META in names:
        (out / META).unlink()  # first: an interrupted rewrite must never look complete
    for n in names:
        if n != META:
            (out / n).unlink()


def _is_collection(meta: Path) -> bool:
    try:
        return json.loads(meta.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False
