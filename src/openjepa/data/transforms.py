"""Image pipelines built from config with ``torchvision.transforms.v2``.

Config entries name a v2 transform and its keyword arguments::

    data:
      train_transforms:
        - {name: RandomResizedCrop, size: 32, scale: [0.3, 1.0]}
        - {name: RandomHorizontalFlip, p: 0.5}

Every pipeline is ``ToImage -> (configured transforms) -> EnsureSize(img_size) ->
ToDtype(float32, scale=True) -> Normalize(mean, std) -> ToPureTensor``, so datasets always return
a plain float tensor (C, img_size, img_size). Containers (``RandomApply``, ``RandomChoice``,
``RandomOrder``, ``Compose``) take nested entries in their ``transforms`` argument.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

_CONTAINERS = ("Compose", "RandomApply", "RandomChoice", "RandomOrder")


def available_transforms() -> List[str]:
    """Names of the ``torchvision.transforms.v2`` transforms a config may use."""
    names = []
    for name in dir(v2):
        obj = getattr(v2, name)
        if isinstance(obj, type) and issubclass(obj, v2.Transform) and obj is not v2.Transform:
            names.append(name)
    return sorted(names)


def _plain(obj: Any) -> Any:
    """OmegaConf containers (or any mapping/sequence) -> plain dicts and lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return [_plain(v) for v in obj]
    return obj


def _unknown(name: str) -> ValueError:
    names = available_transforms()
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=5, cutoff=0.5)
    hint = f"did you mean: {', '.join(lowered[c] for c in close)}?" if close else "no close match"
    return ValueError(
        f"unknown transform {name!r} ({hint}); any torchvision.transforms.v2 transform works, e.g. "
        f"{', '.join(names[:8])}, ... ({len(names)} in all)"
    )


def build_transform(spec: Any) -> Callable[[Any], Any]:
    """One v2 transform from ``{name: ..., **kwargs}`` (or a bare name for no arguments)."""
    spec = _plain(spec)
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a transform entry must be a mapping with a 'name' key, got {spec!r}")
    kwargs: Dict[str, Any] = dict(spec)
    name = str(kwargs.pop("name"))
    if name not in available_transforms():
        raise _unknown(name)
    if name in _CONTAINERS and "transforms" in kwargs:
        kwargs["transforms"] = [build_transform(s) for s in kwargs["transforms"]]
    if isinstance(kwargs.get("interpolation"), str):
        try:
            kwargs["interpolation"] = v2.InterpolationMode[kwargs["interpolation"].upper()]
        except KeyError as e:
            modes = ", ".join(m.name.lower() for m in v2.InterpolationMode)
            raise ValueError(f"transform {name}: unknown interpolation {kwargs['interpolation']!r}; choose one of: {modes}") from e
    if isinstance(kwargs.get("dtype"), str):
        dtype = getattr(torch, kwargs["dtype"], None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"transform {name}: unknown dtype {kwargs['dtype']!r}")
        kwargs["dtype"] = dtype
    try:
        return getattr(v2, name)(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"transform {name} with arguments {kwargs}: {e}") from e


def build_transforms(specs: Optional[Sequence[Any]]) -> List[Callable[[Any], Any]]:
    """A list of v2 transforms from a list of config entries (``None``: empty)."""
    return [build_transform(s) for s in _plain(specs or [])]


class EnsureSize:
    """Make the image ``size`` x ``size``: no-op when it already is; square images are resized;
    others have their shorter side resized to ``size`` and are centre-cropped (aspect kept)."""

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, img: Any) -> Any:
        h, w = F.get_size(img)
        s = self.size
        if (h, w) == (s, s):
            return img
        if h == w:
            return F.resize(img, [s, s], antialias=True)
        return F.center_crop(F.resize(img, [s], antialias=True), [s, s])

    def __repr__(self) -> str:
        return f"EnsureSize(size={self.size})"


def build_pipeline(
    specs: Optional[Sequence[Any]], img_size: int, mean: Sequence[float], std: Sequence[float]
) -> v2.Compose:
    """The full per-item pipeline: raw image (PIL, uint8 or [0, 1] float tensor) -> normalised
    float tensor (C, img_size, img_size)."""
    if len(mean) != len(std):
        raise ValueError(f"mean and std must have the same length, got {list(mean)} and {list(std)}")
    if any(float(s) <= 0 for s in std):
        raise ValueError(f"std must be positive, got {list(std)}")
    return v2.Compose(
        [
            v2.ToImage(),
            *build_transforms(specs),
            EnsureSize(img_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([float(m) for m in mean], [float(s) for s in std]),
            v2.ToPureTensor(),
        ]
    )


def to_float_image(img: Any) -> Tensor:
    """A raw image (PIL, uint8 or float tensor) -> plain float tensor (C, H, W) in [0, 1]."""
    out = F.to_dtype(F.to_image(img), torch.float32, scale=True)
    return out.as_subclass(Tensor)
