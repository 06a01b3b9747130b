"""Bad input in an image folder: unreadable files are skipped, counted and listed (or stop the run by
name), and unusable layouts are errors before any model is built."""

import os
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from openjepa.cli import main
from openjepa.config.schema import DataConfig
from openjepa.data import DataError, dataset_info
from openjepa.data.folder import FolderDataset, read_skip_log
from tests.tiny import tiny


def image_tree(root: Path, per_class: int = 12) -> Path:
    for c, color in (("cat", (255, 0, 0)), ("dog", (0, 255, 0))):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (20, 20), color).save(root / c / f"{i}.png")
    return root


def damage(root: Path) -> list[str]:
    """One file of random bytes and one truncated PNG; returns their paths."""
    bad = root / "cat" / "random.png"
    bad.write_bytes(os.urandom(500))
    cut = root / "dog" / "truncated.png"
    data = (root / "dog" / "0.png").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return sorted([str(bad), str(cut)])


def folder_run(run: Path, root: Path, *extra: str) -> list[str]:
    return ["train", *tiny(run, "data.name=folder", f"data.root={root}", "data.batch_size=13", "data.val_fraction=0",
                           "train.steps=2", "eval.at_end=false", "monitor.every=0", *extra)]


def test_skipped_images_are_counted_listed_and_reported(tmp_path, capsys):
    root = image_tree(tmp_path / "data")
    bad = damage(root)
    run = tmp_path / "run"
    # 26 files, batch 13, 2 steps: one epoch, every file is read once
    assert main(folder_run(run, root)) == 0
    out = capsys.readouterr().out
    assert "skipped 2 unreadable image(s) (data.on_error=skip), all listed in" in out
    assert all(p in out for p in bad)
    listed = read_skip_log(run / "skipped_images.txt")
    assert sorted(p for p, _ in listed) == bad and all(reason for _, reason in listed)


def test_skip_log_collects_files_skipped_in_worker_processes(tmp_path):
    root = image_tree(tmp_path / "data", per_class=4)
    bad = damage(root)
    ds = FolderDataset(root, "train", val_fraction=0.0)
    ds.skip_log = tmp_path / "skipped.txt"
    xs = torch.cat([x for x, _ in DataLoader(ds, batch_size=5, num_workers=2)])
    assert xs.shape[0] == len(ds) == 10 and ds.skipped == []  # the main process decoded nothing itself
    assert sorted(p for p, _ in read_skip_log(ds.skip_log)) == bad


def test_on_error_raise_stops_the_run_naming_the_file(tmp_path, capsys):
    root = image_tree(tmp_path / "data")
    bad = damage(root)
    assert main(folder_run(tmp_path / "run", root, "data.on_error=raise")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("openjepa train: error: folder: cannot decode image ")
    assert any(p in err[0] for p in bad)


def test_on_error_raise_in_a_worker_is_one_line_too(tmp_path, capsys):
    root = image_tree(tmp_path / "data")
    damage(root)
    assert main(folder_run(tmp_path / "run", root, "data.on_error=raise", "data.num_workers=1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("openjepa train: error: folder: cannot decode image ")


@pytest.mark.parametrize("layout", ["empty", "no-images", "empty-class"])
def test_unusable_folder_is_an_error_before_training(tmp_path, capsys, layout):
    root = tmp_path / "data"
    root.mkdir()
    if layout == "no-images":
        (root / "notes.txt").write_text("x")
        (root / "scan.pdf").write_bytes(b"%PDF")
    if layout == "empty-class":
        image_tree(root)
        (root / "bird").mkdir()
        (root / "bird" / "readme.txt").write_text("no images here")
    expected = {"empty": "no images found in", "no-images": "no images found in",
                "empty-class": "class folder(s) with no images"}[layout]
    with pytest.raises(DataError, match=re.escape(expected)):
        if layout == "empty-class":
            dataset_info(DataConfig(name="folder", root=str(root)))
        else:
            FolderDataset(root)
    run = tmp_path / "run"
    assert main(folder_run(run, root)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert str(root / "bird" if layout == "empty-class" else root) in err[0]
    assert "jpg" in err[0] or "add images" in err[0]  # says what was expected
    assert not (run / "checkpoints").exists()  # nothing was trained


def test_empty_class_folder_in_the_test_split_is_an_error(tmp_path):
    image_tree(tmp_path / "train")
    image_tree(tmp_path / "test")
    (tmp_path / "test" / "dog" / "0.png").unlink()
    for f in (tmp_path / "test" / "dog").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"test/dog"):
        FolderDataset(tmp_path, "test")
