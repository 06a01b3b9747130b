"""Frozen-feature evaluation of a trained method beside honest baselines.

Rows: the trained encoder's tokens, the same architecture at random init, and raw pixels, each
evaluated with the same protocols (``eval.protocols``: linear probe, attentive probe, kNN,
low-shot; see :mod:`openjepa.eval.table`), with RankMe. Features are extracted once per feature
set and split and, for a checkpoint of a run, cached in ``run_dir/features`` (see
:mod:`openjepa.eval.cache`). For the attentive probe, raw pixels use non-overlapping
``model.patch_size`` patches of pixels as their tokens. Saved as ``eval.json`` (end of training) or
``eval_step{N}_{encoder}_{protocols}.json`` (``openjepa eval``, see :func:`eval_file_name`) in the
run, so evaluations with other protocols sit side by side. Extraction runs ``eval.batch_size``
images per forward pass under ``eval.precision``.

Video data (clips, dataset kind ``video``) follows the V-JEPA protocol (Bardes et al. 2024, arXiv
2404.08471): ``eval.video_protocols`` (default: the attentive probe over all clip tokens, then
linear and kNN) instead of ``eval.protocols``, the verdict judged on the attentive probe, and
multi-clip, multi-view evaluation: an item of ``K = data.num_clips`` clips x ``S = data.num_views``
views runs every encoder (the model and every baseline alike) on each view, the attentive probe
averages its logits over the views and linear / kNN read the views' pooled features averaged
(see :func:`openjepa.eval.features.extract`). Raw pixels on clips: tubelets of
``model.tubelet_size`` frames x ``model.patch_size`` pixels as the attentive probe's tokens, the
flattened clip for linear / kNN. With ``eval.frame_encoder=SRC`` (any source
:func:`openjepa.interop.sources.load_source` reads: a run of an image JEPA trained with
``data.frames_as_images=true``, say) a third baseline, the frame-averaged image encoder, applies
that image encoder to every frame and averages its tokens over the frames (H*W tokens for the
attentive probe, their mean for linear): frame-order-blind by construction, it tells what the
video model learnt from motion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from openjepa.config.load import check_protocols, load_config_overrides, to_dict
from openjepa.config.schema import Config
from openjepa.data import build_dataset, dataset_info, dataset_spec
from openjepa.data.registry import DatasetInfo
from openjepa.engine.precision import resolve_device, resolve_precision
from openjepa.engine.runs import load_run
from openjepa.errors import ConfigError
from openjepa.eval import cache
from openjepa.eval.registry import register_evaluation
from openjepa.eval.features import Features, extract, frame_averaged, pixel_patches
from openjepa.eval.table import (FRAME_AVERAGED, RANDOM_INIT, RAW_PIXELS, FeatureSplits, evaluate_features,
                                 format_table)
from openjepa.methods import JEPAMethod, build_encoder

_SPLITS = ("train", "test")
_DATA_KEYS = ("name", "root", "train_size", "test_size", "val_fraction", "eval_transforms", "mean", "std",
              "frames_per_clip", "frame_step", "fps", "num_clips", "num_views", "short_videos", "frames_as_images")
_CLIP_KEYS = ("frames_per_clip", "frame_step", "fps", "num_clips", "num_views", "short_videos")


class _FeatureSource:
    """Extracts (or loads from the cache) one feature set's splits; builds the datasets only on a miss."""

    def __init__(self, cfg: Config, device: torch.device, cache_dir: Path | None, keep_tokens: bool):
        self.cfg, self.device, self.cache_dir, self.keep_tokens = cfg, device, cache_dir, keep_tokens
        self._datasets: dict[str, Dataset] = {}

    def dataset(self, split: str) -> Dataset:
        if split not in self._datasets:
            c = self.cfg
            self._datasets[split] = build_dataset(c.data, split, c.model.img_size, seed=c.seed, train=False)
        return self._datasets[split]

    def key(self, name: str, split: str, weights: str, step: int | None) -> dict:
        """Everything the cached features of ``name``/``split`` depend on (see :mod:`openjepa.eval.cache`)."""
        c, ev = self.cfg, self.cfg.eval
        data = to_dict(c)["data"]
        return {"source": name, "split": split, "step": step, "weights": weights,
                "max_items": ev.max_train_samples if split == "train" else ev.max_test_samples,
                "img_size": c.model.img_size, "patch_size": c.model.patch_size,
                "tubelet_size": c.model.tubelet_size, "seed": c.seed,
                "precision": resolve_precision(ev.precision, self.device), "batch_size": ev.batch_size,
                "data": {k: data[k] for k in _DATA_KEYS}}

    def splits(self, name: str, encode: Callable[[Tensor], Tensor], weights: str, step: int | None = None,
               pool: Callable[[Tensor], Tensor] | None = None,
               tokenize: Callable[[Tensor], Tensor] | None = None) -> FeatureSplits:
        """Train and test features of ``encode``, cached as ``name_{split}`` when there is a cache dir.

        ``weights`` fingerprints the encoder and ``step`` is the checkpoint's (None for the
        baselines, which do not change with training).
        """
        out: list[Features] = []
        for split in _SPLITS:
            key = self.key(name, split, weights, step)
            path = cache.cache_path(self.cache_dir, name, split) if self.cache_dir is not None else None
            feats = cache.load_features(path, key, self.keep_tokens) if path is not None else None
            if feats is None:
                ev = self.cfg.eval
                loader = DataLoader(self.dataset(split), batch_size=ev.batch_size, shuffle=False, num_workers=0)
                kw = {k: v for k, v in (("pool", pool), ("tokenize", tokenize)) if v is not None}
                feats = extract(encode, loader, self.device, ev.max_train_samples if split == "train" else
                                ev.max_test_samples, self.cfg.train.progress, self.keep_tokens, **kw,
                                precision=ev.precision, desc=f"features {name} {split}")
                if path is not None:
                    print(f"features: cached {cache.save_features(path, feats, key)}")
            out.append(feats)
        tr, te = out
        return FeatureSplits(tr.x, tr.y, te.x, te.y, tr.tokens, te.tokens)


