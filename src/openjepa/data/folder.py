"""``folder``: any directory of images.

Layouts (extensions, case-insensitive: jpg jpeg png bmp gif webp tif tiff; hidden files and
directories are ignored; subfolders are scanned recursively):

- class subfolders, ``root/<class>/**/img.png``: labels are the sorted class-folder names;
- flat, ``root/*.png`` with no image-holding subfolders: unlabelled (label -1);
- either of the above under ``root/train`` and ``root/test`` (or ``root/val``): those are the
  splits, with class indices taken from ``train``. Without them, a deterministic stratified split
  by ``val_fraction`` and ``seed`` holds out the test part.

Items come in a seeded random order (not grouped by class), so any prefix is a fair sample.

A layout that cannot be used (an empty folder, no files of a known extension, a class folder with
no images while its siblings have some) raises :class:`~openjepa.data.base.DataError` naming the
folder when the dataset is built, i.e. before training starts.

Unreadable images: with ``on_error="raise"`` the item raises ``DataError`` naming the file; with
``on_error="skip"`` the item is replaced by the next readable one (index+1, index+2, ... mod n) and
the file is recorded in ``.skipped`` (``(path, reason)`` pairs; their number is the count) and
logged once. DataLoader workers are separate processes, so their ``.skipped`` lists do not reach
the main process: set ``.skip_log`` to a file and every process appends ``path<TAB>reason`` lines
to it (what the trainer does, see :mod:`openjepa.engine.faults`), or call
:meth:`FolderDataset.verify` in the main process for the full list up front.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from .base import DataError, stratified_split
from .registry import DatasetInfo, register_dataset
from .transforms import to_float_image

log = logging.getLogger(__name__)

IMG_EXTENSIONS: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# What a bad file can raise while PIL decodes it (UnidentifiedImageError and truncation are OSError).
DECODE_ERRORS: Tuple[type, ...] = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)
DEFAULT_IMG_SIZE = 224
MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet statistics
STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)
SPLITS = ("train", "test", "val")
LAYOUT_HELP = (
    "expected image files (" + ", ".join(e[1:] for e in IMG_EXTENSIONS) + ") either in class subfolders "
    "(root/<class>/<image>) or directly in the folder (unlabelled); optionally under root/train and root/test"
)


def _visible(entry: os.DirEntry) -> bool:
    return not entry.name.startswith(".")


def is_image_file(name: str) -> bool:
    """True when ``name`` has one of :data:`IMG_EXTENSIONS` (case-insensitive)."""
    return name.lower().endswith(IMG_EXTENSIONS)


def scan_images(directory: Path) -> List[Path]:
    """All image files under ``directory`` (recursive), sorted."""
    out: List[Path] = []
    stack = [directory]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if not _visible(e):
                    continue
                if e.is_dir():
                    stack.append(Path(e.path))
                elif e.is_file() and is_image_file(e.name):
                    out.append(Path(e.path))
    return sorted(out)


def _has_image(directory: Path) -> bool:
    for _dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(is_image_file(f) and not f.startswith(".") for f in filenames):
            return True
    return False


def _subdirs(directory: Path) -> List[Path]:
    with os.scandir(directory) as it:
        return sorted(Path(e.path) for e in it if _visible(e) and e.is_dir())


def split_dirs(root: Path) -> Optional[Dict[str, Path]]:
    """``{"train": root/train, "test": root/test or root/val}`` when both exist, else ``None``."""
    held = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and held is not None:
        return {"train": root / "train", "test": held}
    return None


def class_names_of(directory: Path) -> List[str]:
    """Class names (sorted subfolders holding at least one image); empty for a flat folder.

    Raises :class:`DataError` when some subfolders hold images and others do not: in the
    class-subfolder layout an empty class folder is a class with no examples, almost always a
    mistake (a failed copy, a typo in a folder name), so it is named rather than dropped.
    """
    subdirs = _subdirs(directory)
    names = [d.name for d in subdirs if _has_image(d)]
    empty = [str(d) for d in subdirs if d.name not in names]
    if names and empty:
        raise DataError(f"folder: class folder(s) with no images: {', '.join(empty)} (in the class-subfolder "
                        f"layout every subfolder of {directory} is a class); add images or remove the folder(s)")
    return names


def scan_layout(directory: Path, class_names: Optional[List[str]] = None) -> Tuple[List[Tuple[str, int]], List[str]]:
    """``(samples, class_names)`` of one directory: samples are ``(path, label)``.

    ``class_names`` fixes the label indices (the test split reuses the train classes); a class
    folder not in it is an error, since its label would be meaningless.
    """
    found = class_names_of(directory)
    if not found:  # flat: unlabelled
        if class_names:
            raise DataError(f"folder: {directory} has no class subfolders but the train split has classes "
                            f"{class_names}")
        return [(str(p), -1) for p in scan_images(directory)], []
    names = list(class_names) if class_names is not None else found
    index = {n: i for i, n in enumerate(names)}
    unknown = [n for n in found if n not in index]
    if unknown:
        raise DataError(f"folder: {directory} has class folders {unknown} that the train split does not have ({names})")
    loose = [e.name for e in os.scandir(directory) if e.is_file() and is_image_file(e.name) and _visible(e)]
    if loose:
        log.warning("folder: ignoring %d image(s) directly in %s (class-subfolder layout)", len(loose), directory)
    samples = [(str(p), index[n]) for n in found for p in scan_images(directory / n)]
    return samples, names


def load_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """Decode ``path`` fully (not lazily) and convert it to PIL ``mode`` ("RGB", or "L" for grey)."""
    with Image.open(path) as im:
        return im.convert(mode)


def load_rgb(path: str) -> Image.Image:
    """Decode ``path`` fully (not lazily) and convert it to RGB."""
    return load_image(path, "RGB")


def append_skip_log(path: Path, image: str, reason: str) -> None:
    """Append ``image<TAB>reason`` to ``path``: one ``write`` in append mode, so lines from several
    DataLoader workers (or ranks) never interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = f"{image}\t{' '.join(reason.split())}\n"  # one line, whatever the decoder's message
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)


