"""Video evaluation: multi-clip, multi-view averaging, tubelet pixels, the frame-averaged image baseline, the
``data.frames_as_images`` option, the video protocols and verdict, and ``openjepa embed`` on real video files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch.utils.data import DataLoader

pytest.importorskip("av")

from openjepa.cli import main  # noqa: E402
from openjepa.config.schema import Config  # noqa: E402
from openjepa.data import build_dataset, dataset_info, eval_view, prepare_config  # noqa: E402
from openjepa.data.moving import MovingShapesDataset, to_uint8, write_videos  # noqa: E402
from openjepa.data.video import FrameImages, read_frames, write_video  # noqa: E402
from openjepa.engine.runs import load_run  # noqa: E402
from openjepa.errors import ConfigError  # noqa: E402
from openjepa.eval.attentive import predict_attentive, train_attentive  # noqa: E402
from openjepa.eval.embed import embed_images, list_videos  # noqa: E402
from openjepa.eval.features import extract, frame_averaged, pixel_patches  # noqa: E402
from openjepa.eval.frozen import _renormaliser, eval_protocols, evaluate_method, load_frame_encoder  # noqa: E402
from openjepa.eval.table import FRAME_AVERAGED, RANDOM_INIT, ProbeTable  # noqa: E402
from openjepa.methods import check_config  # noqa: E402

VIDEO = ["data.name=moving_shapes", "data.train_size=16", "data.test_size=8", "data.batch_size=8",
         "model.encoder=vit_pico", "model.img_size=32", "model.patch_size=8", "data.frames_per_clip=4",
         "data.frame_step=2", "model.tubelet_size=2", "model.predictor_embed_dim=32", "model.predictor_depth=1",
         "model.predictor_heads=2", "optim.warmup_steps=1", "train.steps=1", "train.progress=false",
         "eval.at_end=false", "eval.report=false"]


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("vrun") / "run"
    assert main(["train", f"run_dir={run}", *VIDEO]) == 0
    return run


@pytest.fixture(scope="module")
def frame_run(tmp_path_factory):
    """The image JEPA of the same data and budget: single frames (data.frames_as_images=true)."""
    run = tmp_path_factory.mktemp("frun") / "run"
    assert main(["train", f"run_dir={run}", *VIDEO, "data.frames_as_images=true"]) == 0
    return run


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    """Eight 8-frame 32 px moving_shapes videos (mp4 and webm), two in each of four class folders."""
    d = tmp_path_factory.mktemp("clips")
    write_videos(MovingShapesDataset(8, frames=8, img_size=32, seed=3), d, 8)
    return d


def _one_error_line(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1, err
    return err.strip()


# --- multi-view averaging ----------------------------------------------------------------------------------


def test_pixel_tubelets_match_a_loop():
    x = torch.randn(2, 3, 4, 8, 12)  # (B, C, T, H, W)
    got = pixel_patches(x, 4, 2)
    a = x.numpy()
    want = [a[:, :, t:t + 2, i:i + 4, j:j + 4].reshape(2, -1)  # (C, t, p, p) flattened, grid order (T, H, W)
            for t in range(0, 4, 2) for i in range(0, 8, 4) for j in range(0, 12, 4)]
    np.testing.assert_array_equal(got.numpy(), np.stack(want, axis=1))
    assert got.shape == (2, 2 * 2 * 3, 3 * 2 * 4 * 4)
    img = torch.randn(2, 3, 8, 8)
    np.testing.assert_array_equal(pixel_patches(img, 4, 2).numpy(), pixel_patches(img.unsqueeze(2), 4, 1).numpy())


def test_multiclip_extract_on_video_files_averages_views(clips_dir):
    """video_folder with data.num_clips=2: each item's pooled features are the mean of its two clips' own."""
    cfg = Config()
    cfg.data.name, cfg.data.root, cfg.data.val_fraction = "video_folder", str(clips_dir), 0.5
    cfg.data.frames_per_clip, cfg.data.frame_step, cfg.data.num_clips = 4, 2, 2
    ds = build_dataset(cfg.data, "test", 32, train=False)
    encode = lambda x: pixel_patches(x, 8, 2) * 2.0 + 1.0  # noqa: E731  (a deterministic "encoder")
    feats = extract(encode, DataLoader(ds, batch_size=3), "cpu", progress=False, keep_tokens=True)
    views = [ds[i][0] for i in range(len(ds))]
    assert views[0].shape == (2, 3, 4, 32, 32)  # (K*S, C, T, H, W)
    per_view = [[encode(v[k:k + 1])[0] for k in range(2)] for v in views]  # each clip on its own
    want = torch.stack([(a.mean(0) + b.mean(0)) / 2 for a, b in per_view])
    torch.testing.assert_close(feats.x, want)
    assert feats.tokens.shape == (len(ds), 2, 32, 384)
    torch.testing.assert_close(feats.tokens.float(), torch.stack([torch.stack(p) for p in per_view]).half().float())
    assert not torch.equal(per_view[0][0], per_view[0][1])  # the two clips differ: the average is not a copy


def test_attentive_prediction_averages_view_logits():
    g = torch.Generator().manual_seed(0)
    tokens, y = torch.randn(12, 3, 5, 8, generator=g), torch.arange(12) % 4  # (N, V, T, D)
    model = train_attentive(tokens, y, 4, lr=1e-2, wd=0.0, epochs=2, batch_size=4, seed=0, device=torch.device("cpu"))
    with torch.no_grad():
        logits = sum(model(tokens[:, v]) for v in range(3)) / 3  # view by view
    assert torch.equal(predict_attentive(model, tokens), logits.argmax(1))


def test_attentive_one_view_axis_trains_exactly_as_no_view_axis():
    g = torch.Generator().manual_seed(1)
    tokens, y = torch.randn(10, 6, 8, generator=g), torch.arange(10) % 3
    kw = dict(lr=3e-3, wd=1e-3, epochs=2, batch_size=4, seed=5, device=torch.device("cpu"))
    a, b = train_attentive(tokens, y, 3, **kw), train_attentive(tokens.unsqueeze(1), y, 3, **kw)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_copies_of_one_view_predict_as_that_view():
    """V copies of the same tokens: the mean of V equal logits, so the prediction of one copy."""
    g = torch.Generator().manual_seed(2)
    tokens, y = torch.randn(8, 4, 8, generator=g), torch.arange(8) % 2
    model = train_attentive(tokens, y, 2, lr=1e-2, wd=0.0, epochs=1, batch_size=8, seed=0, device=torch.device("cpu"))
    copies = tokens.unsqueeze(1).repeat(1, 3, 1, 1)  # (N, 3, T, D)
    assert torch.equal(predict_attentive(model, copies), predict_attentive(model, tokens))


# --- the frame-averaged baseline -----------------------------------------------------------------------------


def test_frame_averaged_equals_a_per_frame_loop():
    enc = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 4, 4), torch.nn.Flatten(2))  # (B, 3, 8, 8) -> (B, 5, 4)
    encode = lambda x: enc(x).transpose(1, 2)  # noqa: E731  (B, 4 tokens, 5)
    x = torch.randn(2, 3, 6, 8, 8)
    with torch.no_grad():
        want = sum(encode(x[:, :, t]) for t in range(6)) / 6
        torch.testing.assert_close(frame_averaged(encode)(x), want)
        assert not torch.allclose(encode(x[:, :, 0]), want)


def test_frame_encoder_from_a_frames_run_is_applied_per_frame(video_run, frame_run):
    cfg, _, _, _ = load_run(video_run)
    fcfg, fmethod, _, _ = load_run(frame_run)
    assert fcfg.model.num_frames == 1 and fcfg.model.tubelet_size == 1
    cfg.eval.frame_encoder = str(frame_run)
    encode, _ = load_frame_encoder(cfg, dataset_info(cfg.data), torch.device("cpu"))
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        want = sum(fmethod.encode(x[:, :, t], "target") for t in range(4)) / 4
        torch.testing.assert_close(encode(x), want)
    assert want.shape == (2, 16, 96)  # (H*W, D) tokens for the attentive probe


def test_renormaliser_matches_the_formula():
    x = torch.randn(2, 3, 4, 4)
    src, dst = ((0.1, 0.2, 0.3), (0.5, 0.6, 0.7)), ((0.4, 0.4, 0.4), (0.2, 0.25, 0.3))
    raw = x * torch.tensor(src[1]).view(1, 3, 1, 1) + torch.tensor(src[0]).view(1, 3, 1, 1)
    want = (raw - torch.tensor(dst[0]).view(1, 3, 1, 1)) / torch.tensor(dst[1]).view(1, 3, 1, 1)
    torch.testing.assert_close(_renormaliser(src, dst)(x), want)
    assert _renormaliser(src, src)(x) is x


def test_video_eval_table_has_the_frame_baseline_and_judges_attentive(video_run, frame_run, capsys):
    cfg, method, _, _ = load_run(video_run)
    cfg.eval.frame_encoder, cfg.eval.knn_k = str(frame_run), 3
    rows = evaluate_method(method, cfg, torch.device("cpu"), protocols=["knn"])
    assert [r["name"] for r in rows][1:] == [RANDOM_INIT, "raw pixels", FRAME_AVERAGED]
    assert rows[3]["dim"] == 96 and rows[2]["dim"] == 3 * 4 * 32 * 32
    verdicts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ijepa ") and "|" not in line]
    assert len(verdicts) == 3 and FRAME_AVERAGED in verdicts[1]  # random init, frame-averaged, raw pixels


def test_verdict_judges_the_attentive_probe_on_video():
    rows = [{"name": "ijepa (target encoder)", "dim": 8, "linear": 0.9, "attentive": 0.5, "n_test": 1000},
            {"name": FRAME_AVERAGED, "dim": 8, "linear": 0.5, "attentive": 0.5, "n_test": 1000}]
    assert ProbeTable(rows).verdicts() == ["ijepa beats frame-averaged image encoder by +40.0 points (linear)"]
    [line] = ProbeTable(rows, judge_on="attentive").verdicts()
    assert line.startswith("ijepa is level with frame-averaged image encoder (attentive: +0.0 points")


def test_video_protocols_are_the_default_on_clips_only(video_run):
    cfg, _, _, _ = load_run(video_run)
    assert eval_protocols(cfg, "video") == ["attentive", "linear", "knn"]
    assert eval_protocols(cfg, "image") == ["linear", "knn"]
    assert eval_protocols(cfg, "video", ["knn"]) == ["knn"]
    cfg.eval.video_protocols = ["knn", "nope"]
    with pytest.raises(ConfigError, match="eval.video_protocols: unknown protocol 'nope'"):
        eval_protocols(cfg, "video")


def test_bad_video_eval_settings_are_one_line(tmp_path, capsys):
    base = ["config", "show", "data.name=moving_shapes"]
    line = _one_error_line(capsys, *base, "eval.video_protocols=[linear,frob]")
    assert "eval.video_protocols: unknown protocol 'frob'" in line
    line = _one_error_line(capsys, *base, f"eval.frame_encoder={tmp_path / 'none'}")
    assert f"eval.frame_encoder={tmp_path / 'none'}: no such file or directory" in line
    line = _one_error_line(capsys, *base, f"eval.frame_encoder={tmp_path}", "data.frames_as_images=true")
    assert "data.frames_as_images=true yields single frames" in line


# --- data.frames_as_images -------------------------------------------------------------------------------------


def _frames_cfg(**kw) -> Config:
    cfg = Config()
    cfg.data.name, cfg.data.train_size, cfg.data.test_size, cfg.data.frames_per_clip = "moving_shapes", 3, 2, 4
    for k, v in kw.items():
        setattr(cfg.data, k, v)
    return cfg


def test_frames_as_images_serves_every_frame_with_its_clips_label():
    clips = build_dataset(_frames_cfg().data, "train", 16, seed=4)
    cfg = _frames_cfg(frames_as_images=True)
    frames = build_dataset(cfg.data, "train", 16, seed=4)
    assert len(frames) == 3 * 4
    for i in range(len(frames)):
        x, y = frames[i]
        clip, label = clips[i // 4]
        assert x.shape == (3, 16, 16) and y == label
        assert torch.equal(x, clip[:, i % 4])
    assert frames.targets == [clips.targets[i // 4] for i in range(12)]
    again = build_dataset(cfg.data, "train", 16, seed=4)
    assert all(torch.equal(frames[i][0], again[i][0]) for i in (0, 7, 11))  # deterministic by seed
    assert not torch.equal(frames[0][0], build_dataset(cfg.data, "train", 16, seed=5)[0][0])


def test_frames_as_images_is_image_data_for_a_one_frame_model():
    cfg = _frames_cfg(frames_as_images=True, batch_size=12)  # 3 clips x 4 frames
    cfg.model.tubelet_size = 2
    assert dataset_info(cfg.data).kind == "image"
    prepare_config(cfg)
    assert (cfg.model.num_frames, cfg.model.tubelet_size) == (1, 1)
    check_config(cfg)
    cfg.data.batch_size = 13
    with pytest.raises(ConfigError, match="data.batch_size=13 exceeds the 12 training frames"):
        check_config(cfg)


def test_frames_eval_view_leaves_the_original_alone():
    cfg = _frames_cfg(frames_as_images=True)
    cfg.data.train_transforms = [{"name": "RandomHorizontalFlip", "p": 1.0}]
    frames = build_dataset(cfg.data, "train", 16, seed=0)
    view = eval_view(frames)
    assert view.transform is frames.eval_transform and frames.transform is not frames.eval_transform
    assert torch.equal(view[1][0], frames[1][0].flip(-1))


def test_frames_of_multiview_items_come_from_the_central_view():
    class Views(torch.utils.data.Dataset):
        targets = [7]

        def __len__(self):
            return 1

        def __getitem__(self, i):  # (K*S = 6, C = 1, T = 2, 1, 1): value 10 * view + frame
            return (10 * torch.arange(6).view(6, 1, 1, 1, 1) + torch.arange(2).view(1, 1, 2, 1, 1)).float(), 7

    frames = FrameImages(Views(), 2, num_clips=2, num_views=3)  # central view: clip 1, crop 1 -> 1 * 3 + 1
    assert [frames[i][0].item() for i in range(2)] == [40.0, 41.0] and frames.targets == [7, 7]


# --- openjepa embed on video files ---------------------------------------------------------------------------


def _manual(method, cfg, path, starts):
    """Pooled features of ``path`` by hand: frames start + 2 t, /255, the dataset's normalisation, encode, mean."""
    info = dataset_info(cfg.data)
    mean, std = torch.tensor(info.mean).view(1, 3, 1, 1), torch.tensor(info.std).view(1, 3, 1, 1)
    views = []
    for s in starts:
        x = (read_frames(path, [s + 2 * t for t in range(4)]).float() / 255 - mean) / std  # (T, C, H, W)
        views.append(method.encode(x.permute(1, 0, 2, 3)[None], "target")[0])  # (N, D)
    return torch.stack(views)  # (V, N, D)


