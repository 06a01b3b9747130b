"""The one seed mixer: a stable 63-bit seed from a tuple of parts, and a CPU generator seeded by it.

Every per-item or per-step random stream of the library (a ``shapes`` image, a sample's masks, an
item's augmentations, an epoch's data order, an episode of a trajectory collection, a step's SIGReg
directions) draws from :func:`generator` of a tuple that names the stream first and then the
integers it depends on, e.g. ``generator("mask", seed, step, rank, index)``. The tuple is hashed
rather than combined arithmetically: ``seed + step`` would make step 1 of seed 0 replay step 0 of
seed 1, while hashed tuples give unrelated streams however close they are.

The mix (stable across processes, machines and Python versions, unlike the salted built-in
``hash``): the parts are written in decimal (integers) or as they are (stream names), joined by
``":"``, encoded as UTF-8, hashed with BLAKE2b to 8 bytes (RFC 7693, ``digest_size=8``), read as a
little-endian unsigned integer, and its low 63 bits kept (a non-negative int64, which every seed API
accepts). ``mix_seed("openjepa.shapes", seed, split, index)`` is the key the ``shapes`` dataset has
used since its first release, so its pixels are unchanged.
"""

from __future__ import annotations

import hashlib
import operator
from typing import Union

import torch

Part = Union[int, str]
_LOW63 = (1 << 63) - 1


def _encode(part: Part) -> str:
    if isinstance(part, str):
        if not part or ":" in part:
            raise ValueError(f"mix_seed: a name part must be non-empty and free of ':', got {part!r}")
        return part
    try:
        return str(operator.index(part))  # ints, bools, numpy and 0-d integer tensors; not floats
    except TypeError:
        raise TypeError(f"mix_seed: parts must be ints or names (str), got {type(part).__name__} {part!r}") from None


def mix_seed(*parts: Part) -> int:
    """A seed in ``[0, 2**63)`` that depends on ``parts`` (ints, and str stream names) only.

    BLAKE2b-64 of ``":".join(parts)`` (see the module docstring), low 63 bits. Different tuples
    collide with probability about 2**-63; a name part may not contain ``":"`` (so that the
    joined key determines the tuple).
    """
    if not parts:
        raise ValueError("mix_seed needs at least one part")
    key = ":".join(_encode(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & _LOW63


def generator(*parts: Part) -> torch.Generator:
    """A new CPU ``torch.Generator`` seeded with :func:`mix_seed` of ``parts``."""
    return torch.Generator().manual_seed(mix_seed(*parts))


__all__ = ["mix_seed", "generator"]
