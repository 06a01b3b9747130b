"""I-JEPA checkpoints in and out: the official ``.pth.tar`` files and Hugging Face ``IJepaModel`` folders.

All converters are pure functions over state dicts (a source state dict in, a
:class:`~openjepa.interop.convert.Conversion` out); every source key is mapped or dropped with its
reason, anything else raises :class:`~openjepa.errors.CheckpointError` naming the keys and shapes,
and the result is checked, key by key and shape by shape, against the architecture it implies.

**Official I-JEPA** (github.com/facebookresearch/ijepa, ``src/train.py``): ``torch.save`` of a dict

* ``encoder`` (the context encoder), ``target_encoder`` (its EMA), ``predictor``: state dicts of
  DDP-wrapped modules, so every key starts with ``module.``;
* ``opt``, ``scaler``, ``epoch``, ``loss``, ``batch_size``, ``world_size``, ``lr``: training bookkeeping.

Encoder keys (after ``module.``), for width D, patch p, C input channels, N = (img/p)^2 tokens, MLP width H:
``patch_embed.proj.weight`` (D, C, p, p), ``patch_embed.proj.bias`` (D,), ``pos_embed`` (1, N, D) (fixed
2-D sin-cos), for each block i ``blocks.i.norm1.{weight,bias}`` (D,), ``blocks.i.attn.qkv.weight`` (3D, D)
and ``.bias`` (3D,) (rows: q, then k, then v), ``blocks.i.attn.proj.{weight (D, D), bias}``,
``blocks.i.norm2.{weight,bias}``, ``blocks.i.mlp.fc1.{weight (H, D), bias}``,
``blocks.i.mlp.fc2.{weight (D, H), bias}``, then ``norm.{weight,bias}``. Predictor keys, width Dp:
``mask_token`` (1, 1, Dp), ``predictor_embed.{weight (Dp, D), bias}``, ``predictor_pos_embed`` (1, N, Dp),
``predictor_blocks.i.*`` (as ``blocks.i.*``, width Dp), ``predictor_norm.{weight,bias}``,
``predictor_proj.{weight (D, Dp), bias}``. These are our names too (:class:`VisionTransformer`,
:class:`Predictor`), so the official layout converts by dropping ``module.``. The number of heads is
not in the shapes: it is the official one for the width (192: 3, 384: 6, 768: 12, 1024 / 1280 /
1408: 16), and the predictor has as many as the encoder (official ``init_model``).

**Hugging Face** ``IJepaModel`` (``config.json`` + ``model.safetensors``), two key namings:

ours -> transformers 5.x (what it writes now) / transformers 4.x (the checkpoints on the hub):

* ``pos_embed`` -> ``embeddings.position_embeddings`` (both)
* ``patch_embed.proj.*`` -> ``embeddings.patch_embeddings.projection.*`` (both)
* ``blocks.i.norm1.*`` -> ``layers.i.layernorm_before.*`` / ``encoder.layer.i.layernorm_before.*``
* ``blocks.i.attn.qkv.*`` -> ``layers.i.attention.{q,k,v}_proj.*`` /
  ``encoder.layer.i.attention.attention.{query,key,value}.*``
* ``blocks.i.attn.proj.*`` -> ``layers.i.attention.o_proj.*`` / ``encoder.layer.i.attention.output.dense.*``
* ``blocks.i.norm2.*`` -> ``layers.i.layernorm_after.*`` / ``encoder.layer.i.layernorm_after.*``
* ``blocks.i.mlp.fc1.*`` -> ``layers.i.mlp.fc1.*`` / ``encoder.layer.i.intermediate.dense.*``
* ``blocks.i.mlp.fc2.*`` -> ``layers.i.mlp.fc2.*`` / ``encoder.layer.i.output.dense.*``
* ``norm.*`` -> ``layernorm.*`` (both)

Dropped with their reasons: ``embeddings.mask_token`` and ``pooler.dense.*`` (present when the model
was built with ``use_mask_token`` / ``add_pooling_layer``) and ``classifier.*``.

(The 4.x names are those transformers' own checkpoint conversion mapping renames for ``IJepaModel``,
its ``ViTModel`` rules; an ``ijepa.`` prefix, from ``IJepaForImageClassification``, is accepted.) The
separate q, k, v projections are concatenated, in that order, into our one ``qkv``. The numerics match
with our ``norm_eps`` set from ``layer_norm_eps`` (transformers' default is 1e-12; the official code uses
1e-6, and transformers' conversion script writes 1e-6 into the configs of the released models) and ``hidden_act`` = ``gelu`` (exact). At another input size both
resample the stored position embedding bicubically over the token grid (``align_corners=False``,
to the new grid size), which is what transformers does with ``interpolate_pos_encoding=True``. (The official
code resamples with a ``scale_factor`` and assumes a CLS token that I-JEPA has not; that is not
reproduced, see :func:`openjepa.layers.pos_embed.interpolate_pos_embed`.)
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from openjepa.engine.checkpoint import check_state_keys, save_safetensors
from openjepa.errors import CheckpointError, ConfigError
from openjepa.interop.convert import Conversion, convert_keys, fuse_parts, split_predictor, strip_prefix
from openjepa.models import Predictor, VisionTransformer
from openjepa.models.released import IMAGENET_MEAN, IMAGENET_STD, RELEASED_IJEPA

OFFICIAL_SECTIONS = ("encoder", "target_encoder", "predictor")
OFFICIAL_BOOKKEEPING = {"opt": "optimizer state", "scaler": "AMP grad-scaler state", "epoch": "training bookkeeping",
                        "loss": "training bookkeeping", "batch_size": "training bookkeeping",
                        "world_size": "training bookkeeping", "lr": "training bookkeeping"}
# Official widths -> heads (official vision_transformer.py: vit_tiny .. vit_giant).
OFFICIAL_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16}
# Our plain sizes by (width, depth) (models/vit.py), for naming an inferred architecture.
_PLAIN = {(192, 12): "vit_tiny", (384, 12): "vit_small", (768, 12): "vit_base", (1024, 24): "vit_large",
          (1280, 32): "vit_huge", (1408, 40): "vit_giant"}

_BLOCK = r"(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)"
ENCODER_RULES = [(r"patch_embed\.proj\.(weight|bias)", r"patch_embed.proj.\1"), (r"pos_embed", "pos_embed"),
                 (rf"blocks\.(\d+)\.{_BLOCK}", r"blocks.\1.\2.\3"), (r"norm\.(weight|bias)", r"norm.\1")]
PREDICTOR_RULES = [(r"mask_token", "mask_token"), (r"predictor_embed\.(weight|bias)", r"predictor_embed.\1"),
                   (r"predictor_pos_embed", "predictor_pos_embed"),
                   (rf"predictor_blocks\.(\d+)\.{_BLOCK}", r"predictor_blocks.\1.\2.\3"),
                   (r"predictor_norm\.(weight|bias)", r"predictor_norm.\1"),
                   (r"predictor_proj\.(weight|bias)", r"predictor_proj.\1")]

_HF = r"(?:ijepa\.)?"  # IJepaForImageClassification nests the model under "ijepa."
_WB = r"(weight|bias)"
HF_RULES = [
    (rf"{_HF}embeddings\.position_embeddings", "pos_embed"),
    (rf"{_HF}embeddings\.patch_embeddings\.projection\.{_WB}", r"patch_embed.proj.\1"),
    (rf"{_HF}layernorm\.{_WB}", r"norm.\1"),
    # transformers 5.x
    (rf"{_HF}layers\.(\d+)\.attention\.q_proj\.{_WB}", r"blocks.\1.attn.qkv.\2#q"),
    (rf"{_HF}layers\.(\d+)\.attention\.k_proj\.{_WB}", r"blocks.\1.attn.qkv.\2#k"),
    (rf"{_HF}layers\.(\d+)\.attention\.v_proj\.{_WB}", r"blocks.\1.attn.qkv.\2#v"),
    (rf"{_HF}layers\.(\d+)\.attention\.o_proj\.{_WB}", r"blocks.\1.attn.proj.\2"),
    (rf"{_HF}layers\.(\d+)\.layernorm_before\.{_WB}", r"blocks.\1.norm1.\2"),
    (rf"{_HF}layers\.(\d+)\.layernorm_after\.{_WB}", r"blocks.\1.norm2.\2"),
    (rf"{_HF}layers\.(\d+)\.mlp\.(fc1|fc2)\.{_WB}", r"blocks.\1.mlp.\2.\3"),
    # transformers 4.x (the checkpoints on the hub)
    (rf"{_HF}encoder\.layer\.(\d+)\.attention\.attention\.query\.{_WB}", r"blocks.\1.attn.qkv.\2#q"),
    (rf"{_HF}encoder\.layer\.(\d+)\.attention\.attention\.key\.{_WB}", r"blocks.\1.attn.qkv.\2#k"),
    (rf"{_HF}encoder\.layer\.(\d+)\.attention\.attention\.value\.{_WB}", r"blocks.\1.attn.qkv.\2#v"),
    (rf"{_HF}encoder\.layer\.(\d+)\.attention\.output\.dense\.{_WB}", r"blocks.\1.attn.proj.\2"),
    (rf"{_HF}encoder\.layer\.(\d+)\.layernorm_before\.{_WB}", r"blocks.\1.norm1.\2"),
    (rf"{_HF}encoder\.layer\.(\d+)\.layernorm_after\.{_WB}", r"blocks.\1.norm2.\2"),
    (rf"{_HF}encoder\.layer\.(\d+)\.intermediate\.dense\.{_WB}", r"blocks.\1.mlp.fc1.\2"),
    (rf"{_HF}encoder\.layer\.(\d+)\.output\.dense\.{_WB}", r"blocks.\1.mlp.fc2.\2"),
]
HF_DROP = [(rf"{_HF}embeddings\.mask_token", "Hugging Face's mask token for masked image modelling "
            "(bool_masked_pos); the I-JEPA encoder has none"),
           (rf"{_HF}pooler\.dense\.{_WB}", "Hugging Face's pooler (tanh dense layer on the first token), "
            "not part of I-JEPA"),
           (rf"classifier\.{_WB}", "the classification head of IJepaForImageClassification")]
# ours -> Hugging Face; "@" is replaced by each of the q, k, v piece names of the naming.
_TO_HF = {
    "v5": ([(r"pos_embed", "embeddings.position_embeddings"),
            (rf"patch_embed\.proj\.{_WB}", r"embeddings.patch_embeddings.projection.\1"),
            (rf"norm\.{_WB}", r"layernorm.\1"),
            (rf"blocks\.(\d+)\.attn\.qkv\.{_WB}", r"layers.\1.attention.@.\2"),
            (rf"blocks\.(\d+)\.attn\.proj\.{_WB}", r"layers.\1.attention.o_proj.\2"),
            (rf"blocks\.(\d+)\.norm1\.{_WB}", r"layers.\1.layernorm_before.\2"),
            (rf"blocks\.(\d+)\.norm2\.{_WB}", r"layers.\1.layernorm_after.\2"),
            (rf"blocks\.(\d+)\.mlp\.(fc1|fc2)\.{_WB}", r"layers.\1.mlp.\2.\3")], ("q_proj", "k_proj", "v_proj")),
    "v4": ([(r"pos_embed", "embeddings.position_embeddings"),
            (rf"patch_embed\.proj\.{_WB}", r"embeddings.patch_embeddings.projection.\1"),
            (rf"norm\.{_WB}", r"layernorm.\1"),
            (rf"blocks\.(\d+)\.attn\.qkv\.{_WB}", r"encoder.layer.\1.attention.attention.@.\2"),
            (rf"blocks\.(\d+)\.attn\.proj\.{_WB}", r"encoder.layer.\1.attention.output.dense.\2"),
            (rf"blocks\.(\d+)\.norm1\.{_WB}", r"encoder.layer.\1.layernorm_before.\2"),
            (rf"blocks\.(\d+)\.norm2\.{_WB}", r"encoder.layer.\1.layernorm_after.\2"),
            (rf"blocks\.(\d+)\.mlp\.fc1\.{_WB}", r"encoder.layer.\1.intermediate.dense.\2"),
            (rf"blocks\.(\d+)\.mlp\.fc2\.{_WB}", r"encoder.layer.\1.output.dense.\2")], ("query", "key", "value")),
}
# transformers' IJepaConfig defaults, used for keys a config.json leaves out.
HF_DEFAULTS = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
               "hidden_act": "gelu", "layer_norm_eps": 1e-12, "image_size": 224, "patch_size": 16,
               "num_channels": 3, "qkv_bias": True}


# --------------------------------------------------------------------------- architecture from shapes

def _shape(state: Mapping[str, Tensor], key: str, what: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"{what}: no {key!r} (keys: {', '.join(list(state)[:8])} ...)")
    return tuple(state[key].shape)


def _depth(state: Mapping[str, Tensor], prefix: str) -> int:
    idx = [int(m.group(1)) for k in state if (m := re.match(rf"{re.escape(prefix)}\.(\d+)\.", k))]
    return max(idx) + 1 if idx else 0


def _square_grid(n: int, key: str, what: str) -> int:
    g = math.isqrt(n)
    if g * g != n:
        raise CheckpointError(f"{what}: {key} has {n} tokens, not a square grid")
    return g


def _mlp_ratio(width: int, hidden: int) -> float:
    """The ratio our Mlp turns back into exactly ``hidden`` (``int(width * ratio)``), 48/11 for ViT-g."""
    for ratio in (4.0, 48 / 11, hidden / width):
        if int(width * ratio) == hidden:
            return ratio
    raise CheckpointError(f"MLP width {hidden} for width {width} cannot be built")  # not reached for ints


def official_ijepa_arch(state: Mapping[str, Tensor], num_heads: int | None = None,
                        what: str = "I-JEPA encoder") -> tuple[str, dict]:
    """(name, kwargs) of the ViT that an official-layout encoder state dict implies, from its shapes.

    ``kwargs`` are complete :class:`VisionTransformer` arguments (``VisionTransformer(**kwargs)`` builds
    it); ``name`` is the registered model they match (a released ``ijepa_*`` name, else a plain
    ``vit_*`` size at this ``img_size`` / ``patch_size``), or ``"VisionTransformer"`` for a width no
    registered model has. Heads come from the official width table, or from ``num_heads``.
    """
    state = strip_prefix(state, ["module."])
    w = _shape(state, "patch_embed.proj.weight", what)
    if len(w) != 4 or w[2] != w[3]:
        raise CheckpointError(f"{what}: patch_embed.proj.weight has shape {w}, not the (D, C, p, p) of an image "
                              "ViT's square patches (a video checkpoint? use its own converter)")
    width, chans, patch = w[0], w[1], w[2]
    pos = _shape(state, "pos_embed", what)
    if len(pos) != 3 or pos[0] != 1 or pos[2] != width:
        raise CheckpointError(f"{what}: pos_embed has shape {pos}, expected (1, N, {width})")
    grid = _square_grid(pos[1], "pos_embed", what)
    depth = _depth(state, "blocks")
    hidden = _shape(state, "blocks.0.mlp.fc1.weight", what)[0]
    heads = num_heads or OFFICIAL_HEADS.get(width)
    if heads is None:
        raise CheckpointError(f"{what}: width {width} is not an official ViT width "
                              f"({', '.join(map(str, OFFICIAL_HEADS))}), so its number of heads is unknown; "
                              "pass num_heads")
    kwargs = dict(img_size=grid * patch, patch_size=patch, in_chans=chans, embed_dim=width, depth=depth,
                  num_heads=heads, mlp_ratio=_mlp_ratio(width, hidden), qkv_bias="blocks.0.attn.qkv.bias" in state,
                  norm_eps=1e-6)
    return _arch_name(kwargs), kwargs


def _arch_name(kwargs: dict) -> str:
    for name, spec in RELEASED_IJEPA.items():
        if {**spec.encoder, "in_chans": 3} == {k: kwargs[k] for k in {**spec.encoder, "in_chans": 3}}:
            return name
    plain = _PLAIN.get((kwargs["embed_dim"], kwargs["depth"]))
    if plain and OFFICIAL_HEADS[kwargs["embed_dim"]] == kwargs["num_heads"]:
        return plain
    return "VisionTransformer"


def official_predictor_kwargs(state: Mapping[str, Tensor], encoder_kwargs: dict,
                              what: str = "I-JEPA predictor") -> dict:
    """:class:`Predictor` arguments (besides ``grid`` and ``embed_dim``) of an official-layout predictor state.

    The predictor has as many heads as its encoder (official ``init_model``).
    """
    state = strip_prefix(state, ["module."])
    emb = _shape(state, "predictor_embed.weight", what)
    pos = _shape(state, "predictor_pos_embed", what)
    grid = encoder_kwargs["img_size"] // encoder_kwargs["patch_size"]
    if emb[1] != encoder_kwargs["embed_dim"] or pos[1] != grid * grid:
        raise CheckpointError(f"{what}: predictor_embed.weight {emb} and predictor_pos_embed {pos} do not fit an "
                              f"encoder of width {encoder_kwargs['embed_dim']} with {grid * grid} tokens")
    hidden = _shape(state, "predictor_blocks.0.mlp.fc1.weight", what)[0]
    return dict(predictor_embed_dim=emb[0], depth=_depth(state, "predictor_blocks"),
                num_heads=encoder_kwargs["num_heads"], mlp_ratio=_mlp_ratio(emb[0], hidden),
                qkv_bias="predictor_blocks.0.attn.qkv.bias" in state)


def _check_encoder(kwargs: dict, state: Mapping[str, Tensor], what: str) -> None:
    """Every key and shape of ``state`` against the ViT ``kwargs`` describe (built on the meta device)."""
    try:
        with torch.device("meta"):
            model = VisionTransformer(**kwargs)
    except (ValueError, ConfigError) as e:
        raise CheckpointError(f"{what}: no ViT fits these shapes ({e})") from e
    check_state_keys(model, dict(state), what)


def _check_predictor(encoder_kwargs: dict, kwargs: dict, state: Mapping[str, Tensor], what: str) -> None:
    g = encoder_kwargs["img_size"] // encoder_kwargs["patch_size"]
    try:
        with torch.device("meta"):
            model = Predictor((1, g, g), encoder_kwargs["embed_dim"], **kwargs)
    except (ValueError, ConfigError) as e:
        raise CheckpointError(f"{what}: no predictor fits these shapes ({e})") from e
    check_state_keys(model, dict(state), what)


# --------------------------------------------------------------------------- official files

def _official_sections(obj: Mapping[str, Any], what: str) -> dict[str, Mapping[str, Tensor]]:
    """The state-dict sections of an official file; a bare encoder state dict counts as ``encoder``."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{what}: holds a {type(obj).__name__}, not a dict")
    if not any(s in obj for s in OFFICIAL_SECTIONS):
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            return {"": obj}  # a bare encoder state dict
        raise CheckpointError(f"{what}: none of the entries {', '.join(OFFICIAL_SECTIONS)} "
                              f"(found: {', '.join(map(str, list(obj)[:12]))})")
    unknown = [str(k) for k in obj if k not in OFFICIAL_SECTIONS and k not in OFFICIAL_BOOKKEEPING]
    if unknown:
        raise CheckpointError(f"{what}: unknown top-level entries {', '.join(unknown)} (an official I-JEPA file has "
                              f"{', '.join(OFFICIAL_SECTIONS + tuple(OFFICIAL_BOOKKEEPING))})")
    for s in OFFICIAL_SECTIONS:
        if s in obj and not (isinstance(obj[s], Mapping) and all(isinstance(v, Tensor) for v in obj[s].values())):
            raise CheckpointError(f"{what}: entry {s!r} is not a state dict of tensors")
    return {s: obj[s] for s in OFFICIAL_SECTIONS if s in obj}


