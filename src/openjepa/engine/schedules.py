"""Learning-rate and weight-decay schedules: pure functions of the step (nanoGPT's ``get_lr(it)``).

Resuming at step s needs s only; nothing is replayed.
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "wsd", "constant")


def lr_at(step: int, total: int, *, lr: float, start_lr: float, final_lr: float, warmup: int,
          schedule: str = "cosine", decay_fraction: float = 0.2) -> float:
    """Linear warm-up from ``start_lr`` to ``lr`` over ``warmup`` steps, then:

    - cosine: half-cosine from ``lr`` to ``final_lr`` at ``total`` (I-JEPA's WarmupCosineSchedule);
    - wsd: constant ``lr``, then linear decay to ``final_lr`` over the last ``decay_fraction`` of
      training (warmup-stable-decay, Hägele et al. 2024);
    - constant: ``lr`` after warm-up.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    if step < warmup:
        return start_lr + (lr - start_lr) * step / warmup
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        frac = min((step - warmup) / max(total - warmup, 1), 1.0)
        return final_lr + (lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))
    decay_start = total - int(round(decay_fraction * total))
    if step < decay_start:
        return lr
    frac = min((step - decay_start) / max(total - decay_start, 1), 1.0)
    return lr + (final_lr - lr) * frac


def wd_at(step: int, total: int, *, weight_decay: float, final_weight_decay: float) -> float:
    """Half-cosine from ``weight_decay`` at step 0 to ``final_weight_decay`` at ``total`` (I-JEPA's CosineWDSchedule)."""
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    return final_weight_decay + (weight_decay - final_weight_decay) * 0.5 * (1.0 + math.cos(math.pi * frac))
