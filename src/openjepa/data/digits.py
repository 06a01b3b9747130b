"""``digits``: scikit-learn's 8x8 handwritten digits (1797 images, ships with sklearn, no download).

Images are upsampled (bilinear) to ``img_size`` once, at construction; there is no official test
split, so a deterministic stratified split by ``val_fraction`` and ``seed`` gives one.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import torch
import torch.nn.functional as nnf
from torch import Tensor
from torch.utils.data import Dataset

from .base import stratified_split
from .registry import DatasetInfo, register_dataset

CLASS_NAMES: Tuple[str, ...] = tuple(str(d) for d in range(10))
DEFAULT_IMG_SIZE = 16
# Per-channel statistics of the upsampled 16 px images (all 1797, values in [0, 1]).
MEAN: Tuple[float] = (0.305,)
STD: Tuple[float] = (0.319,)
SPLITS = ("train", "test", "val")


def load_digits_tensor(img_size: int = DEFAULT_IMG_SIZE) -> Tuple[Tensor, Tensor]:
    """All 1797 digits as (N, 1, img_size, img_size) float32 in [0, 1] and (N,) int64 labels."""
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

    d = load_digits()
    x = torch.from_numpy(d.images).float().div_(16.0).unsqueeze(1)  # (N, 1, 8, 8), values 0..16 -> [0, 1]
    if img_size != 8:
        x = nnf.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False, antialias=img_size < 8)
    return x.clamp_(0.0, 1.0), torch.from_numpy(d.target).long()


class DigitsDataset(Dataset):
    """One split of sklearn's digits; item ``i`` is ``(image (1, H, W), label)``.

    Args:
        split: ``"train"`` or ``"test"`` (``"val"`` is the same held-out part).
        img_size: side of the upsampled images.
        val_fraction: fraction of each class held out for ``test``.
        seed: seed of the split.
        transform: applied to the [0, 1] float image; ``None`` returns it as is.
        eval_transform: the deterministic pipeline :func:`openjepa.data.raw_pixels` switches to.
    """

    def __init__(
        self,
        split: str = "train",
        img_size: int = DEFAULT_IMG_SIZE,
        val_fraction: float = 0.2,
        seed: int = 0,
        transform: Optional[Callable[[Any], Tensor]] = None,
        eval_transform: Optional[Callable[[Any], Tensor]] = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"digits: unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        images, labels = load_digits_tensor(img_size)
        train_idx, test_idx = stratified_split(labels.tolist(), val_fraction, seed)
        self.indices: List[int] = train_idx if split == "train" else test_idx  # rows of the full 1797
        if not self.indices:
            raise ValueError(f"digits: the {split} split is empty (data.val_fraction={val_fraction})")
        sel = torch.tensor(self.indices, dtype=torch.long)
        self.images = images[sel]
        self.labels = labels[sel]
        self.split = split
        self.img_size = int(img_size)
        self.transform = transform
        self.eval_transform = eval_transform
        self.class_names: List[str] = list(CLASS_NAMES)

    @property
    def targets(self) -> List[int]:
        """All labels, in order."""
        return self.labels.tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        img = self.images[index]
        return (self.transform(img) if self.transform is not None else img.clone()), int(self.labels[index])

    def __repr__(self) -> str:
        return f"DigitsDataset(split={self.split!r}, n={len(self)}, img_size={self.img_size})"


@register_dataset("digits", DatasetInfo("digits", 1, 10, DEFAULT_IMG_SIZE, MEAN, STD, CLASS_NAMES))
def _build(cfg: Any, split: str, img_size: int, seed: int, tf: Any, eval_tf: Any) -> DigitsDataset:
    return DigitsDataset(split, img_size, cfg.val_fraction, seed, tf, eval_tf)
