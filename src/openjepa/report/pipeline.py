"""What ``openjepa train`` does around the fit loop: train, then export, evaluate and report.

The engine's :func:`~openjepa.engine.trainer.train` only trains; this module, above the engine,
runs what follows on rank 0 once the process group is closed: the encoder exported as
safetensors, the method's end-of-training evaluation (``method.evaluation``: the probe table for
image methods, planning for world models), ``summary.json`` and the HTML report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openjepa.eval.classify  # noqa: F401  (registers the "classification" evaluation of fine-tuning)
import openjepa.eval.frozen  # noqa: F401  (registers the "probes" evaluation)
import openjepa.planning.evaluate  # noqa: F401  (registers the "world_model" evaluation)
from openjepa.config.schema import Config
from openjepa.engine import checkpoint as ckpt
from openjepa.engine import dist
from openjepa.engine.trainer import TrainResult, train
from openjepa.eval.registry import EVALUATIONS
from openjepa.interop.export import export_encoder
from openjepa.interop.sources import load_part
from openjepa.methods import JEPAMethod, build_method


def train_and_evaluate(cfg: Config, resume: bool = False, allow_config_change: bool = False) -> dict[str, Any]:
    """``openjepa train``: :func:`train`, then (rank 0, when something was trained) :func:`finish`."""
    result = train(cfg, resume=resume, allow_config_change=allow_config_change,
                   load=load_part)  # the parts of released checkpoints too, converted
    summary: dict[str, Any] = {"steps": int(result.state.get("step", 0)), "run_dir": result.cfg.run_dir,
                               "device": str(result.device), "precision": result.precision,
                               "world_size": result.world_size, "trained": result.trained}
    if result.rank == 0 and result.trained:
        summary.update(finish(result))
    return summary


def plain_method(result: TrainResult) -> JEPAMethod:
    """The trained method with its full weights on one process (FSDP2: rebuilt from the gathered state)."""
    if not dist.is_sharded(result.method):
        return result.method
    method = build_method(result.cfg, int(result.state["step"])).to(result.device)
    ckpt.load_state_strict(method, result.state["method"], "method")
    return method


def finish(result: TrainResult) -> dict[str, Any]:
    """Export the encoder, evaluate, write ``summary.json`` and the report; returns the summary's additions."""
    from openjepa.report import write_report

    cfg, run_dir, step = result.cfg, Path(result.cfg.run_dir), int(result.state["step"])
    method = plain_method(result).eval()
    export_encoder(method, cfg, run_dir / "encoder.safetensors")
    warning = result.collapse_warning
    summary: dict[str, Any] = {"collapse_warning": warning and warning["message"], "collapse": warning}
    if warning is not None:
        print(f"WARNING: {warning['message']}")
    if cfg.eval.at_end:
        summary["eval"] = EVALUATIONS.get(method.evaluation)(method, cfg, result.device, run_dir, step)
    (run_dir / "summary.json").write_text(json.dumps({"steps": step, "run_dir": str(run_dir), **summary}, indent=2))
    if cfg.eval.report:
        print(f"report: {write_report(run_dir, device=str(result.device), progress=cfg.train.progress)}")
    return summary
