"""Converter for official V-JEPA 2.1 checkpoints (``facebookresearch/vjepa2``, ``app/vjepa_2_1``).

A pure function: the loaded ``.pt`` dict in, a :class:`~openjepa.interop.convert.Conversion` out, every
source key mapped or dropped with its reason, anything else raising
:class:`~openjepa.errors.CheckpointError` with the keys and shapes. The files hold ``ema_encoder`` (the
distilled base / large) or ``target_encoder`` (giant / gigantic), ``encoder`` and ``predictor``, with
``module.`` / ``backbone.`` prefixes (stripped). ``transformers`` has no V-JEPA 2.1 model, so there is no
Hugging Face layout to convert from or to.

Encoder keys (``N`` a block, ``L`` a level 0..3, ``*`` weight or bias)::

    patch_embed.proj.*          -> patch_embed.proj.*        (Conv3d, tubelet 2: clips)
    patch_embed_img.proj.*      -> patch_embed_img.proj.*    (Conv3d, tubelet 1: images)
    img_mod_embed, video_mod_embed (1, 1, D)                 -> same names
    blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*  -> same names
    norms_block.L.*             -> level_norms.L.*, and the last level's -> norm.*

Predictor keys, as ``predictor.`` + ours (report keys ``predictor/...``)::

    predictor_embed.*  or  predictor_embed.{0,2}.*   -> predictor_embed.* (one level: Linear; four: an MLP)
    mask_tokens.I (1, 1, D), I = 0..n-1              -> mask_token (n, 1, D)
    predictor_blocks.N.*, predictor_norm.*, predictor_proj.*, predictor_proj_context.*  -> same names
    img_mod_embed, video_mod_embed                   -> same names

Architecture from the shapes: width and depth from the encoder (heads of 64 channels, as every released
2.1 model; level blocks from :data:`openjepa.models.vjepa2_1.LEVELS`); the predictor's width, depth,
mask-token count, levels read and output width from its tensors (heads of 32 channels: 384 / 12).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from torch import Tensor

from openjepa.errors import CheckpointError
from openjepa.interop.convert import Conversion, Rule, convert_keys, strip_prefix
from openjepa.interop.vjepa import OFFICIAL_PREFIXES, ROPE_DROP, _PARTS, _fuse, _select
from openjepa.models.vjepa2_1 import ARCHS, LEVELS, encoder_kwargs

ENCODER_RULES: list[Rule] = [
    (r"(patch_embed|patch_embed_img)\.proj\.(weight|bias)", r"\1.proj.\2"),
    (r"(img_mod_embed|video_mod_embed)", r"\1"),
    (rf"blocks\.(\d+)\.({_PARTS})\.(weight|bias)", r"blocks.\1.\2.\3"),
    (r"norms_block\.(\d+)\.(weight|bias)", r"level_norms.\1.\2"),
]
PREDICTOR_RULES: list[Rule] = [
    (r"predictor_embed\.((?:\d+\.)?(?:weight|bias))", r"predictor.predictor_embed.\1"),
    (r"mask_tokens\.(\d+)", r"predictor.mask_token@\1"),
    (rf"predictor_blocks\.(\d+)\.({_PARTS})\.(weight|bias)", r"predictor.predictor_blocks.\1.\2.\3"),
    (r"(predictor_norm|predictor_proj|predictor_proj_context)\.(weight|bias)", r"predictor.\1.\2"),
    (r"(img_mod_embed|video_mod_embed)", r"predictor.\1"),
]
DROP = [(r"(predictor_)?pos_embed", ROPE_DROP)]
WHAT = "official V-JEPA 2.1 checkpoint"


def is_vjepa2_1(state: Mapping[str, Any]) -> bool:
    """Whether an (official, prefixed or not) encoder state dict is V-JEPA 2.1's: it has per-level norms."""
    return any(re.fullmatch(r"(module\.)?(backbone\.)?norms_block\.0\.weight", k) for k in state)


def _last_level_is_norm(conv: Conversion) -> Conversion:
    """``level_norms.<last>`` is our ``norm``: rename it, in the state and in the report."""
    levels = sorted({int(m.group(1)) for k in conv.state_dict if (m := re.match(r"level_norms\.(\d+)\.", k))})
    if not levels:
        raise CheckpointError(f"{WHAT}: no norms_block.* in the encoder; not a V-JEPA 2.1 encoder")
    last = f"level_norms.{levels[-1]}."
    conv.state_dict = {("norm." + k[len(last):] if k.startswith(last) else k): v for k, v in conv.state_dict.items()}
    conv.mapped = {s: ("norm." + d[len(last):] if d.startswith(last) else d) for s, d in conv.mapped.items()}
    return conv


