"""Converters for V-JEPA and V-JEPA 2 checkpoints: official ``.pt`` files and Hugging Face ``VJEPA2Model``.

Pure functions: a source state dict (or checkpoint object) in, a :class:`~openjepa.interop.convert.Conversion`
out. Encoder keys come out as our :class:`~openjepa.models.vit.VisionTransformer` names; predictor keys,
on request, as ``predictor.`` + our :class:`~openjepa.models.predictor.Predictor` names
(:func:`split_predictor` separates them). Every source key is mapped or dropped with its reason; any
other key raises :class:`~openjepa.errors.CheckpointError` naming it and its shape.

Key layouts (``N`` a block index, ``*`` weight or bias):

Hugging Face ``VJEPA2Model`` (the checkpoints on the hub, ``facebook/vjepa2-vit{l,h,g}-fpc64-{256,384}``,
and current ``transformers`` write the same names)::

    encoder.embeddings.patch_embeddings.proj.*      -> patch_embed.proj.*
    encoder.layer.N.norm1.* / norm2.*               -> blocks.N.norm1.* / norm2.*
    encoder.layer.N.attention.{query,key,value}.*   -> blocks.N.attn.qkv.*  (rows [q; k; v])
    encoder.layer.N.attention.proj.*                -> blocks.N.attn.proj.*
    encoder.layer.N.mlp.fc1.* / fc2.*               -> blocks.N.mlp.fc1.* / fc2.*
    encoder.layernorm.*                             -> norm.*
    predictor.embeddings.predictor_embeddings.*     -> predictor.predictor_embed.*
    predictor.embeddings.mask_tokens (n, 1, 1, D)   -> predictor.mask_token (n, 1, D)
    predictor.layer.N.*                             -> predictor.predictor_blocks.N.*  (as the encoder's)
    predictor.layernorm.* / predictor.proj.*        -> predictor.predictor_norm.* / predictor.predictor_proj.*

A ``VJEPA2ForVideoClassification`` state (``vjepa2.`` prefix) loads too; its ``pooler.*`` and
``classifier.*`` head is dropped.

Official V-JEPA 2 ``.pt`` (``facebookresearch/vjepa2``): a dict with ``encoder``, ``predictor`` and
``target_encoder`` (``ema_encoder`` in some releases; the hub's files hold ``encoder`` and ``predictor``),
each a state dict whose keys start with ``module.backbone.`` (DDP + the multi-mask wrapper; stripped)::

    patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*, norm.*   -> same names
    pos_embed                                                   -> dropped (see below)
    predictor_embed.*, predictor_blocks.N.*, predictor_norm.*, predictor_proj.*   -> predictor.<same>
    mask_tokens.I (1, 1, D), I = 0..n-1                         -> predictor.mask_token (n, 1, D)
    predictor_pos_embed                                         -> dropped (see below)

V-JEPA 2 uses RoPE: the official model is built with ``pos_embed = None`` and loads these files with
``strict=False``, so the sin-cos ``pos_embed`` / ``predictor_pos_embed`` the files still carry are never
added to any token; they are dropped. The official V-JEPA (``facebookresearch/jepa``) has the same layout,
but its sin-cos ``pos_embed`` / ``predictor_pos_embed`` are used and are mapped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from openjepa.engine.checkpoint import save_safetensors
from openjepa.errors import CheckpointError, ConfigError
from openjepa.interop.convert import Conversion, Rule, convert_keys, split_predictor, strip_prefix
from openjepa.models.predictor import Predictor
from openjepa.models.vit import VisionTransformer
from openjepa.models.vjepa import ARCHS

ROPE_DROP = "V-JEPA 2 uses RoPE: the sin-cos position embedding in the file is never added (official pos_embed=None)"
HEAD_DROP = "classification head of VJEPA2ForVideoClassification (attentive pooler), not part of the encoder"
NO_PREDICTOR = "predictor not requested"
OFFICIAL_PREFIXES = ("module.backbone.", "module.", "backbone.")

_PARTS = r"norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2"  # our (and the official) block sub-layers


def _hf_rules(src: str, ours: str) -> list[Rule]:
    """HF transformer-layer names under ``src`` -> ours under ``ours`` (q, k, v tagged for fusion)."""
    rules = [(rf"{src}\.(\d+)\.attention\.{name}\.(weight|bias)", rf"{ours}.\1.attn.qkv.\2@{name[0]}")
             for name in ("query", "key", "value")]
    rules.append((rf"{src}\.(\d+)\.attention\.proj\.(weight|bias)", rf"{ours}.\1.attn.proj.\2"))
    rules.append((rf"{src}\.(\d+)\.(norm1|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)", rf"{ours}.\1.\2.\3"))
    return rules


HF_ENCODER_RULES: list[Rule] = [
    (r"encoder\.embeddings\.patch_embeddings\.proj\.(weight|bias)", r"patch_embed.proj.\1"),
    *_hf_rules(r"encoder\.layer", "blocks"),
    (r"encoder\.layernorm\.(weight|bias)", r"norm.\1"),
]
HF_PREDICTOR_RULES: list[Rule] = [
    (r"predictor\.embeddings\.predictor_embeddings\.(weight|bias)", r"predictor.predictor_embed.\1"),
    (r"predictor\.embeddings\.mask_tokens", "predictor.mask_token"),
    *_hf_rules(r"predictor\.layer", "predictor.predictor_blocks"),
    (r"predictor\.layernorm\.(weight|bias)", r"predictor.predictor_norm.\1"),
    (r"predictor\.proj\.(weight|bias)", r"predictor.predictor_proj.\1"),
]
HF_DROP = [(r"(encoder|predictor)\.embeddings\.position_embeddings", ROPE_DROP),
           (r"(pooler|classifier)\..*", HEAD_DROP)]

OFFICIAL_ENCODER_RULES: list[Rule] = [
    (r"patch_embed\.proj\.(weight|bias)", r"patch_embed.proj.\1"),
    (rf"blocks\.(\d+)\.({_PARTS})\.(weight|bias)", r"blocks.\1.\2.\3"),
    (r"norm\.(weight|bias)", r"norm.\1"),
]
OFFICIAL_PREDICTOR_RULES: list[Rule] = [
    (r"predictor_embed\.(weight|bias)", r"predictor.predictor_embed.\1"),
    (r"mask_tokens\.(\d+)", r"predictor.mask_token@\1"),
    (rf"predictor_blocks\.(\d+)\.({_PARTS})\.(weight|bias)", r"predictor.predictor_blocks.\1.\2.\3"),
    (r"predictor_norm\.(weight|bias)", r"predictor.predictor_norm.\1"),
    (r"predictor_proj\.(weight|bias)", r"predictor.predictor_proj.\1"),
]


# ---------------------------------------------------------------- shared steps


def _fuse(conv: Conversion, what: str) -> Conversion:
    """Join tagged pieces: ``X@q``, ``X@k``, ``X@v`` -> X = cat([q, k, v]); ``X@0..n-1`` -> X = cat in order."""
    groups: dict[str, dict[str, Tensor]] = {}
    for key in [k for k in conv.state_dict if "@" in k]:
        base, tag = key.split("@")
        groups.setdefault(base, {})[tag] = conv.state_dict.pop(key)
    for base, parts in groups.items():
        if base.endswith(("qkv.weight", "qkv.bias")):
            missing = [n for t, n in (("q", "query"), ("k", "key"), ("v", "value")) if t not in parts]
            if missing:
                raise CheckpointError(f"{what}: {base} needs query, key and value; missing: {', '.join(missing)}")
            conv.state_dict[base] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
        else:
            order = sorted(parts, key=int)
            if order != [str(i) for i in range(len(order))]:
                raise CheckpointError(f"{what}: {base} pieces must be numbered 0..n-1, got {', '.join(order)}")
            conv.state_dict[base] = torch.cat([parts[i] for i in order], dim=0)
    conv.mapped = {k: (v.replace("@", " [") + "]" if "@" in v else v) for k, v in conv.mapped.items()}
    return conv


def _mask_tokens_shape(key: str, value: Tensor) -> dict[str, Tensor]:
    """HF stores the mask tokens as (n, 1, 1, D); ours are (n, 1, D)."""
    if key == "predictor.mask_token" and value.ndim == 4:
        value = value.reshape(value.shape[0], 1, value.shape[-1])
    return {key: value}



# ---------------------------------------------------------------- Hugging Face VJEPA2Model


def _check_hf_config(config: Mapping[str, Any]) -> None:
    if config.get("model_type") != "vjepa2":
        raise CheckpointError(f"config.json: model_type={config.get('model_type')!r} is not a V-JEPA 2 model; "
                              "expected 'vjepa2'")
    for key, want in (("hidden_act", "gelu"), ("layer_norm_eps", 1e-6)):
        if key in config and config[key] != want:
            raise CheckpointError(f"config.json: {key}={config[key]!r} is not supported; expected {want!r}")
    if not isinstance(config.get("patch_size", 16), int):
        raise CheckpointError(f"config.json: patch_size={config['patch_size']!r}: only square patches are supported")


def hf_vjepa2_model_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """``VisionTransformer`` arguments for a ``VJEPA2Config`` dict (config.json); defaults as transformers'."""
    _check_hf_config(config)
    c = dict(config)
    return dict(img_size=c.get("crop_size", 256), patch_size=c.get("patch_size", 16), in_chans=c.get("in_chans", 3),
                num_frames=c.get("frames_per_clip", 64), tubelet_size=c.get("tubelet_size", 2),
                embed_dim=c.get("hidden_size", 1024), depth=c.get("num_hidden_layers", 24),
                num_heads=c.get("num_attention_heads", 16), mlp_ratio=float(c.get("mlp_ratio", 4.0)),
                qkv_bias=c.get("qkv_bias", True), pos="rope")


