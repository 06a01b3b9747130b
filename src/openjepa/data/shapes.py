"""``shapes``: the built-in, procedurally generated, labelled image dataset.

Each image shows one shape from :data:`CLASS_NAMES` (random colour, size, position and rotation)
on a cluttered background: a two-colour gradient, pixel noise, and a few distractor strokes and
dots that carry no class information. The class is obvious to a human (the outline), but a linear
classifier on raw pixels does poorly because every pixel-level cue (where, how big, which colour,
which way up) is randomised; learning the class needs shape features, which is what a
self-supervised encoder should discover.

Image ``index`` of ``split`` is a pure function of ``(seed, split, index)``: its random numbers come
from a ``torch.Generator`` seeded with :func:`openjepa.layers.seed.mix_seed` of that triple, so any
item is generated on the fly in O(1), DataLoader workers share no state, and the train and test
splits never share an image.
Labels are ``index % 10`` so every prefix of the dataset is class-balanced.

Rasterisation is vectorised torch: every shape is a signed-distance function evaluated on the
pixel grid, with one pixel of anti-aliasing. ``__getitems__`` renders a whole batch at once
(the DataLoader calls it), which makes 20k images at 32x32 a matter of seconds.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

from openjepa.errors import ConfigError
from openjepa.layers.seed import mix_seed

from .registry import DatasetInfo, register_dataset

CLASS_NAMES: Tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "cross",
    "ring",
    "star",
    "ellipse",
    "l_shape",
    "crescent",
    "t_shape",
)
NUM_CLASSES = len(CLASS_NAMES)
SPLITS = ("train", "test")

# Per-channel statistics of the generated images (measured on 20k train images at 32 px, seed 0).
MEAN: Tuple[float, float, float] = (0.500, 0.500, 0.500)
STD: Tuple[float, float, float] = (0.262, 0.262, 0.262)

# Layout of the per-image uniform random vector ``u`` (one torch.rand call per image).
_N_STROKES = 4  # distractor line segments (each present with probability 3/4)
_N_DOTS = 2  # distractor dots (each present with probability 1/2)
_SHAPE = slice(0, 4)  # centre x, centre y, size, rotation
_FG = slice(4, 7)  # shape colour
_BG1 = slice(7, 10)  # offsets of the two gradient colours from the shape colour
_BG2 = slice(10, 13)
_GRAD = 13  # gradient direction
_NOISE = 14  # noise level
_STROKE0 = 15  # strokes: x0, y0, x1, y1, width, r, g, b, present  (9 each)
_DOT0 = _STROKE0 + 9 * _N_STROKES  # dots: x, y, radius, r, g, b, present  (7 each)
_N_U = _DOT0 + 7 * _N_DOTS
_CHUNK = 64  # images rendered per vectorised pass


def item_seed(seed: int, split: str, index: int) -> int:
    """The stable 63-bit seed of image ``index`` of ``split``: ``mix_seed("openjepa.shapes", seed, split, index)``."""
    return mix_seed("openjepa.shapes", int(seed), split, int(index))


@functools.lru_cache(maxsize=8)
def _grid(img_size: int) -> Tuple[Tensor, Tensor]:
    """Pixel-centre coordinates (y, x), each (H, W), in pixels."""
    c = torch.arange(img_size, dtype=torch.float32) + 0.5
    return torch.meshgrid(c, c, indexing="ij")


# ---------------------------------------------------------------------------------------------
# Signed-distance functions in shape-local units: the shape spans roughly [-1, 1]^2; negative
# inside. Inputs x, y: (B, H, W). Exact SDFs are not needed, only a correct zero level set and a
# slope of about 1 near it (for anti-aliasing).


def _box(x: Tensor, y: Tensor, hx: float, hy: float, cx: float = 0.0, cy: float = 0.0) -> Tensor:
    qx, qy = (x - cx).abs() - hx, (y - cy).abs() - hy
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0)


def _polygon(x: Tensor, y: Tensor, n: int, apothem: float) -> Tensor:
    # Regular convex polygon: max over the edges' half-plane distances.
    d = None
    for k in range(n):
        a = 2 * math.pi * k / n
        dk = x * math.cos(a) + y * math.sin(a) - apothem
        d = dk if d is None else torch.maximum(d, dk)
    return d


def _circle(x: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y) - 1.0


def _square(x: Tensor, y: Tensor) -> Tensor:
    return _box(x, y, 0.8, 0.8)


def _triangle(x: Tensor, y: Tensor) -> Tensor:
    return _polygon(x, y, 3, 0.55)  # equilateral, circumradius 1.1 (same visual weight as the square)


def _cross(x: Tensor, y: Tensor) -> Tensor:
    return torch.minimum(_box(x, y, 0.95, 0.28), _box(x, y, 0.28, 0.95))


def _ring(x: Tensor, y: Tensor) -> Tensor:
    return (torch.sqrt(x * x + y * y) - 0.72).abs() - 0.26


def _star(x: Tensor, y: Tensor) -> Tensor:
    # Fold the angle into one half-spike wedge [0, pi/5], then take the distance to the edge
    # from the tip (1, 0) to the valley at radius 0.42 (positive on the far side from the centre).
    # Evaluated at 1/1.15 scale: tips at radius 1.15, so the thin star is not smaller than the rest.
    x, y = x / 1.15, y / 1.15
    r = torch.sqrt(x * x + y * y)
    sector = 2 * math.pi / 5
    a = torch.remainder(torch.atan2(y, x) + sector / 2, sector) - sector / 2
    a = a.abs()
    qx, qy = r * torch.cos(a), r * torch.sin(a)
    vx, vy = 0.42 * math.cos(sector / 2), 0.42 * math.sin(sector / 2)
    ex, ey = vx - 1.0, vy
    norm = math.hypot(ex, ey)
    return ((qx - 1.0) * ey - qy * ex) / norm * 1.15


def _ellipse(x: Tensor, y: Tensor) -> Tensor:
    a, b = 1.0, 0.42
    return (torch.sqrt((x / a) ** 2 + (y / b) ** 2) - 1.0) * b


def _l_shape(x: Tensor, y: Tensor) -> Tensor:
    return torch.minimum(_box(x, y, 0.3, 0.9, cx=-0.55), _box(x, y, 0.85, 0.3, cy=0.55))


def _crescent(x: Tensor, y: Tensor) -> Tensor:
    outer = torch.sqrt(x * x + y * y) - 1.0
    bite = torch.sqrt((x - 0.55) ** 2 + y * y) - 0.8
    return torch.maximum(outer, -bite)


def _t_shape(x: Tensor, y: Tensor) -> Tensor:
    return torch.minimum(_box(x, y, 0.9, 0.28, cy=-0.62), _box(x, y, 0.28, 0.9))


_SDF: Tuple[Callable[[Tensor, Tensor], Tensor], ...] = (
    _circle,
    _square,
    _triangle,
    _cross,
    _ring,
    _star,
    _ellipse,
    _l_shape,
    _crescent,
    _t_shape,
)
assert len(_SDF) == NUM_CLASSES


def _over(img: Tensor, alpha: Tensor, color: Tensor) -> Tensor:
    """Alpha-composite ``color`` (B, 3) with coverage ``alpha`` (B, H, W) over ``img`` (B, 3, H, W)."""
    a = alpha.unsqueeze(1)
    return img * (1 - a) + color[:, :, None, None] * a


def render(u: Tensor, noise: Tensor, labels: Tensor, img_size: int, clutter: bool = True) -> Tensor:
    """Rasterise a batch of images from their random numbers.

    ``clutter=False`` (the ``shapes_plain`` dataset) draws the same shape, colour, size, position and
    rotation on a flat background of the first gradient colour, without distractors, with little noise.

    u:      (B, _N_U) uniform [0, 1) parameters, one row per image (layout: the ``_*`` constants).
    noise:  (B, 3, H, W) standard normal pixel noise.
    labels: (B,) int64 class indices into :data:`CLASS_NAMES`.
    Returns (B, 3, H, W) float32 in [0, 1].
    """
    s = float(img_size)
    gy, gx = _grid(img_size)  # (H, W) each
    gx, gy = gx[None], gy[None]  # (1, H, W)
    b = u.shape[0]

    def col(i: int) -> Tensor:  # (B, 1, 1) column of u, broadcastable over the grid
        return u[:, i, None, None]

    # Background: a linear gradient between two colours that each differ from the shape colour by
    # 0.3-0.7 in every channel (mod 1), so the outline is always visible but the sign of the
    # contrast is random (no single pixel value tells foreground from background).
    fg = u[:, _FG]
    bg1 = torch.remainder(fg + 0.3 + 0.4 * u[:, _BG1], 1.0)
    bg2 = torch.remainder(fg + 0.3 + 0.4 * u[:, _BG2], 1.0)
    ang = col(_GRAD) * (2 * math.pi)
    t = (((gx - s / 2) * torch.cos(ang) + (gy - s / 2) * torch.sin(ang)) / s + 0.5).clamp(0, 1)
    t = t.unsqueeze(1)  # (B, 1, H, W)
    img = bg1[:, :, None, None] * (1 - t) + bg2[:, :, None, None] * t
    if not clutter:
        img = bg1[:, :, None, None].expand(-1, -1, img_size, img_size)

    # Distractors, drawn under the shape: thin strokes (capsules) and small dots.
    px = 1.0 / 32.0 * s  # one pixel at 32 px, scaled with the image
    for k in range(_N_STROKES if clutter else 0):
        o = _STROKE0 + 9 * k
        x0, y0, x1, y1 = (col(o + i) * s for i in range(4))
        half_w = (0.3 + 0.5 * col(o + 4)) * px
        dx, dy = x1 - x0, y1 - y0
        h = (((gx - x0) * dx + (gy - y0) * dy) / (dx * dx + dy * dy + 1e-6)).clamp(0, 1)
        d = torch.sqrt((gx - x0 - h * dx) ** 2 + (gy - y0 - h * dy) ** 2) - half_w
        alpha = (0.5 - d).clamp(0, 1) * (col(o + 8) < 0.75)
        img = _over(img, alpha, u[:, o + 5 : o + 8])
    for k in range(_N_DOTS if clutter else 0):
        o = _DOT0 + 7 * k
        x0, y0 = col(o) * s, col(o + 1) * s
        d = torch.sqrt((gx - x0) ** 2 + (gy - y0) ** 2) - (1.0 + 1.5 * col(o + 2)) * px
        alpha = (0.5 - d).clamp(0, 1) * (col(o + 6) < 0.5)
        img = _over(img, alpha, u[:, o + 3 : o + 6])

    # The shape: radius 20-34% of the image, centred so that it stays (almost) inside.
    radius = (0.20 + 0.14 * col(_SHAPE.start + 2)) * s
    lo = 0.9 * radius
    cx = lo + col(_SHAPE.start) * (s - 2 * lo)
    cy = lo + col(_SHAPE.start + 1) * (s - 2 * lo)
    rot = col(_SHAPE.start + 3) * (2 * math.pi)
    dx, dy = gx - cx, gy - cy
    lx = (dx * torch.cos(rot) + dy * torch.sin(rot)) / radius  # rotate the grid by -rot
    ly = (-dx * torch.sin(rot) + dy * torch.cos(rot)) / radius
    sdf = torch.empty(b, img_size, img_size)
    for k in labels.unique().tolist():
        sel = labels == k
        sdf[sel] = _SDF[k](lx[sel], ly[sel])
    alpha = (0.5 - sdf * radius).clamp(0, 1)  # distance in pixels; one pixel of anti-aliasing
    img = _over(img, alpha, fg)

    sigma = (0.03 + 0.07 * u[:, _NOISE])[:, None, None, None] if clutter else 0.02
    return (img + sigma * noise).clamp(0, 1)


class ShapesDataset(Dataset):
    """Procedural labelled shapes on clutter; item ``i`` is ``(image (3, H, W), label)``.

    Args:
        size: number of images in this split.
        img_size: image side in pixels.
        seed: dataset seed; with ``split`` and the index it fixes every pixel.
        split: ``"train"`` or ``"test"`` (disjoint by construction: different hash keys).
        transform: applied to the raw float image in [0, 1]; ``None`` returns the raw image.
        eval_transform: the deterministic pipeline :func:`openjepa.data.raw_pixels` switches to.
    """

    def __init__(
        self,
        size: int,
        img_size: int = 32,
        seed: int = 0,
        split: str = "train",
        transform: Optional[Callable[[Any], Tensor]] = None,
        eval_transform: Optional[Callable[[Any], Tensor]] = None,
        clutter: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"shapes: unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        if size < 0:
            raise ValueError(f"shapes: size must be >= 0, got {size}")
        if img_size < 8:
            raise ValueError(f"shapes: img_size must be >= 8, got {img_size}")
        self.size = int(size)
        self.img_size = int(img_size)
        self.seed = int(seed)
        self.split = split
        self.transform = transform
        self.eval_transform = eval_transform
        self.class_names: List[str] = list(CLASS_NAMES)
        self.clutter = bool(clutter)

    def __len__(self) -> int:
        return self.size

    def label(self, index: int) -> int:
        """The class of item ``index`` (cheap: no rendering)."""
        return int(index) % NUM_CLASSES

    @property
    def targets(self) -> List[int]:
        """All labels, in order."""
        return [self.label(i) for i in range(self.size)]

    def _check(self, index: int) -> int:
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(f"shapes: index {index} out of range for {self.size} items")
        return index

    def raw_batch(self, indices: Sequence[int]) -> Tuple[Tensor, Tensor]:
        """Render raw images (B, 3, H, W) in [0, 1] and labels (B,) for ``indices``."""
        idx = [self._check(int(i)) for i in indices]
        n, h = len(idx), self.img_size
        u = torch.empty(n, _N_U)
        noise = torch.empty(n, 3, h, h)
        g = torch.Generator()
        for row, i in enumerate(idx):
            g.manual_seed(item_seed(self.seed, self.split, i))
            torch.rand(_N_U, generator=g, out=u[row])
            torch.randn(3, h, h, generator=g, out=noise[row])
        labels = torch.tensor([self.label(i) for i in idx], dtype=torch.long)
        out = torch.empty(n, 3, h, h)
        # Small chunks keep the intermediates cache-resident. Rendering runs on one thread: these
        # ops are too small to gain from intra-op threads, and on a busy machine (a training step
        # in another process) the thread handoffs of every op cost 10-50x the work itself.
        threads = torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)
        try:
            for a in range(0, n, _CHUNK):
                out[a : a + _CHUNK] = render(u[a : a + _CHUNK], noise[a : a + _CHUNK], labels[a : a + _CHUNK], h,
                                             self.clutter)
        finally:
            if threads > 1:
                torch.set_num_threads(threads)
        return out, labels

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> List[Tuple[Tensor, int]]:
        # The DataLoader calls this with a whole batch of indices: render them in one pass.
        imgs, labels = self.raw_batch(indices)
        tf = self.transform
        return [(tf(x) if tf is not None else x, int(y)) for x, y in zip(imgs, labels.tolist())]

    def __repr__(self) -> str:
        return (f"ShapesDataset(size={self.size}, img_size={self.img_size}, seed={self.seed}, split={self.split!r}"
                f"{'' if self.clutter else ', clutter=False'})")



def _check(cfg: Any) -> None:
    if cfg.data.batch_size > cfg.data.train_size:
        raise ConfigError(f"data.batch_size={cfg.data.batch_size} exceeds data.train_size={cfg.data.train_size} "
                          f"(the shapes training images)")


@register_dataset("shapes", DatasetInfo("shapes", 3, NUM_CLASSES, 32, MEAN, STD, CLASS_NAMES), check=_check)
def _build(cfg: Any, split: str, img_size: int, seed: int, tf: Any, eval_tf: Any,
           clutter: bool = True) -> ShapesDataset:
    held_out = split in ("test", "val")
    size = cfg.test_size if held_out else cfg.train_size
    return ShapesDataset(size, img_size, seed, "test" if held_out else "train", tf, eval_tf, clutter=clutter)


@register_dataset("shapes_plain", DatasetInfo("shapes_plain", 3, NUM_CLASSES, 32, MEAN, STD, CLASS_NAMES), check=_check)
def _build_plain(cfg: Any, split: str, img_size: int, seed: int, tf: Any, eval_tf: Any) -> ShapesDataset:
    """``shapes`` without its clutter: item i is the same shape, colour, size, position and rotation on a flat
    background, no distractors, little noise (the nuisances a JEPA must learn to ignore, without the clutter)."""
    return _build(cfg, split, img_size, seed, tf, eval_tf, clutter=False)
