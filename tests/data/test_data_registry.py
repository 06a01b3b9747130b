"""build_dataset / dataset_info / raw_pixels over every built-in dataset."""

import pytest
import torch

from openjepa.config.schema import DataConfig
from openjepa.errors import ConfigError
from openjepa.data import DATASETS, build_dataset, dataset_info, eval_view, raw_pixels


def test_unknown_dataset():
    with pytest.raises(ConfigError) as e:
        dataset_info(DataConfig(name="x"))
    assert str(e.value) == ("data.name='x' is not a registered dataset; "
                            "choose one of: digits, fashion_mnist, folder, moving_shapes, shapes, shapes_plain, trajectories, video_folder")
    with pytest.raises(ConfigError, match=r"data.name='imagenet' is not a registered dataset"):
        build_dataset(DataConfig(name="imagenet"), "train", 32)
    with pytest.raises(ValueError, match="split"):
        build_dataset(DataConfig(), "validation", 32)


def test_known_defaults():
    assert DATASETS.names() == ["digits", "fashion_mnist", "folder", "moving_shapes", "shapes", "shapes_plain",
                                "trajectories", "video_folder"]
    assert {n: DATASETS.get(n).info.kind for n in DATASETS} == {
        "digits": "image", "fashion_mnist": "image", "folder": "image", "moving_shapes": "video", "shapes": "image",
        "shapes_plain": "image", "trajectories": "trajectory", "video_folder": "video"}
    got = {n: dataset_info(DataConfig(name=n)) for n in ("shapes", "digits", "fashion_mnist")}
    assert (got["shapes"].in_chans, got["shapes"].default_img_size, got["shapes"].num_classes) == (3, 32, 10)
    assert (got["digits"].in_chans, got["digits"].default_img_size, got["digits"].num_classes) == (1, 16, 10)
    assert (got["fashion_mnist"].in_chans, got["fashion_mnist"].default_img_size) == (1, 28)
    assert len(got["fashion_mnist"].class_names) == 10
    with pytest.raises(ValueError, match="data.root"):
        dataset_info(DataConfig(name="folder"))


def test_mean_std_override():
    info = dataset_info(DataConfig(name="shapes", mean=[0.1, 0.2, 0.3], std=[1.0, 1.0, 1.0]))
    assert info.mean == (0.1, 0.2, 0.3) and info.std == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="data.mean has 2 values"):
        dataset_info(DataConfig(name="shapes", mean=[0.1, 0.2]))
    ds = build_dataset(DataConfig(name="shapes", train_size=4, mean=[0.0], std=[1.0]), "train", 32)
    x, _ = ds[0]
    assert 0.0 <= x.min() and x.max() <= 1.0  # identity normalisation leaves [0, 1]


def test_shapes_sizes_seed_and_normalisation():
    cfg = DataConfig(name="shapes", train_size=30, test_size=12)
    tr, te = build_dataset(cfg, "train", 32, seed=5), build_dataset(cfg, "test", 32, seed=5)
    assert len(tr) == 30 and len(te) == 12
    assert not torch.equal(tr[0][0], build_dataset(cfg, "train", 32, seed=6)[0][0])
    x, _ = raw_pixels(tr, 0)
    assert x.shape == (30, 3 * 32 * 32)
    assert abs(x.mean().item()) < 0.3 and 0.6 < x.std().item() < 1.4  # roughly standardised


def test_train_transforms_only_in_training_and_eval_view():
    cfg = DataConfig(name="digits", train_transforms=[{"name": "RandomHorizontalFlip", "p": 1.0}])
    aug = build_dataset(cfg, "train", 16)
    plain = build_dataset(cfg, "train", 16, train=False)
    assert torch.allclose(aug[0][0], plain[0][0].flip(-1))
    assert torch.allclose(eval_view(aug)[0][0], plain[0][0])
    assert torch.equal(build_dataset(cfg, "test", 16)[0][0], build_dataset(cfg, "test", 16, train=False)[0][0])
    x_aug, y_aug = raw_pixels(aug, 20)
    x_plain, y_plain = raw_pixels(plain, 20)
    assert torch.equal(x_aug, x_plain) and torch.equal(y_aug, y_plain)  # raw_pixels uses the eval pipeline


def test_raw_pixels_subset():
    ds = build_dataset(DataConfig(name="digits"), "train", 8)
    x, y = raw_pixels(ds, 100)
    assert x.shape == (100, 64) and y.dtype == torch.int64 and len(set(y.tolist())) == 10
    for i in (0, 57, 99):  # the first max_items items, in order
        assert torch.equal(x[i], ds[i][0].flatten()) and y[i].item() == ds[i][1]
    x_all, _ = raw_pixels(ds, 0, batch_size=500)
    assert x_all.shape == (len(ds), 64)


@pytest.mark.parametrize("name", ["shapes", "digits", "fashion_mnist"])
def test_every_builtin_yields_normalised_batches(name):
    try:
        ds = build_dataset(DataConfig(name=name, train_size=16, test_size=16), "test", 24)
    except FileNotFoundError as e:
        pytest.skip(f"data not installed: {e}")
    info = dataset_info(DataConfig(name=name))
    loader = torch.utils.data.DataLoader(ds, batch_size=8)
    x, y = next(iter(loader))
    assert x.shape == (8, info.in_chans, 24, 24) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) < info.num_classes
