"""Patch embedding over a (T, H, W) grid: Conv2d for images, Conv3d tubelets for video."""

from __future__ import annotations

from torch import Tensor, nn


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, H/p * W/p, D), or (B, C, T, H, W) -> (B, T/t * H/p * W/p, D).

    ``proj`` is a Conv2d when ``tubelet_size`` is None (I-JEPA's layout) and a Conv3d otherwise
    (V-JEPA's layout), so official weights load with prefix edits only.
    """

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, tubelet_size: int | None = None):
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        if tubelet_size is None:
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        else:
            k = (tubelet_size, patch_size, patch_size)
            self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=k, stride=k)

    def grid(self, x: Tensor) -> tuple[int, int, int]:
        """Token grid (T, H, W) for input ``x``."""
        p = self.patch_size
        if self.tubelet_size is None:
            return 1, x.shape[-2] // p, x.shape[-1] // p
        return x.shape[-3] // self.tubelet_size, x.shape[-2] // p, x.shape[-1] // p

    def forward(self, x: Tensor) -> Tensor:
        if self.tubelet_size is None and x.ndim == 5:  # (B, C, 1, H, W) still image as a 1-frame clip
            x = x.squeeze(2)
        x = self.proj(x)  # (B, D, [T,] H, W)
        return x.flatten(2).transpose(1, 2).contiguous()  # (B, N, D), token-major (LayerNorm and the residual adds want it)
