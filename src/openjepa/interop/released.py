"""Released JEPAs as loadable sources: Hugging Face folders and the official checkpoint files.

- A **Hugging Face folder** (``config.json`` + ``model.safetensors``) is dispatched on its ``model_type``:
  ``vjepa2`` (``VJEPA2Model``; :mod:`openjepa.interop.vjepa`) or ``ijepa`` (``IJepaModel``;
  :mod:`openjepa.interop.ijepa`).
- An **official checkpoint** (``torch.save``d dict, loaded with ``weights_only=True``; a pickle that needs code
  is refused) is dispatched on its encoder's patch embedding: a Conv2d is I-JEPA (``encoder`` /
  ``target_encoder`` / ``predictor``, ``module.`` keys), a Conv3d tubelet is V-JEPA or V-JEPA 2
  (``module.backbone.`` keys), told apart by the size of the stored position table, or V-JEPA 2.1
  (per-level ``norms_block.*``; :mod:`openjepa.interop.vjepa2_1`). A V-JEPA 2-AC file
  (``encoder`` + an action-conditioned ``predictor``, told by its ``action_encoder``) gives the encoder and an
  :class:`~openjepa.models.ACPredictor` (:mod:`openjepa.interop.vjepa2_ac`).

Each load returns a :class:`~openjepa.interop.sources.Source` whose config rebuilds the encoder
(``model.encoder`` + ``model.encoder_kwargs``) and carries the preprocessing (size, ImageNet mean / std,
frames per clip; ``extra["frame_step"]``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors

from openjepa.config.schema import Config
from openjepa.engine import checkpoint as ckpt
from openjepa.errors import CheckpointError
from openjepa.interop import ijepa, vjepa, vjepa2_1, vjepa2_ac
from openjepa.interop.convert import Conversion
from openjepa.interop.sources import Source, is_torch_zip, register_source
from openjepa.models.predictor import Predictor
from openjepa.models.vit import VisionTransformer
from openjepa.models.vjepa import ARCHS, IMAGENET_MEAN, IMAGENET_STD, PREPROCESSING
from openjepa.models.vjepa2_1 import PREPROCESSING as PREPROCESSING_2_1

BUILD_KEYS = ("img_size", "patch_size", "in_chans", "num_frames", "tubelet_size")


def config_for(kwargs: Mapping[str, Any], mean: tuple, std: tuple, name: str = "vit", frame_step: int = 4) -> Config:
    """A Config whose ``build_encoder`` rebuilds ``VisionTransformer(**kwargs)`` (or the registered ``name``); for a
    video model its clips (``data.frames_per_clip`` = the model's frames, every ``frame_step``)."""
    cfg = Config()
    m = cfg.model
    m.encoder = name
    for k in BUILD_KEYS:
        if k in kwargs:
            setattr(m, k, int(kwargs[k]))
    m.encoder_kwargs = {k: v for k, v in kwargs.items() if k not in BUILD_KEYS} if name == "vit" else {}
    cfg.data.name, cfg.data.mean, cfg.data.std = "folder", list(mean), list(std)
    if m.num_frames > 1:  # a video model: its clips are what it was trained on (embed / eval read these)
        cfg.data.frames_per_clip, cfg.data.frame_step = m.num_frames, int(frame_step)
    return cfg


def _encoder(kwargs: Mapping[str, Any], conv: Conversion, what: str) -> VisionTransformer:
    enc = VisionTransformer(**kwargs)
    ckpt.load_state_strict(enc, {k: v for k, v in conv.state_dict.items() if not k.startswith("predictor.")}, what)
    return enc.eval()


# ------------------------------------------------------------------------------------------- Hugging Face folders

def _hf_config(path: Path) -> dict | None:
    f = path / "config.json"
    if not (path.is_dir() and f.is_file() and (path / "model.safetensors").is_file()):
        return None
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {f}: {e}") from e


def _hf_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_safetensors(str(path / "model.safetensors"))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"cannot read {path / 'model.safetensors'} (truncated or corrupt): {e}") from e


def _hf_normalisation(path: Path, default: tuple[tuple, tuple]) -> tuple[tuple, tuple]:
    f = path / "preprocessor_config.json"
    if f.is_file():
        pre = json.loads(f.read_text())
        if "image_mean" in pre and "image_std" in pre:
            return tuple(pre["image_mean"]), tuple(pre["image_std"])
    return default


