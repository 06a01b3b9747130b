"""Pure-PyTorch batched environments for planning with world models (no gym, no MuJoCo).

``make_env(name, **kwargs)`` builds one; ``env_names()`` lists them:

- ``two_rooms``: two rooms joined by a door; state (x, y).
- ``point_mass``: a damped point mass in an open arena; state (x, y, vx, vy).

See :class:`~openjepa.envs.base.Env` for the contract and
:class:`~openjepa.envs.base.EnvBatch` for the stateful reset / step loop.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Type

from openjepa.errors import ConfigError

from .base import Env, EnvBatch
from .point_mass import PointMass
from .two_rooms import TwoRooms

ENVS: Dict[str, Type[Env]] = {"two_rooms": TwoRooms, "point_mass": PointMass}


def env_names() -> List[str]:
    """The registered environment names, sorted."""
    return sorted(ENVS)


def make_env(name: str, **kwargs: Any) -> Env:
    """Build the environment ``name`` with constructor arguments ``kwargs``.

    An unknown name, an unknown argument or an invalid value raises :class:`ConfigError` naming it.
    """
    if name not in ENVS:
        raise ConfigError(f"unknown environment {name!r}; valid names: {', '.join(env_names())}")
    valid = [p for p in inspect.signature(ENVS[name]).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ConfigError(f"{name}: unknown setting(s) {', '.join(unknown)}; valid settings: {', '.join(valid)}")
    return ENVS[name](**kwargs)


__all__ = ["ENVS", "Env", "EnvBatch", "PointMass", "TwoRooms", "env_names", "make_env"]
