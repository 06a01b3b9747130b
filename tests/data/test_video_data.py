"""Video data: PyAV decoding of real mp4/webm/mkv/avi files written here, the clip-sampling rules
(against independent reimplementations), bad files, the layouts, and the ``moving_shapes`` dataset."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av")

from openjepa.config.schema import Config, DataConfig  # noqa: E402
from openjepa.data import build_dataset, dataset_info, dataset_spec, eval_view, prepare_config  # noqa: E402
from openjepa.data.moving import (CLASS_NAMES, MovingShapesDataset, reversed_label,  # noqa: E402
                                  write_videos)
from openjepa.data.video import (ClipSpec, VideoDataset, VideoFileError, eval_clip_indices, probe_video,  # noqa: E402
                                 read_frames, read_list_file, scan_root, spatial_views, train_clip_indices,
                                 write_video)
from openjepa.errors import USER_ERRORS, ConfigError, DataError  # noqa: E402


def indexed_frames(n: int, h: int = 32, w: int = 32) -> torch.Tensor:
    """uint8 (n, 3, h, w): frame t is one flat colour that encodes t (survives lossy coding)."""
    t = torch.arange(n)
    x = torch.empty(n, 3, h, w, dtype=torch.uint8)
    x[:, 0] = (16 * (t % 16) + 8).view(-1, 1, 1)
    x[:, 1] = (16 * (t // 16) + 8).view(-1, 1, 1)
    x[:, 2] = 128
    return x


def frame_ids(frames: torch.Tensor) -> list[int]:
    """The frame numbers of decoded (..., 3, H, W) frames (uint8 or float) of :func:`indexed_frames`."""
    m = frames.float().mean((-2, -1))  # (..., 3)
    if frames.dtype != torch.uint8:
        m = m * 255
    return (torch.round((m[..., 0] - 8) / 16) + 16 * torch.round((m[..., 1] - 8) / 16)).long().flatten().tolist()


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict:
    """One 20-frame 8 fps video per container, a 24 fps one and a 5-frame one."""
    d = tmp_path_factory.mktemp("videos")
    out = {ext: write_video(d / f"v20.{ext}", indexed_frames(20), fps=8) for ext in ("mp4", "webm", "mkv", "avi")}
    out["fast"] = write_video(d / "v24fps.mp4", indexed_frames(30), fps=24)
    out["short"] = write_video(d / "v5.webm", indexed_frames(5), fps=8)
    out["wide"] = write_video(d / "wide.mp4", indexed_frames(12, 32, 48), fps=8)
    return out


def make_folder(root: Path, per_class: dict) -> Path:
    """``root/<class>/<i>.<ext>`` from ``{class: [(frames, ext), ...]}``."""
    for name, items in per_class.items():
        for i, (n, ext) in enumerate(items):
            write_video(root / name / f"{i}.{ext}", indexed_frames(n), fps=8)
    return root


def clip_ids(clip: torch.Tensor, cfg: DataConfig) -> list[int]:
    """Frame numbers of a normalised clip (C, T, H, W) of the dataset ``cfg``."""
    info = dataset_info(cfg)
    frames = clip.permute(1, 0, 2, 3) * torch.tensor(info.std).view(3, 1, 1) + torch.tensor(info.mean).view(3, 1, 1)
    return frame_ids(frames)


def data_cfg(root: Path, **kw) -> DataConfig:
    base = dict(name="video_folder", root=str(root), frames_per_clip=4, frame_step=2, val_fraction=0.0)
    base.update(kw)
    return DataConfig(**base)


# ---------------------------------------------------------------------------------------------
# Decoding


@pytest.mark.parametrize("ext", ["mp4", "webm", "mkv", "avi"])
def test_probe_and_random_access(videos, ext):
    meta = probe_video(videos[ext])
    assert (meta.num_frames, meta.fps, meta.height, meta.width) == (20, 8.0, 32, 32)
    idx = [7, 0, 19, 3, 3, 12]
    frames = read_frames(videos[ext], idx)
    assert frames.shape == (6, 3, 32, 32) and frames.dtype == torch.uint8
    assert frame_ids(frames) == idx
    with pytest.raises(IndexError, match="frame index 20 out of range for 20 frames"):
        read_frames(videos[ext], [20])


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="unknown extension '.mov'"):
        write_video(tmp_path / "x.mov", indexed_frames(2))
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", indexed_frames(2).float())


# ---------------------------------------------------------------------------------------------
# Clip sampling rules


def test_train_clip_is_a_uniform_progression():
    n, spec = 20, ClipSpec(frames_per_clip=4, frame_step=3)  # span 10: starts 0..10
    starts = set()
    for s in range(300):
        torch.manual_seed(s)
        idx = train_clip_indices(n, spec, 8.0)
        np.testing.assert_array_equal(idx, idx[0] + 3 * np.arange(4))
        starts.add(idx[0])
    assert starts == set(range(11))
    torch.manual_seed(7)
    a = train_clip_indices(n, spec, 8.0)
    torch.manual_seed(7)
    assert train_clip_indices(n, spec, 8.0) == a  # a function of torch's default generator


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [10, 23, 64])
def test_eval_clips_evenly_spaced(n, k):
    spec = ClipSpec(frames_per_clip=4, frame_step=3, num_clips=k)
    room = n - 10
    want = [room // 2] if k == 1 else [int(Fraction(j * room, k - 1) + Fraction(1, 2)) for j in range(k)]
    got = eval_clip_indices(n, spec, 8.0)
    assert [c[0] for c in got] == want
    for c in got:
        np.testing.assert_array_equal(c, c[0] + 3 * np.arange(4))
    assert got[-1][-1] == (n - 1 if k > 1 else room // 2 + 9)


def test_fps_target_sets_the_step():
    def rule(video_fps: float, fps: float) -> int:
        return max(1, int(Fraction(video_fps) / Fraction(fps) + Fraction(1, 2)))
    for video_fps, fps in [(24, 8), (30, 12), (25, 10), (8, 24), (29.97, 10), (60, 7)]:
        spec = ClipSpec(frames_per_clip=4, fps=fps)
        assert spec.step(video_fps) == rule(video_fps, fps), (video_fps, fps)
    assert ClipSpec(frames_per_clip=4, fps=10).step(25) == 3  # 2.5 rounds up, not to even
    assert ClipSpec(frames_per_clip=4, frame_step=5).step(24) == 5  # fps 0: the frame step


@pytest.mark.parametrize("policy", ["pad", "loop"])
def test_short_video_policies(policy):
    n, spec = 5, ClipSpec(frames_per_clip=4, frame_step=2, short_videos=policy)  # span 7 > 5
    offsets = 2 * np.arange(4)
    want = np.minimum(offsets, n - 1) if policy == "pad" else np.mod(offsets, n)
    np.testing.assert_array_equal(train_clip_indices(n, spec, 8.0), want)
    np.testing.assert_array_equal(eval_clip_indices(n, spec, 8.0), [want])


def test_spatial_views_positions():
    x = torch.arange(2 * 3 * 16 * 24, dtype=torch.float32).view(2, 3, 16, 24)  # shorter side already 16
    v1, v2, v3 = spatial_views(x, 16, 3)
    assert torch.equal(v1, x[..., 0:16]) and torch.equal(v2, x[..., 4:20]) and torch.equal(v3, x[..., 8:24])
    (c,) = spatial_views(x, 16, 1)
    assert torch.equal(c, x[..., 4:20])
    tall = x.transpose(-1, -2)  # (2, 3, 24, 16)
    assert torch.equal(spatial_views(tall, 16, 2)[1], tall[..., 8:24, :])
    assert spatial_views(torch.zeros(1, 3, 32, 48), 16, 2)[0].shape == (1, 3, 16, 16)  # resized first


def test_bad_clip_settings():
    for kw, key in [({"frames_per_clip": 0}, "data.frames_per_clip"), ({"frame_step": 0}, "data.frame_step"),
                    ({"num_views": 0}, "data.num_views"), ({"fps": -1.0}, "data.fps")]:
        with pytest.raises(ConfigError, match=key):
            ClipSpec(**kw)
    with pytest.raises(ConfigError, match="data.short_videos='trim'; choose one of: pad, loop, skip"):
        ClipSpec(short_videos="trim")


# ---------------------------------------------------------------------------------------------
# The video_folder dataset on real files


def test_folder_training_clips_and_transforms(tmp_path):
    root = make_folder(tmp_path / "v", {"a": [(20, "mp4"), (20, "webm")], "b": [(20, "mkv"), (20, "avi")]})
    cfg = data_cfg(root, train_transforms=[{"name": "RandomHorizontalFlip", "p": 1.0}])
    info = dataset_info(cfg)
    assert (info.kind, info.class_names, info.num_classes) == ("video", ("a", "b"), 2)
    raw = build_dataset(cfg, "train", 16, seed=0)
    assert len(raw) == 4 and sorted(raw.targets) == [0, 0, 1, 1]
    for i in range(4):
        torch.manual_seed(i)
        clip, _ = raw[i]
        assert clip.shape == (3, 4, 16, 16) and clip.dtype == torch.float32  # (C, T, H, W)
        ids = clip_ids(clip, cfg)
        np.testing.assert_array_equal(ids, ids[0] + 2 * np.arange(4))
        assert 0 <= ids[0] <= 20 - 7
    torch.manual_seed(3)
    a = raw[1][0]
    torch.manual_seed(3)
    assert torch.equal(raw[1][0], a)  # determinism by seed


def test_one_transform_for_all_frames(videos):
    from openjepa.data.transforms import build_pipeline
    tf = build_pipeline([{"name": "RandomResizedCrop", "size": 16, "scale": [0.1, 0.3]}], 16, (0.0,) * 3, (1.0,) * 3)
    frames = read_frames(videos["wide"], [3] * 4)  # four copies of one frame: the outputs must agree
    frames[:, :, :, 24:] = 0  # not flat, so that the crop position shows
    ds = VideoDataset([(str(videos["wide"]), 0)], ["a"], ClipSpec(4, 1), 16, transform=tf)
    out = ds._clip(frames)  # (C, T, H, W)
    assert out.shape == (3, 4, 16, 16)
    assert all(torch.equal(out[:, t], out[:, 0]) for t in range(4))


def test_eval_views(videos):
    spec = ClipSpec(frames_per_clip=3, frame_step=2, num_clips=3, num_views=2)
    ds = VideoDataset([(str(videos["wide"]), 1)], ["a", "b"], spec, img_size=16, train=False)
    clips, y = ds[0]
    assert y == 1 and clips.shape == (6, 3, 3, 16, 16) and clips.dtype == torch.uint8  # (K*S, C, T, H, W)
    want = eval_clip_indices(12, spec, 8.0)  # starts 0, 4, 7 of a 12-frame video (span 5)
    for v in range(6):
        assert frame_ids(clips[v].permute(1, 0, 2, 3)) == want[v // 2]  # clip-major
    one = VideoDataset([(str(videos["wide"]), 1)], ["a", "b"], ClipSpec(3, 2), img_size=16, train=False)
    assert one[0][0].shape == (3, 3, 16, 16)  # one view: no views axis
    tr = VideoDataset([(str(videos["wide"]), 1)], ["a", "b"], spec, img_size=16, train=True)
    assert tr[0][0].shape == (3, 3, 32, 48)  # training, no transform: the decoded clip
    assert tr.views(0)[0].shape == (6, 3, 3, 16, 16)


def test_eval_view_switches_sampling(tmp_path):
    root = make_folder(tmp_path / "v", {"a": [(20, "mp4")], "b": [(20, "webm")]})
    cfg = data_cfg(root, num_clips=2)
    train = build_dataset(cfg, "train", 16)
    assert train.training and train[0][0].shape == (3, 4, 16, 16)
    ev = eval_view(train)
    assert not ev.training and ev[0][0].shape == (2, 3, 4, 16, 16)
    assert not build_dataset(cfg, "train", 16, train=False).training


def test_too_short_pad_and_skip(tmp_path, caplog):
    root = make_folder(tmp_path / "v", {"a": [(5, "webm"), (20, "mp4")]})
    pad = build_dataset(data_cfg(root), "train", 16, train=False)
    short = next(i for i, (p, _) in enumerate(pad.samples) if p.endswith("0.webm"))
    assert clip_ids(pad[short][0], data_cfg(root)) == [0, 2, 4, 4]  # padded with the last frame
    loop = build_dataset(data_cfg(root, short_videos="loop"), "train", 16)
    assert clip_ids(loop[short][0], data_cfg(root)) == [0, 2, 4, 1]  # wrapped around
    skip = build_dataset(data_cfg(root, short_videos="skip"), "train", 16, train=False)
    with caplog.at_level(logging.WARNING):
        clip2, _ = skip[short]
    path = skip.samples[short][0]
    assert skip.skipped[0][0] == path and "shorter than a clip: 5 frames < 7" in skip.skipped[0][1]
    assert path in caplog.text
    assert torch.equal(clip2, skip[(short + 1) % 2][0])  # replaced by the next video


def test_clip_longer_than_every_video(tmp_path):
    root = make_folder(tmp_path / "v", {"a": [(5, "mp4")], "b": [(8, "webm")]})
    with pytest.raises(ConfigError) as e:
        build_dataset(data_cfg(root, frames_per_clip=8, frame_step=2), "train", 16)
    msg = str(e.value)
    assert "\n" not in msg and "data.frames_per_clip=8 with data.frame_step=2 spans 15 frames" in msg
    assert "longest: " in msg and "0.webm, 8 frames" in msg
    build_dataset(data_cfg(root, frames_per_clip=4, frame_step=2), "train", 16)  # span 7 fits the 8-frame one


def truncated(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("ext,fraction", [("mp4", 0.5), ("webm", 0.9), ("avi", 0.9)])
def test_corrupt_video_skip_or_raise(tmp_path, caplog, ext, fraction):
    root = make_folder(tmp_path / "v", {"a": [(20, "mp4"), (20, "webm")]})
    full = write_video(tmp_path / f"full.{ext}", indexed_frames(20))
    bad = truncated(full, root / "a" / f"cut.{ext}", fraction)
    with caplog.at_level(logging.WARNING):
        ds = build_dataset(data_cfg(root), "train", 16)  # may meet the bad file already (probing lengths)
        j = next(i for i, (p, _) in enumerate(ds.samples) if p == str(bad))
        clip, _ = ds[j]
    assert clip.shape == (3, 4, 16, 16)  # the next readable video instead
    assert [p for p, _ in ds.skipped] == [str(bad)] and str(bad) in caplog.text
    assert ds.verify(progress=False) == ds.skipped
    with pytest.raises(DataError) as e:
        build_dataset(data_cfg(root, on_error="raise"), "train", 16)[j]
    assert str(bad) in str(e.value) and "\n" not in str(e.value) and "data.on_error=skip" in str(e.value)
    assert DataError in USER_ERRORS  # the command line: one line, exit code 2


def test_truncated_webm_reason(tmp_path, videos):
    cut = truncated(videos["webm"], tmp_path / "cut.webm", 0.9)
    with pytest.raises(VideoFileError, match=r"cut.webm: truncated file \(its frames cover .* s of the 2\.5 s"):
        probe_video(cut)


def zero_frame_avi(path: Path) -> Path:
    import av
    c = av.open(str(path), "w")
    s = c.add_stream("mpeg4", rate=8)
    s.width = s.height = 32
    s.pix_fmt = "yuv420p"
    c.start_encoding()
    c.close()
    return path


def test_zero_frame_unsupported_codec_and_garbage(tmp_path, videos):
    with pytest.raises(VideoFileError, match="zero.avi: the video stream has no frames"):
        probe_video(zero_frame_avi(tmp_path / "zero.avi"))
    data = videos["mp4"].read_bytes()
    assert data.count(b"avc1") >= 1
    (tmp_path / "codec.mp4").write_bytes(data.replace(b"avc1", b"zzz9"))  # a sample entry no decoder knows
    with pytest.raises(VideoFileError, match="codec.mp4: unsupported codec"):
        probe_video(tmp_path / "codec.mp4")
    (tmp_path / "text.mp4").write_text("not a video")
    root = tmp_path / "v"
    make_folder(root, {"a": [(20, "webm")]})
    for name in ("zero.avi", "codec.mp4", "text.mp4"):
        (root / "a" / name).write_bytes((tmp_path / name).read_bytes())
    ds = build_dataset(data_cfg(root), "train", 16)
    bad = sorted(p for p, _ in ds.verify(progress=False))
    assert bad == sorted(str(root / "a" / n) for n in ("zero.avi", "codec.mp4", "text.mp4"))
    only_bad = VideoDataset([(str(root / "a" / "text.mp4"), 0)], ["a"], ClipSpec(4, 2), root=str(root))
    with pytest.raises(DataError, match="none of the 1 videos"):
        only_bad[0]


def test_folder_without_videos_and_layouts(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"video_folder: no videos found in .*empty; expected video files \(mp4, webm"):
        build_dataset(data_cfg(tmp_path / "empty"), "train", 16)
    with pytest.raises(DataError, match="data.root"):
        build_dataset(DataConfig(name="video_folder"), "train", 16)
    root = make_folder(tmp_path / "v", {"a": [(8, "mp4")], "b": []})
    (root / "b").mkdir(exist_ok=True)
    with pytest.raises(DataError, match=r"class folder\(s\) with no videos: .*b"):
        build_dataset(data_cfg(root), "train", 16)
    split = tmp_path / "s"
    make_folder(split / "train", {"x": [(8, "mp4"), (8, "webm")], "y": [(8, "mp4")]})
    make_folder(split / "test", {"y": [(8, "webm")]})
    te = build_dataset(data_cfg(split), "test", 16)
    assert len(te) == 1 and te.targets == [1] and te.class_names == ["x", "y"]


def test_list_file(tmp_path):
    d = tmp_path / "clips"
    for i in range(4):
        write_video(d / f"c{i}.mp4", indexed_frames(10), fps=8)
    (tmp_path / "train.csv").write_text("clips/c0.mp4 0\nclips/c1.mp4 2\n\n" f"{d / 'c2.mp4'} 1\n")
    (tmp_path / "val.csv").write_text("clips/c3.mp4 2\n")
    assert read_list_file(tmp_path / "train.csv") == [(str(d / "c0.mp4"), 0), (str(d / "c1.mp4"), 2),
                                                      (str(d / "c2.mp4"), 1)]
    one = build_dataset(data_cfg(tmp_path / "train.csv"), "train", 16)
    assert sorted(one.targets) == [0, 1, 2] and dataset_info(data_cfg(tmp_path / "train.csv")).num_classes == 3
    assert build_dataset(data_cfg(tmp_path), "test", 16).samples == [(str(d / "c3.mp4"), 2)]  # train.csv + val.csv
    (tmp_path / "bad.csv").write_text("clips/c0.mp4 0\nclips/c1.mp4 cat\n")
    with pytest.raises(DataError, match=r"bad.csv:2: expected 'path label' with an integer label"):
        read_list_file(tmp_path / "bad.csv")


def test_seeded_order_and_prepare(tmp_path):
    root = make_folder(tmp_path / "v", {"a": [(8, "mp4")] * 3, "b": [(8, "webm")] * 3})
    a = scan_root(root, "train", 0.25, seed=1)[0]  # each class holds out round(0.75) = 1 of 3
    assert a == scan_root(root, "train", 0.25, seed=1)[0] and len(a) == 4
    assert sorted(y for _, y in a) == [0, 0, 1, 1]
    assert set(a).isdisjoint(scan_root(root, "test", 0.25, seed=1)[0])
    cfg = Config()
    cfg.data = data_cfg(root, frames_per_clip=6)
    prepare_config(cfg)
    assert cfg.model.num_frames == 6 and cfg.model.in_chans == 3
    assert dataset_spec("video_folder").info.kind == "video"


# ---------------------------------------------------------------------------------------------
# moving_shapes


def test_moving_shapes_reversal_flips_the_label():
    assert sorted(reversed_label(c) for c in range(8)) == list(range(8))
    for c in range(8):
        assert reversed_label(c) != c and reversed_label(reversed_label(c)) == c
        d, s = divmod(c, 2)
        rd, rs = divmod(reversed_label(c), 2)
        assert rs != s and {CLASS_NAMES[c].split("_")[0], CLASS_NAMES[reversed_label(c)].split("_")[0]} in (
            {"right", "left"}, {"down", "up"})
    ds = MovingShapesDataset(16, frames=6, img_size=16)
    assert sorted(ds.targets) == sorted(list(range(8)) * 2)
    for m in range(8):
        fwd, back = ds.raw_clip(2 * m), ds.raw_clip(2 * m + 1)
        assert torch.equal(back, fwd.flip(0))
        assert ds.label(2 * m + 1) == reversed_label(ds.label(2 * m))
        assert not torch.equal(fwd, back)


def test_moving_shapes_frames_carry_no_label():
    """The multiset of single frames of class c equals that of class reversed_label(c)."""
    ds = MovingShapesDataset(32, frames=5, img_size=16, seed=3)
    frames: dict = {c: [] for c in range(8)}
    for i in range(len(ds)):
        frames[ds.label(i)] += [f.numpy().tobytes() for f in ds.raw_clip(i)]
    for c in range(8):
        assert sorted(frames[c]) == sorted(frames[reversed_label(c)])
        assert sorted(frames[c]) != sorted(frames[c ^ 1])  # other classes do differ


def test_moving_shapes_motion_matches_its_label():
    """An ellipse's centroid moves along the labelled direction and its long axis turns the labelled
    way (clockwise on screen: the angle from +x towards +y, y pointing down, grows), measured from
    the pixels' moments."""
    from openjepa.data import moving
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    for c in range(8):
        u = torch.rand(moving._N_U + moving._N_MOTION, generator=torch.Generator().manual_seed(c))
        u[15:moving._N_U] = 1.0  # strokes and dots absent (present when u < 3/4, 1/2)
        u[moving._N_U] = 0.5  # SHAPE_IDS[3]: the ellipse (centroid at the centre of rotation)
        u[2] = 1.0  # the largest size
        frames = moving.render_clip(u, torch.zeros(6, 3, 32, 32), c, 6, 32)
        mask = ((frames - u[4:7].view(1, 3, 1, 1)).abs().sum(1) < 0.05).float()  # (T, H, W): shape colour
        w = mask.sum((1, 2))
        cx, cy = (mask * xs).sum((1, 2)) / w, (mask * ys).sum((1, 2)) / w
        dx, dy = moving.DIRECTIONS[c // 2]
        along = dx * (cx[-1] - cx[0]) + dy * (cy[-1] - cy[0])
        across = dy * (cx[-1] - cx[0]) + dx * (cy[-1] - cy[0])
        assert along > 3 and abs(across) < 1, (c, along, across)
        mx, my = xs - cx.view(-1, 1, 1), ys - cy.view(-1, 1, 1)
        mu20, mu02, mu11 = ((mask * mx * mx).sum((1, 2)), (mask * my * my).sum((1, 2)), (mask * mx * my).sum((1, 2)))
        theta = 0.5 * torch.atan2(2 * mu11, mu20 - mu02)  # long-axis angle, mod pi
        turn = torch.remainder(theta.diff() + torch.pi / 2, torch.pi) - torch.pi / 2  # per frame, in (-pi/2, pi/2]
        assert (turn > 0).all() if c % 2 == 0 else (turn < 0).all(), (c, turn)


def test_moving_shapes_seed_and_build():
    cfg = DataConfig(name="moving_shapes", frames_per_clip=4, train_size=6, test_size=4)
    a = build_dataset(cfg, "train", 16, seed=0)
    x, y = a[0]
    assert x.shape == (3, 4, 16, 16) and y == 0 and len(build_dataset(cfg, "test", 16)) == 4
    assert torch.equal(build_dataset(cfg, "train", 16, seed=0)[2][0], a[2][0])
    assert not torch.equal(build_dataset(cfg, "train", 16, seed=1)[2][0], a[2][0])
    assert not torch.equal(build_dataset(cfg, "test", 16, seed=0)[0][0], x)
    c = Config()
    c.data = DataConfig(name="moving_shapes", frames_per_clip=3)
    with pytest.raises(ConfigError, match="data.frames_per_clip=3: moving_shapes needs at least 4 frames"):
        dataset_spec("moving_shapes").check(c)


def test_moving_shapes_written_as_videos_are_read_back(tmp_path):
    ds = MovingShapesDataset(8, frames=6, img_size=32, seed=2)
    paths = write_videos(ds, tmp_path / "ms", 8)
    assert sorted({p.suffix for p in paths}) == [".mp4", ".webm"]
    assert all(p.parent.name == CLASS_NAMES[ds.label(i)] for i, p in enumerate(paths))
    cfg = data_cfg(tmp_path / "ms", frames_per_clip=6, frame_step=1)
    info = dataset_info(cfg)
    loaded = build_dataset(cfg, "train", 32, train=False)
    assert len(loaded) == 8 and info.num_classes == len({ds.label(i) for i in range(8)})
    for path, label in loaded.samples:
        i = int(Path(path).stem)
        assert info.class_names[label] == CLASS_NAMES[ds.label(i)]
        assert probe_video(path).num_frames == 6
        got = read_frames(path, range(6)).float() / 255
        assert (got - ds.raw_clip(i)).abs().mean() < 0.12  # lossy, but the same clip