def hf_vjepa2_predictor_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """``Predictor`` arguments (besides grid and embed_dim) for a ``VJEPA2Config`` dict."""
    _check_hf_config(config)
    c = dict(config)
    return dict(predictor_embed_dim=c.get("pred_hidden_size", 384), depth=c.get("pred_num_hidden_layers", 12),
                num_heads=c.get("pred_num_attention_heads", 12), mlp_ratio=float(c.get("pred_mlp_ratio", 4.0)),
                qkv_bias=c.get("qkv_bias", True), video=True, pos="rope",
                num_mask_tokens=c.get("pred_num_mask_tokens", 10))


def build_from_hf_config(config: Mapping[str, Any]) -> tuple[VisionTransformer, Predictor]:
    """An encoder and a predictor shaped as the ``VJEPA2Config`` dict ``config`` (random weights)."""
    enc = VisionTransformer(**hf_vjepa2_model_kwargs(config))
    return enc, Predictor(enc.grid, enc.embed_dim, **hf_vjepa2_predictor_kwargs(config))


def from_hf_vjepa2(state: Mapping[str, Tensor], config: Mapping[str, Any], predictor: bool = False) -> Conversion:
    """A ``VJEPA2Model`` (or ``VJEPA2ForVideoClassification``) state dict + its config.json dict -> ours.

    With ``predictor`` the predictor comes too, under ``predictor.``; otherwise its keys are dropped.
    """
    _check_hf_config(config)
    state = strip_prefix(state, ("vjepa2.",))
    drop = list(HF_DROP)
    rules = list(HF_ENCODER_RULES)
    if predictor:
        rules += HF_PREDICTOR_RULES
    else:
        drop.append((r"predictor\..*", NO_PREDICTOR))
    what = "Hugging Face VJEPA2Model checkpoint"
    return _fuse(convert_keys(state, rules, drop, what=what, transform=_mask_tokens_shape), what)


