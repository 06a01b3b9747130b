"""AdamW with decay only on weight matrices (not biases, norms, position embeddings or mask tokens)."""

from __future__ import annotations

import torch
from torch import nn

from openjepa.config.schema import OptimConfig


def param_groups(model: nn.Module) -> list[dict]:
    """Two groups: ``decay`` (weights with ndim ≥ 2) and ``no_decay`` (biases, norms, listed names)."""
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith(".bias") or name in skip else decay).append(p)
    return [{"params": decay, "name": "decay", "apply_wd": True},
            {"params": no_decay, "name": "no_decay", "apply_wd": False, "weight_decay": 0.0}]


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
        g["lr"] = lr
        g["weight_decay"] = wd if g.get("apply_wd", True) else 0.0
