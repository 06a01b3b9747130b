"""Feature export: encode image or video files with a trained run's encoder and save the features.

``openjepa embed RUN image_dir/ more.png --out feats.npy`` loads the run (:func:`load_run`),
preprocesses every image exactly as the run's evaluation does (the dataset's eval pipeline:
``data.eval_transforms``, resize to ``model.img_size``, the run's channels and normalisation),
encodes them in batches and writes

- ``FILE`` (``.npy``: a numpy array; ``.safetensors``: the tensor under the key ``features``, the
  file list and run facts in its metadata): (N, D) pooled features (``pool="mean"``, the average
  of the tokens, the I-JEPA frozen-feature protocol) or (N, T, D) patch tokens (``pool="none"``);
- ``FILE.files.txt``: the N image paths in the order of the rows, one per line;
- ``FILE.skipped.txt``: ``path<TAB>reason`` of every unreadable image, only when there were some.

Features are computed in float32 (no autocast), so they equal ``method.encode`` bit for bit.

Video. A video model (``model.num_frames > 1``) embeds video files instead (:func:`list_videos`:
files, folders searched for mp4 / webm / mkv / avi, or ``.csv`` / ``.txt`` list files of
``path [label]`` lines). Each video gives the run's evaluation views
(:func:`openjepa.data.video.clip_views`: ``data.num_clips`` clips of ``data.frames_per_clip``
frames, ``data.frame_step`` apart or at ``data.fps``, in ``data.num_views`` crops of
``model.img_size``), every view is encoded, and a row is the mean over its tokens and views
(``pool="mean"``, (N, D), as :mod:`openjepa.eval.frozen` evaluates clips) or its tokens per view
(``pool="none"``: (N, T, D), or (N, V, T, D) with V = clips x views > 1). The clip settings are
recorded beside the features: in ``FILE.meta.json`` (either format) and in the safetensors
metadata. A clip longer than every video is an error naming the settings (before any encoding);
an unreadable video, and under ``data.short_videos=skip`` a too-short one, is skipped and listed
or raises, as an unreadable image.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from openjepa.config.schema import Config
from openjepa.data import eval_pipeline
from openjepa.data.folder import DECODE_ERRORS, is_image_file, load_image, scan_images
from openjepa.engine.precision import resolve_device
from openjepa.eval.features import split_views
from openjepa.eval.frozen import load_any
from openjepa.methods import JEPAMethod

log = logging.getLogger(__name__)

POOLS = ("mean", "none")
FORMATS = (".npy", ".safetensors")
ON_ERROR = ("skip", "raise")


class EmbedError(RuntimeError):
    """A problem with the inputs or options of an export (reported to the user without a traceback)."""


@dataclass
class Embeddings:
    """What :func:`embed_images` returns: ``features[i]`` belongs to ``files[i]``."""

    features: Tensor  # (N, D) pooled or (N, T, D) tokens (video, V > 1 views: (N, V, T, D)), float32 on the CPU
    files: list[str]  # readable images (videos), in input order
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of unreadable images


def list_images(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Expand ``inputs`` into image paths, in order: a folder gives its image files (recursive,
    sorted, by extension; hidden entries ignored), a file is kept as given whatever its name."""
    paths: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = scan_images(p)
            if not found:
                log.warning("embed: no image files in %s", p)
            paths.extend(str(f) for f in found)
        elif p.is_file():
            if not is_image_file(p.name):
                log.warning("embed: %s has no image extension; trying to decode it anyway", p)
            paths.append(str(p))
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    if not paths:
        raise EmbedError(f"no image files found in {', '.join(str(i) for i in inputs)}")
    return paths