@register_source("huggingface", lambda p: _hf_config(p) is not None)
def load_hf(path: Path, which: str = "target", predictor: bool = False, map_location: Any = "cpu") -> Source:
    config = _hf_config(path)
    kind = config.get("model_type")
    mean, std = _hf_normalisation(path, (IMAGENET_MEAN, IMAGENET_STD))
    if kind == "vjepa2":
        kwargs = vjepa.hf_vjepa2_model_kwargs(config)
        conv = vjepa.from_hf_vjepa2(_hf_state(path), config, predictor=predictor)
        enc = _encoder(kwargs, conv, f"Hugging Face VJEPA2Model {path}")
        pred = None
        if predictor:
            pred = Predictor(enc.grid, enc.embed_dim, **vjepa.hf_vjepa2_predictor_kwargs(config))
            ckpt.load_state_strict(pred, vjepa.split_predictor(conv.state_dict)[1], f"predictor of {path}")
        return Source(enc, config_for(kwargs, mean, std), "hf-vjepa2", pred, conv,
                      {"frame_step": 4, "frames_per_clip": kwargs["num_frames"]})
    if kind == "ijepa":
        kwargs = ijepa.hf_ijepa_kwargs(config)  # checks the config before any weights are read
        conv = ijepa.from_hf_ijepa(_hf_state(path), config)
        if predictor:
            raise CheckpointError(f"{path}: an IJepaModel folder holds an encoder only; it has no predictor")
        return Source(_encoder(kwargs, conv, f"Hugging Face IJepaModel {path}"), config_for(kwargs, mean, std),
                      "hf-ijepa", None, conv)
    raise CheckpointError(f"{path / 'config.json'}: model_type={kind!r} is not a JEPA openjepa converts; "
                          f"choose a folder of model_type 'ijepa' (IJepaModel) or 'vjepa2' (VJEPA2Model)")


# ------------------------------------------------------------------------------------------- official checkpoints

OFFICIAL_KEYS = ("target_encoder", "ema_encoder", "encoder")


def _official(path: Path) -> dict | None:
    """The loaded dict of an official JEPA checkpoint, or None when ``path`` is not one."""
    if not is_torch_zip(path):
        return None
    obj = ckpt.load_file(path)  # weights_only=True: refuses pickles that need code
    if "method" in obj and "config" in obj:  # openjepa's own training checkpoint
        return None
    return obj if any(isinstance(obj.get(k), Mapping) for k in OFFICIAL_KEYS) else None


def _patch_weight(obj: Mapping[str, Any]) -> torch.Tensor:
    enc = next(obj[k] for k in OFFICIAL_KEYS if isinstance(obj.get(k), Mapping))
    w = next((v for k, v in enc.items() if k.endswith("patch_embed.proj.weight")), None)
    if w is None:
        raise CheckpointError("official checkpoint: its encoder has no patch_embed.proj.weight; keys: "
                              f"{', '.join(list(enc)[:8])}")
    return w


