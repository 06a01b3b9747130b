"""``video_folder``: clips from a folder (or a list file) of video files, decoded with PyAV.

Decoder. PyAV (``pip install av``, the ``video`` extra) is the decoder: its wheels bundle FFmpeg
on Linux (x86-64, aarch64), macOS and Windows, so ``pip install`` is the whole set-up. torchcodec
loads FFmpeg's shared libraries from the system (apt ``ffmpeg``, Homebrew), and its wheels are
built for one torch release; decord has no macOS wheels (vjepa2 PRs #1, #31). Measured with
``benchmarks/video_decode.py`` (``benchmarks/RESULTS.md``, "Video decoding"), PyAV decoding
training clips the way this loader does is within a third of torchcodec either way (faster on
256 px H.264, slower on VP9 and on 128 px), so the clean install decides.

Layouts (extensions, case-insensitive: mp4 webm mkv avi; hidden files and folders ignored):

- class subfolders ``root/<class>/**/clip.mp4`` (labels: sorted class-folder names), or a flat
  folder (unlabelled, label -1); either under ``root/train`` and ``root/test`` (or ``root/val``),
  else a stratified split by ``data.val_fraction`` and ``seed`` (as the image ``folder``);
- a list file ``root=list.csv`` (or ``.txt``) of ``path label`` lines, the official V-JEPA format
  (space-separated path and integer label; relative paths are relative to the list file), split by
  ``data.val_fraction``; or a folder holding ``train.csv`` and ``test.csv`` / ``val.csv`` (or
  ``.txt``), which are the splits.

Clip sampling (V-JEPA, Bardes et al. 2024, arXiv 2404.08471, pretrains on 16 frames with a
temporal stride of 4: the defaults).
A clip is ``T = data.frames_per_clip`` frames ``step`` apart, ``step = data.frame_step``, or with
``data.fps > 0`` ``step = max(1, floor(video_fps / fps + 1/2))`` per video; it spans
``span = (T - 1) * step + 1`` frames of a video of ``n`` frames.

- training: ``start`` uniform in ``{0, ..., n - span}`` (drawn from torch's default generator, which
  the training loader seeds per (seed, step, sample)), indices ``start + step * [0, ..., T-1]``;
- evaluation: ``K = data.num_clips`` clips with ``start_k = floor(k (n - span) / (K - 1) + 1/2)``
  (``K = 1``: ``floor((n - span) / 2)``), each in ``S = data.num_views`` spatial views: the frames'
  shorter side resized to ``img_size``, then ``S`` square crops spaced evenly along the longer side
  (offset ``floor(j (L - img_size) / (S - 1) + 1/2)``; ``S = 1``: the centre crop). The item is
  ``(K*S, C, T, H, W)``, clip-major (view ``k*S + s``), or ``(C, T, H, W)`` when ``K*S = 1``;
- a video shorter than a clip (``n < span``), by ``data.short_videos``: ``pad`` (the clip starts at
  frame 0 and indices past the end repeat the last frame), ``loop``
  (indices wrap around, ``i mod n``) or ``skip`` (the video is replaced by the next usable one and
  listed with the skipped files). A clip longer than every video is a ConfigError naming the
  settings, raised when the dataset is built (it probes videos until one is long enough).

Clips are ``(C, T, H, W)``: uint8 without a transform, else the per-item pipeline applied to the
``(T, C, H, W)`` frames at once, so every torchvision v2 transform (crop, flip, colour) draws its
parameters once and treats all frames of the clip alike.

Unreadable videos (not a video, truncated, no video stream or no frames, a codec FFmpeg cannot
decode): ``data.on_error=raise`` raises :class:`~openjepa.errors.DataError` naming the file;
``skip`` replaces the item by the next readable video and records ``(path, reason)`` in
``.skipped`` and in ``.skip_log`` when set, exactly as the image :mod:`~openjepa.data.folder`.

``data.frames_as_images=true`` (here and in ``moving_shapes``) serves the frames of the clips as
images instead (:class:`FrameImages`: item ``i`` is frame ``i % T`` of clip ``i // T``, ``(C, H, W)``,
with the clip's label; the dataset's kind becomes ``image`` and ``model.num_frames`` 1), so an
image JEPA trains on the frames a video model sees: the frame-averaged baseline of video
evaluation (``eval.frame_encoder``, :mod:`openjepa.eval.frozen`).
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

from openjepa.errors import ConfigError, DataError

from .base import stratified_split
from .folder import MEAN, STD, append_skip_log, split_dirs
from .registry import DatasetInfo, register_dataset

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS: Tuple[str, ...] = (".mp4", ".webm", ".mkv", ".avi")
LIST_EXTENSIONS: Tuple[str, ...] = (".csv", ".txt")
SHORT_POLICIES: Tuple[str, ...] = ("pad", "loop", "skip")
DEFAULT_IMG_SIZE = 224
# Encoders of write_video by file extension (all in PyAV's bundled FFmpeg).
CODECS: Dict[str, str] = {".mp4": "libx264", ".webm": "libvpx-vp9", ".mkv": "libx264", ".avi": "mpeg4"}
LAYOUT_HELP = ("expected video files (" + ", ".join(e[1:] for e in VIDEO_EXTENSIONS) + ") in class subfolders "
               "(root/<class>/<video>) or directly in the folder, optionally under root/train and root/test, "
               "or a list file of 'path label' lines (data.root=list.csv)")


def _av() -> Any:
    """The PyAV module, or a one-line ConfigError saying how to install it."""
    try:
        import av
    except ImportError as e:
        raise ConfigError("video data needs PyAV: pip install 'openjepa[video]' (or: pip install av)") from e
    return av


class VideoFileError(DataError):
    """A video file that cannot serve frames (no video stream, no frames, a frame missing)."""


def decode_errors() -> Tuple[type, ...]:
    """What decoding a bad file can raise: FFmpeg's errors (PyAV), OS errors and :class:`VideoFileError`."""
    return (_av().FFmpegError, VideoFileError, OSError, ValueError, EOFError, IndexError)