def _list_file_paths(path: Path) -> list[str]:
    """The video paths of a ``path [label]`` list file (a trailing integer label is dropped; relative
    paths are relative to the list file; blank lines ignored)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        file, _, last = line.strip().rpartition(" ")
        entry = file.strip() if file and last.lstrip("-").isdigit() else line.strip()
        if entry:
            p = Path(entry).expanduser()
            out.append(str(p if p.is_absolute() else path.parent / p))
    if not out:
        raise EmbedError(f"the list file {path} names no videos")
    return out


def list_videos(inputs: Sequence[str | os.PathLike]) -> list[str]:
    """Expand ``inputs`` into video paths, in order: a folder gives its video files (recursive, sorted, by
    extension; hidden entries ignored), a ``.csv`` / ``.txt`` file its ``path [label]`` lines, any other file
    is kept as given. A folder without videos, or no video at all, is an :class:`EmbedError`."""
    from openjepa.data.video import LIST_EXTENSIONS, VIDEO_EXTENSIONS, scan_videos

    paths: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = scan_videos(p)
            if not found:
                raise EmbedError(f"no video files ({', '.join(e[1:] for e in VIDEO_EXTENSIONS)}) in {p}")
            paths.extend(str(f) for f in found)
        elif p.is_file():
            paths.extend(_list_file_paths(p) if p.suffix.lower() in LIST_EXTENSIONS else [str(p)])
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    if not paths:
        raise EmbedError(f"no video files found in {', '.join(str(i) for i in inputs)}")
    return paths


def is_video_model(cfg: Config) -> bool:
    """Whether the run's encoder reads clips (``model.num_frames > 1``): then ``embed`` reads video files."""
    return cfg.model.num_frames > 1


def image_mode(in_chans: int) -> str:
    """The PIL mode a ``in_chans``-channel model reads: "L" (grey) or "RGB"."""
    modes = {1: "L", 3: "RGB"}
    if in_chans not in modes:
        raise EmbedError(f"image files give 1 or 3 channels; the model takes {in_chans}")
    return modes[in_chans]


Item = tuple[int, Optional[Tensor], Optional[str]]  # (index, image or None, reason or None)


class ImageFiles(Dataset):
    """Item ``i`` is ``(i, image tensor, None)``, or ``(i, None, reason)`` when the file cannot be decoded.

    Failures travel as data, so they reach the main process from DataLoader workers too.
    """

    def __init__(self, paths: Sequence[str], transform: Callable[[Any], Tensor], mode: str = "RGB") -> None:
        self.paths, self.transform, self.mode = list(paths), transform, mode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        try:
            img = load_image(self.paths[i], self.mode)
        except DECODE_ERRORS as e:
            return i, None, f"{type(e).__name__}: {e}"
        return i, self.transform(img), None


class VideoFiles(Dataset):
    """Item ``i`` is ``(i, views (K*S, C, T, H, W), None)`` of video ``i`` (:func:`~openjepa.data.video.clip_views`),
    or ``(i, None, reason)`` when it cannot be used (unreadable; too short under ``short_videos=skip``)."""

    def __init__(self, paths: Sequence[str], spec: Any, img_size: int, transform: Callable[[Tensor], Tensor]) -> None:
        self.paths, self.spec, self.img_size, self.transform = list(paths), spec, int(img_size), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        from openjepa.data.video import TooShort, clip_views, decode_errors

        try:
            return i, clip_views(self.paths[i], self.spec, self.img_size, self.transform), None
        except TooShort as e:
            return i, None, f"shorter than a clip: {e} ({self.spec.settings()}, data.short_videos=skip)"
        except decode_errors() as e:
            return i, None, f"{type(e).__name__}: {e}"


def clip_settings(cfg: Config) -> dict[str, Any]:
    """The clip settings a video embedding depends on, as recorded beside the features."""
    d, m = cfg.data, cfg.model
    return {"frames_per_clip": int(d.frames_per_clip), "frame_step": int(d.frame_step), "fps": float(d.fps),
            "num_clips": int(d.num_clips), "num_views": int(d.num_views), "short_videos": str(d.short_videos),
            "img_size": int(m.img_size), "tubelet_size": int(m.tubelet_size)}


def check_clips_fit(paths: Sequence[str], spec: Any) -> None:
    """EmbedError naming the settings when a clip spans more frames than every readable video (unreadable
    ones are left to the embedding, which skips or raises). Probes videos until one is long enough."""
    from openjepa.data.video import decode_errors, probe_video

    longest = None
    for path in paths:
        try:
            meta = probe_video(path)
        except decode_errors():
            continue
        if meta.num_frames >= spec.span(meta.fps):
            return
        if longest is None or meta.num_frames > longest.num_frames:
            longest = meta
    if longest is not None:
        raise EmbedError(f"{spec.settings()} spans {spec.span(longest.fps)} frames, longer than every video given "
                         f"(longest: {longest.path}, {longest.num_frames} frames); embed longer videos or train "
                         f"with a shorter clip")


