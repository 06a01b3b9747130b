"""The report of a video run: the filmstrip's pixels for known masks, and the whole page on
``moving_shapes`` and ``video_folder`` runs; image runs keep their mask figure."""

import base64
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from openjepa.cli import main
from openjepa.config import load_config
from openjepa.data import MovingShapesDataset, build_dataset, dataset_info
from openjepa.data.moving import write_videos
from openjepa.masks import MaskBatch, MaskGroups, Masks, build_mask_sampler, mask_image
from openjepa.masks.viz import group_mask_images
from openjepa.report import plots, write_report
from openjepa.report.samples import ClipExamples, mask_examples, to_display, token_grid
from tests.report.tiny_video import MOVING, VIDEO
from tests.tiny import tiny

HEADINGS = ["Training curves", "Masks", "Embedding map", "Nearest neighbours", "Probe results", "Configuration"]
# matplotlib's tab10 blue and orange (#1f77b4, #ff7f0e): the tints of mask groups 0 and 1
GROUP_RGB = [np.array([0x1F, 0x77, 0xB4]) / 255, np.array([0xFF, 0x7F, 0x0E]) / 255]


def _imgs(html):
    return re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">', html)


def _png(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_filmstrip_pixels_for_known_masks():
    """Two clips of 4 frames, 16x16 pixels, tubelet 2, patch 4: a (2, 4, 4) token grid; two mask groups
    given by their token indices i = t*16 + h*4 + w. Every displayed pixel is checked against the rule."""
    rng = np.random.default_rng(0)
    F, S, T, G = 4, 16, 2, 4  # frames, frame side, token times, token grid side
    clips = [rng.random((F, S, S, 3)) for _ in range(2)]
    ctx0, tgt0 = [[0, 1, 2, 3, 20, 21], [5, 6]], [[4, 16, 17], [7, 8, 9, 10]]  # group 0, per clip
    ctx1, tgt1 = [[12, 13, 31], [30, 31]], [[14, 15, 31], [0]]  # group 1; token 31 of clip 0 in both: a target
    masks = MaskGroups([_masks(ctx0, tgt0), _masks(ctx1, tgt1)])
    maps = [[m.numpy() for m in group_mask_images(masks, (T, G, G), i)] for i in range(2)]
    with pytest.raises(TypeError, match="use group_mask_images"):
        mask_image(masks, (T, G, G), 0)
    png = _png(plots.filmstrip(clips, maps, ["a", ""], ["first", "second"], [1, 1], tubelet=2))
    side = plots.FILM_SIDE  # 64: each frame pixel is a 4x4 square on screen, each token 16x16
    per_clip = 3 * (side + plots.FILM_GAP) - plots.FILM_GAP + plots.FILM_CLIP_GAP
    for i, clip in enumerate(clips):
        rows = [(None, None, None), (ctx0[i], tgt0[i], GROUP_RGB[0]), (ctx1[i], tgt1[i], GROUP_RGB[1])]
        for r, (ctx, tgt, colour) in enumerate(rows):
            for f in range(F):
                y = plots.FILM_TOP + i * per_clip + r * (side + plots.FILM_GAP)
                x = plots.FILM_LEFT + f * (side + plots.FILM_GAP)
                shown = png[y:y + side, x:x + side].astype(int)
                want = np.empty((side, side, 3))
                for yy in range(side):
                    for xx in range(side):
                        rgb = clip[f, yy // 4, xx // 4]
                        token = (f // 2) * G * G + (yy // 16) * G + xx // 16
                        if ctx is None or token in ctx and token not in tgt:
                            want[yy, xx] = rgb
                        elif token in tgt:
                            want[yy, xx] = 0.45 * rgb + 0.55 * colour
                        else:
                            want[yy, xx] = 0.7 + 0.2 * rgb
                assert np.abs(shown - np.round(255 * want)).max() <= 1, (i, r, f)
    # frames are separated by white columns
    x = plots.FILM_LEFT + side
    assert (png[plots.FILM_TOP:plots.FILM_TOP + side, x:x + plots.FILM_GAP] == 255).all()


def _masks(ctx, tgt):
    """Masks of a batch from per-sample token lists (padded, with validity)."""
    def batch(sets):
        k = max(len(s) for s in sets)
        idx = torch.tensor([s + [0] * (k - len(s)) for s in sets])
        return MaskBatch(idx, torch.tensor([[j < len(s) for j in range(k)] for s in sets]))

    t = batch(tgt)
    return Masks(batch(ctx), MaskBatch(t.idx[:, None], t.valid[:, None]))


def test_shown_frames():
    assert plots.shown_frames(8, 2) == list(range(8))
    assert plots.shown_frames(32, 2) == list(range(0, 32, 2))  # the first frame of each tubelet
    # 32 tubelets: 16 of them, evenly spaced (round(k * 31 / 15)), by their first frame
    assert plots.shown_frames(64, 2) == [0, 4, 8, 12, 16, 20, 24, 28, 34, 38, 42, 46, 50, 54, 58, 62]


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("vreport") / "run"
    assert main(["train", *tiny(run, *MOVING)]) == 0
    return run


def test_video_run_report(video_run):
    html = write_report(video_run, tsne=False).read_text()
    assert re.findall(r"<h2>(.*?)</h2>", html) == HEADINGS
    alts = [alt for _, alt in _imgs(html)]
    assert alts == ["training curves: loss, lr, ema, probe_acc, rankme, rank_centred, spread, pred_std, target_std",
                    "filmstrip: context and target tubes", "embedding map", "nearest-neighbour retrieval",
                    "probe accuracies (eval.json)"]
    assert "No mask examples" not in html and "first 3 training clips" in html and "one row per mask group" in html
    assert "A token covers 2 frame(s) and 4x4 pixels (2x4x4 tokens)" in html
    assert "Pooled features of 16 test clips" in html and "training clips (each shown by its first frame)" in html


def test_video_examples_are_the_runs_clips_and_masks(video_run):
    cfg = load_config(video_run / "config.yaml")
    ex = mask_examples(cfg)
    assert isinstance(ex, ClipExamples) and len(ex.clips) == 3 and ex.tubelet == 2
    ds = MovingShapesDataset(32, 4, 16, cfg.seed, "train")  # the raw frames in [0, 1], (T, C, H, W)
    for i in range(3):
        np.testing.assert_allclose(ex.clips[i], ds.raw_clip(i).permute(0, 2, 3, 1).numpy(), atol=1e-5)
    assert ex.labels == [ds.class_names[ds.label(i)] for i in range(3)]
    assert ex.groups == ["8 blocks of scale 0.15, merged", "2 blocks of scale 0.7, merged"] and ex.blocks == [1, 1]
    for maps in ex.maps:  # V-JEPA: per group, context and targets tile the clip; tubes span both token times
        assert len(maps) == 2
        for m in maps:
            assert m.shape == (2, 4, 4) and set(np.unique(m)) <= {1, 2} and (m == 2).any()
            assert (m[0] == m[1]).all()


def test_video_folder_run_report(tmp_path):
    for split, n in (("train", 16), ("test", 8)):  # real mp4 and webm files, root/{train,test}/<class>/
        write_videos(MovingShapesDataset(n, 6, 16, seed=1, split=split), tmp_path / "clips" / split, n)
    run = tmp_path / "run"
    args = [f"data.root={tmp_path / 'clips'}", "data.name=video_folder", "data.frame_step=1", "eval.at_end=false",
            *VIDEO, "data.batch_size=8"]
    assert main(["train", *tiny(run, *args)]) == 0
    assert main(["report", str(run), "--no-tsne"]) == 0
    html = (run / "report.html").read_text()
    assert re.findall(r"<h2>(.*?)</h2>", html) == HEADINGS
    alts = [alt for _, alt in _imgs(html)]
    assert alts[1:4] == ["filmstrip: context and target tubes", "embedding map", "nearest-neighbour retrieval"]
    assert "No " not in html.split('id="masks"')[1].split('id="probes"')[0]  # masks, map and neighbours all there
    ex = mask_examples(load_config(run / "config.yaml"))
    names = set(dataset_info(load_config(run / "config.yaml").data).class_names)
    assert isinstance(ex, ClipExamples) and ex.clips[0].shape == (4, 16, 16, 3) and set(ex.labels) <= names


def test_image_run_keeps_its_mask_figure(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *tiny(run, "train.steps=1", "eval.at_end=false")]) == 0
    html = write_report(run, tsne=False).read_text()
    (png, alt), = [(p, a) for p, a in _imgs(html) if "mask" in a]
    assert alt == "context and target masks" and "filmstrip" not in html
    cfg = load_config(run / "config.yaml")  # the figure of the first 6 training images, as before
    info, grid = dataset_info(cfg.data), token_grid(cfg)
    ds = build_dataset(cfg.data, "train", cfg.model.img_size, seed=cfg.seed, train=False)
    masks = build_mask_sampler(cfg.mask, grid, cfg.seed)(6, 0)
    want = plots.masks([to_display(ds[i][0], info.mean, info.std) for i in range(6)],
                       [mask_image(masks, grid, i)[0].numpy() for i in range(6)])
    assert base64.b64decode(png) == want