def _hf_layer_rules(ours: str, dst: str) -> list[Rule]:
    return [(rf"{ours}\.(\d+)\.attn\.qkv\.(weight|bias)", rf"{dst}.\1.attention.qkv.\2"),
            (rf"{ours}\.(\d+)\.attn\.proj\.(weight|bias)", rf"{dst}.\1.attention.proj.\2"),
            (rf"{ours}\.(\d+)\.(norm1|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)", rf"{dst}.\1.\2.\3")]


TO_HF_RULES: list[Rule] = [
    (r"patch_embed\.proj\.(weight|bias)", r"encoder.embeddings.patch_embeddings.proj.\1"),
    *_hf_layer_rules("blocks", "encoder.layer"),
    (r"norm\.(weight|bias)", r"encoder.layernorm.\1"),
    (r"predictor\.predictor_embed\.(weight|bias)", r"predictor.embeddings.predictor_embeddings.\1"),
    (r"predictor\.mask_token", "predictor.embeddings.mask_tokens"),
    *_hf_layer_rules(r"predictor\.predictor_blocks", "predictor.layer"),
    (r"predictor\.predictor_norm\.(weight|bias)", r"predictor.layernorm.\1"),
    (r"predictor\.predictor_proj\.(weight|bias)", r"predictor.proj.\1"),
]