def eval_protocols(cfg: Config, kind: str, protocols: Sequence[str] | None = None) -> list[str]:
    """The protocols to run: ``protocols`` when given (``--protocol``), else ``eval.video_protocols`` on video
    data (kind ``video``) and ``eval.protocols`` on anything else; ConfigError naming the key for an unknown one."""
    if protocols is not None:
        return check_protocols(list(protocols), "protocols")
    if kind == "video":
        return check_protocols(list(cfg.eval.video_protocols), "eval.video_protocols")
    return check_protocols(list(cfg.eval.protocols), "eval.protocols")


def _channel_stats(cfg: Config) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The (mean, std) an encoder's inputs are normalised with: its config's, else its dataset's own."""
    info = dataset_spec(cfg.data.name).info
    mean = tuple(float(v) for v in (cfg.data.mean if cfg.data.mean is not None else info.mean))
    std = tuple(float(v) for v in (cfg.data.std if cfg.data.std is not None else info.std))
    return mean, std


def _renormaliser(src: tuple[tuple[float, ...], tuple[float, ...]],
                  dst: tuple[tuple[float, ...], tuple[float, ...]]) -> Callable[[Tensor], Tensor]:
    """Frames (B, C, H, W) normalised with ``src`` (mean, std) -> normalised with ``dst`` (identity when equal)."""
    if src == dst:
        return lambda x: x

    def renorm(x: Tensor) -> Tensor:
        def col(v: tuple[float, ...]) -> Tensor:
            return torch.tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)  # (1, C, 1, 1)
        return (x * col(src[1]) + col(src[0]) - col(dst[0])) / col(dst[1])
    return renorm


