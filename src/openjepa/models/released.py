"""The released I-JEPA models (Assran et al. 2023, arXiv 2301.08243), by name, with their predictors and preprocessing.

Each name builds the encoder of a published checkpoint exactly (our :class:`VisionTransformer`, whose
parameter names are the official ones); :data:`RELEASED_IJEPA` adds what the name alone does not say:
the predictor the checkpoint was trained with, the preprocessing it expects, and where the weights
are published (as text: users fetch them, nothing here downloads). The settings are those of the
official training configs (github.com/facebookresearch/ijepa, ``configs/*.yaml``: ``model_name``,
``patch_size``, ``crop_size``, ``pred_depth``, ``pred_emb_dim``) and of its ``src/helper.py``, where the
predictor gets as many heads as the encoder and ``mlp_ratio`` 4, every LayerNorm ``eps=1e-6``:

* ``ijepa_vit_huge14``: ViT-H/14 (width 1280, depth 32, 16 heads) at 224 px; predictor depth 12, width 384,
  16 heads (configs ``in1k_vith14_ep300``, ``in22k_vith14_ep66``).
* ``ijepa_vit_huge16_448``: ViT-H/16 at 448 px; predictor depth 12, width 384, 16 heads
  (``in1k_vith16-448_ep300``).
* ``ijepa_vit_giant16``: ViT-g/16 (width 1408, depth 40, 16 heads, mlp_ratio 48/11) at 224 px; predictor
  depth 16, width 384, 16 heads (``in22k_vitg16_ep44``).

Preprocessing: the official training normalises with the ImageNet mean and std
(0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) at the input size above. (The Hugging Face conversion script,
transformers' ``convert_ijepa_to_hf.py``, writes ``ViTImageProcessor``'s defaults, mean = std = 0.5; the
weights were trained with the ImageNet statistics.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openjepa.models.vit import VisionTransformer
from openjepa.registry import register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """What a released encoder expects: square RGB inputs of ``input_size`` px, normalised by ``mean``/``std``."""

    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class ReleasedModel:
    """A published checkpoint family: encoder and predictor settings, preprocessing, and where it is published.

    ``encoder`` holds :class:`VisionTransformer` keyword arguments, ``predictor`` those of
    :class:`~openjepa.models.Predictor` other than ``grid`` and ``embed_dim`` (which come from the encoder).
    """

    name: str
    encoder: dict
    predictor: dict
    preprocess: Preprocess
    official_files: tuple[str, ...] = field(default=())  # under https://dl.fbaipublicfiles.com/ijepa/
    hf_ids: tuple[str, ...] = field(default=())  # Hugging Face hub ports (IJepaModel)


_VIT_H = dict(embed_dim=1280, depth=32, num_heads=16, mlp_ratio=4.0, qkv_bias=True, norm_eps=1e-6)
_VIT_G = dict(embed_dim=1408, depth=40, num_heads=16, mlp_ratio=48 / 11, qkv_bias=True, norm_eps=1e-6)

RELEASED_IJEPA: dict[str, ReleasedModel] = {
    m.name: m for m in (
        ReleasedModel("ijepa_vit_huge14", dict(_VIT_H, img_size=224, patch_size=14),
                      dict(predictor_embed_dim=384, depth=12, num_heads=16, mlp_ratio=4.0), Preprocess(224),
                      ("IN1K-vit.h.14-300e.pth.tar", "IN22K-vit.h.14-900e.pth.tar"),
                      ("facebook/ijepa_vith14_1k", "facebook/ijepa_vith14_22k")),
        ReleasedModel("ijepa_vit_huge16_448", dict(_VIT_H, img_size=448, patch_size=16),
                      dict(predictor_embed_dim=384, depth=12, num_heads=16, mlp_ratio=4.0), Preprocess(448),
                      ("IN1K-vit.h.16-448px-300e.pth.tar",), ("facebook/ijepa_vith16_1k",)),
        ReleasedModel("ijepa_vit_giant16", dict(_VIT_G, img_size=224, patch_size=16),
                      dict(predictor_embed_dim=384, depth=16, num_heads=16, mlp_ratio=4.0), Preprocess(224),
                      ("IN22K-vit.g.16-600e.pth.tar",), ("facebook/ijepa_vitg16_22k",)),
    )
}


def _released(name: str, kw: dict) -> VisionTransformer:
    """The released encoder ``name``; ``kw`` overrides its settings (e.g. ``img_size`` for another input size)."""
    return VisionTransformer(**{**RELEASED_IJEPA[name].encoder, **kw})


@register_model
def ijepa_vit_huge14(**kw) -> VisionTransformer:
    """I-JEPA ViT-H/14 at 224 px (IN-1K 300 ep and IN-22K 900 ep checkpoints)."""
    return _released("ijepa_vit_huge14", kw)


@register_model
def ijepa_vit_huge16_448(**kw) -> VisionTransformer:
    """I-JEPA ViT-H/16 at 448 px (IN-1K 300 ep checkpoint)."""
    return _released("ijepa_vit_huge16_448", kw)


@register_model
def ijepa_vit_giant16(**kw) -> VisionTransformer:
    """I-JEPA ViT-g/16 at 224 px (IN-22K 600 ep checkpoint)."""
    return _released("ijepa_vit_giant16", kw)
