"""Feature export: encode image files with a trained run's encoder and save the features.

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

    features: Tensor  # (N, D) pooled or (N, T, D) tokens, float32 on the CPU
    files: list[str]  # readable images, in input order
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


def _collate(items: list[Item]) -> tuple[list[int], Tensor | None, list[tuple[int, str]]]:
    """-> (indices of readable items, their images stacked (B, C, H, W) or None, [(index, reason)])."""
    good = [(i, x) for i, x, _ in items if x is not None]
    bad = [(i, err) for i, x, err in items if x is None and err is not None]
    x = torch.stack([x for _, x in good]) if good else None
    return [i for i, _ in good], x, bad


def preprocess(cfg: Config) -> tuple[Callable[[Any], Tensor], str]:
    """``(transform, PIL mode)`` that turn an image file into what the run's encoder evaluates on."""
    return eval_pipeline(cfg.data, cfg.model.img_size), image_mode(cfg.model.in_chans)


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
    """Encode the image files ``paths`` with ``method.encode(x, encoder)`` (``method`` already on ``device``).

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
    transform, mode = preprocess(cfg)
    loader = DataLoader(ImageFiles(paths, transform, mode), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=_collate)
    device = torch.device(device)
    was_training = method.training
    method.eval()
    feats: list[Tensor] = []
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    with tqdm(total=len(paths), disable=not progress, unit="img", desc="embed", dynamic_ncols=True) as bar:
        for idx, x, bad in loader:
            for i, reason in bad:
                if on_error == "raise":
                    raise EmbedError(f"cannot decode image {paths[i]}: {reason}")
                log.warning("embed: skipping unreadable image %s (%s)", paths[i], reason)
                skipped.append((paths[i], reason))
            if x is not None:
                z = method.encode(x.to(device), encoder)  # (B, T, D) tokens
                feats.append((z.mean(dim=1) if pool == "mean" else z).float().cpu())
                files.extend(paths[i] for i in idx)
            bar.update(len(idx) + len(bad))
    method.train(was_training)
    if not feats:
        raise EmbedError(f"none of the {len(paths)} images could be decoded (first: {skipped[0][0]}: {skipped[0][1]})")
    return Embeddings(torch.cat(feats), files, skipped)


def check_output(out: str | os.PathLike) -> Path:
    """``out`` as a Path, after checking its suffix names a known format."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise EmbedError(f"output {out} must end in {' or '.join(FORMATS)}")
    return out


def save_embeddings(emb: Embeddings, out: str | os.PathLike, metadata: dict[str, str] | None = None) -> list[Path]:
    """Write ``emb.features`` to ``out`` (.npy or .safetensors), ``out.files.txt`` and, when some
    images were skipped, ``out.skipped.txt`` (a stale one from an earlier export is removed).
    ``metadata`` (strings) goes into a safetensors header beside the file list. Returns the paths written."""
    out = check_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    feats = emb.features.contiguous()
    if out.suffix.lower() == ".npy":
        np.save(out, feats.numpy())
    else:
        from openjepa.engine.checkpoint import save_safetensors

        meta = {**(metadata or {}), "files": json.dumps(emb.files), "shape": json.dumps(list(feats.shape))}
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
    to its ``eval.batch_size``.
    """
    out = check_output(out)
    paths = list_images(inputs)
    cfg, method, _run_dir, step = load_any(checkpoint)  # a run, or any loadable model (its encoder alone)
    which = encoder or cfg.eval.encoder
    dev = resolve_device(device or cfg.device)
    emb = embed_images(method.to(dev), cfg, paths, dev, batch_size, which, pool, on_error, num_workers, progress)
    meta = {"checkpoint": str(checkpoint), "step": str(step), "encoder": which, "pool": pool,
            "img_size": str(cfg.model.img_size)}
    written = save_embeddings(emb, out, meta)
    print(f"embedded {len(emb.files)} image(s) -> {out} {tuple(emb.features.shape)}; file list: {written[1]}")
    if emb.skipped:
        print(f"skipped {len(emb.skipped)} unreadable image(s), listed in {written[2]}:")
        for p, reason in emb.skipped:
            print(f"  {p}: {reason}")
    return emb