# ---------------------------------------------------------------------------------------------
# Decoding


@dataclass(frozen=True)
class VideoMeta:
    """What a video file holds: its exact frame count and frame rate, frame size and codec.

    ``pts`` are the presentation timestamps of its frames in order (from the packets, not
    decoded), which is how a frame index is found after a seek.
    """

    path: str
    num_frames: int
    fps: float
    height: int
    width: int
    codec: str
    pts: Tuple[int, ...]


def _video_stream(container: Any, path: str) -> Any:
    if not container.streams.video:
        raise VideoFileError(f"{path}: no video stream")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if ctx is None or not ctx.name or ctx.name == "none":
        raise VideoFileError(f"{path}: unsupported codec (FFmpeg has no decoder for its video stream)")
    return stream


def _truncation(container: Any, stream: Any, pts: Sequence[int], fps: float) -> Optional[str]:
    """Why the packets found fall short of what the header declares (a cut-off file), or None.

    The header's frame count when it has one (mp4, avi); else its duration (webm, mkv): a file
    holding only this video stream must cover it to half a frame; with other streams (audio may
    run longer than the video) to 90% less one and a half frames.
    """
    declared = int(stream.frames or 0)
    if declared > 0:
        return f"{len(pts)} of the {declared} frames its header declares" if len(pts) < declared else None
    if stream.duration:
        duration, slack = float(stream.duration * stream.time_base), 0.5 / fps
    elif container.duration:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
        slack = 0.5 / fps if len(container.streams) == 1 else 0.1 * duration + 1.5 / fps
    else:
        return None
    covered = float((pts[-1] - pts[0]) * stream.time_base) + 1.0 / fps
    if covered < duration - slack:
        return f"its frames cover {covered:.3g} s of the {duration:.3g} s its header declares"
    return None


@lru_cache(maxsize=4096)
def _probe(path: str, mtime_ns: int, size: int) -> VideoMeta:
    av = _av()
    with av.open(path) as container:
        stream = _video_stream(container, path)
        # The exact frame count and order: one timestamp per packet (demuxed, not decoded; the
        # final empty packet is the demuxer's flush marker).
        pts = sorted(p.pts if p.pts is not None else p.dts for p in container.demux(stream)
                     if p.size > 0 and (p.pts is not None or p.dts is not None))
        if not pts:
            raise VideoFileError(f"{path}: the video stream has no frames")
        rate = stream.average_rate or stream.guessed_rate
        if rate:
            fps = float(rate)
        else:
            span = (pts[-1] - pts[0]) * stream.time_base if len(pts) > 1 else 0
            fps = float((len(pts) - 1) / span) if span else 1.0
        cut = _truncation(container, stream, pts, fps)
        if cut is not None:
            raise VideoFileError(f"{path}: truncated file ({cut})")
        return VideoMeta(path, len(pts), fps, int(stream.height), int(stream.width), stream.codec_context.name,
                         tuple(int(p) for p in pts))


