"""``openjepa embed``: image files -> features of a tiny run, saved with their ordered file list."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from openjepa.cli import main
from openjepa.data import dataset_info
from openjepa.eval.embed import EmbedError, embed_images, list_images
from openjepa.engine.runs import load_run
from tests.tiny import tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("embed") / "run"
    assert main(["train", *tiny(run, "train.steps=2", "eval.at_end=false")]) == 0
    return run


@pytest.fixture()
def images(tmp_path):
    """Five 16 px RGB images (the run's size), one 24x20 grey JPEG in a subfolder, in a known order."""
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    for name in ["b.png", "a.png", "c.PNG", "d.bmp", "e.webp"]:
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / name)
    Image.fromarray(rng.integers(0, 256, (20, 24), dtype=np.uint8)).save(root / "sub" / "z.jpg")
    (root / "notes.txt").write_text("not an image")
    return root


def _expected_order(root):
    return [str(root / n) for n in ["a.png", "b.png", "c.PNG", "d.bmp", "e.webp", "sub/z.jpg"]]


def test_list_images_order(images):
    extra = images / "b.png"
    assert list_images([images, extra]) == [*_expected_order(images), str(extra)]
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images([images / "missing"])


@pytest.mark.parametrize("pool,shape", [("mean", (6, 96)), ("none", (6, 16, 96))])
def test_npy_roundtrip_and_file_list(run, images, tmp_path, pool, shape):
    out = tmp_path / "feats.npy"
    assert main(["embed", str(run), str(images), "--out", str(out), "--pool", pool, "--batch-size", "4",
                 "--no-progress"]) == 0
    feats = np.load(out)
    assert feats.shape == shape and feats.dtype == np.float32
    assert (tmp_path / "feats.npy.files.txt").read_text().splitlines() == _expected_order(images)
    assert not (tmp_path / "feats.npy.skipped.txt").exists()


def test_safetensors_roundtrip_and_metadata(run, images, tmp_path):
    out = tmp_path / "feats.safetensors"
    assert main(["embed", str(run), str(images / "a.png"), str(images / "sub"), "--out", str(out),
                 "--encoder", "context", "--no-progress"]) == 0
    feats = load_file(out)["features"]
    assert feats.shape == (2, 96)
    files = [str(images / "a.png"), str(images / "sub" / "z.jpg")]
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["files"]) == files and meta["encoder"] == "context" and meta["pool"] == "mean"
    assert (tmp_path / "feats.safetensors.files.txt").read_text().splitlines() == files


def test_features_equal_encode_on_preprocessed_images(run, images):
    cfg, method, _, _ = load_run(run)
    paths = [str(images / n) for n in ["a.png", "b.png", "c.PNG"]]
    emb = embed_images(method, cfg, paths, batch_size=2, pool="none", progress=False)
    # The run's eval preprocessing of a 16 px RGB image (already the run's size), by hand.
    info = dataset_info(cfg.data)
    mean, std = torch.tensor(info.mean).view(3, 1, 1), torch.tensor(info.std).view(3, 1, 1)
    x = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in paths])
    x = (x.float() / 255 - mean) / std
    tokens = method.encode(x, "target")
    torch.testing.assert_close(emb.features, tokens)
    pooled = embed_images(method, cfg, paths, batch_size=3, pool="mean", progress=False).features
    torch.testing.assert_close(pooled, tokens.mean(1))


def test_corrupt_image_skipped_and_listed(run, images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "feats.npy"
    assert main(["embed", str(run), str(images), "--out", str(out), "--no-progress"]) == 0
    assert np.load(out).shape == (6, 96)
    files = (tmp_path / "feats.npy.files.txt").read_text().splitlines()
    assert files == _expected_order(images) and str(images / "broken.png") not in files
    skipped = (tmp_path / "feats.npy.skipped.txt").read_text().splitlines()
    assert len(skipped) == 1 and skipped[0].startswith(str(images / "broken.png") + "\t")
    assert str(images / "broken.png") in capsys.readouterr().out


def test_corrupt_image_raises(run, images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"garbage")
    cfg, method, _, _ = load_run(run)
    with pytest.raises(EmbedError, match="broken.png"):
        embed_images(method, cfg, list_images([images]), on_error="raise", progress=False)
    code = main(["embed", str(run), str(images), "--out", str(tmp_path / "f.npy"), "--on-error", "raise",
                 "--no-progress"])
    assert code == 2 and "broken.png" in capsys.readouterr().err
    assert not (tmp_path / "f.npy").exists()


def test_bad_output_suffix(run, images, tmp_path, capsys):
    assert main(["embed", str(run), str(images), "--out", str(tmp_path / "f.csv")]) == 2
    assert ".npy or .safetensors" in capsys.readouterr().err


def test_grey_run_reads_images_as_grey(tmp_path, images):
    run = tmp_path / "digits"
    assert main(["train", *tiny(run, "data.name=digits", "train.steps=1", "eval.at_end=false")]) == 0
    cfg, method, _, _ = load_run(run)
    assert cfg.model.in_chans == 1
    emb = embed_images(method, cfg, list_images([images]), progress=False)
    assert emb.features.shape == (6, 96) and torch.isfinite(emb.features).all()


def test_batch_size_defaults_to_eval_batch_size(run, images):
    cfg, method, _, _ = load_run(run)
    cfg.eval.batch_size = 4
    sizes = []
    encode = method.encode
    method.encode = lambda x, which: sizes.append(x.shape[0]) or encode(x, which)
    embed_images(method, cfg, list_images([images]), progress=False)
    assert sizes == [4, 2]  # six images, eval.batch_size=4 per forward pass
    sizes.clear()
    embed_images(method, cfg, list_images([images]), batch_size=5, progress=False)
    assert sizes == [5, 1]
