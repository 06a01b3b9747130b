"""Fixed-length windows of recorded trajectories (``openjepa collect``) for world-model training.

A collection folder holds ``meta.json`` and safetensors shards of whole episodes (see
:mod:`openjepa.planning.collect`). :class:`TrajectoryDataset` keeps the images as uint8 in memory,
splits by *episode* (windows of one episode never straddle train and val), and serves every
window of ``num_frames`` frames ``frameskip`` env steps apart::

    frames  t0, t0 + k, ..., t0 + (F-1) k      for every t0 with t0 + (F-1) k <= T

Item ``i`` is a dict: ``obs`` float32 (F, 3, H, W) in [-1, 1]; ``actions`` float32 (F-1, k*A), row
``j`` the ``k`` env actions from frame ``j`` to frame ``j+1`` concatenated in time order;
``states`` float32 (F, S); ``episode`` and ``start`` (t0) ints. The default collate batches it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor
from torch.utils.data import Dataset

from openjepa.envs import Env, make_env

from .base import DataError, check_fraction
from .registry import DatasetInfo, register_dataset

SPLITS = ("train", "val", "all")
FORMAT = "openjepa.trajectories"  # the tag openjepa.planning.collect writes (no import: data stays light)
KEYS = ("obs", "actions", "states")


class TrajectoryDataset(Dataset):
    """Sub-trajectories of a collection in ``root``; see the module docstring for the item format."""

    def __init__(self, root: str | os.PathLike, num_frames: int, frameskip: int = 1, split: str = "train",
                 val_fraction: float = 0.1, seed: int = 0):
        if split not in SPLITS:
            raise ValueError(f"TrajectoryDataset: unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
        self.root = Path(root)
        self.meta: Dict[str, Any] = read_meta(self.root)
        steps = int(self.meta["steps"])
        for k, v in {"num_frames": num_frames, "frameskip": frameskip}.items():
            if not isinstance(v, int) or v < 1:
                raise DataError(f"TrajectoryDataset: {k} must be a positive int, got {v!r}")
        span = (num_frames - 1) * frameskip
        if span > steps:
            raise DataError(f"TrajectoryDataset: num_frames={num_frames} with frameskip={frameskip} spans "
                            f"(num_frames - 1) * frameskip = {span} steps, longer than the {steps}-step episodes "
                            f"in {self.root}; use num_frames <= {steps // frameskip + 1}")
        self.num_frames, self.frameskip, self.split = num_frames, frameskip, split
        self.windows = steps - span + 1  # windows per episode
        self._shards, self._where = self._load_shards()
        self.episodes: List[int] = episode_split(len(self._where), split, val_fraction, seed)

    def _load_shards(self) -> Tuple[List[Dict[str, Tensor]], List[Tuple[int, int]]]:
        """The shards' arrays, and each episode's (shard, row)."""
        m, shards, where = self.meta, [], []
        t, s, a = int(m["steps"]), int(m["state_dim"]), int(m["action_dim"])
        for name in m["shards"]:
            path = self.root / name
            try:
                arrays = load_file(str(path))
            except (OSError, SafetensorError) as e:
                raise DataError(f"TrajectoryDataset: cannot read shard {path}: {e}") from e
            if any(k not in arrays for k in KEYS):
                raise DataError(f"TrajectoryDataset: shard {path} lacks arrays {[k for k in KEYS if k not in arrays]}")
            e = arrays["obs"].shape[0]
            want = {"obs": ((e, t + 1, 3, m["img_size"], m["img_size"]), torch.uint8),
                    "actions": ((e, t, a), torch.float32), "states": ((e, t + 1, s), torch.float32)}
            for k, (shape, dtype) in want.items():
                if tuple(arrays[k].shape) != shape or arrays[k].dtype != dtype:
                    raise DataError(f"TrajectoryDataset: shard {path}: {k} is {arrays[k].dtype} "
                                    f"{tuple(arrays[k].shape)}, expected {dtype} {shape}")
            where.extend((len(shards), i) for i in range(e))
            shards.append(arrays)
        if len(where) != m["episodes"]:
            raise DataError(f"TrajectoryDataset: the shards in {self.root} hold {len(where)} episodes, "
                            f"meta.json says {m['episodes']}")
        return shards, where

    def __len__(self) -> int:
        return len(self.episodes) * self.windows

    def __getitem__(self, index: int) -> Dict[str, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} windows")
        ep, t0 = divmod(index % n, self.windows)
        episode = self.episodes[ep]
        shard, row = self._where[episode]
        arrays, k = self._shards[shard], self.frameskip
        end = t0 + (self.num_frames - 1) * k  # last frame, inclusive
        obs = arrays["obs"][row, t0:end + 1:k].float() / 127.5 - 1.0  # (F, 3, H, W)
        acts = arrays["actions"][row, t0:end]  # ((F-1) k, A), in time order
        return {"obs": obs, "actions": acts.reshape(self.num_frames - 1, k * acts.shape[-1]),  # (F-1, k*A)
                "states": arrays["states"][row, t0:end + 1:k].clone(), "episode": episode, "start": t0}

    def env(self) -> Env:
        """The environment the trajectories came from, rebuilt from ``meta.json``."""
        return make_env(self.meta["env"], **self.meta["env_kwargs"])


def read_meta(root: Path) -> Dict[str, Any]:
    """Parse and check ``root/meta.json``; a missing, unreadable or foreign file raises DataError."""
    path = root / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise DataError(f"no trajectory collection in {root}: {path} not found "
                        "(write one with openjepa collect)") from e
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{path} is not an openjepa trajectory collection (format {FORMAT!r} expected)")
    if meta.get("version") != 1:
        raise DataError(f"{path}: unsupported version {meta.get('version')!r} (this openjepa reads version 1)")
    need = ("env", "env_kwargs", "episodes", "steps", "img_size", "state_dim", "action_dim", "shards")
    missing = [k for k in need if k not in meta]
    if missing:
        raise DataError(f"{path} lacks the keys {missing}")
    return meta


def episode_split(episodes: int, split: str, val_fraction: float, seed: int) -> List[int]:
    """Sorted episode indices of ``split``: a seeded permutation's first ``round(E * val_fraction)``
    episodes are ``val`` (at least one when the fraction is positive and there are two or more
    episodes, and never all), the rest ``train``; ``all`` is every episode."""
    f = check_fraction(val_fraction)
    if split == "all":
        return list(range(episodes))
    n_val = int(round(episodes * f))
    if f > 0 and episodes > 1:
        n_val = min(max(n_val, 1), episodes - 1)
    perm = torch.randperm(episodes, generator=torch.Generator().manual_seed(int(seed))).tolist()
    return sorted(perm[:n_val] if split == "val" else perm[n_val:])


def trajectory_root(cfg: Any) -> Path:
    """``data.root`` of a trajectory collection (a ``DataConfig``)."""
    if not getattr(cfg, "root", None):
        raise DataError("data.name=trajectories needs data.root=DIR, a folder written by `openjepa collect`")
    return Path(cfg.root).expanduser()


def fill_world_config(cfg: Any) -> None:
    """Copy what a world model must know about ``cfg.data.root``'s collection into ``cfg.world``:
    the environment and its settings, and the predictor's action width (env action dim × frameskip).
    A model image size that differs from the collected frames' raises DataError naming both."""
    meta = read_meta(trajectory_root(cfg.data))
    if int(meta["img_size"]) != cfg.model.img_size:
        raise DataError(f"model.img_size={cfg.model.img_size} but the frames in {cfg.data.root} are "
                        f"{meta['img_size']} px: set model.img_size={meta['img_size']} (or collect with --img-size)")
    cfg.world.env, cfg.world.env_kwargs = meta["env"], dict(meta["env_kwargs"])
    cfg.world.action_dim = int(meta["action_dim"]) * cfg.data.frameskip


class Unlabelled(Dataset):
    """A dataset of dict items (sub-trajectories) as the ``(item, -1)`` pairs the training loader takes."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Tuple[Any, int]:
        return self.dataset[i], -1


# `openjepa collect` episodes: RGB frames scaled to [-1, 1], i.e. mean 0.5 and std 0.5 in [0, 1] units.
@register_dataset("trajectories", DatasetInfo("trajectories", 3, 0, 64, (0.5,) * 3, (0.5,) * 3, (), kind="trajectory"),
                  prepare=fill_world_config)
def _build(cfg: Any, split: str, img_size: int, seed: int, tf: Any, eval_tf: Any) -> Dataset:
    held_out = split in ("test", "val")
    return Unlabelled(TrajectoryDataset(trajectory_root(cfg), cfg.num_frames, cfg.frameskip,
                                        "val" if held_out else "train", cfg.val_fraction, seed))
