"""ResNet encoders whose output is a token grid, for the methods that encode whole images.

LeJEPA (Balestriero & LeCun 2025, arXiv 2511.08544, Sec. 6) is architecture-agnostic: its
objective needs only one embedding per view, and the paper trains ResNets and ConvNeXts as well as
ViTs. A ResNet (He et al. 2016, arXiv 1512.03385; basic blocks) has the convolutional prior that
small images and small budgets reward. Its last feature map (B, D, H/p, W/p) is returned as
tokens (B, N, D), N = (H/p)(W/p), in raster order, so every method, probe and monitor that pools
a ViT's tokens pools these the same way. ``patch_size`` is the network's total stride: the stages'
strides times the stem's (1: one 3x3 conv, as for CIFAR-size inputs; 2: a strided 3x3 conv; 4:
the ImageNet stem, 7x7 stride-2 conv and max-pool). Parameter names follow torchvision's ResNet
(``conv1``, ``bn1``, ``layer{i}.{j}.conv1`` ...).

A ResNet has no tokens to drop, so it cannot serve masked methods (I-JEPA's context encoder):
``forward`` with ``masks`` raises, and ``build_ijepa`` refuses it up front.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

from torch import Tensor, nn

from openjepa.masks.base import MaskBatch
from openjepa.registry import register_model


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the (projected) input, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity (Goyal et al. 2017)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class ResNet(nn.Module):
    """stem -> stages of basic blocks -> tokens (B, N, D); ``stages`` are (width, blocks, stride) triples."""

    def __init__(self, stem_width: int, stages: Sequence[tuple[int, int, int]], img_size: int = 224,
                 patch_size: int = 16, in_chans: int = 3, num_frames: int = 1, tubelet_size: int = 1,
                 drop_path: float = 0.0):
        super().__init__()
        if num_frames != 1:
            raise ValueError(f"a ResNet encodes images, not clips: num_frames must be 1, got {num_frames}")
        if drop_path:
            raise ValueError(f"drop_path is a ViT setting; a ResNet takes none, got {drop_path}")
        inner = math.prod(s for _, _, s in stages)
        stem_stride = patch_size // inner
        if patch_size % inner or stem_stride not in (1, 2, 4):
            raise ValueError(f"patch_size {patch_size} (the total stride) must be 1, 2 or 4 times the stages' "
                             f"stride {inner}: one of {inner}, {2 * inner}, {4 * inner}")
        if img_size % patch_size:
            raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
        self.patch_size = patch_size
        self.embed_dim = stages[-1][0]
        self.grid = (1, img_size // patch_size, img_size // patch_size)
        k = 7 if stem_stride == 4 else 3
        self.conv1 = nn.Conv2d(in_chans, stem_width, k, min(stem_stride, 2), k // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1) if stem_stride == 4 else nn.Identity()
        cin = stem_width
        for i, (width, blocks, stride) in enumerate(stages, start=1):
            layer = [BasicBlock(cin, width, stride)] + [BasicBlock(width, width) for _ in range(blocks - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*layer))
            cin = width
        self.num_stages = len(stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def num_tokens(self) -> int:
        return math.prod(self.grid)

    def no_weight_decay(self) -> set[str]:
        return set()

    def _stages(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = []
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
            out.append(x)
        return out

    def forward(self, x: Tensor, masks: Optional[MaskBatch] = None) -> Tensor:
        """x: (B, C, H, W) -> tokens (B, (H/p)(W/p), D) of the last stage."""
        if masks is not None:
            raise ValueError("a ResNet encodes whole images and cannot keep a subset of tokens: "
                             "masked methods need a ViT encoder")
        return self._stages(x)[-1].flatten(2).transpose(1, 2)  # (B, D, h, w) -> (B, h*w, D)

    def forward_intermediates(self, x: Tensor, layers: Sequence[int], norm: bool = True) -> list[Tensor]:
        """Token outputs (B, N_i, D_i) of the stages in ``layers`` (negative indices count from the end).

        ``norm`` is accepted for the ViT signature; a ResNet's stage outputs are already batch-normed.
        """
        want = {i % self.num_stages for i in layers}
        return [f.flatten(2).transpose(1, 2) for i, f in enumerate(self._stages(x)) if i in want]


# Small sizes for 28-64 px images on CPUs (total stride 4 at least).
@register_model
def resnet_pico(**kw) -> ResNet:
    return ResNet(32, [(64, 1, 2), (128, 1, 2)], **kw)


@register_model
def resnet_nano(**kw) -> ResNet:
    return ResNet(32, [(64, 1, 2), (128, 2, 2), (256, 1, 1)], **kw)


# ResNet-18's stages (total stride 8 at least; patch_size=32 gives the ImageNet network).
@register_model
def resnet18(**kw) -> ResNet:
    return ResNet(64, [(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)], **kw)
