"""``moving_shapes``: the built-in, procedurally generated video dataset whose labels need time.

Each clip shows one shape of the ``shapes`` dataset (square, triangle, cross, ellipse, L, crescent,
T: those whose turning is visible between frames; random colour and size) on its static cluttered
background, moving in a straight line and turning steadily, with fresh pixel noise every frame.
The label is the direction of motion (right, left, down, up) x the sense of rotation (cw, ccw: on
screen, y pointing down), :data:`CLASS_NAMES` ``[2 * direction + sense]``.

Playing a clip backwards reverses both the motion and the turning, so it is a clip of the class
:func:`reversed_label` ``(c) = c XOR 3`` (right_cw <-> left_ccw, ...), always a different class.
The dataset holds that reversal by construction: items come in pairs, item ``2m + 1`` is item
``2m`` played backwards, so the frames of class ``c`` and of class ``reversed_label(c)`` are the same
multiset. Any frame-order-invariant model (a single frame, frame-averaged features) therefore sees
the two classes of a pair as one and can be right on at most half of the clips; the order of the
frames carries the rest.

Trajectories are centred: a clip of ``T`` frames at ``tau_t = t / (T - 1) - 1/2`` puts the shape at
``mid + v * tau_t`` and turns it to ``angle + w * tau_t``, with the midpoint, the travel
``|v|`` (35-65% of the room the shape has) and the turn ``|w|`` (60-120 degrees over the clip) drawn
from distributions that reversal (``v, w -> -v, -w``) maps onto themselves. ``T >= 4`` keeps each
frame's turn under 45 degrees, below the symmetry angle of every shape used, so the sense is visible.

Clip ``index`` is a pure function of ``(seed, split, index // 2)`` (see ``shapes``), so items are
generated on the fly in workers without shared state, and the splits never share a clip. A clip is
``data.frames_per_clip`` frames (``frame_step``, ``fps``, ``num_clips`` and ``num_views`` do not
apply); ``data.frames_as_images=true`` serves every frame of every clip as an image ``(C, H, W)``
with its clip's label (:class:`~openjepa.data.video.FrameImages`), the data of the
frame-averaged image baseline (``eval.frame_encoder``). :func:`write_videos` writes items as
mp4 / webm files in class subfolders, the layout the
``video_folder`` dataset reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

from openjepa.errors import ConfigError
from openjepa.layers.seed import mix_seed

from .registry import DatasetInfo, register_dataset
from .shapes import _N_U, _SHAPE, MEAN, STD, render
from .video import as_frames, check_clips, frames_kind, prepare_clips, write_video

CLASS_NAMES: Tuple[str, ...] = ("right_cw", "right_ccw", "left_cw", "left_ccw", "down_cw", "down_ccw", "up_cw", "up_ccw")
NUM_CLASSES = len(CLASS_NAMES)
# Unit motion per direction in image coordinates (x right, y down): right, left, down, up.
DIRECTIONS: Tuple[Tuple[int, int], ...] = ((1, 0), (-1, 0), (0, 1), (0, -1))
# ``shapes`` classes drawn: all but the circle and ring (no visible turn) and the star (72-degree symmetry).
SHAPE_IDS: Tuple[int, ...] = (1, 2, 3, 6, 7, 8, 9)
MIN_FRAMES = 4
SPLITS = ("train", "test")
_N_MOTION = 5  # per clip after the shapes layout: shape kind, travel, midpoint along the motion, turn, mid angle


def reversed_label(label: int) -> int:
    """The class of a clip of class ``label`` played backwards: opposite direction and sense."""
    return int(label) ^ 3


def clip_seed(seed: int, split: str, pair: int) -> int:
    """The stable 63-bit seed of clip pair ``pair``: ``mix_seed("openjepa.moving_shapes", seed, split, pair)``."""
    return mix_seed("openjepa.moving_shapes", int(seed), split, int(pair))


def render_clip(u: Tensor, noise: Tensor, label: int, frames: int, img_size: int) -> Tensor:
    """One forward clip from its random numbers.

    u:     (_N_U + _N_MOTION,) uniform [0, 1): the ``shapes`` layout (static parts), then the motion.
    noise: (frames, 3, H, W) standard normal pixel noise.
    Returns (frames, 3, H, W) float in [0, 1].
    """
    d, sense = divmod(int(label), 2)
    dx, dy = DIRECTIONS[d]
    m = u[_N_U:]
    kind = SHAPE_IDS[min(int(m[0] * len(SHAPE_IDS)), len(SHAPE_IDS) - 1)]
    travel = 0.35 + 0.3 * m[1]  # in shapes' centre units: 0 and 1 are the extreme centres
    mid = travel / 2 + m[2] * (1 - travel)  # along the motion axis, so the path stays inside
    turn = (1 + m[3]) / 6  # turns over the clip: 60-120 degrees
    tau = torch.arange(frames, dtype=torch.float32) / (frames - 1) - 0.5  # (T,) in [-1/2, 1/2]
    rows = u[:_N_U].repeat(frames, 1)  # (T, _N_U): one shapes row per frame
    along = mid + travel * tau
    cx, cy = _SHAPE.start, _SHAPE.start + 1
    if dx:
        rows[:, cx] = along if dx > 0 else 1 - along
    else:
        rows[:, cy] = along if dy > 0 else 1 - along
    spin = 1.0 if sense == 0 else -1.0  # render turns the shape by +angle: clockwise on screen
    rows[:, _SHAPE.start + 3] = m[4] + spin * turn * tau  # turns; render multiplies by 2 pi
    return render(rows, noise, torch.full((frames,), kind, dtype=torch.long), img_size)


class MovingShapesDataset(Dataset):
    """Procedural moving, turning shapes; item ``i`` is ``(clip (C, T, H, W), label)``.

    Args:
        size: clips in this split.
        frames: frames per clip (>= 4).
        img_size: frame side in pixels (even, so that the clips encode as video).
        seed: dataset seed; with ``split`` and ``index // 2`` it fixes every pixel.
        split: ``"train"`` or ``"test"``.
        transform: applied to the float frames (T, C, H, W) in [0, 1] at once; ``None`` returns them.
        eval_transform: the deterministic pipeline :func:`openjepa.data.raw_pixels` switches to.
    """

    def __init__(self, size: int, frames: int = 16, img_size: int = 32, seed: int = 0, split: str = "train",
                 transform: Optional[Callable[[Any], Tensor]] = None,
                 eval_transform: Optional[Callable[[Any], Tensor]] = None) -> None:
        if split not in SPLITS:
            raise ValueError(f"moving_shapes: unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        if size < 0:
            raise ValueError(f"moving_shapes: size must be >= 0, got {size}")
        if frames < MIN_FRAMES:
            raise ConfigError(f"data.frames_per_clip={frames}: moving_shapes needs at least {MIN_FRAMES} frames "
                              f"(the sense of rotation is ambiguous otherwise)")
        if img_size < 8:
            raise ValueError(f"moving_shapes: img_size must be >= 8, got {img_size}")
        self.size, self.frames, self.img_size = int(size), int(frames), int(img_size)
        self.seed, self.split = int(seed), split
        self.transform = transform
        self.eval_transform = eval_transform
        self.class_names: List[str] = list(CLASS_NAMES)

    def __len__(self) -> int:
        return self.size

    def label(self, index: int) -> int:
        """The class of item ``index`` (no rendering): pair ``m = index // 2`` has class ``m % 8``
        forwards (even index) and :func:`reversed_label` of it backwards (odd index)."""
        base = (int(index) // 2) % NUM_CLASSES
        return base if index % 2 == 0 else reversed_label(base)

    @property
    def targets(self) -> List[int]:
        """All labels, in order."""
        return [self.label(i) for i in range(self.size)]

    def raw_clip(self, index: int) -> Tensor:
        """The untransformed frames (T, 3, H, W) in [0, 1] of item ``index``."""
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(f"moving_shapes: index {index} out of range for {self.size} items")
        pair = index // 2
        g = torch.Generator().manual_seed(clip_seed(self.seed, self.split, pair))
        u = torch.rand(_N_U + _N_MOTION, generator=g)
        noise = torch.randn(self.frames, 3, self.img_size, self.img_size, generator=g)
        threads = torch.get_num_threads()  # tiny ops: one thread is faster (see shapes.raw_batch)
        if threads > 1:
            torch.set_num_threads(1)
        try:
            clip = render_clip(u, noise, self.label(2 * pair), self.frames, self.img_size)
        finally:
            if threads > 1:
                torch.set_num_threads(threads)
        return clip.flip(0) if index % 2 else clip  # odd: the pair's clip played backwards

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        index = index + self.size if index < 0 else index
        frames = self.raw_clip(index)
        out = self.transform(frames) if self.transform is not None else frames
        return out.permute(1, 0, 2, 3), self.label(index)  # (T, C, H, W) -> (C, T, H, W)

    def __repr__(self) -> str:
        return (f"MovingShapesDataset(size={self.size}, frames={self.frames}, img_size={self.img_size}, "
                f"seed={self.seed}, split={self.split!r})")


def to_uint8(frames: Tensor) -> Tensor:
    """Float frames in [0, 1] -> uint8 (rounded)."""
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8)


def write_videos(dataset: MovingShapesDataset, out_dir: str | os.PathLike, count: int,
                 formats: Sequence[str] = ("mp4", "webm"), fps: int = 8) -> List[Path]:
    """Write items ``0 .. count-1`` of ``dataset`` as ``out_dir/<class>/<index>.<format>``, the formats
    taken in turn; the ``video_folder`` layout. Returns the paths."""
    if not formats:
        raise ValueError("write_videos: no formats")
    if dataset.img_size % 2:
        raise ValueError(f"write_videos: img_size must be even for yuv420p video, got {dataset.img_size}")
    out: List[Path] = []
    for i in range(min(int(count), len(dataset))):
        fmt = formats[i % len(formats)].lstrip(".")
        path = Path(out_dir) / CLASS_NAMES[dataset.label(i)] / f"{i:05d}.{fmt}"
        out.append(write_video(path, to_uint8(dataset.raw_clip(i)), fps=fps))
    return out


def _check(cfg: Any) -> None:
    check_clips(cfg)
    if cfg.data.frames_per_clip < MIN_FRAMES:
        raise ConfigError(f"data.frames_per_clip={cfg.data.frames_per_clip}: moving_shapes needs at least "
                          f"{MIN_FRAMES} frames")
    d = cfg.data
    if d.frames_as_images and d.batch_size > d.train_size * d.frames_per_clip:
        raise ConfigError(f"data.batch_size={d.batch_size} exceeds the {d.train_size * d.frames_per_clip} training "
                          f"frames (data.train_size={d.train_size} clips x data.frames_per_clip={d.frames_per_clip})")
    if not d.frames_as_images and d.batch_size > d.train_size:
        raise ConfigError(f"data.batch_size={d.batch_size} exceeds data.train_size={d.train_size} "
                          f"(the moving_shapes training clips)")


@register_dataset("moving_shapes", DatasetInfo("moving_shapes", 3, NUM_CLASSES, 32, MEAN, STD, CLASS_NAMES, kind="video"),
                  describe=frames_kind, prepare=prepare_clips, check=_check)
def _build(cfg: Any, split: str, img_size: int, seed: int, tf: Any, eval_tf: Any) -> Dataset:
    held_out = split in ("test", "val")
    size = cfg.test_size if held_out else cfg.train_size
    clips = MovingShapesDataset(size, cfg.frames_per_clip, img_size, seed, "test" if held_out else "train", tf, eval_tf)
    return as_frames(cfg, clips)  # data.frames_as_images: every frame of every clip, (C, H, W), the clip's label
