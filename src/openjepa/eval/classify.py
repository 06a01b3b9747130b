"""The end-of-training evaluation of fine-tuned classifiers (``train.method=finetune``).

Top-1 of the fine-tuned encoder + head on the test split (``eval.max_test_samples`` of it), with its
binomial standard error; beside it, when ``finetune.compare_frozen`` and a ``finetune.source`` are set,
the standard frozen-feature table (linear probe and the baselines) of the *source* encoder on the same
splits, and the verdict: does fine-tuning beat the frozen linear probe beyond two standard errors?
Saved as ``run_dir/finetune_eval.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from openjepa.config.schema import Config
from openjepa.data import build_dataset
from openjepa.engine.runs import load_encoder
from openjepa.eval.features import extract
from openjepa.eval.frozen import evaluate_method
from openjepa.eval.registry import register_evaluation
from openjepa.eval.table import standard_error
from openjepa.methods import build_method


@torch.no_grad()
def classifier_accuracy(method: Any, cfg: Config, device: torch.device) -> dict[str, Any]:
    """Top-1 of ``method.forward_logits`` on the test split, with its standard error."""
    test = build_dataset(cfg.data, "test", cfg.model.img_size, seed=cfg.seed, train=False)
    loader = DataLoader(test, batch_size=cfg.eval.batch_size, shuffle=False, num_workers=0)
    method.eval()
    out = extract(method.forward_logits, loader, device, cfg.eval.max_test_samples, cfg.train.progress,
                  pool=lambda logits: logits.float(), precision=cfg.eval.precision, desc="fine-tuned classifier")
    acc = (out.x.argmax(1) == out.y).float().mean().item()
    return {"name": "fine-tuned (encoder + head)", "top1": acc, "se": standard_error(acc, len(out.y)),
            "n_test": len(out.y)}


def frozen_source(cfg: Config, device: torch.device) -> list[dict]:
    """The frozen-feature table of ``finetune.source``'s encoder (linear probe + baselines), same splits."""
    probe = build_method(cfg, 1)
    probe.encoder.load_state_dict(load_encoder(cfg.finetune.source).state_dict())
    frozen = replace(cfg, eval=replace(cfg.eval, protocols=["linear"]))
    return evaluate_method(probe.to(device), frozen, device, None, label=f"frozen {cfg.finetune.source}")


@register_evaluation("classification")
def evaluate_finetune(method: Any, cfg: Config, device: torch.device, run_dir: str | Path | None,
                      step: int) -> dict[str, Any]:
    result: dict[str, Any] = {"step": step, "finetuned": classifier_accuracy(method, cfg, device)}
    ft = result["finetuned"]
    print(f"fine-tuned top-1: {ft['top1']:.1%} ± {ft['se']:.1%} on {ft['n_test']} test images")
    if cfg.finetune.compare_frozen and cfg.finetune.source:
        rows = frozen_source(cfg, device)
        result["frozen"] = rows
        lin = rows[0]["linear"]
        gap, se = ft["top1"] - lin, math.hypot(ft["se"], standard_error(lin, rows[0]["n_test"]) or 0.0)
        word = "beats" if gap > 2 * se else ("is below" if gap < -2 * se else "is level with")
        result["verdict"] = (f"fine-tuning {word} the frozen linear probe of the source encoder "
                             f"({gap * 100:+.1f} points; 2 standard errors = {2 * se * 100:.1f})")
        print(result["verdict"])
    if run_dir is not None:
        out = Path(run_dir) / "finetune_eval.json"
        out.write_text(json.dumps(result, indent=2))
        print(f"saved {out}")
    return result