def read_skip_log(path: Path) -> List[Tuple[str, str]]:
    """The ``(path, reason)`` pairs of a skip log, first occurrence of each path only; [] if none."""
    if not path.is_file():
        return []
    seen: Dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        image, _, reason = line.partition("\t")
        if image and image not in seen:
            seen[image] = reason
    return list(seen.items())


class FolderDataset(Dataset):
    """Images from a directory; item ``i`` is ``(image, label)`` with label -1 when unlabelled.

    Args:
        root: the directory (see the module doc for the layouts).
        split: ``"train"`` or ``"test"`` (``"val"`` means the same held-out part).
        val_fraction: held-out fraction when the folder has no train/test subfolders.
        seed: seed of that split.
        on_error: ``"skip"`` (replace unreadable images by the next readable one and record them
            in ``.skipped``, and in the file ``.skip_log`` when set) or ``"raise"`` (``DataError``
            naming the file).
        transform: applied to the RGB PIL image; ``None`` returns a [0, 1] float tensor.
        eval_transform: the deterministic pipeline :func:`openjepa.data.raw_pixels` switches to.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        val_fraction: float = 0.2,
        seed: int = 0,
        on_error: str = "skip",
        transform: Optional[Callable[[Any], Tensor]] = None,
        eval_transform: Optional[Callable[[Any], Tensor]] = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"folder: unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        if on_error not in ("skip", "raise"):
            raise ValueError(f"data.on_error must be 'skip' or 'raise', got {on_error!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"folder: image directory not found: {self.root}")
        self.split = "test" if split == "val" else split
        self.on_error = on_error
        self.transform = transform
        self.eval_transform = eval_transform
        self.samples, self.class_names = self._scan(val_fraction, seed)
        self.skipped: List[Tuple[str, str]] = []  # (path, reason) of every unreadable file met here
        self.skip_log: Optional[Path] = None  # when set, skipped files are also appended here (any process)
        self._bad: Set[int] = set()

    def _scan(self, val_fraction: float, seed: int) -> Tuple[List[Tuple[str, int]], List[str]]:
        dirs = split_dirs(self.root)
        if dirs is not None:
            directory = dirs["train"] if self.split == "train" else dirs["test"]
            train, names = scan_layout(dirs["train"])
            samples = train if self.split == "train" else scan_layout(directory, names)[0]
            if not samples:
                raise DataError(f"folder: no images found in {directory}; {LAYOUT_HELP}")
            # Seeded random order (not grouped by class), so that any prefix is a fair sample.
            perm = torch.randperm(len(samples), generator=torch.Generator().manual_seed(int(seed))).tolist()
            return [samples[i] for i in perm], names
        samples, names = scan_layout(self.root)
        if not samples:
            raise DataError(f"folder: no images found in {self.root}; {LAYOUT_HELP}")
        train_idx, test_idx = stratified_split([y for _, y in samples], val_fraction, seed)  # seeded order too
        idx = train_idx if self.split == "train" else test_idx
        if not idx:
            raise DataError(f"folder: the {self.split} split of {self.root} is empty "
                            f"(data.val_fraction={val_fraction})")
        return [samples[i] for i in idx], names

    @property
    def targets(self) -> List[int]:
        """All labels, in order (-1 for unlabelled)."""
        return [y for _, y in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def _record(self, index: int, path: str, err: BaseException) -> None:
        reason = f"{type(err).__name__}: {err}"
        self._bad.add(index)
        self.skipped.append((path, reason))
        log.warning("folder: skipping unreadable image %s (%s)", path, reason)
        if self.skip_log is not None:
            append_skip_log(self.skip_log, path, reason)

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        n = len(self.samples)
        if not -n <= index < n:
            raise IndexError(f"folder: index {index} out of range for {n} images")
        for k in range(n):
            j = (index + k) % n  # deterministic replacement: the next readable image
            if j in self._bad:
                continue
            path, label = self.samples[j]
            try:
                img = load_rgb(path)
            except DECODE_ERRORS as e:
                if self.on_error == "raise":
                    raise DataError(f"folder: cannot decode image {path}: {type(e).__name__}: {e} "
                                    f"(data.on_error=skip skips unreadable images)") from e
                self._record(j, path, e)
                continue
            return (self.transform(img) if self.transform is not None else to_float_image(img)), label
        first = f" (first: {self.skipped[0][0]}: {self.skipped[0][1]})" if self.skipped else ""
        raise DataError(f"folder: none of the {n} images in {self.root} ({self.split}) could be decoded{first}")

    def verify(self, progress: bool = True) -> List[Tuple[str, str]]:
        """Decode every file once; return ``[(path, reason)]`` of the unreadable ones.

        They are also recorded (``.skipped``, logged once), so later items skip them without
        another decode attempt. Use this in the main process to see every bad file up front.
        """
        from tqdm.auto import tqdm

        bad: List[Tuple[str, str]] = []
        for j, (path, _label) in enumerate(tqdm(self.samples, desc=f"verify {self.root.name}", disable=not progress)):
            if j in self._bad:
                bad.extend(s for s in self.skipped if s[0] == path)
                continue
            try:
                load_rgb(path)
            except DECODE_ERRORS as e:
                self._record(j, path, e)
                bad.append(self.skipped[-1])
        return bad

    def __repr__(self) -> str:
        return f"FolderDataset(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, classes={len(self.class_names)})"


def folder_root(cfg: Any) -> Path:
    """``data.root`` of a folder dataset, checked to be a directory."""
    if not getattr(cfg, "root", None):
        raise DataError("data.name=folder needs data.root=/path/to/images")
    path = Path(cfg.root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"folder: image directory not found: {path}")
    return path


def _describe(cfg: Any, info: DatasetInfo) -> DatasetInfo:
    """The class subfolders of ``data.root`` (``root/train`` when split) are the classes."""
    root = folder_root(cfg)
    dirs = split_dirs(root)
    names = tuple(class_names_of(dirs["train"] if dirs else root))
    return replace(info, num_classes=len(names), class_names=names)


@register_dataset("folder", DatasetInfo("folder", 3, 0, DEFAULT_IMG_SIZE, MEAN, STD, ()), describe=_describe)
def _build(cfg: Any, split: str, img_size: int, seed: int, tf: Any, eval_tf: Any) -> FolderDataset:
    return FolderDataset(folder_root(cfg), split, cfg.val_fraction, seed, cfg.on_error, tf, eval_tf)