def _vjepa_family(obj: Mapping[str, Any], which: str) -> str:
    """``vjepa`` or ``vjepa2``: the family whose released architecture matches width, depth and position table."""
    n_pos = vjepa.official_position_count(obj, which)
    for family, arch in (("vjepa", vjepa.official_vjepa_arch), ("vjepa2", vjepa.official_vjepa2_arch)):
        try:
            name = arch(obj, which)
        except CheckpointError:
            continue
        a = ARCHS[name]
        if n_pos is None or (a[5] // 2) * (a[4] // 16) ** 2 == n_pos:
            return family
    raise CheckpointError("official checkpoint: its encoder matches no released V-JEPA or V-JEPA 2 architecture")


def _load_vjepa2_1(obj: Mapping[str, Any], path: Path, which: str, predictor: bool) -> Source:
    name, kwargs = vjepa2_1.official_vjepa2_1_arch(obj, which)
    conv = vjepa2_1.from_official_vjepa2_1(obj, which=which, predictor=predictor)
    enc = _encoder(kwargs, conv, f"official V-JEPA 2.1 checkpoint {path} ({name})")
    pred = None
    if predictor:
        pred = Predictor(enc.grid, enc.embed_dim, **vjepa2_1.official_vjepa2_1_predictor_kwargs(obj, enc.embed_dim))
        ckpt.load_state_strict(pred, vjepa.split_predictor(conv.state_dict)[1], f"predictor of {path}")
    prep = PREPROCESSING_2_1.get(name, PREPROCESSING_2_1["vjepa2_1_vit_large_384"])
    return Source(enc, config_for(kwargs, prep["mean"], prep["std"], name), "official-vjepa2_1", pred, conv,
                  {"frame_step": prep["frame_step"], "frames_per_clip": prep["frames_per_clip"], "arch": name})


def _load_vjepa2_ac(path: Path, obj: Mapping[str, Any], which: str, predictor: bool) -> Source:
    """The V-JEPA 2 encoder of a 2-AC file (built for the 2-AC clips) and, on request, its ACPredictor."""
    conv = vjepa2_ac.from_official_vjepa2_ac(obj, which, predictor)
    name = vjepa.official_vjepa2_arch(obj, vjepa2_ac.encoder_which(obj, which))
    dim, depth, heads, mlp, img, _, pos = ARCHS[name]
    prep = vjepa2_ac.PREPROCESSING
    kwargs = dict(img_size=img, patch_size=16, num_frames=prep["frames_per_clip"], tubelet_size=2,
                  embed_dim=dim, depth=depth, num_heads=heads, mlp_ratio=mlp, pos=pos)
    what = f"official V-JEPA 2-AC checkpoint {path} ({name})"
    enc = _encoder(kwargs, conv, what)
    pred = vjepa2_ac.build_official_ac_predictor(obj, enc, conv, what=what) if predictor else None
    return Source(enc, config_for(kwargs, prep["mean"], prep["std"], name), "official-vjepa2-ac", pred, conv,
                  {"frame_step": prep["frame_step"], "frames_per_clip": prep["frames_per_clip"], "fps": prep["fps"],
                   "arch": name})


@register_source("official", lambda p: _official(p) is not None)
def load_official(path: Path, which: str = "target", predictor: bool = False, map_location: Any = "cpu") -> Source:
    obj = _official(path)
    if vjepa2_ac.is_official_vjepa2_ac(obj):
        return _load_vjepa2_ac(path, obj, which, predictor)
    if vjepa2_1.is_vjepa2_1(next(obj[k] for k in OFFICIAL_KEYS if isinstance(obj.get(k), Mapping))):
        return _load_vjepa2_1(obj, path, which, predictor)
    if _patch_weight(obj).ndim == 4:  # I-JEPA: a Conv2d patch embedding
        enc, pred, conv = ijepa.build_official_ijepa(obj, which, predictor)
        name, kwargs = ijepa.official_ijepa_arch(ijepa.split_predictor(conv.state_dict)[0])
        return Source(enc, config_for(kwargs, IMAGENET_MEAN, IMAGENET_STD), "official-ijepa", pred, conv,
                      {"arch": name})
    family = _vjepa_family(obj, which)
    name = (vjepa.official_vjepa_arch if family == "vjepa" else vjepa.official_vjepa2_arch)(obj, which)
    convert = vjepa.from_official_vjepa if family == "vjepa" else vjepa.from_official_vjepa2
    conv = convert(obj, which=which, predictor=predictor)
    dim, depth, heads, mlp, img, frames, pos = ARCHS[name]
    kwargs = dict(img_size=img, patch_size=16, num_frames=frames, tubelet_size=2, embed_dim=dim, depth=depth,
                  num_heads=heads, mlp_ratio=mlp, pos=pos)
    enc = _encoder(kwargs, conv, f"official {family} checkpoint {path} ({name})")
    pred = None
    if predictor:
        pred = Predictor(enc.grid, enc.embed_dim, **vjepa.official_predictor_kwargs(obj, rope=pos == "rope"))
        ckpt.load_state_strict(pred, vjepa.split_predictor(conv.state_dict)[1], f"predictor of {path}")
    prep = PREPROCESSING[name]
    return Source(enc, config_for(kwargs, prep["mean"], prep["std"], name), f"official-{family}", pred, conv,
                  {"frame_step": prep["frame_step"], "frames_per_clip": prep["frames_per_clip"], "arch": name})