def _section_rules(section: str, rules: Sequence[tuple[str, str]], out_prefix: str = "") -> list[tuple[str, str]]:
    head = rf"{re.escape(section)}\.(?:module\.)?" if section else r"(?:module\.)?"
    return [(head + pat, out_prefix + rep) for pat, rep in rules]


def from_official_ijepa(obj: Mapping[str, Any], which: str = "target", predictor: bool = False,
                        num_heads: int | None = None) -> Conversion:
    """Our state dict from an official I-JEPA checkpoint (the dict ``torch.load`` gives; see the module docstring).

    ``which``: ``target`` (the EMA ``target_encoder``, what the paper evaluates) or ``context``
    (``encoder``, which transformers' conversion script took for the hub ports). With ``predictor``
    the predictor comes along under the prefix ``predictor.`` (our encoder keys never start with it;
    :func:`split_predictor` separates them). Source keys are named ``SECTION.module.KEY``. A bare
    encoder state dict (no sections) is accepted as the encoder. ``num_heads``: for a width outside
    the official table.
    """
    if which not in ("target", "context"):
        raise ConfigError(f"which={which!r} is not valid; choose one of: target, context")
    what = "official I-JEPA checkpoint"
    sections = _official_sections(obj, what)
    enc = "" if "" in sections else ("target_encoder" if which == "target" else "encoder")
    if enc not in sections:
        raise CheckpointError(f"{what}: no {enc!r} entry for which={which!r} (entries: {', '.join(sections)})")
    if predictor and "predictor" not in sections:
        raise CheckpointError(f"{what}: predictor=True but the file has no 'predictor' entry "
                              f"(entries: {', '.join(sections) or 'a bare encoder state dict'})")
    flat = {(f"{s}.{k}" if s else k): v for s, state in sections.items() for k, v in state.items()}
    rules = _section_rules(enc, ENCODER_RULES)
    drop = []
    for s in sections:
        if s == "predictor" and predictor:
            rules += _section_rules(s, PREDICTOR_RULES, "predictor.")
        elif s != enc:
            reason = ("the predictor (predictor=False)" if s == "predictor"
                      else f"the {'context' if s == 'encoder' else 'target'} encoder (which={which!r})")
            drop.append((rf"{s}\..*", reason))
    conv = convert_keys(flat, rules, drop, what=what)
    conv.dropped.update({k: OFFICIAL_BOOKKEEPING[k] for k in obj if k in OFFICIAL_BOOKKEEPING})
    enc_state, pred_state = split_predictor(conv.state_dict)
    _, kwargs = official_ijepa_arch(enc_state, num_heads, what=f"{what} ({enc or 'encoder'})")
    _check_encoder(kwargs, enc_state, f"{what} ({enc or 'encoder'})")
    if predictor:
        pk = official_predictor_kwargs(pred_state, kwargs, what=f"{what} (predictor)")
        _check_predictor(kwargs, pk, pred_state, f"{what} (predictor)")
    return conv