def _collate(items: list[Item]) -> tuple[list[int], Tensor | None, list[tuple[int, str]]]:
    """-> (indices of readable items, their images (B, C, H, W) or views (B, V, C, T, H, W) stacked or None,
    [(index, reason)])."""
    good = [(i, x) for i, x, _ in items if x is not None]
    bad = [(i, err) for i, x, err in items if x is None and err is not None]
    x = torch.stack([x for _, x in good]) if good else None
    return [i for i, _ in good], x, bad


def preprocess(cfg: Config) -> tuple[Callable[[Any], Tensor], str]:
    """``(transform, PIL mode)`` that turn an image file into what the run's encoder evaluates on."""
    return eval_pipeline(cfg.data, cfg.model.img_size), image_mode(cfg.model.in_chans)


def _files_dataset(cfg: Config, paths: Sequence[str]) -> Dataset:
    """The images, or for a video model the videos' evaluation views (checked to fit a clip first)."""
    if not is_video_model(cfg):
        transform, mode = preprocess(cfg)
        return ImageFiles(paths, transform, mode)
    from openjepa.data.video import clip_spec

    if cfg.model.in_chans != 3:
        raise EmbedError(f"video files give 3 channels; the model takes {cfg.model.in_chans}")
    spec = clip_spec(cfg.data)
    check_clips_fit(paths, spec)
    return VideoFiles(paths, spec, cfg.model.img_size, eval_pipeline(cfg.data, cfg.model.img_size))


def _encode(method: JEPAMethod, x: Tensor, encoder: str, pool: str) -> Tensor:
    """Rows of a batch: images (B, C, H, W) or views (B, V, C, T, H, W) -> pooled (B, D) (the mean over tokens
    and views) or tokens (B, T, D), per view (B, V, T, D) when V > 1."""
    xv, v = split_views(x)
    z = method.encode(xv, encoder)  # (B*V, T, D) tokens
    if pool == "mean":
        return z.mean(dim=1).reshape(-1, v, z.shape[-1]).mean(dim=1)  # (B*V, D) -> (B, V, D) -> (B, D)
    return z.reshape(-1, v, *z.shape[1:]) if v > 1 else z


@torch.no_grad()
def embed_images(
    method: JEPAMethod,
    cfg: Config,
    paths: Sequence[str],
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
    encoder: str = "target",
    pool: str = "mean",
    on_error: str = "skip",
    num_workers: int = 0,
    progress: bool = True,
) -> Embeddings:
    """Encode the image files ``paths`` with ``method.encode(x, encoder)`` (``method`` already on ``device``);
    for a video model (:func:`is_video_model`) the video files ``paths`` (see the module docstring).

    ``pool="mean"`` averages the tokens (N, D); ``"none"`` keeps them (N, T, D). An unreadable file
    is logged and listed in ``.skipped`` (``on_error="skip"``) or raises :class:`EmbedError`
    naming it (``"raise"``); it is never dropped silently. ``batch_size`` defaults to the run's
    ``eval.batch_size``.
    """
    batch_size = cfg.eval.batch_size if batch_size is None else batch_size
    if pool not in POOLS:
        raise EmbedError(f"unknown pool {pool!r}; choose one of: {', '.join(POOLS)}")
    if on_error not in ON_ERROR:
        raise EmbedError(f"unknown on_error {on_error!r}; choose one of: {', '.join(ON_ERROR)}")
    if batch_size < 1:
        raise EmbedError(f"batch size must be positive, got {batch_size}")
    loader = DataLoader(_files_dataset(cfg, paths), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=_collate)
    what = "video" if is_video_model(cfg) else "image"
    device = torch.device(device)
    was_training = method.training
    method.eval()
    feats: list[Tensor] = []
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    unit = "img" if what == "image" else what
    with tqdm(total=len(paths), disable=not progress, unit=unit, desc="embed", dynamic_ncols=True) as bar:
        for idx, x, bad in loader:
            for i, reason in bad:
                if on_error == "raise":
                    raise EmbedError(f"cannot decode {what} {paths[i]}: {reason}")
                log.warning("embed: skipping unreadable %s %s (%s)", what, paths[i], reason)
                skipped.append((paths[i], reason))
            if x is not None:
                feats.append(_encode(method, x.to(device), encoder, pool).float().cpu())
                files.extend(paths[i] for i in idx)
            bar.update(len(idx) + len(bad))
    method.train(was_training)
    if not feats:
        raise EmbedError(f"none of the {len(paths)} {what}s could be decoded (first: {skipped[0][0]}: "
                         f"{skipped[0][1]})")
    return Embeddings(torch.cat(feats), files, skipped)


