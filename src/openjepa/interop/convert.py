"""The shared machinery of checkpoint converters: rename a source state dict by rules, account for every key.

A converter is a pure function: a source state dict in, :class:`Conversion` out (our state dict plus a
report). Every source key is either mapped (to exactly one of our keys) or dropped with its reason; a
key that no rule covers raises :class:`~openjepa.errors.CheckpointError` naming it and its shape, so a
checkpoint of another architecture never loads half-way. Loading the result into a model with
:func:`openjepa.engine.checkpoint.load_state_strict` then names any key the model expects but did not get.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

from openjepa.errors import CheckpointError

# (pattern, replacement) applied with re.fullmatch, first match wins; the replacement may use \1 groups.
Rule = tuple[str, str]


@dataclass
class Conversion:
    """Our state dict, and for every source key where it went (``mapped``) or why it did not (``dropped``)."""

    state_dict: dict[str, Tensor]
    mapped: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        reasons = sorted(set(self.dropped.values()))
        text = f"{len(self.mapped)} keys mapped, {len(self.dropped)} dropped"
        return text + (f" ({'; '.join(reasons)})" if reasons else "")


def strip_prefix(state: Mapping[str, Tensor], prefixes: Sequence[str]) -> dict[str, Tensor]:
    """Remove the first of ``prefixes`` that a key starts with (e.g. DDP's ``module.``), from every key."""
    out = {}
    for k, v in state.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
                break
        out[k] = v
    return out


def split_predictor(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(encoder state, predictor state) of a converted state dict; the predictor keys lose ``predictor.``."""
    enc = {k: v for k, v in state.items() if not k.startswith("predictor.")}
    pred = {k[len("predictor."):]: v for k, v in state.items() if k.startswith("predictor.")}
    return enc, pred


def convert_keys(state: Mapping[str, Tensor], rules: Sequence[Rule], drop: Sequence[tuple[str, str]] = (),
                 what: str = "checkpoint", transform: Callable[[str, Tensor], dict[str, Tensor]] | None = None
                 ) -> Conversion:
    """Rename ``state`` by ``rules``; keys matching a ``drop`` pattern are dropped with its reason.

    ``transform(our_key, tensor)``, when given, may split one renamed tensor into several of ours
    (e.g. separate q, k, v into one qkv, or the reverse), returning ``{our_key: tensor}``.
    Unmatched keys, and two source keys landing on one of ours, raise :class:`CheckpointError`.
    """
    out = Conversion({})
    unknown = []
    for key, value in state.items():
        reason = next((r for pat, r in drop if re.fullmatch(pat, key)), None)
        if reason is not None:
            out.dropped[key] = reason
            continue
        target = next((re.sub(f"^{pat}$", rep, key) for pat, rep in rules if re.fullmatch(pat, key)), None)
        if target is None:
            unknown.append(f"{key} {tuple(value.shape)}")
            continue
        pieces = transform(target, value) if transform is not None else {target: value}
        for k, v in pieces.items():
            if k in out.state_dict:
                raise CheckpointError(f"{what}: two source keys map to {k!r} (the second is {key!r})")
            out.state_dict[k] = v
        out.mapped[key] = target
    if unknown:
        raise CheckpointError(f"{what}: {len(unknown)} key(s) that no rule maps (another architecture?): "
                              f"{', '.join(unknown[:12])}{' ...' if len(unknown) > 12 else ''}")
    return out


def fuse_parts(conv: Conversion, parts: Sequence[str], dim: int = 0, sep: str = "#",
               what: str = "checkpoint") -> Conversion:
    """Concatenate pieces that rules renamed to ``KEY#part`` into one tensor ``KEY``, in the order of ``parts``.

    For sources that store one of our tensors in pieces, e.g. separate query, key and value
    projections (``parts=("q", "k", "v")``) for our one ``qkv``: rename them to ``...qkv.weight#q`` and
    so on, then fuse along ``dim``; ``mapped`` then names ``KEY``. A piece without all its siblings, or
    pieces whose shapes differ, raise :class:`CheckpointError` naming them. Changes ``conv`` in place.
    """
    groups: dict[str, dict[str, Tensor]] = {}
    for key in [k for k in conv.state_dict if sep in k]:
        base, part = key.rsplit(sep, 1)
        groups.setdefault(base, {})[part] = conv.state_dict.pop(key)
    for base, pieces in groups.items():
        if set(pieces) != set(parts):
            raise CheckpointError(f"{what}: {base} needs the pieces {', '.join(parts)}; found "
                                  f"{', '.join(sorted(pieces))}")
        shapes = {tuple(t.shape) for t in pieces.values()}
        if len(shapes) > 1:
            raise CheckpointError(f"{what}: the pieces of {base} differ in shape: "
                                  + ", ".join(f"{p} {tuple(pieces[p].shape)}" for p in parts))
        if base in conv.state_dict:
            raise CheckpointError(f"{what}: {base!r} is given both whole and in pieces")
        conv.state_dict[base] = torch.cat([pieces[p] for p in parts], dim=dim)
    conv.mapped = {src: (dst.rsplit(sep, 1)[0] if sep in dst else dst) for src, dst in conv.mapped.items()}
    return conv
