"""The standard ViT initialisation used by I-JEPA / V-JEPA (and BEiT's residual rescaling)."""

from __future__ import annotations

import math
from typing import Iterable

from torch import nn


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal linear/conv weights, zero biases, unit LayerNorms, for every submodule."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def rescale_residuals(blocks: Iterable[nn.Module]) -> None:
    """Divide each block's output projections by sqrt(2·layer) so deep residual sums start small."""
    for i, blk in enumerate(blocks, 1):
        blk.attn.proj.weight.data.div_(math.sqrt(2.0 * i))
        blk.mlp.fc2.weight.data.div_(math.sqrt(2.0 * i))
