"""Fashion-MNIST from IDX files: parsing, validation, search order, download."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from openjepa.data import fashion_mnist as fm
from openjepa.data.fashion_mnist import FashionMNIST, read_idx

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.tobytes()
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_fake(d: Path, n_train: int = 5, n_test: int = 3, gz: bool = True) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        img_stem, lbl_stem = fm.FILES[split]
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(d / (img_stem + suffix), images, gz)
        write_idx(d / (lbl_stem + suffix), labels, gz)
        out[split] = (images, labels)
    return out


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No system dir, no env dir, an empty home: only what a test puts there exists."""
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.delenv("OPENJEPA_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_exact_values(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    got = read_idx(write_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), arr, gz))
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, arr)
    ints = np.array([1, -2, 300000], dtype=">i4")
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "b.idx", ints)), [1, -2, 300000])


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_idx_names_the_path(tmp_path, gz):
    arr = np.zeros((4, 28, 28), dtype=np.uint8)
    raw = tmp_path / "full.idx"
    write_idx(raw, arr)
    data = raw.read_bytes()[:-100]
    bad = tmp_path / ("cut-images-idx3-ubyte" + (".gz" if gz else ""))
    bad.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match="cut-images-idx3-ubyte"):
        read_idx(bad)
    if gz:  # a gzip stream cut short is also a clear error
        cut = tmp_path / "cut2.gz"
        cut.write_bytes(gzip.compress(raw.read_bytes())[:-30])
        with pytest.raises(ValueError, match="cut2.gz"):
            read_idx(cut)


def test_bad_magic_and_trailing_bytes(tmp_path):
    junk = tmp_path / "junk-idx3-ubyte"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(junk)
    extra = write_idx(tmp_path / "extra", np.zeros(3, dtype=np.uint8))
    extra.write_bytes(extra.read_bytes() + b"\x00")
    with pytest.raises(ValueError, match="trailing"):
        read_idx(extra)


def test_missing_files_list_every_location(isolated):
    root = isolated / "nowhere"
    with pytest.raises(FileNotFoundError) as e:
        FashionMNIST(root=root, split="train")
    msg = str(e.value)
    for d in fm.search_dirs(root):
        assert str(d) in msg
    assert str(isolated / "system") in msg and str(isolated / "home" / ".cache" / "openjepa" / "fashion-mnist") in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "data.root=" in msg and "data.download=true" in msg


@pytest.mark.parametrize("gz", [False, True])
def test_loads_from_root_with_exact_values(isolated, gz):
    fake = make_fake(isolated / "fmnist", gz=gz)
    ds = FashionMNIST(root=isolated / "fmnist", split="test")
    assert len(ds) == 3
    x, y = ds[2]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0].numpy(), fake["test"][0][2] / 255.0, atol=1e-6)
    assert y == 2
    assert len(FashionMNIST(root=isolated / "fmnist", split="train")) == 5


def test_search_order_env_then_cache(isolated, monkeypatch):
    make_fake(isolated / "env" / "fashion-mnist", n_train=7)
    make_fake(isolated / "home" / ".cache" / "openjepa" / "fashion-mnist", n_train=9)
    assert len(FashionMNIST(split="train")) == 9  # no env var: the cache
    monkeypatch.setenv("OPENJEPA_DATA", str(isolated / "env"))
    assert len(FashionMNIST(split="train")) == 7  # env var comes before the cache
    make_fake(isolated / "root", n_train=4)
    assert len(FashionMNIST(root=isolated / "root", split="train")) == 4  # root first


def test_labels_images_count_mismatch(isolated):
    make_fake(isolated / "r")
    write_idx(isolated / "r" / "t10k-labels-idx1-ubyte.gz", np.zeros(2, dtype=np.uint8), gz=True)
    with pytest.raises(ValueError, match="3 images but .* 2 labels"):
        FashionMNIST(root=isolated / "r", split="test")


def test_download_into_cache(isolated, monkeypatch):
    server = isolated / "server"
    make_fake(server, n_train=6, n_test=2)
    monkeypatch.setattr(fm, "URL", server.as_uri() + "/")
    monkeypatch.setattr(fm, "SIZES", {"train": 6, "test": 2})
    with pytest.raises(FileNotFoundError):
        FashionMNIST(split="train")  # not without download=True
    ds = FashionMNIST(split="train", download=True)
    assert len(ds) == 6
    cache = isolated / "home" / ".cache" / "openjepa" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(s + ".gz" for pair in fm.FILES.values() for s in pair)


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=f"{DEBIAN} absent (apt-get install dataset-fashion-mnist)")
def test_real_debian_files(monkeypatch):
    monkeypatch.delenv("OPENJEPA_DATA", raising=False)
    monkeypatch.setattr(fm, "cache_dir", lambda: Path("/nonexistent-openjepa-cache"))
    tr = FashionMNIST(split="train")
    te = FashionMNIST(split="test")
    assert len(tr) == 60000 and len(te) == 10000
    x, y = tr[0]
    assert x.shape == (1, 28, 28) and 0.0 <= x.min() and x.max() <= 1.0
    assert y == 9  # the first training image is an ankle boot
    counts = torch.bincount(tr.labels, minlength=10)
    assert counts.tolist() == [6000] * 10
    assert abs(tr.images.float().mean().item() / 255 - fm.MEAN[0]) < 0.002