def _to_hf_pieces(key: str, value: Tensor) -> dict[str, Tensor]:
    """Split a fused qkv into HF's query/key/value; our (n, 1, D) mask tokens to HF's (n, 1, 1, D)."""
    if ".attention.qkv." in key:
        q, k, v = value.chunk(3, dim=0)
        return {key.replace("qkv", name): t.clone() for name, t in (("query", q), ("key", k), ("value", v))}
    if key == "predictor.embeddings.mask_tokens":
        return {key: value.reshape(value.shape[0], 1, 1, value.shape[-1]).clone()}
    return {key: value.clone()}


def _hf_config(encoder: VisionTransformer, predictor: Optional[Predictor]) -> dict[str, Any]:
    if encoder.pos_embed is not None or encoder.patch_embed.tubelet_size is None:
        raise CheckpointError("export to VJEPA2Model: only V-JEPA 2 encoders (video tubelets, pos='rope') "
                              f"have a VJEPA2Model form; this one has pos={encoder.pos!r}")
    if (encoder.rope_layout != "tiled" or encoder.rope_ref_grid is not None or encoder.patch_embed_img is not None
            or encoder.img_mod_embed is not None or len(encoder.level_norms)):
        raise CheckpointError("export to VJEPA2Model: this is a V-JEPA 2.1 encoder (interleaved RoPE, image patch "
                              "embedding, modality embeddings or per-level norms), which transformers does not "
                              "implement; export it as safetensors or onnx")
    T, H, W = encoder.grid
    if H != W:
        raise CheckpointError(f"export to VJEPA2Model: VJEPA2Config has one crop_size; the grid is {H} x {W}")
    blk = encoder.blocks[0]
    cfg: dict[str, Any] = {
        "model_type": "vjepa2", "architectures": ["VJEPA2Model"],
        "patch_size": encoder.patch_size, "crop_size": H * encoder.patch_size,
        "frames_per_clip": T * encoder.patch_embed.tubelet_size, "tubelet_size": encoder.patch_embed.tubelet_size,
        "hidden_size": encoder.embed_dim, "in_chans": encoder.patch_embed.proj.in_channels,
        "num_attention_heads": encoder.num_heads, "num_hidden_layers": len(encoder.blocks),
        "mlp_ratio": blk.mlp.fc1.out_features / encoder.embed_dim, "layer_norm_eps": 1e-6,
        "qkv_bias": blk.attn.qkv.bias is not None, "hidden_act": "gelu", "drop_path_rate": 0.0,
    }
    if predictor is not None:
        if predictor.predictor_pos_embed is not None:
            raise CheckpointError("export to VJEPA2Model: the predictor must use pos='rope'")
        pb = predictor.predictor_blocks[0]
        width = predictor.predictor_embed.out_features
        cfg.update({"pred_hidden_size": width, "pred_num_attention_heads": pb.attn.num_heads,
                    "pred_num_hidden_layers": len(predictor.predictor_blocks),
                    "pred_num_mask_tokens": predictor.mask_token.shape[0],
                    "pred_mlp_ratio": pb.mlp.fc1.out_features / width})
    return cfg