def test_embed_video_features_equal_a_manual_pipeline(video_run, clips_dir):
    cfg, method, _, _ = load_run(video_run)
    paths = list_videos([clips_dir])
    emb = embed_images(method, cfg, paths, batch_size=3, progress=False)
    want = torch.stack([_manual(method, cfg, p, [0])[0].mean(0) for p in paths])  # 8 frames, span 7: start 0
    torch.testing.assert_close(emb.features, want)
    cfg.data.num_clips = 2  # starts 0 and 1
    tokens = embed_images(method, cfg, paths[:2], pool="none", progress=False).features
    manual = torch.stack([_manual(method, cfg, p, [0, 1]) for p in paths[:2]])
    assert tokens.shape == (2, 2, 32, 96)
    torch.testing.assert_close(tokens, manual)
    pooled = embed_images(method, cfg, paths[:2], progress=False).features
    torch.testing.assert_close(pooled, manual.mean(2).mean(1))


def test_embed_cli_records_clip_settings(video_run, clips_dir, tmp_path):
    out = tmp_path / "f.safetensors"
    assert main(["embed", str(video_run), str(clips_dir), "--out", str(out), "--no-progress"]) == 0
    meta = json.loads((tmp_path / "f.safetensors.meta.json").read_text())
    want = {"frames_per_clip": 4, "frame_step": 2, "fps": 0.0, "num_clips": 1, "num_views": 1, "short_videos": "pad",
            "img_size": 32, "tubelet_size": 2}
    assert meta["clip"] == want and meta["shape"] == [8, 96] and meta["files"] == 8
    with safe_open(str(out), "pt") as f:
        assert json.loads(f.metadata()["clip"]) == want
    assert (tmp_path / "f.safetensors.files.txt").read_text().splitlines() == list_videos([clips_dir])