def build_official_ijepa(obj: Mapping[str, Any], which: str = "target", predictor: bool = False,
                         num_heads: int | None = None
                         ) -> tuple[VisionTransformer, Predictor | None, Conversion]:
    """The encoder (and predictor) of an official checkpoint, weights loaded, in eval mode, and the report."""
    conv = from_official_ijepa(obj, which, predictor, num_heads)
    enc_state, pred_state = split_predictor(conv.state_dict)
    _, kwargs = official_ijepa_arch(enc_state, num_heads)
    encoder = VisionTransformer(**kwargs)
    encoder.load_state_dict(enc_state, strict=True)
    pred = None
    if predictor:
        g = kwargs["img_size"] // kwargs["patch_size"]
        pred = Predictor((1, g, g), kwargs["embed_dim"], **official_predictor_kwargs(pred_state, kwargs))
        pred.load_state_dict(pred_state, strict=True)
        pred.eval()
    return encoder.eval(), pred, conv


# --------------------------------------------------------------------------- Hugging Face

def hf_ijepa_kwargs(config: Mapping[str, Any]) -> dict:
    """:class:`VisionTransformer` arguments from an ``IJepaModel`` ``config.json`` dict (missing keys: the
    transformers defaults). A ``model_type`` other than ``ijepa``, or a setting our ViT cannot reproduce
    (an activation other than exact GELU, non-square images or patches, a separate ``head_dim``), raises."""
    what = "Hugging Face config.json"
    if config.get("model_type") != "ijepa":
        raise CheckpointError(f"{what}: model_type={config.get('model_type')!r}, not 'ijepa' (an IJepaModel "
                              "folder is needed; V-JEPA 2 folders have their own converter)")
    c = {**HF_DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
    if c["hidden_act"] != "gelu":
        raise CheckpointError(f"{what}: hidden_act={c['hidden_act']!r}; only 'gelu' (exact) is supported")
    size, patch = (_square(c[k], k, what) for k in ("image_size", "patch_size"))
    width, heads = int(c["hidden_size"]), int(c["num_attention_heads"])
    if c.get("head_dim") not in (None, width // heads) or width % heads:
        raise CheckpointError(f"{what}: head_dim={c.get('head_dim')} with hidden_size={width}, "
                              f"num_attention_heads={heads}: heads must split the width evenly")
    return dict(img_size=size, patch_size=patch, in_chans=int(c["num_channels"]), embed_dim=width,
                depth=int(c["num_hidden_layers"]), num_heads=heads,
                mlp_ratio=_mlp_ratio(width, int(c["intermediate_size"])), qkv_bias=bool(c["qkv_bias"]),
                norm_eps=float(c["layer_norm_eps"]))


def _square(v: Any, key: str, what: str) -> int:
    if isinstance(v, (list, tuple)):
        if len(v) != 2 or v[0] != v[1]:
            raise CheckpointError(f"{what}: {key}={list(v)}; only square sizes are supported")
        v = v[0]
    return int(v)


def from_hf_ijepa(state: Mapping[str, Tensor], config: Mapping[str, Any]) -> Conversion:
    """Our state dict from a Hugging Face ``IJepaModel`` state dict (5.x or 4.x key names) and its config dict."""
    what = "Hugging Face IJepaModel"
    kwargs = hf_ijepa_kwargs(config)
    conv = convert_keys(state, HF_RULES, HF_DROP, what=what)
    fuse_parts(conv, ("q", "k", "v"), dim=0, what=what)
    _check_encoder(kwargs, conv.state_dict, what)
    return conv


def to_hf_ijepa(encoder: VisionTransformer, naming: str = "v5") -> tuple[dict[str, Tensor], dict]:
    """(state dict, config.json dict) of ``encoder`` as a Hugging Face ``IJepaModel``.

    ``naming``: ``v5`` (the key names transformers 5 writes) or ``v4`` (those of the hub checkpoints,
    which transformers 4 and 5 both load). Only square image encoders qualify.
    """
    if naming not in _TO_HF:
        raise ConfigError(f"naming={naming!r} is not valid; choose one of: {', '.join(_TO_HF)}")
    if not isinstance(encoder, VisionTransformer) or encoder.video or encoder.grid[1] != encoder.grid[2]:
        raise CheckpointError("only an image ViT with a square token grid can be written as an IJepaModel "
                              f"(got {type(encoder).__name__}"
                              f"{'' if not isinstance(encoder, VisionTransformer) else f' with grid {encoder.grid}'})")
    rules, pieces = _TO_HF[naming]

    def split_qkv(key: str, t: Tensor) -> dict[str, Tensor]:
        if "@" not in key:
            return {key: t}
        return {key.replace("@", p): c.clone() for p, c in zip(pieces, t.chunk(3, dim=0))}

    ours = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    state = convert_keys(ours, rules, what="openjepa encoder", transform=split_qkv).state_dict
    blk = encoder.blocks[0]
    config = {"architectures": ["IJepaModel"], "model_type": "ijepa", "hidden_size": encoder.embed_dim,
              "num_hidden_layers": len(encoder.blocks), "num_attention_heads": encoder.num_heads,
              "intermediate_size": blk.mlp.fc1.out_features, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
              "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02, "layer_norm_eps": encoder.norm.eps,
              "image_size": encoder.grid[1] * encoder.patch_size, "patch_size": encoder.patch_size,
              "num_channels": encoder.patch_embed.proj.in_channels, "qkv_bias": blk.attn.qkv.bias is not None,
              "dtype": "float32"}
    return state, config


def save_hf_ijepa(encoder: VisionTransformer, out_dir: str | Path, naming: str = "v5",
                  mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                  overwrite: bool = False) -> Path:
    """Write ``encoder`` as a folder ``transformers.IJepaModel.from_pretrained(out_dir)`` loads.

    ``config.json``, ``model.safetensors`` and a ``preprocessor_config.json`` (``ViTImageProcessor``:
    resize to the model's input size, scale to [0, 1], normalise by ``mean`` / ``std``, by default
    the ImageNet statistics the I-JEPA weights were trained with).
    """
    out = Path(out_dir)
    if (out / "config.json").exists() and not overwrite:
        raise FileExistsError(f"{out / 'config.json'} exists; choose another output folder")
    state, config = to_hf_ijepa(encoder, naming)
    out.mkdir(parents=True, exist_ok=True)
    size = config["image_size"]
    proc = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": size, "width": size},
            "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": list(mean), "image_std": list(std)}
    save_safetensors(state, out / "model.safetensors", metadata={"format": "pt"})
    (out / "preprocessor_config.json").write_text(json.dumps(proc, indent=2) + "\n")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def read_hf_config(path: str | Path) -> dict:
    """The ``config.json`` dict of a Hugging Face model folder."""
    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{path}: no config.json (not a Hugging Face model folder)")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{cfg_path}: holds a {type(config).__name__}, not an object")
    return config