def load_frame_encoder(cfg: Config, info: DatasetInfo, device: torch.device) -> tuple[Callable[[Tensor], Tensor], str]:
    """``eval.frame_encoder`` as a clip encoder (:func:`~openjepa.eval.features.frame_averaged`) and its fingerprint.

    The frames are renormalised from the video data's statistics to the image encoder's own when
    they differ. ConfigError for a video encoder (``model.num_frames > 1``) or another channel count.
    """
    from openjepa.interop.sources import load_source

    path = cfg.eval.frame_encoder
    src = load_source(path)
    m = src.config.model
    if m.num_frames > 1:
        raise ConfigError(f"eval.frame_encoder={path} is a video encoder (model.num_frames={m.num_frames}); give an "
                          f"image encoder, e.g. a run trained with data.frames_as_images=true")
    if m.in_chans != info.in_chans:
        raise ConfigError(f"eval.frame_encoder={path} takes {m.in_chans} channel(s); data.name={cfg.data.name} has "
                          f"{info.in_chans}")
    encoder = src.encoder.to(device).eval()
    renorm = _renormaliser((tuple(info.mean), tuple(info.std)), _channel_stats(src.config))
    return frame_averaged(lambda x: encoder(renorm(x))), cache.fingerprint(encoder)


def _baselines(cfg: Config, info: DatasetInfo, src: _FeatureSource, device: torch.device) -> dict[str, FeatureSplits]:
    """The baseline rows: random-init encoder and raw pixels (``eval.baselines``), the frame-averaged image
    encoder (``eval.frame_encoder``, video data only)."""
    ev, sets = cfg.eval, {}
    if ev.baselines:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 1)
            rand = build_encoder(cfg).to(device).eval()
        sets[RANDOM_INIT] = src.splits("baseline-random", rand, cache.fingerprint(rand))
        p, t = cfg.model.patch_size, cfg.model.tubelet_size  # images: patches; clips: tubelets of t frames
        sets[RAW_PIXELS] = src.splits("baseline-pixels", lambda x: x, "raw-pixels", pool=lambda x: x.flatten(1).float(),
                                      tokenize=lambda x: pixel_patches(x, p, t))
    if ev.frame_encoder:
        if info.kind != "video":
            raise ConfigError(f"eval.frame_encoder is a baseline of video data; data.name={cfg.data.name} holds "
                              f"{info.kind} data (unset eval.frame_encoder)")
        encode, weights = load_frame_encoder(cfg, info, device)
        sets[FRAME_AVERAGED] = src.splits("baseline-frames", encode, weights)
    return sets


def evaluate_method(method: JEPAMethod, cfg: Config, device: torch.device, run_dir: str | Path | None = None,
                    label: str | None = None, out_name: str = "eval.json", step: int | None = None,
                    protocols: Sequence[str] | None = None) -> list[dict]:
    """Evaluate ``method``'s frozen features (and the baselines); print the table; save ``run_dir/out_name``.

    ``protocols`` (default: :func:`eval_protocols`, ``eval.protocols`` or on video
    ``eval.video_protocols``) are any of linear, attentive, knn, lowshot. With a ``run_dir``, a
    ``step`` and ``cfg.eval.cache``, features are cached in ``run_dir/features`` and reused by
    later evaluations of the same checkpoint and settings.
    """
    info = dataset_info(cfg.data)
    protocols = eval_protocols(cfg, info.kind, protocols)
    if info.num_classes == 0:
        print("dataset has no labels: skipping the probes (use a labelled dataset to evaluate)")
        return []
    ev = cfg.eval
    device = torch.device(device)
    cache_dir = Path(run_dir) / "features" if run_dir is not None and step is not None and ev.cache else None
    src = _FeatureSource(cfg, device, cache_dir, keep_tokens="attentive" in protocols)
    was_training = method.training
    method.eval()
    name = label or f"{cfg.train.method} ({ev.encoder + ' encoder' if method.has_teacher else 'encoder'})"
    sets = {name: src.splits(f"step{step or 0:08d}_{ev.encoder}", lambda x: method.encode(x, ev.encoder),
                             cache.fingerprint(method), step)}
    sets.update(_baselines(cfg, info, src, device))
    rows = evaluate_features(sets, ev, cfg.seed, device=device, protocols=protocols, progress=cfg.train.progress)
    method.train(was_training)
    judge_on = "attentive" if info.kind == "video" else None  # the V-JEPA protocol decides on clips
    print(format_table(rows, judge_on=judge_on))
    if run_dir is not None:
        out = Path(run_dir) / out_name
        doc = {"dataset": cfg.data.name, "step": step, "encoder": ev.encoder, "protocols": protocols, "rows": rows}
        if info.kind == "video":
            doc["clips"] = {k: getattr(cfg.data, k) for k in _CLIP_KEYS}
        out.write_text(json.dumps(doc, indent=2))
        print(f"saved {out}")
    return rows


