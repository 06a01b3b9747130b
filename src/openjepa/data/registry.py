"""Datasets by name: ``build_dataset`` (config -> Dataset) and ``dataset_info`` (what a model needs
to know before seeing data: channels, classes, default size, normalisation, the kind of item).

A new dataset is one module with a Dataset class and a builder decorated with
:func:`register_dataset`; importing ``openjepa.data`` imports the built-in ones. Nothing in the
engine names a dataset: what a dataset determines about the run (a world model's action width,
say) is its ``prepare`` hook, and its own impossible settings are its ``check`` hook.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from torch.utils.data import Dataset

from openjepa.errors import ConfigError
from openjepa.registry import Registry

from .transforms import build_pipeline

if TYPE_CHECKING:
    from ..config.schema import Config, DataConfig

# What an item is, so a method can say what it trains on: (image, label) pairs, (clip (C, T, H, W),
# label) pairs, or dicts of recorded trajectories (obs, actions, states).
KINDS = ("image", "video", "trajectory")


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
    kind: str = "image"


Builder = Callable[["DataConfig", str, int, int, Any, Any], Dataset]  # (cfg, split, img_size, seed, tf, eval_tf)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its static info, its builder and optional hooks.

    ``describe(cfg, info)`` refines the info from the data itself (a folder's class names);
    ``prepare(cfg)`` fills run settings the data determines; ``check(cfg)`` raises
    :class:`~openjepa.errors.ConfigError` for settings this dataset cannot serve.
    """

    info: DatasetInfo
    build: Builder
    describe: Optional[Callable[["DataConfig", DatasetInfo], DatasetInfo]] = None
    prepare: Optional[Callable[["Config"], None]] = None
    check: Optional[Callable[["Config"], None]] = None


DATASETS: Registry[DatasetSpec] = Registry("dataset", "data.name")


def register_dataset(name: str, info: DatasetInfo, *, describe: Optional[Callable] = None,
                     prepare: Optional[Callable] = None, check: Optional[Callable] = None) -> Callable[[Builder], Builder]:
    """Decorator registering a builder ``(cfg, split, img_size, seed, transform, eval_transform) -> Dataset``."""
    if info.kind not in KINDS:
        raise ValueError(f"dataset {name!r}: unknown kind {info.kind!r}; choose one of: {', '.join(KINDS)}")

    def deco(build: Builder) -> Builder:
        DATASETS.add(name, DatasetSpec(info, build, describe, prepare, check))
        return build
    return deco


def dataset_names() -> list[str]:
    return DATASETS.names()


def dataset_spec(name: str) -> DatasetSpec:
    return DATASETS.get(name)


def _stats(values: Optional[Any], default: Tuple[float, ...], in_chans: int, what: str) -> Tuple[float, ...]:
    if values is None:
        return default
    out = tuple(float(v) for v in values)
    if len(out) not in (1, in_chans):
        raise ConfigError(f"data.{what} has {len(out)} values but the dataset has {in_chans} channel(s)")
    return out


def _normalisation(cfg: "DataConfig", info: DatasetInfo) -> DatasetInfo:
    return replace(info, mean=_stats(getattr(cfg, "mean", None), info.mean, info.in_chans, "mean"),
                   std=_stats(getattr(cfg, "std", None), info.std, info.in_chans, "std"))


def dataset_info(cfg: "DataConfig") -> DatasetInfo:
    """Facts about the dataset ``cfg`` (a ``DataConfig``) names, without loading it.

    For ``folder`` this lists the class subfolders of ``data.root`` (``root/train`` when split).
    """
    spec = dataset_spec(cfg.name)
    info = spec.describe(cfg, spec.info) if spec.describe is not None else spec.info
    return _normalisation(cfg, info)