def from_official_vjepa2_1(obj: Mapping[str, Any], which: str = "target", predictor: bool = False) -> Conversion:
    """An official V-JEPA 2.1 checkpoint (the loaded ``.pt`` dict, or one bare encoder state dict) -> ours.

    ``which``: ``"target"`` (``target_encoder`` or ``ema_encoder``) or ``"context"`` (``encoder``)."""
    enc, pred = _select(obj, which, WHAT)
    if predictor and pred is None:
        raise CheckpointError(f"{WHAT}: predictor requested but the file has no 'predictor' state")
    conv = _last_level_is_norm(convert_keys(strip_prefix(enc, OFFICIAL_PREFIXES), ENCODER_RULES, DROP,
                                            what=f"{WHAT} encoder"))
    if predictor:
        p = _fuse(convert_keys(strip_prefix(pred, OFFICIAL_PREFIXES), PREDICTOR_RULES, DROP,
                               what=f"{WHAT} predictor"), WHAT)
        conv.state_dict.update(p.state_dict)
        conv.mapped.update({f"predictor/{k}": v for k, v in p.mapped.items()})
        conv.dropped.update({f"predictor/{k}": v for k, v in p.dropped.items()})
    return conv


def official_vjepa2_1_arch(obj: Mapping[str, Any], which: str = "target") -> tuple[str, dict[str, Any]]:
    """(registered name, or ``"vit"`` for another shape; encoder constructor arguments) from the file's shapes."""
    enc = strip_prefix(_select(obj, which, WHAT)[0], OFFICIAL_PREFIXES)
    w = enc.get("patch_embed.proj.weight")
    if w is None or w.ndim != 5:
        raise CheckpointError(f"{WHAT}: no Conv3d patch_embed.proj.weight in the encoder; keys: "
                              f"{', '.join(list(enc)[:8])}")
    dim = w.shape[0]
    depth = len({m.group(1) for k in enc if (m := re.match(r"blocks\.(\d+)\.", k))})
    if depth not in LEVELS:
        raise CheckpointError(f"{WHAT}: {depth} blocks; V-JEPA 2.1 defines its levels for depths "
                              f"{', '.join(map(str, sorted(LEVELS)))}")
    hidden = enc["blocks.0.mlp.fc1.weight"].shape[0]
    kwargs = encoder_kwargs(dim, depth, max(dim // 64, 1), hidden / dim)
    kwargs.update(patch_size=w.shape[-1], tubelet_size=w.shape[2], in_chans=w.shape[1])
    name = next((n for n, a in ARCHS.items() if (a[0], a[1]) == (dim, depth)), "vit")
    if name != "vit":
        kwargs["mlp_ratio"] = ARCHS[name][3]  # the exact ratio (48/11, 64/13), not hidden / dim rounded
    return name, kwargs


def official_vjepa2_1_predictor_kwargs(obj: Mapping[str, Any], embed_dim: int) -> dict[str, Any]:
    """``Predictor`` arguments (besides grid and embed_dim) from the file's predictor shapes."""
    pred: Optional[Mapping[str, Tensor]] = obj.get("predictor") if isinstance(obj, Mapping) else None
    if not isinstance(pred, Mapping):
        raise CheckpointError(f"{WHAT}: no 'predictor' state in the file")
    p = strip_prefix(pred, OFFICIAL_PREFIXES)
    first = p.get("predictor_embed.weight", p.get("predictor_embed.0.weight"))
    last = p.get("predictor_embed.weight", p.get("predictor_embed.2.weight"))
    if first is None or last is None:
        raise CheckpointError(f"{WHAT}: the predictor has no predictor_embed weights; keys: {', '.join(list(p)[:8])}")
    width = last.shape[0]
    return dict(predictor_embed_dim=width,
                depth=len({m.group(1) for k in p if (m := re.match(r"predictor_blocks\.(\d+)\.", k))}),
                num_heads=max(width // 32, 1), mlp_ratio=p["predictor_blocks.0.mlp.fc1.weight"].shape[0] / width,
                video=True, pos="rope", num_mask_tokens=max(sum(1 for k in p if re.fullmatch(r"mask_tokens\.\d+", k)), 1),
                in_levels=first.shape[1] // embed_dim, out_dim=p["predictor_proj.weight"].shape[0],
                context_proj="predictor_proj_context.weight" in p, modality_embed="img_mod_embed" in p,
                rope_layout="interleaved")
