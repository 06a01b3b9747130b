"""The released V-JEPA 2.1 architectures, built from our ViT and predictor, and their preprocessing.

V-JEPA 2.1 (``facebookresearch/vjepa2``: ``app/vjepa_2_1/models/``, hub entries ``vjepa2_1_vit_*_384`` in
``src/hub/backbones.py``) keeps V-JEPA 2's ViT (patch 16, tubelet 2, 3-D RoPE, no position embedding) and adds:

* images as images: a second patch embedding of tubelet 1 (``patch_embed_img``) for one-frame inputs, and
  learned image / video **modality embeddings** added to every token (encoder and predictor);
* **levels**: four blocks (``LEVELS``) whose outputs each have their own LayerNorm; the last one's output is
  the encoder's output at evaluation, the concatenation of all four (or of the last one for the distilled
  models) is what the predictor reads in training;
* RoPE with true rotations (frequencies repeated per channel pair) and, in the encoder only, height and width
  coordinates rescaled to a 16 x 16 grid (``interpolate_rope``), see :mod:`openjepa.layers.rope`.

Shapes (width, blocks, heads, MLP ratio): base 768/12/12/4, large 1024/24/16/4 (both distilled from the
gigantic model, ``ema_encoder`` in their files), giant 1408/40/22/48/11 and gigantic 1664/48/26/64/13 (the
"xformers" head counts: 64 channels per head). Predictor: width 384, 12 heads, 8 mask tokens; 12 blocks reading
one level and predicting the teacher's 1664 channels for base/large, 24 blocks reading four levels and
predicting four levels for giant/gigantic; all four have a second head for the context tokens.

``PREPROCESSING``: 384 px crops of ImageNet-normalised pixels (the resolution in the released names); clips of
64 frames at 4 fps as V-JEPA 2's 384 px cool-down (the 2.1 training configs are not in the repository snapshot
these numbers were read from).
"""

from __future__ import annotations

from typing import Any

from openjepa.models.predictor import Predictor
from openjepa.models.vit import VisionTransformer
from openjepa.models.vjepa import clip_preprocessing
from openjepa.registry import register_model

# Level blocks by depth (the official table; note 37, not 35, for 48 blocks).
LEVELS: dict[int, tuple[int, ...]] = {12: (2, 5, 8, 11), 24: (5, 11, 17, 23), 40: (9, 19, 29, 39),
                                      48: (11, 23, 37, 47)}
TEACHER_DIM = 1664  # width of the gigantic teacher the base / large models were distilled from

# name: (embed_dim, depth, num_heads, mlp_ratio, predictor depth, predictor levels in / out, predictor out_dim)
ARCHS: dict[str, tuple[int, int, int, float, int, int, int]] = {
    "vjepa2_1_vit_base_384": (768, 12, 12, 4.0, 12, 1, TEACHER_DIM),
    "vjepa2_1_vit_large_384": (1024, 24, 16, 4.0, 12, 1, TEACHER_DIM),
    "vjepa2_1_vit_giant_384": (1408, 40, 22, 48 / 11, 24, 4, 4 * 1408),
    "vjepa2_1_vit_gigantic_384": (1664, 48, 26, 64 / 13, 24, 4, 4 * 1664),
}
PREPROCESSING: dict[str, dict[str, Any]] = {name: clip_preprocessing(384, 64, 4, fps=4) for name in ARCHS}
CHECKPOINT_KEY = {"vjepa2_1_vit_base_384": "ema_encoder", "vjepa2_1_vit_large_384": "ema_encoder",
                  "vjepa2_1_vit_giant_384": "target_encoder", "vjepa2_1_vit_gigantic_384": "target_encoder"}


def encoder_kwargs(embed_dim: int, depth: int, num_heads: int, mlp_ratio: float) -> dict[str, Any]:
    """Constructor arguments of a V-JEPA 2.1 encoder of this shape (384 px, 64 frames)."""
    if depth not in LEVELS:
        raise ValueError(f"V-JEPA 2.1 defines levels for depths {sorted(LEVELS)}, not {depth}")
    return dict(img_size=384, patch_size=16, num_frames=64, tubelet_size=2, embed_dim=embed_dim, depth=depth,
                num_heads=num_heads, mlp_ratio=mlp_ratio, pos="rope", rope_layout="interleaved", rope_ref_grid=16,
                image_patch_embed=True, modality_embed=True, level_layers=list(LEVELS[depth]))


def build(name: str, **kw) -> VisionTransformer:
    """The encoder of ``ARCHS[name]``; ``kw`` overrides any constructor argument."""
    dim, depth, heads, mlp = ARCHS[name][:4]
    return VisionTransformer(**{**encoder_kwargs(dim, depth, heads, mlp), **kw})


def predictor_kwargs(name: str) -> dict[str, Any]:
    """``Predictor`` arguments (besides grid and embed_dim) of the released predictor of ``name``."""
    depth, levels, out_dim = ARCHS[name][4:]
    return dict(predictor_embed_dim=384, depth=depth, num_heads=12, mlp_ratio=4.0, video=True, pos="rope",
                num_mask_tokens=8, in_levels=levels, out_dim=out_dim, context_proj=True, modality_embed=True,
                rope_layout="interleaved")


def vjepa2_1_predictor(encoder: VisionTransformer, name: str, **kw) -> Predictor:
    """The V-JEPA 2.1 predictor of architecture ``name`` for ``encoder``."""
    return Predictor(encoder.grid, encoder.embed_dim, **{**predictor_kwargs(name), **kw})


@register_model
def vjepa2_1_vit_base_384(**kw) -> VisionTransformer:
    return build("vjepa2_1_vit_base_384", **kw)


@register_model
def vjepa2_1_vit_large_384(**kw) -> VisionTransformer:
    return build("vjepa2_1_vit_large_384", **kw)


@register_model
def vjepa2_1_vit_giant_384(**kw) -> VisionTransformer:
    return build("vjepa2_1_vit_giant_384", **kw)


@register_model
def vjepa2_1_vit_gigantic_384(**kw) -> VisionTransformer:
    return build("vjepa2_1_vit_gigantic_384", **kw)
