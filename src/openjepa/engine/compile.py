"""Regional ``torch.compile``: compile each transformer block (or ResNet block), not the whole training step.

Mask sizes change from batch to batch, so a whole-step graph is either recompiled for every new
size or traced with dynamic shapes through gathers and the loss; on torch 2.11 with CUDA the latter
crashed in the backward pass (benchmarks/RESULTS.md). Compiling the repeated ``Block`` with
``dynamic=True`` traces one graph with a symbolic sequence length that every layer, the encoder's
and the predictor's, reuses: the compile is paid once (about 30 s on a CPU), the attention and MLP
kernels are fused, and the code around the blocks stays eager. A ResNet's ``BasicBlock``s are
compiled the same way (dynamic shapes: LeJEPA's global and local views have different sizes).
"""

from __future__ import annotations

from torch import nn

from openjepa.layers.mlp import Block
from openjepa.models.resnet import BasicBlock


def compile_blocks(module: nn.Module) -> int:
    """Compile every transformer ``Block`` and ResNet ``BasicBlock`` inside ``module`` in place; returns how many."""
    blocks = [m for m in module.modules() if isinstance(m, (Block, BasicBlock))]
    for b in blocks:
        b.compile(dynamic=True)
    return len(blocks)


__all__ = ["compile_blocks"]
