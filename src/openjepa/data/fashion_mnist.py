"""``fashion_mnist``: Zalando's Fashion-MNIST (28x28 greyscale, 60000 train / 10000 test) from IDX files.

The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each raw or ``.gz``) are looked for, in order, in:

1. ``data.root`` (also ``data.root/fashion-mnist`` and torchvision's ``data.root/FashionMNIST/raw``),
2. ``$OPENJEPA_DATA/fashion-mnist``,
3. ``~/.cache/openjepa/fashion-mnist`` (where ``data.download=true`` puts them),
4. ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu package ``dataset-fashion-mnist``).

Files are parsed with numpy and validated (IDX magic number, header dimensions, exact data size);
the images are held as one uint8 tensor and converted per item by the transform.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .registry import DatasetInfo, register_dataset

log = logging.getLogger(__name__)

URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES: Tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MEAN: Tuple[float] = (0.2860,)
STD: Tuple[float] = (0.3530,)
DEFAULT_IMG_SIZE = 28
FILES: Dict[str, Tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SIZES = {"train": 60000, "test": 10000}
SPLITS = ("train", "test", "val")

# IDX type codes (third magic byte) -> numpy dtype (big-endian).
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (raw or gzip-compressed, detected from its first bytes) into a numpy array.

    Raises ``ValueError`` naming ``path`` when the file is not valid IDX: bad gzip stream, bad
    magic number, or a data size that does not match the header (truncated or trailing bytes).
    """
    path = Path(path)
    buf = path.read_bytes()
    try:
        if buf[:2] == b"\x1f\x8b":  # gzip magic (whatever the file is called)
            buf = gzip.decompress(buf)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: corrupt or truncated gzip file ({e}); delete it and fetch it again") from e
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {buf[:4].hex() or 'empty'})")
    ndim = buf[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(buf) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(buf)} bytes, {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[buf[2]])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(buf) - header != expected:
        raise ValueError(
            f"{path}: IDX data is {len(buf) - header} bytes but the header {dims} needs {expected} "
            f"({'truncated' if len(buf) - header < expected else 'trailing bytes'})"
        )
    return np.frombuffer(buf, dtype=dtype, offset=header).reshape(dims).copy()


def cache_dir() -> Path:
    """Where ``download=True`` puts the files: ``~/.cache/openjepa/fashion-mnist``."""
    return Path.home() / ".cache" / "openjepa" / "fashion-mnist"


def search_dirs(root: Optional[str | os.PathLike] = None) -> List[Path]:
    """Directories searched for the IDX files, in order."""
    dirs: List[Path] = []
    if root:
        r = Path(root).expanduser()
        dirs += [r, r / "fashion-mnist", r / "FashionMNIST" / "raw"]
    env = os.environ.get("OPENJEPA_DATA")
    if env:
        dirs.append(Path(env).expanduser() / "fashion-mnist")
    dirs += [cache_dir(), SYSTEM_DIR]
    return dirs


def _file_in(d: Path, stem: str) -> Optional[Path]:
    for name in (stem + ".gz", stem):
        if (d / name).is_file():
            return d / name
    return None


def find_files(root: Optional[str | os.PathLike], split: str) -> Tuple[Path, Path]:
    """(images, labels) paths of ``split`` from the first directory that has both.

    Raises ``FileNotFoundError`` listing every directory looked in and how to fix it.
    """
    stems = FILES[split]
    dirs = search_dirs(root)
    for d in dirs:
        found = [_file_in(d, s) for s in stems]
        if found[0] is not None and found[1] is not None:
            return found[0], found[1]
    looked = "\n".join(f"  - {d}" for d in dirs)
    raise FileNotFoundError(
        f"fashion_mnist: {stems[0]}[.gz] and {stems[1]}[.gz] not found; looked in:\n{looked}\n"
        "Fix it with one of:\n"
        "  - apt-get install dataset-fashion-mnist   (Debian/Ubuntu; files go to /usr/share/datasets/fashion-mnist)\n"
        "  - data.root=/path/to/dir/with/idx/files\n"
        f"  - data.download=true   (fetches them from {URL} into {cache_dir()})"
    )


