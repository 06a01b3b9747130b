"""The released V-JEPA and V-JEPA 2 architectures, built from our ViT and predictor, and their preprocessing.

V-JEPA 2 (Assran et al. 2025; ``facebookresearch/vjepa2``, ``src/hub/backbones.py`` and
``configs/train/*/cooldown-*-64f.yaml``): ViT-L/H/g with patch 16 and tubelet 2, 3-D RoPE and no
position embedding, pretrained at the end on 64-frame clips of 256 px (384 px for ``vit_giant_384``).
ViT-g is the "giant_xformers" shape: width 1408, 40 blocks, 22 heads of 64 channels, MLP ratio 48/11
(unlike I-JEPA's ViT-g, 16 heads of 88). Predictor: width 384, 12 blocks, 12 heads, 10 mask tokens, RoPE.

V-JEPA (Bardes et al. 2024; ``facebookresearch/jepa``, ``configs/pretrain/vitl16.yaml`` and
``vith16_384.yaml``): ViT-L/16 at 224 px and ViT-H/16 at 384 px, tubelet 2, 16-frame clips, fixed 3-D
sin-cos position embedding (``uniform_power``). Predictor: width 384, 12 blocks, 12 heads, 2 mask tokens
(one per mask group), sin-cos positions.

``PREPROCESSING[name]`` is what the released weights expect: pixels scaled to [0, 1] and normalised with
ImageNet ``mean`` / ``std``; at evaluation the short side is resized to ``resize`` (= crop * 256 / 224)
then centre-cropped to ``crop_size``; ``frames_per_clip`` frames taken every ``frame_step`` frames (the
official frozen evaluations; V-JEPA 2 pretraining sampled its 64-frame clips at ``fps`` = 4 instead).
Images go in as one-frame clips, repeated to a tubelet by the encoder (see
:meth:`~openjepa.models.vit.VisionTransformer.as_clip`; the official image evaluations repeat to 16 frames
instead, pass such a clip to reproduce them).
"""

from __future__ import annotations

from typing import Any

from openjepa.models.ac_predictor import ACPredictor
from openjepa.models.predictor import Predictor
from openjepa.models.vit import VisionTransformer
from openjepa.registry import register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def clip_preprocessing(crop: int, frames: int, frame_step: int, fps: int | None = None) -> dict[str, Any]:
    """What a released video model expects: crop, resize, mean and std, frames per clip, frame step and fps."""
    return {"crop_size": crop, "resize": int(crop * 256 / 224), "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
            "frames_per_clip": frames, "frame_step": frame_step, "fps": fps}


PREPROCESSING: dict[str, dict[str, Any]] = {
    "vjepa2_vit_large": clip_preprocessing(256, 64, 4, fps=4),
    "vjepa2_vit_huge": clip_preprocessing(256, 64, 4, fps=4),
    "vjepa2_vit_giant": clip_preprocessing(256, 64, 4, fps=4),
    "vjepa2_vit_giant_384": clip_preprocessing(384, 64, 4, fps=4),
    "vjepa_vit_large16": clip_preprocessing(224, 16, 4),
    "vjepa_vit_huge16_384": clip_preprocessing(384, 16, 4),
}

# name: (embed_dim, depth, num_heads, mlp_ratio, img_size, num_frames, pos)
ARCHS: dict[str, tuple[int, int, int, float, int, int, str]] = {
    "vjepa2_vit_large": (1024, 24, 16, 4.0, 256, 64, "rope"),
    "vjepa2_vit_huge": (1280, 32, 16, 4.0, 256, 64, "rope"),
    "vjepa2_vit_giant": (1408, 40, 22, 48 / 11, 256, 64, "rope"),
    "vjepa2_vit_giant_384": (1408, 40, 22, 48 / 11, 384, 64, "rope"),
    "vjepa_vit_large16": (1024, 24, 16, 4.0, 224, 16, "sincos"),
    "vjepa_vit_huge16_384": (1280, 32, 16, 4.0, 384, 16, "sincos"),
}


def build(name: str, **kw) -> VisionTransformer:
    """The encoder of ``ARCHS[name]``, patch 16 and tubelet 2; ``kw`` overrides any constructor argument."""
    dim, depth, heads, mlp, img, frames, pos = ARCHS[name]
    args = dict(img_size=img, patch_size=16, num_frames=frames, tubelet_size=2, embed_dim=dim, depth=depth,
                num_heads=heads, mlp_ratio=mlp, pos=pos)
    return VisionTransformer(**{**args, **kw})


@register_model
def vjepa2_vit_large(**kw) -> VisionTransformer:
    return build("vjepa2_vit_large", **kw)


@register_model
def vjepa2_vit_huge(**kw) -> VisionTransformer:
    return build("vjepa2_vit_huge", **kw)


@register_model
def vjepa2_vit_giant(**kw) -> VisionTransformer:
    return build("vjepa2_vit_giant", **kw)


@register_model
def vjepa2_vit_giant_384(**kw) -> VisionTransformer:
    return build("vjepa2_vit_giant_384", **kw)


@register_model
def vjepa_vit_large16(**kw) -> VisionTransformer:
    return build("vjepa_vit_large16", **kw)


@register_model
def vjepa_vit_huge16_384(**kw) -> VisionTransformer:
    return build("vjepa_vit_huge16_384", **kw)


def vjepa2_predictor(encoder: VisionTransformer, **kw) -> Predictor:
    """V-JEPA 2's predictor for ``encoder``: width 384, 12 blocks, 12 heads, 10 mask tokens, 3-D RoPE."""
    args = dict(predictor_embed_dim=384, depth=12, num_heads=12, mlp_ratio=4.0, video=True, pos="rope",
                num_mask_tokens=10)
    return Predictor(encoder.grid, encoder.embed_dim, **{**args, **kw})


def vjepa_predictor(encoder: VisionTransformer, **kw) -> Predictor:
    """V-JEPA's predictor for ``encoder``: width 384, 12 blocks, 12 heads, 2 mask tokens, 3-D sin-cos positions."""
    args = dict(predictor_embed_dim=384, depth=12, num_heads=12, mlp_ratio=4.0, video=True, pos="sincos",
                num_mask_tokens=2)
    return Predictor(encoder.grid, encoder.embed_dim, **{**args, **kw})


def vjepa2_ac_predictor(encoder: VisionTransformer, **kw) -> ACPredictor:
    """V-JEPA 2-AC's action-conditioned predictor for ``encoder`` (``facebookresearch/vjepa2``,
    ``src/hub/backbones.py`` ``vjepa2_ac_vit_giant``): width 1024, 24 blocks, 16 heads, MLP ratio 4, 7-D actions
    and states as two tokens before each frame's patch tokens, 3-D RoPE over the encoder's (H, W) patch grid,
    block-causal over at most 32 frames (the hub's 64 frames / tubelet 2). ``extrinsics_dim=6`` adds the
    extrinsics token of the official ``use_extrinsics`` option (off in the released model); ``kw`` overrides any
    :class:`ACPredictor` argument."""
    _, H, W = encoder.grid
    args = dict(action_dim=7, state_dim=7, dim=1024, depth=24, num_heads=16, mlp_ratio=4.0, max_frames=32,
                cond="token", pos="rope", grid=(H, W), tokens_per_frame=H * W)
    return ACPredictor(encoder.embed_dim, **{**args, **kw})