@register_evaluation("probes")
def evaluate_probes(method: JEPAMethod, cfg: Config, device: torch.device, run_dir: str | Path | None,
                    step: int) -> list[dict]:
    """The end-of-training evaluation of image methods: the probe table, saved as ``run_dir/eval.json``."""
    return evaluate_method(method, cfg, device, run_dir, step=step)


def eval_file_name(step: int, encoder: str, protocols: Sequence[str]) -> str:
    """``eval_step{step:08d}_{encoder}_{protocols}.json``, the protocols sorted and joined by '-'.

    E.g. ``eval_step00000300_target_attentive-knn.json``: one file per checkpoint, encoder and
    protocol set, whatever order the protocols were given in.
    """
    return f"eval_step{step:08d}_{encoder}_{'-'.join(sorted(set(protocols)))}.json"


class FrozenEncoder(nn.Module):
    """An encoder alone (a converted or released model) read the way the evaluation reads a method."""

    has_teacher = False

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    @torch.no_grad()
    def encode(self, x: Tensor, which: str = "target") -> Tensor:
        return self.encoder(x)  # (B, N, D); a lone encoder is both the target and the context one


def load_any(path: str | Path) -> tuple[Config, nn.Module, Path | None, int]:
    """An openjepa run or checkpoint -> :func:`load_run`; any other loadable model (a Hugging Face folder, an
    official checkpoint, an ``openjepa convert`` folder) -> its config, the encoder as a
    :class:`FrozenEncoder`, no run directory, step 0."""
    from openjepa.engine.runs import is_run
    from openjepa.interop.sources import load_source

    if is_run(path) or not Path(path).exists():
        return load_run(path)  # a missing path: named as a missing run
    source = load_source(path)
    return source.config, FrozenEncoder(source.encoder), None, 0


def evaluate_checkpoint(path: str | Path, overrides: Sequence[str] = (), device: str | None = None,
                        protocols: Sequence[str] | None = None) -> list[dict]:
    """``openjepa eval``: load a run or checkpoint, apply eval overrides, print and save the table.

    ``protocols`` (default: ``eval.protocols`` after the overrides, ``eval.video_protocols`` on
    video data) are any of linear, attentive, knn, lowshot; an unknown name raises
    :class:`openjepa.config.ConfigError` naming the choices.
    The table is saved as :func:`eval_file_name` in the run, so evaluations of other steps,
    encoders or protocol sets do not overwrite each other. Features are cached in the run's
    ``features/`` directory, so evaluating the same checkpoint again (with other protocols, say)
    does not run the encoder again. ``train.progress=false`` turns the progress bars off.
    """
    cfg, method, run_dir, step = load_any(path)
    cfg = load_config_overrides(cfg, overrides)  # a released model names the data to probe on: data.*=...
    if run_dir is None:
        print(f"{path} is not an openjepa run: the table is printed, not saved")
    if protocols is not None:
        protocols = check_protocols(list(protocols), "--protocol")
    protocols = eval_protocols(cfg, dataset_info(cfg.data).kind, protocols)
    dev = resolve_device(device or cfg.device)
    print(f"evaluating {path} (step {step}) on {cfg.data.name}: {', '.join(protocols)}")
    # A name of its own, so re-evaluating never overwrites the table written at the end of training.
    out_name = eval_file_name(step, cfg.eval.encoder, protocols)
    return evaluate_method(method.to(dev), cfg, dev, run_dir, out_name=out_name, step=step, protocols=protocols)
