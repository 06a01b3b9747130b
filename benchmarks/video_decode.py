"""Decode throughput of training clips: PyAV (openjepa's loader) against torchcodec.

Writes a few ``moving_shapes`` videos as mp4 (H.264) and webm (VP9) files, then decodes random
training clips from them the way the ``video_folder`` loader does: every clip opens its file,
seeks to the keyframe before the clip and decodes up to its last frame. Decoders:

- ``pyav``: :func:`openjepa.data.video.read_frames`, after the per-process packet index of
  :func:`~openjepa.data.video.probe_video` is built (what a worker sees from the second epoch on);
- ``pyav cold``: the same with that index rebuilt for every clip (a file's first clip);
- ``torchcodec exact`` / ``approximate``: ``VideoDecoder(path, seek_mode=...).get_frames_at(indices)``
  with one FFmpeg thread (its default), if torchcodec and the system FFmpeg it needs load.

    python benchmarks/video_decode.py                          # 3 files per format, 128 px, 96 frames
    python benchmarks/video_decode.py --size 256 --frames 240 --clips 30
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import torch

from openjepa.data.moving import MovingShapesDataset, to_uint8
from openjepa.data.video import ClipSpec, _probe, probe_video, read_frames, train_clip_indices, write_video


def make_videos(out: Path, count: int, frames: int, size: int, fps: int) -> Dict[str, List[Path]]:
    """``count`` clips of ``frames`` frames at ``size`` px per format (same content in each format)."""
    ds = MovingShapesDataset(count, frames, size, seed=0)
    files: Dict[str, List[Path]] = {"mp4": [], "webm": []}
    for i in range(count):
        frames_u8 = to_uint8(ds.raw_clip(i))  # (T, 3, H, W)
        for fmt in files:
            files[fmt].append(write_video(out / f"clip{i}.{fmt}", frames_u8, fps=fps))
    return files


def clip_plan(paths: Sequence[Path], clips: int, spec: ClipSpec, seed: int) -> List[tuple]:
    """``clips`` (path, indices) pairs: files in turn, random starts from a seeded generator."""
    torch.manual_seed(seed)
    plan = []
    for c in range(clips):
        path = paths[c % len(paths)]
        meta = probe_video(path)
        plan.append((str(path), train_clip_indices(meta.num_frames, spec, meta.fps)))
    return plan


def pyav_warm(path: str, idx: List[int]) -> torch.Tensor:
    return read_frames(path, idx)


def pyav_cold(path: str, idx: List[int]) -> torch.Tensor:
    _probe.cache_clear()
    return read_frames(path, idx)


def torchcodec_decoders() -> Dict[str, Callable[[str, List[int]], torch.Tensor]]:
    """The torchcodec decoders, or none when it is not installed (FFmpeg loads on first use)."""
    try:
        from torchcodec.decoders import VideoDecoder
    except (ImportError, OSError, RuntimeError) as e:
        print(f"torchcodec: not available ({type(e).__name__}: {str(e).splitlines()[0]})")
        return {}

    def make(mode: str) -> Callable[[str, List[int]], torch.Tensor]:
        def decode(path: str, idx: List[int]) -> torch.Tensor:
            return VideoDecoder(path, seek_mode=mode).get_frames_at(idx).data  # (T, 3, H, W) uint8
        return decode

    return {"torchcodec exact": make("exact"), "torchcodec approximate": make("approximate")}


def bench(decode: Callable[[str, List[int]], torch.Tensor], plan: List[tuple], repeats: int) -> float:
    """Best-of-``repeats`` seconds to decode every clip of ``plan``."""
    decode(*plan[0])  # warm-up (libraries, caches)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for path, idx in plan:
            decode(path, idx)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3, help="videos per format")
    ap.add_argument("--frames", type=int, default=96, help="frames per video")
    ap.add_argument("--size", type=int, default=128, help="frame side in pixels")
    ap.add_argument("--fps", type=int, default=24)
    ap.add_argument("--clips", type=int, default=24, help="clips decoded per decoder and format")
    ap.add_argument("--frames-per-clip", type=int, default=16)
    ap.add_argument("--frame-step", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a DataLoader worker uses 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = ClipSpec(args.frames_per_clip, args.frame_step)

    import av
    decoders: Dict[str, Callable[[str, List[int]], torch.Tensor]] = {"pyav": pyav_warm, "pyav cold": pyav_cold}
    decoders.update(torchcodec_decoders())
    tc = ""
    if "torchcodec exact" in decoders:
        import torchcodec
        tc = f" torchcodec {torchcodec.__version__}"
    print(f"{platform.machine()} {platform.system()} python {platform.python_version()} torch {torch.__version__} "
          f"av {av.__version__} (FFmpeg {getattr(av, 'ffmpeg_version_info', '?')}){tc}")
    print(f"{args.files} files per format, {args.frames} frames of {args.size}x{args.size} at {args.fps} fps; "
          f"{args.clips} clips of {args.frames_per_clip} frames, step {args.frame_step}; best of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        files = make_videos(Path(tmp), args.files, args.frames, args.size, args.fps)
        print(f"{'decoder':<24} {'format':<6} {'frames/s':>9} {'ms/clip':>8}")
        for fmt, paths in files.items():
            plan = clip_plan(paths, args.clips, spec, seed=0)
            ref = read_frames(*plan[1])
            for name, decode in list(decoders.items()):
                try:
                    got = decode(*plan[1])
                except (OSError, RuntimeError) as e:  # torchcodec without the FFmpeg libraries it needs
                    print(f"{name}: cannot decode ({type(e).__name__}: {str(e).splitlines()[0]})")
                    del decoders[name]
                    continue
                if not torch.equal(got, ref):  # the same frames, or the comparison means nothing
                    diff = (got.float() - ref.float()).abs().max().item()
                    print(f"{name:<24} {fmt:<6} frames differ from pyav's (max |diff| {diff:g})")
                secs = bench(decode, plan, args.repeats)
                n = len(plan) * args.frames_per_clip
                print(f"{name:<24} {fmt:<6} {n / secs:9.0f} {1000 * secs / len(plan):8.1f}")


if __name__ == "__main__":
    main()