def check_output(out: str | os.PathLike) -> Path:
    """``out`` as a Path, after checking its suffix names a known format."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise EmbedError(f"output {out} must end in {' or '.join(FORMATS)}")
    return out


def save_embeddings(emb: Embeddings, out: str | os.PathLike, metadata: dict[str, str] | None = None,
                    settings: dict[str, Any] | None = None) -> list[Path]:
    """Write ``emb.features`` to ``out`` (.npy or .safetensors), ``out.files.txt`` and, when some
    images were skipped, ``out.skipped.txt`` (a stale one from an earlier export is removed).
    ``metadata`` (strings) goes into a safetensors header beside the file list. ``settings`` (video:
    the clip settings, JSON values) go to ``out.meta.json`` with ``metadata`` and the shape, and into
    the safetensors header as ``clip`` (a stale ``meta.json`` is removed without them). Returns the
    paths written: the features, the file list, then the skipped list and the meta file when written."""
    out = check_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    feats = emb.features.contiguous()
    if out.suffix.lower() == ".npy":
        np.save(out, feats.numpy())
    else:
        from openjepa.engine.checkpoint import save_safetensors

        meta = {**(metadata or {}), "files": json.dumps(emb.files), "shape": json.dumps(list(feats.shape))}
        if settings is not None:
            meta["clip"] = json.dumps(settings, sort_keys=True)
        save_safetensors({"features": feats}, out, metadata=meta)  # atomic, and the mode open() gives (not 0600)
    files_txt = out.with_name(out.name + ".files.txt")
    files_txt.write_text("".join(f"{p}\n" for p in emb.files))
    written = [out, files_txt]
    skipped_txt = out.with_name(out.name + ".skipped.txt")
    if emb.skipped:
        skipped_txt.write_text("".join(f"{p}\t{reason}\n" for p, reason in emb.skipped))
        written.append(skipped_txt)
    elif skipped_txt.exists():
        skipped_txt.unlink()
    meta_json = out.with_name(out.name + ".meta.json")
    if settings is not None:
        doc = {**(metadata or {}), "clip": settings, "shape": list(feats.shape), "files": len(emb.files)}
        meta_json.write_text(json.dumps(doc, indent=2))
        written.append(meta_json)
    elif meta_json.exists():
        meta_json.unlink()
    return written


def embed_checkpoint(
    checkpoint: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    device: str | None = None,
    batch_size: int | None = None,
    encoder: str | None = None,
    pool: str = "mean",
    on_error: str = "skip",
    num_workers: int = 0,
    progress: bool = True,
) -> Embeddings:
    """``openjepa embed``: load a run or checkpoint, encode ``inputs`` (folders and files), save to ``out``.

    ``device`` defaults to the run's setting, ``encoder`` to its ``eval.encoder``, ``batch_size``
    to its ``eval.batch_size``. A video model reads video files (:func:`list_videos`) and records
    its clip settings beside the features (:func:`clip_settings`, ``out.meta.json``).
    """
    out = check_output(out)
    cfg, method, _run_dir, step = load_any(checkpoint)  # a run, or any loadable model (its encoder alone)
    video = is_video_model(cfg)
    paths = list_videos(inputs) if video else list_images(inputs)
    which = encoder or cfg.eval.encoder
    dev = resolve_device(device or cfg.device)
    emb = embed_images(method.to(dev), cfg, paths, dev, batch_size, which, pool, on_error, num_workers, progress)
    meta = {"checkpoint": str(checkpoint), "step": str(step), "encoder": which, "pool": pool,
            "img_size": str(cfg.model.img_size)}
    written = save_embeddings(emb, out, meta, clip_settings(cfg) if video else None)
    what = "video" if video else "image"
    print(f"embedded {len(emb.files)} {what}(s) -> {out} {tuple(emb.features.shape)}; file list: {written[1]}"
          + (f"; clip settings: {written[-1]}" if video else ""))
    if emb.skipped:
        print(f"skipped {len(emb.skipped)} unreadable {what}(s), listed in {written[2]}:")
        for p, reason in emb.skipped:
            print(f"  {p}: {reason}")
    return emb
