"""AdamW with decay only on weight matrices (not biases, norms, position embeddings or mask tokens)."""

from __future__ import annotations

import torch
from torch import nn

from openjepa.config.schema import OptimConfig


def param_groups(model: nn.Module) -> list[dict]:
    """``decay`` (weights with ndim ≥ 2) and ``no_decay`` (biases, norms, listed names) groups.

    A model with ``lr_scales()`` (parameter name -> learning-rate multiplier, e.g. layer-wise decay for
    fine-tuning) gets one pair of groups per multiplier, each with its ``lr_scale``; the others get two.
    """
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    scales = model.lr_scales() if hasattr(model, "lr_scales") else {}
    groups: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = not (p.ndim < 2 or name.endswith(".bias") or name in skip)
        groups.setdefault((decay, float(scales.get(name, 1.0))), []).append(p)
    out = []
    for scale in sorted({s for _, s in groups} | ({1.0} if not scales else set())):
        suffix = "" if not scales else f"@{scale:.4g}"
        out += [{"params": groups.get((True, scale), []), "name": f"decay{suffix}", "apply_wd": True, "lr_scale": scale},
                {"params": groups.get((False, scale), []), "name": f"no_decay{suffix}", "apply_wd": False,
                 "weight_decay": 0.0, "lr_scale": scale}]
    return out


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW (Loshchilov & Hutter 2019); lr and weight decay are set every step by the trainer."""
    kwargs = {"lr": cfg.lr, "betas": tuple(cfg.betas), "eps": cfg.eps, "weight_decay": cfg.weight_decay}
    groups = param_groups(model)
    if _all_on_cuda([p for g in groups for p in g["params"]]):
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


def _all_on_cuda(params: list[torch.Tensor]) -> bool:
    """Whether the fused CUDA kernel applies: every parameter a floating CUDA tensor (not merely CUDA present)."""
    return bool(params) and all(p.is_cuda and p.is_floating_point() for p in params)


def set_hparams(opt: torch.optim.Optimizer, lr: float, wd: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
        g["weight_decay"] = wd if g.get("apply_wd", True) else 0.0
