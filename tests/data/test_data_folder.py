"""Image folders: layouts, splits, unreadable files."""

import logging
import os
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from openjepa.config.schema import DataConfig
from openjepa.data import DataError, build_dataset, dataset_info
from openjepa.data.folder import FolderDataset


def save(path: Path, color=(255, 0, 0), size=(20, 12), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(path)
    return path


def class_tree(root: Path, per_class: int = 4) -> Path:
    for c, color in (("cat", (255, 0, 0)), ("dog", (0, 255, 0))):
        for i in range(per_class):
            ext = ".png" if i % 2 == 0 else ".JPG"
            sub = "nested/" if i == 3 else ""
            save(root / c / f"{sub}img{i}{ext}", color)
    (root / "README.txt").write_text("not an image")
    return root


def test_class_layout_labels_and_stratified_split(tmp_path):
    root = class_tree(tmp_path / "data")
    tr = FolderDataset(root, "train", val_fraction=0.5, seed=0)
    te = FolderDataset(root, "test", val_fraction=0.5, seed=0)
    assert tr.class_names == ["cat", "dog"] == te.class_names
    assert len(tr) == 4 and len(te) == 4
    assert sorted(tr.targets) == [0, 0, 1, 1] and sorted(te.targets) == [0, 0, 1, 1]
    assert not {p for p, _ in tr.samples} & {p for p, _ in te.samples}
    assert any("nested" in p for p, _ in tr.samples + te.samples)  # recursive scan, upper-case extension
    for i in range(len(tr)):
        x, y = tr[i]
        assert x.shape == (3, 12, 20)
        assert x[y if y == 0 else 1].mean() > 0.9  # red for cat (channel 0), green for dog (channel 1)
    assert [p for p, _ in FolderDataset(root, "test", val_fraction=0.5, seed=0).samples] == [p for p, _ in te.samples]


def test_flat_layout_is_unlabelled(tmp_path):
    for i in range(5):
        save(tmp_path / f"{i}.png")
    save(tmp_path / "grey.bmp", mode="L")
    save(tmp_path / "rgba.webp", mode="RGBA", color=(10, 20, 30, 40))
    tr = FolderDataset(tmp_path, "train", val_fraction=0.0)
    assert len(tr) == 7 and set(tr.targets) == {-1} and tr.class_names == []
    for i in range(len(tr)):
        assert tr[i][0].shape[0] == 3  # greyscale and RGBA converted to RGB
    info = dataset_info(DataConfig(name="folder", root=str(tmp_path)))
    assert info.num_classes == 0 and info.in_chans == 3 and info.class_names == ()


def test_train_test_subfolders_share_class_indices(tmp_path):
    class_tree(tmp_path / "train")
    save(tmp_path / "val" / "dog" / "only.png", (0, 255, 0))  # test has no 'cat': 'dog' must stay 1
    te = FolderDataset(tmp_path, "test")
    assert te.class_names == ["cat", "dog"] and te.targets == [1]
    assert len(FolderDataset(tmp_path, "train")) == 8
    save(tmp_path / "val" / "bird" / "x.png")
    with pytest.raises(ValueError, match="bird"):
        FolderDataset(tmp_path, "test")


def test_corrupt_file_skipped_and_listed(tmp_path, caplog):
    root = class_tree(tmp_path / "data")
    bad = root / "cat" / "img1b.png"
    bad.write_bytes(os.urandom(300))
    ds = FolderDataset(root, "train", val_fraction=0.0, on_error="skip")
    i_bad = [p for p, _ in ds.samples].index(str(bad))
    with caplog.at_level(logging.WARNING, logger="openjepa.data.folder"):
        x, y = ds[i_bad]
        x_next, y_next = ds[i_bad + 1]
        ds[i_bad]  # a known-bad file is not decoded (or logged) again
    assert torch.equal(x, x_next) and y == y_next
    assert [p for p, _ in ds.skipped] == [str(bad)]
    assert sum(str(bad) in r.getMessage() for r in caplog.records) == 1
    assert [p for p, _ in FolderDataset(root, "train", val_fraction=0.0).verify(progress=False)] == [str(bad)]
    batch = next(iter(DataLoader(build_dataset(DataConfig(name="folder", root=str(root), val_fraction=0.0), "train", 16), batch_size=9)))
    assert batch[0].shape == (9, 3, 16, 16)


def test_corrupt_file_raises_when_asked(tmp_path):
    root = class_tree(tmp_path / "data")
    bad = root / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    ds = FolderDataset(root, "train", val_fraction=0.0, on_error="raise")
    i_bad = [p for p, _ in ds.samples].index(str(bad))
    with pytest.raises(DataError, match="broken.png"):
        ds[i_bad]


def test_all_files_bad_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"nope")
    ds = FolderDataset(tmp_path, "train", val_fraction=0.0)
    with pytest.raises(DataError, match="could be decoded"):
        ds[0]


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("x")
    for d in ("empty", "text"):
        with pytest.raises(ValueError, match="class subfolders"):
            FolderDataset(tmp_path / d)
    missing = tmp_path / "does-not-exist"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        FolderDataset(missing)
    with pytest.raises(FileNotFoundError, match=str(missing)):
        build_dataset(DataConfig(name="folder", root=str(missing)), "train", 32)
    with pytest.raises(ValueError, match="on_error"):
        FolderDataset(tmp_path, on_error="ignore")
    save(tmp_path / "one" / "x.png")
    with pytest.raises(ValueError, match="test split .* is empty"):
        FolderDataset(tmp_path / "one", "test", val_fraction=0.0)


def test_build_dataset_resizes_non_square(tmp_path):
    root = class_tree(tmp_path / "data")
    cfg = DataConfig(name="folder", root=str(root), val_fraction=0.25)
    info = dataset_info(cfg)
    assert info.num_classes == 2 and info.class_names == ("cat", "dog")
    ds = build_dataset(cfg, "test", 24)
    x, y = ds[0]
    assert x.shape == (3, 24, 24) and x.dtype == torch.float32
    # A pure red (cat) or green (dog) image, normalised with ImageNet statistics.
    rgb = torch.tensor([1.0, 0.0, 0.0] if y == 0 else [0.0, 1.0, 0.0])
    expected = (rgb - torch.tensor(info.mean)) / torch.tensor(info.std)
    assert torch.allclose(x, expected[:, None, None].expand(3, 24, 24), atol=1e-4)


def test_order_is_a_seeded_shuffle_not_grouped_by_class(tmp_path):
    for c in ("a", "b", "c"):
        for i in range(10):
            save(tmp_path / "train" / c / f"{i}.png")
            save(tmp_path / "test" / c / f"{i}.png")
    for split in ("train", "test"):
        ds = FolderDataset(tmp_path, split, seed=0)
        assert len(set(ds.targets[:6])) >= 2  # a prefix mixes the classes
        assert ds.samples == FolderDataset(tmp_path, split, seed=0).samples
        assert ds.samples != FolderDataset(tmp_path, split, seed=1).samples
        assert sorted(ds.samples) == sorted(FolderDataset(tmp_path, split, seed=1).samples)
