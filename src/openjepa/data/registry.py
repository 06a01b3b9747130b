"""Datasets by name: ``build_dataset`` (config -> Dataset) and ``dataset_info`` (what a model needs
to know before seeing data: channels, classes, default size, normalisation).

A new dataset is a module with a Dataset class plus one entry in :data:`_INFO` and one branch in
:func:`_construct`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from torch.utils.data import Dataset

from . import digits, fashion_mnist, folder, shapes
from .base import DataError
from .trajectories import TrajectoryDataset
from .transforms import build_pipeline

if TYPE_CHECKING:
    from ..config.schema import DataConfig

DATASETS: Tuple[str, ...] = ("shapes", "digits", "fashion_mnist", "folder", "trajectories")


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    ``mean``/``std`` are the ones :func:`build_dataset` normalises with (the config's override, when
    set, else the dataset's own); ``num_classes`` is 0 for unlabelled data.
    """

    name: str
    in_chans: int
    num_classes: int
    default_img_size: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    class_names: Tuple[str, ...]


_INFO: Dict[str, DatasetInfo] = {
    "shapes": DatasetInfo("shapes", 3, shapes.NUM_CLASSES, 32, shapes.MEAN, shapes.STD, shapes.CLASS_NAMES),
    "digits": DatasetInfo("digits", 1, 10, digits.DEFAULT_IMG_SIZE, digits.MEAN, digits.STD, digits.CLASS_NAMES),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", 1, 10, fashion_mnist.DEFAULT_IMG_SIZE, fashion_mnist.MEAN, fashion_mnist.STD, fashion_mnist.CLASS_NAMES
    ),
    "folder": DatasetInfo("folder", 3, 0, folder.DEFAULT_IMG_SIZE, folder.MEAN, folder.STD, ()),
    # `openjepa collect` episodes: RGB frames scaled to [-1, 1], i.e. mean 0.5 and std 0.5 in [0, 1] units.
    "trajectories": DatasetInfo("trajectories", 3, 0, 64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), ()),
}


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return name


def _folder_root(cfg: "DataConfig") -> Path:
    root = getattr(cfg, "root", None)
    if not root:
        raise DataError("data.name=folder needs data.root=/path/to/images")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"folder: image directory not found: {path}")
    return path


def _stats(values: Optional[Any], default: Tuple[float, ...], in_chans: int, what: str) -> Tuple[float, ...]:
    if values is None:
        return default
    out = tuple(float(v) for v in values)
    if len(out) not in (1, in_chans):
        raise ValueError(f"data.{what} has {len(out)} values but the dataset has {in_chans} channel(s)")
    return out


def dataset_info(cfg: "DataConfig") -> DatasetInfo:
    """Facts about the dataset ``cfg`` (a ``DataConfig``) names, without loading it.

    For ``folder`` this lists the class subfolders of ``data.root`` (``root/train`` when split).
    """
    info = _INFO[_check_name(cfg.name)]
    if info.name == "folder":
        root = _folder_root(cfg)
        dirs = folder.split_dirs(root)
        names = tuple(folder.class_names_of(dirs["train"] if dirs else root))
        info = replace(info, num_classes=len(names), class_names=names)
    return replace(
        info,
        mean=_stats(getattr(cfg, "mean", None), info.mean, info.in_chans, "mean"),
        std=_stats(getattr(cfg, "std", None), info.std, info.in_chans, "std"),
    )


def eval_pipeline(cfg: "DataConfig", img_size: int) -> Any:
    """The deterministic per-item pipeline of the dataset ``cfg`` names (``cfg.eval_transforms``,
    resize to ``img_size``, the dataset's normalisation): what :func:`build_dataset` gives its
    datasets as ``eval_transform``. Reads no data, so it works where the data is gone (a folder
    run evaluated on another machine).
    """
    base = _INFO[_check_name(cfg.name)]
    mean = _stats(getattr(cfg, "mean", None), base.mean, base.in_chans, "mean")
    std = _stats(getattr(cfg, "std", None), base.std, base.in_chans, "std")
    return build_pipeline(cfg.eval_transforms, img_size, mean, std)


def _construct(cfg: "DataConfig", split: str, img_size: int, seed: int, tf: Any, eval_tf: Any) -> Dataset:
    name = cfg.name
    held_out = split in ("test", "val")
    if name == "shapes":
        size = cfg.test_size if held_out else cfg.train_size
        return shapes.ShapesDataset(size, img_size, seed, "test" if held_out else "train", tf, eval_tf)
    if name == "digits":
        return digits.DigitsDataset(split, img_size, cfg.val_fraction, seed, tf, eval_tf)
    if name == "fashion_mnist":
        return fashion_mnist.FashionMNIST(cfg.root, split, bool(cfg.download), tf, eval_tf)
    if name == "trajectories":
        return Unlabelled(TrajectoryDataset(trajectory_root(cfg), cfg.num_frames, cfg.frameskip,
                                            "val" if held_out else "train", cfg.val_fraction, seed))
    return folder.FolderDataset(_folder_root(cfg), split, cfg.val_fraction, seed, cfg.on_error, tf, eval_tf)


class Unlabelled(Dataset):
    """A dataset of dict items (sub-trajectories) as the ``(item, -1)`` pairs the training loader takes."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> Tuple[Any, int]:
        return self.dataset[i], -1


def trajectory_root(cfg: "DataConfig") -> Path:
    if not getattr(cfg, "root", None):
        raise DataError("data.name=trajectories needs data.root=DIR, a folder written by `openjepa collect`")
    return Path(cfg.root).expanduser()


def build_dataset(cfg: "DataConfig", split: str, img_size: int, seed: int = 0, train: Optional[bool] = None) -> Dataset:
    """The ``split`` (``"train"``, ``"test"`` or ``"val"``, the same held-out part) of the dataset
    ``cfg`` (a ``DataConfig``) names, yielding ``(image (C, img_size, img_size) normalised, label)``.

    ``train`` (default: ``split == "train"``) applies ``cfg.train_transforms``; otherwise
    ``cfg.eval_transforms``. Either way the dataset also carries the eval pipeline as
    ``eval_transform`` (see :func:`openjepa.data.base.eval_view`). ``seed`` seeds the generated
    ``shapes`` images and the digits/folder train/test split.
    """
    info = dataset_info(cfg)
    if split not in ("train", "test", "val"):
        raise ValueError(f"unknown split {split!r}; choose one of: train, test, val")
    if img_size < 1:
        raise ValueError(f"img_size must be positive, got {img_size}")
    train = split == "train" if train is None else bool(train)
    eval_tf = eval_pipeline(cfg, img_size)
    tf = build_pipeline(cfg.train_transforms, img_size, info.mean, info.std) if train else eval_tf
    return _construct(cfg, split, img_size, seed, tf, eval_tf)
