"""End-of-training evaluations by name: a method's ``evaluation`` attribute picks one.

An evaluation is ``fn(method, cfg, device, run_dir, step) -> results``; ``probes`` (the frozen-feature
probe table, :mod:`openjepa.eval.frozen`) and ``world_model`` (position probe and planning,
:mod:`openjepa.planning.evaluate`) register themselves where they are defined.
"""

from __future__ import annotations

from typing import Any, Callable

from openjepa.registry import Registry

Evaluation = Callable[..., Any]
EVALUATIONS: Registry[Evaluation] = Registry("evaluation", "evaluation")
register_evaluation = EVALUATIONS.register