def test_embed_reads_a_list_file(video_run, clips_dir, tmp_path):
    paths = list_videos([clips_dir])
    lst = clips_dir / "list.csv"
    lst.write_text("".join(f"{os.path.relpath(p, clips_dir)} {i}\n" for i, p in enumerate(paths[:2])) + "\n")
    assert list_videos([lst]) == paths[:2]
    out = tmp_path / "f.npy"
    assert main(["embed", str(video_run), str(lst), "--out", str(out), "--no-progress"]) == 0
    assert np.load(out).shape == (2, 96)


def test_embed_bad_video_inputs_are_one_line_exit_2(video_run, tmp_path, capsys):
    run, out = str(video_run), str(tmp_path / "f.npy")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    line = _one_error_line(capsys, "embed", run, str(bad), "--out", out, "--no-progress")
    assert str(bad) in line and "could be decoded" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.png").write_bytes(b"x")
    line = _one_error_line(capsys, "embed", run, str(empty), "--out", out)
    assert line == f"openjepa embed: error: no video files (mp4, webm, mkv, avi) in {empty}"
    short = write_video(tmp_path / "short" / "s.webm", to_uint8(MovingShapesDataset(1, frames=5, img_size=32)
                                                                 .raw_clip(0)))
    line = _one_error_line(capsys, "embed", run, str(short.parent), "--out", out)
    assert "data.frames_per_clip=4 with data.frame_step=2 spans 7 frames, longer than every video" in line
    assert str(short) in line
    assert not (tmp_path / "f.npy").exists()


def test_embed_corrupt_video_among_good_ones_raises_when_asked(video_run, clips_dir, tmp_path, capsys):
    bad = tmp_path / "bad.webm"
    bad.write_bytes(b"\x1a\x45\xdf\xa3 truncated")
    inputs = [str(clips_dir), str(bad)]
    assert main(["embed", str(video_run), *inputs, "--out", str(tmp_path / "a.npy"), "--no-progress"]) == 0
    assert np.load(tmp_path / "a.npy").shape == (8, 96)
    assert (tmp_path / "a.npy.skipped.txt").read_text().startswith(f"{bad}\t")
    capsys.readouterr()
    line = _one_error_line(capsys, "embed", str(video_run), *inputs, "--out", str(tmp_path / "b.npy"),
                           "--on-error", "raise", "--no-progress")
    assert f"cannot decode video {bad}" in line