def read_hf_weights(path: str | Path) -> dict[str, Tensor]:
    """The state dict of a Hugging Face model folder: ``model.safetensors``, its shards
    (``model.safetensors.index.json``), or ``pytorch_model.bin`` (read ``weights_only``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from openjepa.engine.checkpoint import load_file as load_torch_file

    d = Path(path)
    index = d / "model.safetensors.index.json"
    if (d / "model.safetensors").is_file():
        files = [d / "model.safetensors"]
    elif index.is_file():
        try:
            files = [d / f for f in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{index}: not a safetensors index ({type(e).__name__}: {e})") from e
    elif (d / "pytorch_model.bin").is_file():
        return load_torch_file(d / "pytorch_model.bin")
    else:
        raise CheckpointError(f"{d}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin")
    state: dict[str, Tensor] = {}
    for f in files:
        try:
            state.update(load_file(str(f)))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"cannot read {f} (missing, truncated or not safetensors): {e}") from e
    return state


def load_hf_ijepa(path: str | Path) -> tuple[VisionTransformer, Conversion]:
    """Our encoder, weights loaded, in eval mode, from a Hugging Face ``IJepaModel`` folder, and the report.

    The config is checked (``model_type`` first) before any weights are read."""
    config = read_hf_config(path)
    kwargs = hf_ijepa_kwargs(config)
    conv = from_hf_ijepa(read_hf_weights(path), config)
    encoder = VisionTransformer(**kwargs)
    encoder.load_state_dict(conv.state_dict, strict=True)
    return encoder.eval(), conv