def download(dest: Optional[Path] = None, url: Optional[str] = None) -> Path:
    """Fetch the four ``.gz`` IDX files into ``dest`` (default :func:`cache_dir`), validating each.

    Each file is written to a ``.part`` file, checked with :func:`read_idx`, then renamed, so an
    interrupted download never leaves a file that looks complete.
    """
    dest = dest or cache_dir()
    url = url or URL
    dest.mkdir(parents=True, exist_ok=True)
    for split, stems in FILES.items():
        for stem in stems:
            target = dest / (stem + ".gz")
            if target.is_file():
                continue
            part = target.with_name(target.name + ".part")
            src = url.rstrip("/") + "/" + stem + ".gz"
            log.info("downloading %s -> %s", src, target)
            try:
                with urllib.request.urlopen(src, timeout=60) as r, open(part, "wb") as f:
                    shutil.copyfileobj(r, f)
            except OSError as e:  # URLError, timeouts, refused connections
                part.unlink(missing_ok=True)
                raise RuntimeError(
                    f"fashion_mnist: downloading {src} failed ({e}); without internet access use "
                    "`apt-get install dataset-fashion-mnist` or put the IDX files in data.root"
                ) from e
            try:
                arr = read_idx(part)
            except ValueError:
                part.unlink()
                raise
            if arr.shape[0] != SIZES[split]:
                part.unlink()
                raise ValueError(f"{src}: expected {SIZES[split]} items, got {arr.shape[0]}")
            os.replace(part, target)
    return dest


def load_split(root: Optional[str | os.PathLike], split: str, download_missing: bool = False) -> Tuple[Tensor, Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of ``split`` (``"train"`` or ``"test"``)."""
    try:
        img_path, lbl_path = find_files(root, split)
    except FileNotFoundError:
        if not download_missing:
            raise
        download()
        img_path, lbl_path = find_files(root, split)
    log.info("fashion_mnist %s: %s, %s", split, img_path, lbl_path)
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{lbl_path}: expected a 1-D uint8 label file, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels")
    if len(labels) and int(labels.max()) >= len(CLASS_NAMES):
        raise ValueError(f"{lbl_path}: label {int(labels.max())} out of range 0..{len(CLASS_NAMES) - 1}")
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


class FashionMNIST(Dataset):
    """One split of Fashion-MNIST; item ``i`` is ``(image, label)``.

    Args:
        root: extra directory searched first (see the module doc for the full search order).
        split: ``"train"`` or ``"test"`` (``"val"`` is the test set: there is no other).
        download: fetch the files into :func:`cache_dir` when they are not found anywhere.
        transform: applied to the (1, 28, 28) uint8 image; ``None`` returns it as float in [0, 1].
        eval_transform: the deterministic pipeline :func:`openjepa.data.raw_pixels` switches to.
    """

    def __init__(
        self,
        root: Optional[str | os.PathLike] = None,
        split: str = "train",
        download: bool = False,
        transform: Optional[Callable[[Any], Tensor]] = None,
        eval_transform: Optional[Callable[[Any], Tensor]] = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"fashion_mnist: unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        self.split = "test" if split == "val" else split
        self.images, self.labels = load_split(root, self.split, download_missing=download)
        self.transform = transform
        self.eval_transform = eval_transform
        self.class_names: List[str] = list(CLASS_NAMES)

    @property
    def targets(self) -> List[int]:
        """All labels, in order."""
        return self.labels.tolist()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        img = self.images[index].unsqueeze(0)  # (1, 28, 28) uint8
        out = self.transform(img) if self.transform is not None else img.float().div(255.0)
        return out, int(self.labels[index])

    def __repr__(self) -> str:
        return f"FashionMNIST(split={self.split!r}, n={len(self)})"


@register_dataset("fashion_mnist", DatasetInfo("fashion_mnist", 1, 10, DEFAULT_IMG_SIZE, MEAN, STD, CLASS_NAMES))
def _build(cfg: Any, split: str, img_size: int, seed: int, tf: Any, eval_tf: Any) -> FashionMNIST:
    return FashionMNIST(cfg.root, split, bool(cfg.download), tf, eval_tf)