def probe_video(path: str | os.PathLike) -> VideoMeta:
    """Frame count, fps, size and codec of ``path`` (cached per file version, so cheap to repeat).

    Raises what :func:`decode_errors` lists for a file that is not a usable video.
    """
    p = str(path)
    st = os.stat(p)
    return _probe(p, st.st_mtime_ns, st.st_size)


def read_frames(path: str | os.PathLike, indices: Sequence[int]) -> Tensor:
    """Frames ``indices`` (any order, repeats allowed) of ``path`` as uint8 ``(len(indices), 3, H, W)`` RGB.

    Seeks to the keyframe before the first wanted frame and decodes up to the last one; a
    wanted frame that does not come out of the decoder (a truncated file) raises VideoFileError.
    """
    meta = probe_video(path)
    idx = [int(i) for i in indices]
    if not idx:
        raise ValueError("read_frames: no frame indices")
    bad = [i for i in idx if not 0 <= i < meta.num_frames]
    if bad:
        raise IndexError(f"{meta.path}: frame index {bad[0]} out of range for {meta.num_frames} frames")
    want = {meta.pts[i]: i for i in idx}
    last = max(want)
    got: Dict[int, Tensor] = {}
    av = _av()
    with av.open(meta.path) as container:
        stream = _video_stream(container, meta.path)
        container.seek(min(want), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            t = frame.pts
            if t in want and want[t] not in got:
                got[want[t]] = torch.from_numpy(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
            if t is not None and t >= last and len(got) == len(want):
                break
    missing = sorted(set(idx) - set(got))
    if missing:
        raise VideoFileError(f"{meta.path}: frame {missing[0]} of {meta.num_frames} could not be decoded "
                             f"(truncated or corrupt file)")
    return torch.stack([got[i] for i in idx]).permute(0, 3, 1, 2).contiguous()  # (T, H, W, 3) -> (T, 3, H, W)


def write_video(path: str | os.PathLike, frames: Tensor, fps: int = 8, codec: Optional[str] = None) -> Path:
    """Encode uint8 frames ``(T, 3, H, W)`` (H and W even) to ``path``; the codec follows the extension
    (:data:`CODECS`) unless given. Returns the path."""
    av = _av()
    out = Path(path)
    ext = out.suffix.lower()
    if codec is None:
        if ext not in CODECS:
            raise ValueError(f"write_video: unknown extension {ext!r}; choose one of: {', '.join(CODECS)}")
        codec = CODECS[ext]
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"write_video: frames must be uint8 (T, 3, H, W), got {frames.dtype} {tuple(frames.shape)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = frames.permute(0, 2, 3, 1).contiguous().numpy()  # (T, H, W, 3)
    with av.open(str(out), "w") as container:
        stream = container.add_stream(codec, rate=int(fps))
        stream.height, stream.width = int(frames.shape[2]), int(frames.shape[3])
        stream.pix_fmt = "yuv420p"
        for a in arrays:
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


# ---------------------------------------------------------------------------------------------
# Clip sampling (pure functions of the video's length and fps, see the module doc)


class TooShort(Exception):
    """A video shorter than a clip under ``short_videos="skip"``."""


@dataclass(frozen=True)
class ClipSpec:
    """The clip settings: ``data.frames_per_clip``, ``frame_step``, ``fps``, ``num_clips``, ``num_views``,
    ``short_videos``."""

    frames_per_clip: int = 16
    frame_step: int = 4
    fps: float = 0.0
    num_clips: int = 1
    num_views: int = 1
    short_videos: str = "pad"

    def __post_init__(self) -> None:
        for key in ("frames_per_clip", "frame_step", "num_clips", "num_views"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"data.{key} must be >= 1, got {getattr(self, key)}")
        if float(self.fps) < 0:
            raise ConfigError(f"data.fps must be >= 0 (0: use data.frame_step), got {self.fps}")
        if self.short_videos not in SHORT_POLICIES:
            raise ConfigError(f"data.short_videos={self.short_videos!r}; choose one of: {', '.join(SHORT_POLICIES)}")

    def step(self, video_fps: float) -> int:
        """The frame step for a video of ``video_fps`` frames per second."""
        if self.fps > 0:
            return max(1, int(Fraction(video_fps).limit_denominator(10**6) / Fraction(self.fps).limit_denominator(10**6)
                              + Fraction(1, 2)))
        return int(self.frame_step)

    def span(self, video_fps: float) -> int:
        """Frames of the video one clip covers: ``(T - 1) * step + 1``."""
        return (self.frames_per_clip - 1) * self.step(video_fps) + 1

    def settings(self) -> str:
        """The settings that fix the span, as the user wrote them (for messages)."""
        step = f"data.fps={self.fps:g}" if self.fps > 0 else f"data.frame_step={self.frame_step}"
        return f"data.frames_per_clip={self.frames_per_clip} with {step}"


def fit_indices(indices: Sequence[int], n: int, policy: str) -> List[int]:
    """Indices of a clip that starts at 0 in a video of ``n`` frames shorter than it, by ``policy``."""
    if policy == "pad":
        return [min(int(i), n - 1) for i in indices]
    if policy == "loop":
        return [int(i) % n for i in indices]
    raise TooShort(f"{n} frames")


def train_clip_indices(n: int, spec: ClipSpec, video_fps: float) -> List[int]:
    """One random clip's frame indices (start from torch's default generator)."""
    step, span = spec.step(video_fps), spec.span(video_fps)
    offsets = [step * t for t in range(spec.frames_per_clip)]
    if n < span:
        return fit_indices(offsets, n, spec.short_videos)
    start = int(torch.randint(0, n - span + 1, (1,)).item())
    return [start + o for o in offsets]


def eval_clip_indices(n: int, spec: ClipSpec, video_fps: float) -> List[List[int]]:
    """The ``num_clips`` evenly spaced clips' frame indices (deterministic)."""
    step, span, k = spec.step(video_fps), spec.span(video_fps), spec.num_clips
    offsets = [step * t for t in range(spec.frames_per_clip)]
    if n < span:
        return [fit_indices(offsets, n, spec.short_videos)] * k
    room = n - span
    starts = [room // 2] if k == 1 else [(2 * j * room + (k - 1)) // (2 * (k - 1)) for j in range(k)]
    return [[s + o for o in offsets] for s in starts]


def spatial_views(frames: Tensor, size: int, num_views: int) -> List[Tensor]:
    """``num_views`` square ``size`` crops of ``frames`` (..., H, W) after resizing the shorter side to ``size``,
    spaced evenly along the longer side (one view: the centre crop)."""
    h, w = frames.shape[-2:]
    if min(h, w) != size:
        frames = F.resize(frames, [size], antialias=True)
        h, w = frames.shape[-2:]
    if num_views == 1:
        return [F.center_crop(frames, [size, size])]
    long_side = max(h, w)
    offs = [(2 * j * (long_side - size) + (num_views - 1)) // (2 * (num_views - 1)) for j in range(num_views)]
    if h >= w:
        return [frames[..., o:o + size, :size] for o in offs]
    return [frames[..., :size, o:o + size] for o in offs]


def clip_views(path: str | os.PathLike, spec: ClipSpec, img_size: int,
               transform: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
    """The evaluation views of one video, ``(K*S, C, T, H, W)`` clip-major (view ``k*S + s``): the
    ``K = spec.num_clips`` clips of :func:`eval_clip_indices`, each in the ``S = spec.num_views`` crops of
    :func:`spatial_views`, ``transform`` applied to each view's uint8 frames ``(T, C, H, W)``.

    Raises :class:`TooShort` (``short_videos=skip``) or what :func:`decode_errors` lists."""
    meta = probe_video(path)
    views = []
    for idx in eval_clip_indices(meta.num_frames, spec, meta.fps):
        for v in spatial_views(read_frames(path, idx), img_size, spec.num_views):
            out = v if transform is None else transform(v)
            views.append(out.permute(1, 0, 2, 3))  # (T, C, H, W) -> (C, T, H, W)
    return torch.stack(views)


# ---------------------------------------------------------------------------------------------
# Layouts


def is_video_file(name: str) -> bool:
    """True when ``name`` has one of :data:`VIDEO_EXTENSIONS` (case-insensitive)."""
    return name.lower().endswith(VIDEO_EXTENSIONS)


def scan_videos(directory: Path) -> List[Path]:
    """All video files under ``directory`` (recursive, hidden entries skipped), sorted."""
    out: List[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out += [Path(dirpath) / f for f in filenames if is_video_file(f) and not f.startswith(".")]
    return sorted(out)


def scan_video_layout(directory: Path, class_names: Optional[List[str]] = None) -> Tuple[List[Tuple[str, int]], List[str]]:
    """``(samples, class_names)`` of one directory: class subfolders holding videos, else flat (label -1)."""
    subdirs = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = {d.name: scan_videos(d) for d in subdirs}
    found = [n for n, files in per_class.items() if files]
    empty = [str(directory / n) for n, files in per_class.items() if not files]
    if found and empty:
        raise DataError(f"video_folder: class folder(s) with no videos: {', '.join(empty)}; add videos or remove them")
    if not found:
        if class_names:
            raise DataError(f"video_folder: {directory} has no class subfolders but the train split has classes "
                            f"{class_names}")
        return [(str(p), -1) for p in scan_videos(directory)], []
    names = list(class_names) if class_names is not None else found
    unknown = [n for n in found if n not in names]
    if unknown:
        raise DataError(f"video_folder: {directory} has class folders {unknown} that the train split does not have")
    return [(str(p), names.index(n)) for n in found for p in per_class[n]], names


def read_list_file(path: Path) -> List[Tuple[str, int]]:
    """``(path, label)`` pairs of a ``path label`` list file (the official V-JEPA CSV: space-separated).

    Relative paths are relative to the list file; blank lines are ignored.
    """
    out: List[Tuple[str, int]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        file, _, label = line.strip().rpartition(" ")
        try:
            y = int(label)
        except ValueError:
            y = None
        if not file or y is None or y < 0:
            raise DataError(f"video_folder: {path}:{number}: expected 'path label' with an integer label >= 0, "
                            f"got {line.strip()!r}")
        p = Path(file.strip()).expanduser()
        out.append((str(p if p.is_absolute() else path.parent / p), y))
    if not out:
        raise DataError(f"video_folder: the list file {path} has no 'path label' lines")
    return out


def list_splits(root: Path) -> Optional[Dict[str, Path]]:
    """``{"train": ..., "test": ...}`` list files of a folder holding ``train.csv`` and ``test.csv``/``val.csv``."""
    def first(stem: str) -> Optional[Path]:
        return next((root / f"{stem}{e}" for e in LIST_EXTENSIONS if (root / f"{stem}{e}").is_file()), None)
    train, held = first("train"), first("test") or first("val")
    return {"train": train, "test": held} if train is not None and held is not None else None


def _label_names(samples: Sequence[Tuple[str, int]]) -> List[str]:
    top = max((y for _, y in samples), default=-1)
    return [str(i) for i in range(top + 1)]


def _seeded(samples: List[Tuple[str, int]], seed: int) -> List[Tuple[str, int]]:
    perm = torch.randperm(len(samples), generator=torch.Generator().manual_seed(int(seed))).tolist()
    return [samples[i] for i in perm]


def scan_root(root: Path, split: str, val_fraction: float, seed: int) -> Tuple[List[Tuple[str, int]], List[str]]:
    """``(samples, class_names)`` of ``split`` (``train`` or ``test``) for any layout of the module doc,
    in a seeded random order."""
    if root.is_file():
        samples = read_list_file(root)
        names = _label_names(samples)
    elif (lists := list_splits(root)) is not None:
        train = read_list_file(lists["train"])
        names = _label_names(train)
        if split == "train":
            return _seeded(train, seed), names
        return _seeded(read_list_file(lists["test"]), seed), names
    elif (dirs := split_dirs(root)) is not None:
        train, names = scan_video_layout(dirs["train"])
        samples = train if split == "train" else scan_video_layout(dirs["test"], names)[0]
        if not samples:
            raise DataError(f"video_folder: no videos found in {dirs[split]}; {LAYOUT_HELP}")
        return _seeded(samples, seed), names
    else:
        samples, names = scan_video_layout(root)
    if not samples:
        raise DataError(f"video_folder: no videos found in {root}; {LAYOUT_HELP}")
    train_idx, test_idx = stratified_split([y for _, y in samples], val_fraction, seed)
    idx = train_idx if split == "train" else test_idx
    if not idx:
        raise DataError(f"video_folder: the {split} split of {root} is empty (data.val_fraction={val_fraction})")
    return [samples[i] for i in idx], names


# ---------------------------------------------------------------------------------------------
# The dataset


def _reason(err: BaseException, path: str) -> str:
    """``Type: message`` of a decode error, without repeating the path the message starts with."""
    msg = str(err)
    return f"{type(err).__name__}: {msg[len(path) + 2:] if msg.startswith(path + ': ') else msg}"


class VideoDataset(Dataset):
    """Clips of video files; item ``i`` is ``(clip, label)`` (label -1 when unlabelled).

    Args:
        samples: ``(path, label)`` pairs (see :func:`scan_root`).
        class_names: the label names.
        spec: the clip settings.
        img_size: side of the evaluation views.
        train: sample one random clip (True) or the ``num_clips x num_views`` evaluation views; a
            copy whose ``transform`` is its ``eval_transform`` (:func:`~openjepa.data.eval_view`)
            samples evaluation views too.
        on_error: ``"skip"`` or ``"raise"``, as :class:`~openjepa.data.folder.FolderDataset`.
        transform: applied to uint8 frames ``(T, C, H, W)``; ``None`` returns uint8 clips.
        eval_transform: the deterministic pipeline of evaluation.
        root: where the samples came from (for messages).
    """

    def __init__(self, samples: Sequence[Tuple[str, int]], class_names: Sequence[str], spec: ClipSpec,
                 img_size: int = DEFAULT_IMG_SIZE, train: bool = True, on_error: str = "skip",
                 transform: Optional[Callable[[Tensor], Tensor]] = None,
                 eval_transform: Optional[Callable[[Tensor], Tensor]] = None, root: str = "") -> None:
        if on_error not in ("skip", "raise"):
            raise ConfigError(f"data.on_error must be 'skip' or 'raise', got {on_error!r}")
        self.samples = list(samples)
        self.class_names = list(class_names)
        self.spec = spec
        self.img_size = int(img_size)
        self.train = bool(train)
        self.on_error = on_error
        self.transform = transform
        self.eval_transform = eval_transform
        self.root = root
        self.skipped: List[Tuple[str, str]] = []  # (path, reason) of every unusable video met here
        self.skip_log: Optional[Path] = None  # when set, skipped videos are also appended here (any process)
        self._bad: Set[int] = set()

    @property
    def training(self) -> bool:
        """True when items are random training clips (False on an eval view)."""
        return self.train and (self.eval_transform is None or self.transform is not self.eval_transform)

    @property
    def targets(self) -> List[int]:
        """All labels, in order (-1 for unlabelled)."""
        return [y for _, y in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def _record(self, index: int, path: str, reason: str) -> None:
        self._bad.add(index)
        self.skipped.append((path, reason))
        log.warning("video_folder: skipping video %s (%s)", path, reason)
        if self.skip_log is not None:
            append_skip_log(self.skip_log, path, reason)

    def _clip(self, frames: Tensor) -> Tensor:
        """uint8 (T, C, H, W) -> the transformed clip (C, T, H, W)."""
        out = frames if self.transform is None else self.transform(frames)
        return out.permute(1, 0, 2, 3)  # (T, C, H, W) -> (C, T, H, W)

    def _load(self, path: str, train: bool) -> Tensor:
        """One random clip (C, T, H, W) when ``train``, else the evaluation views (K*S, C, T, H, W)."""
        if train:
            meta = probe_video(path)
            return self._clip(read_frames(path, train_clip_indices(meta.num_frames, self.spec, meta.fps)))
        return clip_views(path, self.spec, self.img_size, self.transform)

    def _fetch(self, index: int, train: bool) -> Tuple[Tensor, int]:
        n = len(self.samples)
        if not -n <= index < n:
            raise IndexError(f"video_folder: index {index} out of range for {n} videos")
        errors = decode_errors()
        for k in range(n):
            j = (index + k) % n  # deterministic replacement: the next usable video
            if j in self._bad:
                continue
            path, label = self.samples[j]
            try:
                return self._load(path, train), label
            except TooShort as e:
                span = self.spec.span(probe_video(path).fps)
                self._record(j, path, f"shorter than a clip: {e} < {span} ({self.spec.settings()}, "
                                      f"data.short_videos=skip)")
            except errors as e:
                if self.on_error == "raise":
                    raise DataError(f"video_folder: cannot decode video {path}: {_reason(e, path)} "
                                    f"(data.on_error=skip skips unreadable videos)") from e
                self._record(j, path, _reason(e, path))
        first = f" (first: {self.skipped[0][0]}: {self.skipped[0][1]})" if self.skipped else ""
        raise DataError(f"video_folder: none of the {n} videos of {self.root} could be used{first}")

    def views(self, index: int) -> Tuple[Tensor, int]:
        """``(clips, label)``: the evaluation views ``(num_clips * num_views, C, T, H, W)`` of item
        ``index``, clip-major, whatever this dataset's mode."""
        return self._fetch(index, False)

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        if self.training:
            return self._fetch(index, True)
        clips, label = self._fetch(index, False)
        return (clips[0] if clips.shape[0] == 1 else clips), label

    def verify(self, progress: bool = True) -> List[Tuple[str, str]]:
        """Probe and decode every video's first and last frame once; return ``[(path, reason)]`` of
        the unusable ones (also recorded, so later items skip them). Use it in the main process to
        see every bad file up front."""
        from tqdm.auto import tqdm

        errors = decode_errors()
        for j, (path, _label) in enumerate(tqdm(self.samples, desc="verify videos", disable=not progress)):
            if j in self._bad:
                continue
            try:
                meta = probe_video(path)
                read_frames(path, sorted({0, meta.num_frames - 1}))
            except errors as e:
                self._record(j, path, _reason(e, path))
        bad = {self.samples[j][0] for j in self._bad}
        return [s for s in self.skipped if s[0] in bad]

    def check_clip_fits(self) -> None:
        """Raise ConfigError when a clip is longer than every video (probes videos in order until one
        fits, so a usable setting costs one probe). Unreadable videos met on the way follow ``on_error``."""
        errors = decode_errors()
        longest: Optional[VideoMeta] = None
        for j, (path, _label) in enumerate(self.samples):
            if j in self._bad:
                continue
            try:
                meta = probe_video(path)
            except errors as e:
                if self.on_error == "raise":
                    raise DataError(f"video_folder: cannot decode video {path}: {_reason(e, path)} "
                                    f"(data.on_error=skip skips unreadable videos)") from e
                self._record(j, path, _reason(e, path))
                continue
            if meta.num_frames >= self.spec.span(meta.fps):
                return
            if longest is None or meta.num_frames > longest.num_frames:
                longest = meta
        if longest is None:
            first = f" (first: {self.skipped[0][0]}: {self.skipped[0][1]})" if self.skipped else ""
            raise DataError(f"video_folder: none of the {len(self.samples)} videos in {self.root} could be "
                            f"decoded{first}")
        raise ConfigError(f"{self.spec.settings()} spans {self.spec.span(longest.fps)} frames, longer than every "
                          f"video in {self.root} (longest: {longest.path}, {longest.num_frames} frames); lower "
                          f"data.frames_per_clip or the frame step")

    def __repr__(self) -> str:
        return (f"VideoDataset(root={self.root!r}, n={len(self)}, classes={len(self.class_names)}, "
                f"frames_per_clip={self.spec.frames_per_clip}, train={self.training})")


class FrameImages(Dataset):
    """The frames of a clip dataset as images (``data.frames_as_images=true``): item ``i`` is frame
    ``i % T`` of clip ``i // T``, ``(C, H, W)``, with the clip's label.

    Every frame of every clip, ``len(clips) * T`` items, so an image JEPA trains on exactly the
    frames a video model of the same data sees. An evaluation item of ``K*S`` views gives the
    frames of its central view (clip ``K // 2``, crop ``S // 2``). Items are what the clip
    dataset gives (a pure function of the index for ``moving_shapes``), one frame kept per clip
    decoded. Setting ``transform`` (as :func:`~openjepa.data.eval_view` does on a copy) sets it
    on a copy of the clip dataset, never on the one shared with the original.
    """

    def __init__(self, clips: Dataset, frames: int, num_clips: int = 1, num_views: int = 1) -> None:
        if frames < 1:
            raise ValueError(f"FrameImages: frames must be >= 1, got {frames}")
        self.clips, self.frames = clips, int(frames)
        self.central = (int(num_clips) // 2) * int(num_views) + int(num_views) // 2  # view k*S + s

    def __len__(self) -> int:
        return len(self.clips) * self.frames  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Tuple[Tensor, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"frames_as_images: index {index} out of range for {n} frames")
        clip, label = self.clips[(index % n) // self.frames]
        if clip.ndim == 5:  # (K*S, C, T, H, W) evaluation views: the central one
            clip = clip[self.central]
        return clip[:, index % self.frames], label  # (C, T, H, W) -> frame (C, H, W)

    @property
    def targets(self) -> List[int]:
        """All labels, in order: each clip's label ``T`` times."""
        return [y for y in self.clips.targets for _ in range(self.frames)]  # type: ignore[attr-defined]

    @property
    def class_names(self) -> List[str]:
        return list(getattr(self.clips, "class_names", []))

    @property
    def transform(self) -> Any:
        return getattr(self.clips, "transform", None)

    @transform.setter
    def transform(self, tf: Any) -> None:
        clips = copy.copy(self.clips)
        clips.transform = tf  # type: ignore[attr-defined]
        self.clips = clips

    @property
    def eval_transform(self) -> Any:
        return getattr(self.clips, "eval_transform", None)

    @property
    def skipped(self) -> List[Tuple[str, str]]:
        return list(getattr(self.clips, "skipped", []))

    @property
    def skip_log(self) -> Optional[Path]:
        return getattr(self.clips, "skip_log", None)

    @skip_log.setter
    def skip_log(self, path: Optional[Path]) -> None:
        self.clips.skip_log = path  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"FrameImages({self.clips!r}, frames={self.frames})"


# ---------------------------------------------------------------------------------------------
# Registration


def as_frames(cfg: Any, clips: Dataset) -> Dataset:
    """``clips`` itself, or its frames as images (:class:`FrameImages`) when ``data.frames_as_images``."""
    if not getattr(cfg, "frames_as_images", False):
        return clips
    return FrameImages(clips, int(cfg.frames_per_clip), int(cfg.num_clips), int(cfg.num_views))


def frames_kind(cfg: Any, info: DatasetInfo) -> DatasetInfo:
    """A video dataset's info, of kind ``image`` when ``data.frames_as_images`` (single frames)."""
    return replace(info, kind="image") if getattr(cfg, "frames_as_images", False) else info


def clip_spec(cfg: Any) -> ClipSpec:
    """The :class:`ClipSpec` of a ``DataConfig``."""
    return ClipSpec(int(cfg.frames_per_clip), int(cfg.frame_step), float(cfg.fps), int(cfg.num_clips),
                    int(cfg.num_views), str(cfg.short_videos))


def video_root(cfg: Any) -> Path:
    """``data.root`` of a video dataset: a folder or a list file."""
    if not getattr(cfg, "root", None):
        raise DataError("data.name=video_folder needs data.root=/path/to/videos (a folder or a 'path label' list file)")
    path = Path(cfg.root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"video_folder: data.root not found: {path}")
    return path


def _describe(cfg: Any, info: DatasetInfo) -> DatasetInfo:
    """The class subfolders (or the list file's labels) of the train split are the classes."""
    _samples, names = scan_root(video_root(cfg), "train", cfg.val_fraction, 0)
    return frames_kind(cfg, replace(info, num_classes=len(names), class_names=tuple(names)))


def prepare_clips(cfg: Any) -> None:
    """A video dataset fixes the model's clip length: ``model.num_frames = data.frames_per_clip``;
    with ``data.frames_as_images`` the model sees single frames: ``num_frames = tubelet_size = 1``."""
    if cfg.data.frames_as_images:
        cfg.model.num_frames = cfg.model.tubelet_size = 1
    else:
        cfg.model.num_frames = int(cfg.data.frames_per_clip)


def check_clips(cfg: Any) -> None:
    """The clip settings and the video evaluation settings are valid (ConfigError naming the key otherwise):
    ``eval.video_protocols`` are known protocols, ``eval.frame_encoder`` exists and is not asked of single frames."""
    from openjepa.config.load import check_protocols

    clip_spec(cfg.data)
    check_protocols(cfg.eval.video_protocols, "eval.video_protocols")
    src = cfg.eval.frame_encoder
    if src and cfg.data.frames_as_images:
        raise ConfigError("eval.frame_encoder is a baseline of clips; data.frames_as_images=true yields single "
                          "frames (unset one of them)")
    if src and not Path(src).expanduser().exists():
        raise ConfigError(f"eval.frame_encoder={src}: no such file or directory (a run directory, checkpoint, "
                          f"encoder.safetensors or any model openjepa.load_pretrained reads)")


@register_dataset("video_folder", DatasetInfo("video_folder", 3, 0, DEFAULT_IMG_SIZE, MEAN, STD, (), kind="video"),
                  describe=_describe, prepare=prepare_clips, check=check_clips)
def _build(cfg: Any, split: str, img_size: int, seed: int, tf: Any, eval_tf: Any) -> Dataset:
    root = video_root(cfg)
    samples, names = scan_root(root, "test" if split in ("test", "val") else "train", cfg.val_fraction, seed)
    ds = VideoDataset(samples, names, clip_spec(cfg), img_size, tf is not eval_tf, cfg.on_error, tf, eval_tf, str(root))
    ds.check_clip_fits()
    return as_frames(cfg, ds)
