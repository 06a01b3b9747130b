"""Converter for the official V-JEPA 2-AC checkpoint (``vjepa2-ac-vitg.pt``): a ViT-g encoder and its
action-conditioned predictor, onto :class:`~openjepa.models.VisionTransformer` and
:class:`~openjepa.models.ACPredictor` (layout in :mod:`openjepa.models.ac_predictor`).

The file (``facebookresearch/vjepa2``, ``app/vjepa_droid/train.py`` checkpoints, loaded by
``src/hub/backbones.py`` ``vjepa2_ac_vit_giant``) is a dict with ``encoder`` and ``predictor`` state dicts whose
keys carry ``module.`` / ``backbone.`` prefixes (stripped). ``encoder`` is V-JEPA 2's ViT-g: the action-conditioned
training loads it from the pretrained target encoder and never updates it, so it converts exactly as a V-JEPA 2
encoder (:func:`openjepa.interop.vjepa.from_official_vjepa2`), and it is what both ``which="target"`` and
``which="context"`` give (a ``target_encoder``, when a file holds one, is taken for ``"target"``).

Predictor keys (``N`` a block index, ``*`` weight or bias), official -> ours (under ``predictor.``)::

    predictor_embed.*          (dim, D)      -> frame_embed.*        encoder tokens -> predictor width
    action_encoder.*           (dim, A)      -> action_embed.*       A = 7 (end-effector delta + gripper)
    state_encoder.*            (dim, A)      -> state_embed.*        the 7-D end-effector state s_t
    extrinsics_encoder.*       (dim, A - 1)  -> extrinsics_embed.*   only with use_extrinsics; else dropped
    predictor_blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*  -> blocks.N.<same>
    predictor_norm.*                         -> norm.*
    predictor_proj.*           (D, dim)      -> proj.*

The official predictor builds ``extrinsics_encoder`` whatever ``use_extrinsics`` says, so the released file
(``use_extrinsics=False``) carries it unused; it is then dropped. The head count is not in the shapes: the
released predictor has heads of 64 channels (1024 / 16), which :func:`official_ac_predictor_kwargs` assumes.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from openjepa.engine.checkpoint import load_state_strict
from openjepa.errors import CheckpointError
from openjepa.interop.convert import Conversion, Rule, convert_keys, split_predictor, strip_prefix
from openjepa.interop.vjepa import _PARTS, OFFICIAL_PREFIXES, from_official_vjepa2
from openjepa.models.ac_predictor import ACPredictor
from openjepa.models.vit import VisionTransformer
from openjepa.models.vjepa import IMAGENET_MEAN, IMAGENET_STD, vjepa2_ac_predictor

WHAT = "official V-JEPA 2-AC checkpoint"
EXTRINSICS_DROP = ("use_extrinsics=False (the released predictor): the official model builds extrinsics_encoder "
                   "but never applies it")
HEAD_WIDTH = 64  # channels per attention head of the released predictor (1024 wide, 16 heads)

# The preprocessing of the 2-AC training (configs/train/vitg16/droid-256px-8f.yaml) and of the official world-model
# notebooks: each frame resized whole to 256 x 256 (random-resized-crop with scale and ratio 1), ImageNet
# normalisation, clips of 8 frames at 4 fps (DROID's 15 fps videos: a step of ceil(15 / 4) = 4 frames). Each frame
# is encoded on its own, as a clip of that frame repeated to one tubelet (VisionTransformer.as_clip).
PREPROCESSING: dict[str, Any] = {"crop_size": 256, "resize": 256, "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                                 "frames_per_clip": 8, "frame_step": 4, "fps": 4}

PREDICTOR_RULES: list[Rule] = [
    (r"predictor_embed\.(weight|bias)", r"predictor.frame_embed.\1"),
    (r"action_encoder\.(weight|bias)", r"predictor.action_embed.\1"),
    (r"state_encoder\.(weight|bias)", r"predictor.state_embed.\1"),
    (rf"predictor_blocks\.(\d+)\.({_PARTS})\.(weight|bias)", r"predictor.blocks.\1.\2.\3"),
    (r"predictor_norm\.(weight|bias)", r"predictor.norm.\1"),
    (r"predictor_proj\.(weight|bias)", r"predictor.proj.\1"),
]
EXTRINSICS_RULE: Rule = (r"extrinsics_encoder\.(weight|bias)", r"predictor.extrinsics_embed.\1")
REQUIRED = ("predictor_embed.weight", "action_encoder.weight", "state_encoder.weight",
            "predictor_blocks.0.mlp.fc1.weight")


def _predictor_state(obj: Mapping[str, Any]) -> dict:
    pred = obj.get("predictor") if isinstance(obj, Mapping) else None
    if not isinstance(pred, Mapping):
        raise CheckpointError(f"{WHAT}: no 'predictor' state in the file")
    return strip_prefix(pred, OFFICIAL_PREFIXES)


def is_official_vjepa2_ac(obj: Mapping[str, Any]) -> bool:
    """Whether a loaded official checkpoint is V-JEPA 2-AC's: its predictor has an ``action_encoder``."""
    pred = obj.get("predictor") if isinstance(obj, Mapping) else None
    return isinstance(pred, Mapping) and any(k.endswith("action_encoder.weight") for k in pred)