def eval_pipeline(cfg: "DataConfig", img_size: int) -> Any:
    """The deterministic per-item pipeline of the dataset ``cfg`` names (``cfg.eval_transforms``,
    resize to ``img_size``, the dataset's normalisation): what :func:`build_dataset` gives its
    datasets as ``eval_transform``. Reads no data, so it works where the data is gone (a folder
    run evaluated on another machine).
    """
    info = _normalisation(cfg, dataset_spec(cfg.name).info)
    return build_pipeline(cfg.eval_transforms, img_size, info.mean, info.std)


def build_dataset(cfg: "DataConfig", split: str, img_size: int, seed: int = 0, train: Optional[bool] = None) -> Dataset:
    """The ``split`` (``"train"``, ``"test"`` or ``"val"``, the same held-out part) of the dataset
    ``cfg`` (a ``DataConfig``) names, yielding ``(image (C, img_size, img_size) normalised, label)``.

    ``train`` (default: ``split == "train"``) applies ``cfg.train_transforms``; otherwise
    ``cfg.eval_transforms``. Either way the dataset also carries the eval pipeline as
    ``eval_transform`` (see :func:`openjepa.data.base.eval_view`). ``seed`` seeds the generated
    ``shapes`` images and the digits/folder train/test split.
    """
    spec = dataset_spec(cfg.name)
    info = dataset_info(cfg)
    if split not in ("train", "test", "val"):
        raise ValueError(f"unknown split {split!r}; choose one of: train, test, val")
    if img_size < 1:
        raise ValueError(f"img_size must be positive, got {img_size}")
    train = split == "train" if train is None else bool(train)
    eval_tf = eval_pipeline(cfg, img_size)
    tf = build_pipeline(cfg.train_transforms, img_size, info.mean, info.std) if train else eval_tf
    return spec.build(cfg, split, img_size, seed, tf, eval_tf)


def prepare_config(cfg: "Config") -> None:
    """Fill what the dataset determines into ``cfg`` (input channels; the dataset's own ``prepare``)."""
    spec = dataset_spec(cfg.data.name)
    cfg.model.in_chans = dataset_info(cfg.data).in_chans
    if spec.prepare is not None:
        spec.prepare(cfg)
    m = cfg.model
    if m.num_frames % m.tubelet_size:
        key = "data.frames_per_clip" if dataset_info(cfg.data).kind == "video" else "model.num_frames"
        raise ConfigError(f"{key}={m.num_frames} is not a multiple of model.tubelet_size={m.tubelet_size}")


def image_stream(cfg: "Config") -> Optional["DataConfig"]:
    """The data config of a video run's joint image stream (``data.images``, V-JEPA 2's images trained jointly
    with clips), or None when ``data.images`` is empty.

    ``data.images`` holds overrides of ``data.*`` for the stream: ``{frames_as_images: true}`` serves the frames
    of the run's own clips, ``{name: folder, root: DIR, batch_size: 72}`` another image dataset. ConfigError
    naming the key for an unknown key, a stream that does not yield images, a run whose own data is not video,
    or a setting the stream's dataset cannot serve (its ``check`` hook).
    """
    d = cfg.data
    if not d.images:
        return None
    if not isinstance(d.images, dict):
        raise ConfigError(f"data.images: expected a mapping of data settings, got {d.images!r}")
    names = [f.name for f in fields(d) if f.name not in ("images", "image_weight")]
    bad = sorted(k for k in d.images if k not in names)
    if bad:
        raise ConfigError(f"data.images: unknown key(s) {', '.join(bad)}; choose from: {', '.join(names)}")
    own = dataset_info(d).kind
    if own != "video":
        raise ConfigError(f"data.images adds images to a video run; data.name={d.name} holds {own} data "
                          f"(unset data.images)")
    stream = replace(d, images={}, **d.images)
    kind = dataset_info(stream).kind
    if kind != "image":
        hint = " (add frames_as_images: true)" if kind == "video" else ""
        raise ConfigError(f"data.images: data.name={stream.name} holds {kind} data, not images{hint}")
    check = dataset_spec(stream.name).check
    if check is not None:
        try:
            check(replace(cfg, data=stream))
        except ConfigError as e:
            raise ConfigError(f"data.images: {e}") from e
    return stream
