"""How the prediction loss and the SIGReg term add up: the published variants, by name."""

from __future__ import annotations

from torch import Tensor


def combine(prediction: Tensor, regulariser: Tensor, weight: float, mode: str = "convex") -> Tensor:
    """``convex``: (1 - λ)·prediction + λ·SIGReg, LeJEPA's Eq. (the paper and its minimal script);
    ``add``: prediction + λ·SIGReg (other public implementations). λ = ``weight``."""
    if mode == "convex":
        return (1.0 - weight) * prediction + weight * regulariser
    if mode == "add":
        return prediction + weight * regulariser
    raise ValueError(f"unknown sigreg.combine {mode!r}; choose one of: convex, add")


__all__ = ["combine"]