def encoder_which(obj: Mapping[str, Any], which: str) -> str:
    """The ``which`` of :func:`from_official_vjepa2` that holds the requested encoder (module docstring)."""
    has_target = any(isinstance(obj.get(k), Mapping) for k in ("target_encoder", "ema_encoder"))
    return "context" if which == "target" and not has_target else which


def from_official_vjepa2_ac(obj: Mapping[str, Any], which: str = "target", predictor: bool = True,
                            use_extrinsics: bool = False) -> Conversion:
    """A loaded official V-JEPA 2-AC checkpoint -> our encoder keys and (``predictor``) ``predictor.`` +
    :class:`ACPredictor` keys. Report keys of the predictor are prefixed ``predictor/``.

    ``use_extrinsics``: map ``extrinsics_encoder`` (a predictor built with ``extrinsics_dim``) instead of dropping
    it. An unknown key raises :class:`CheckpointError` naming it and its shape."""
    conv = from_official_vjepa2(obj, which=encoder_which(obj, which))
    if not predictor:
        return conv
    rules = PREDICTOR_RULES + ([EXTRINSICS_RULE] if use_extrinsics else [])
    drop = [] if use_extrinsics else [(r"extrinsics_encoder\.(weight|bias)", EXTRINSICS_DROP)]
    p = convert_keys(_predictor_state(obj), rules, drop, what=f"{WHAT} predictor")
    conv.state_dict.update(p.state_dict)
    conv.mapped.update({f"predictor/{k}": v for k, v in p.mapped.items()})
    conv.dropped.update({f"predictor/{k}": v for k, v in p.dropped.items()})
    return conv


def official_ac_predictor_kwargs(obj: Mapping[str, Any], use_extrinsics: bool = False) -> dict[str, Any]:
    """:func:`~openjepa.models.vjepa.vjepa2_ac_predictor` overrides read from the file's predictor shapes
    (width, depth, MLP ratio, action / state / extrinsics sizes; heads of :data:`HEAD_WIDTH` channels)."""
    p = _predictor_state(obj)
    missing = [k for k in REQUIRED if k not in p]
    if missing:
        raise CheckpointError(f"{WHAT}: the predictor lacks {', '.join(missing)}; keys: {', '.join(list(p)[:8])}")
    width = p["predictor_embed.weight"].shape[0]
    depth = len({m.group(1) for k in p if (m := re.match(r"predictor_blocks\.(\d+)\.", k))})
    extrinsics = p.get("extrinsics_encoder.weight")
    if use_extrinsics and extrinsics is None:
        raise CheckpointError(f"{WHAT}: use_extrinsics=True but the predictor has no extrinsics_encoder.weight")
    return dict(dim=width, depth=depth, num_heads=max(width // HEAD_WIDTH, 1),
                mlp_ratio=p["predictor_blocks.0.mlp.fc1.weight"].shape[0] / width,
                action_dim=p["action_encoder.weight"].shape[1], state_dim=p["state_encoder.weight"].shape[1],
                extrinsics_dim=extrinsics.shape[1] if use_extrinsics else 0)


def build_official_ac_predictor(obj: Mapping[str, Any], encoder: VisionTransformer, conv: Conversion,
                                use_extrinsics: bool = False, what: str = WHAT) -> ACPredictor:
    """The released predictor's :class:`ACPredictor` for ``encoder``'s grid, loaded strictly from ``conv``
    (a missing or mis-shaped key raises :class:`CheckpointError` naming it), in eval mode."""
    pred = vjepa2_ac_predictor(encoder, **official_ac_predictor_kwargs(obj, use_extrinsics))
    load_state_strict(pred, split_predictor(conv.state_dict)[1], f"predictor of {what}")
    return pred.eval()