def to_hf_vjepa2(encoder: VisionTransformer, predictor: Optional[Predictor] = None
                 ) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Ours -> a ``VJEPA2Model`` state dict and its config.json dict.

    Without ``predictor`` the state holds the encoder only: ``VJEPA2Model.from_pretrained`` then reports the
    predictor's keys as newly initialised (use ``skip_predictor=True`` / ``get_vision_features``).
    """
    cfg = _hf_config(encoder, predictor)
    state = {k: v.detach() for k, v in encoder.state_dict().items()}
    if predictor is not None:
        state.update({f"predictor.{k}": v.detach() for k, v in predictor.state_dict().items()})
    conv = convert_keys(state, TO_HF_RULES, what="export to VJEPA2Model", transform=_to_hf_pieces)
    return conv.state_dict, cfg


def save_hf_vjepa2(model: VisionTransformer, out_dir: str | Path, predictor: Optional[Predictor] = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` that ``transformers.VJEPA2Model.from_pretrained`` loads."""
    state, cfg = to_hf_vjepa2(model, predictor)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous().cpu() for k, v in state.items()}
    save_safetensors(tensors, out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return out


# ---------------------------------------------------------------- official .pt files

_WHICH = {"target": ("target_encoder", "ema_encoder"), "context": ("encoder",)}


def _select(obj: Mapping[str, Any], which: str, what: str) -> tuple[dict[str, Tensor], Optional[dict[str, Tensor]]]:
    """The chosen encoder's state dict in an official checkpoint object, and its predictor's (or None).

    A bare state dict (tensor values only) is taken as the encoder itself."""
    if which not in _WHICH:
        raise ConfigError(f"which={which!r} is not an encoder of the checkpoint; choose one of: {', '.join(_WHICH)}")
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        return dict(obj), None
    key = next((k for k in _WHICH[which] if isinstance(obj.get(k), Mapping)), None)
    if key is None:
        raise CheckpointError(f"{what}: no {' or '.join(_WHICH[which])!s} state in the file (which={which!r}); "
                              f"it holds: {', '.join(map(str, obj)) or 'nothing'}")
    pred = obj.get("predictor")
    return dict(obj[key]), (dict(pred) if isinstance(pred, Mapping) else None)


def _from_official(obj: Mapping[str, Any], which: str, predictor: bool, rope: bool, what: str) -> Conversion:
    enc, pred = _select(obj, which, what)
    if predictor and pred is None:
        raise CheckpointError(f"{what}: predictor requested but the file has no 'predictor' state")
    state = strip_prefix(enc, OFFICIAL_PREFIXES)
    rules, drop = list(OFFICIAL_ENCODER_RULES), []
    if rope:
        drop.append((r"pos_embed", ROPE_DROP))
    else:
        rules.append((r"pos_embed", "pos_embed"))
    conv = _fuse(convert_keys(state, rules, drop, what=f"{what} encoder"), what)
    if predictor:
        p_rules = list(OFFICIAL_PREDICTOR_RULES)
        p_drop = [(r"predictor_pos_embed", ROPE_DROP)] if rope else []
        if not rope:
            p_rules.append((r"predictor_pos_embed", "predictor.predictor_pos_embed"))
        p = _fuse(convert_keys(strip_prefix(pred, OFFICIAL_PREFIXES), p_rules, p_drop, what=f"{what} predictor"),
                  what)
        conv.state_dict.update(p.state_dict)
        conv.mapped.update({f"predictor/{k}": v for k, v in p.mapped.items()})
        conv.dropped.update({f"predictor/{k}": v for k, v in p.dropped.items()})
    return conv


def from_official_vjepa2(obj: Mapping[str, Any], which: str = "target", predictor: bool = False) -> Conversion:
    """An official V-JEPA 2 checkpoint (the loaded ``.pt`` dict, or one bare encoder state dict) -> ours.

    ``which``: ``"target"`` (``target_encoder``, or ``ema_encoder``) or ``"context"`` (``encoder``).
    Report keys of the predictor are prefixed ``predictor/``. :func:`official_vjepa2_arch` names the architecture.
    """
    return _from_official(obj, which, predictor, rope=True, what="official V-JEPA 2 checkpoint")


def from_official_vjepa(obj: Mapping[str, Any], which: str = "target", predictor: bool = False) -> Conversion:
    """An official V-JEPA checkpoint (``facebookresearch/jepa``; ``module.backbone.`` keys) -> ours."""
    return _from_official(obj, which, predictor, rope=False, what="official V-JEPA checkpoint")


def _official_shapes(obj: Mapping[str, Any], which: str) -> tuple[int, int, Optional[int], dict[str, Tensor]]:
    enc = strip_prefix(_select(obj, which, "official checkpoint")[0], OFFICIAL_PREFIXES)
    if "patch_embed.proj.weight" not in enc:
        raise CheckpointError("official checkpoint: no patch_embed.proj.weight, not a V-JEPA encoder; keys: "
                              f"{', '.join(list(enc)[:8])}")
    dim = enc["patch_embed.proj.weight"].shape[0]
    depth = len({m.group(1) for k in enc if (m := re.match(r"blocks\.(\d+)\.", k))})
    n_pos = enc["pos_embed"].shape[1] if "pos_embed" in enc else None
    return dim, depth, n_pos, enc


def official_position_count(obj: Mapping[str, Any], which: str = "target") -> Optional[int]:
    """Tokens in the file's stored sin-cos table (unused by V-JEPA 2, but it tells the grid), or None."""
    return _official_shapes(obj, which)[2]


def _arch(obj: Mapping[str, Any], which: str, pos: str, family: str) -> str:
    dim, depth, n_pos, enc = _official_shapes(obj, which)
    w = enc["patch_embed.proj.weight"]  # (D, C, t, p, p)
    if w.ndim != 5:
        raise CheckpointError(f"official checkpoint: patch_embed.proj.weight {tuple(w.shape)} is not a video "
                              "(tubelet) patch embedding")
    names = [n for n, a in ARCHS.items() if a[6] == pos and (a[0], a[1]) == (dim, depth)]
    if n_pos is not None:  # the file's (possibly unused) sin-cos table tells the resolution
        names = [n for n in names
                 if (ARCHS[n][5] // w.shape[2]) * (ARCHS[n][4] // w.shape[3]) ** 2 == n_pos] or names
    if not names:
        known = ", ".join(f"{n} ({a[0]} wide, {a[1]} deep)" for n, a in ARCHS.items() if a[6] == pos)
        raise CheckpointError(f"{family} checkpoint: an encoder {dim} wide and {depth} deep is not a released "
                              f"architecture; known: {known}")
    return names[0]


def official_vjepa2_arch(obj: Mapping[str, Any], which: str = "target") -> str:
    """The registered V-JEPA 2 architecture of an official checkpoint, from its shapes (width, depth, and the
    unused ``pos_embed``'s token count for 256 vs 384 px; without it, the 256 px name)."""
    return _arch(obj, which, "rope", "official V-JEPA 2")


def official_vjepa_arch(obj: Mapping[str, Any], which: str = "target") -> str:
    """The registered V-JEPA architecture of an official checkpoint, from its shapes."""
    return _arch(obj, which, "sincos", "official V-JEPA")


def official_predictor_kwargs(obj: Mapping[str, Any], rope: bool = True) -> dict[str, Any]:
    """``Predictor`` arguments (besides grid and embed_dim) from an official checkpoint's predictor shapes.

    The head count is not in the shapes: the released predictors use heads of 32 channels (384 / 12)."""
    pred = obj.get("predictor") if isinstance(obj, Mapping) else None
    if not isinstance(pred, Mapping):
        raise CheckpointError("official checkpoint: no 'predictor' state in the file")
    p = strip_prefix(pred, OFFICIAL_PREFIXES)
    width = p["predictor_embed.weight"].shape[0]
    depth = len({m.group(1) for k in p if (m := re.match(r"predictor_blocks\.(\d+)\.", k))})
    n_tok = sum(1 for k in p if re.fullmatch(r"mask_tokens\.\d+", k))
    hidden = p["predictor_blocks.0.mlp.fc1.weight"].shape[0]
    return dict(predictor_embed_dim=width, depth=depth, num_heads=max(width // 32, 1), mlp_ratio=hidden / width,
                video=True, pos="rope" if rope else "sincos", num_mask_tokens=max(n_tok, 1))
