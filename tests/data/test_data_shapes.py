"""The built-in procedural ``shapes`` dataset."""

import math

import pytest
import torch
from torch.utils.data import DataLoader

from openjepa.data import shapes
from openjepa.data.shapes import CLASS_NAMES, ShapesDataset


def test_item_format_and_value_range():
    ds = ShapesDataset(50, img_size=32, seed=0)
    assert len(ds) == 50
    for i in range(0, 50, 7):
        x, y = ds[i]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert isinstance(y, int) and 0 <= y < len(CLASS_NAMES)
        assert x.std() > 0.05  # not a blank image
    x, _ = ShapesDataset(4, img_size=48)[1]
    assert x.shape == (3, 48, 48)


def test_deterministic_by_seed_split_index():
    a = ShapesDataset(20, seed=3)
    b = ShapesDataset(20, seed=3)
    for i in (0, 7, 19):
        assert torch.equal(a[i][0], a[i][0])
        assert torch.equal(a[i][0], b[i][0])
    other_seed = ShapesDataset(20, seed=4)
    assert not torch.equal(a[7][0], other_seed[7][0])
    test = ShapesDataset(20, seed=3, split="test")
    assert not torch.equal(a[7][0], test[7][0])
    assert a[-1][1] == a[19][1]
    with pytest.raises(IndexError):
        a[20]


def test_train_and_test_share_no_image():
    tr, _ = ShapesDataset(200, split="train").raw_batch(range(200))
    te, _ = ShapesDataset(200, split="test").raw_batch(range(200))
    d = torch.cdist(tr.flatten(1), te.flatten(1))
    assert d.min() > 1.0


def test_batched_rendering_matches_single_items():
    ds = ShapesDataset(100, seed=1)
    idx = [0, 5, 17, 64, 65, 99]  # crosses a render chunk
    batch = ds.__getitems__(idx)
    for i, (x, y) in zip(idx, batch):
        xi, yi = ds[i]
        assert yi == y
        assert torch.allclose(x, xi, atol=1e-5)
    loader = DataLoader(ds, batch_size=32)
    xb, yb = next(iter(loader))
    assert xb.shape == (32, 3, 32, 32) and yb.tolist() == [ds.label(i) for i in range(32)]


def test_labels_cover_classes_uniformly():
    ds = ShapesDataset(1000)
    counts = torch.bincount(torch.tensor(ds.targets), minlength=len(CLASS_NAMES))
    assert counts.min() >= 90 and counts.max() <= 110
    _, labels = ds.raw_batch(range(50))
    assert labels.tolist() == ds.targets[:50]


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        ShapesDataset(10, split="validation")
    with pytest.raises(ValueError, match="size"):
        ShapesDataset(-1)


def _masks(n_rot: int, n: int = 64):
    """Inside masks (K, R, n, n) of every class at R rotations on [-1.3, 1.3]^2."""
    c = torch.linspace(-1.3, 1.3, n)
    y, x = torch.meshgrid(c, c, indexing="ij")
    a = torch.arange(n_rot).double().mul(2 * math.pi / n_rot).float()[:, None, None]
    xr = x * torch.cos(a) + y * torch.sin(a)
    yr = -x * torch.sin(a) + y * torch.cos(a)
    return torch.stack([f(xr, yr) < 0 for f in shapes._SDF])


def test_shape_classes_are_distinct_under_rotation():
    # Every class has a sizeable area, and no class can be rotated onto another one.
    masks = _masks(36)  # (K, R, n, n)
    base = masks[:, 0]
    area = base.float().mean((1, 2))
    assert (area > 0.1).all() and (area < 0.7).all(), area
    inter = (base[:, None, None] & masks[None]).sum((-2, -1)).float()  # (K, K, R)
    union = (base[:, None, None] | masks[None]).sum((-2, -1)).float()
    best_iou = (inter / union).amax(-1)  # (K, K): best overlap of class a with any rotation of b
    off_diag = best_iou[~torch.eye(len(CLASS_NAMES), dtype=torch.bool)]
    assert off_diag.max() < 0.85, best_iou


def test_raw_pixels_are_a_poor_linear_feature():
    # Ridge-regression classifier on raw pixels: close to chance, by design (random position,
    # colour, rotation). A shape-aware encoder is needed to do well.
    n = 1500
    xtr, ytr = ShapesDataset(n, split="train").raw_batch(range(n))
    xte, yte = ShapesDataset(1000, split="test").raw_batch(range(1000))
    xtr, xte = xtr.flatten(1).double(), xte.flatten(1).double()
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    onehot = torch.nn.functional.one_hot(ytr, 10).double()
    # Dual form (n x n system): w = X^T (X X^T + lam I)^-1 Y.
    alpha = torch.linalg.solve(xtr @ xtr.T + 1000.0 * torch.eye(n, dtype=torch.double), onehot)
    acc = (((xte @ xtr.T) @ alpha).argmax(1) == yte).double().mean().item()
    assert acc < 0.3, acc


def test_workers_produce_the_same_batches():
    from openjepa.config.schema import DataConfig
    from openjepa.data import build_dataset

    ds = build_dataset(DataConfig(name="shapes", train_size=48), "train", 32)
    serial = [x for x, _ in DataLoader(ds, batch_size=16)]
    parallel = [x for x, _ in DataLoader(ds, batch_size=16, num_workers=2)]
    for a, b in zip(serial, parallel):
        assert torch.allclose(a, b, atol=1e-5)
    assert ds.class_names == list(CLASS_NAMES)


def test_plain_variant_is_the_same_scene_without_clutter():
    """``shapes_plain`` item i: the same shape, colour and placement as ``shapes`` item i, on a flat background."""
    from openjepa.config.schema import DataConfig
    from openjepa.data import build_dataset

    plain = build_dataset(DataConfig(name="shapes_plain", train_size=40, test_size=20), "train", 32, train=False)
    x, y = plain.raw_batch(range(40))
    c, _ = ShapesDataset(40, clutter=True).raw_batch(range(40))
    assert torch.equal(y, torch.arange(40) % 10)
    # Background: the most common colour covers most of the image, with only the 0.02 pixel noise around it.
    corner = x[:, :, :3, :3].flatten(2).mean(-1)  # (B, 3), a shape never reaches the corner (it stays inside)
    border = torch.cat([x[:, :, 0], x[:, :, -1]], dim=-1)  # (B, 3, 2W) top and bottom rows
    assert (border - corner[:, :, None]).abs().mean() < 0.03
    assert (c[:, :, 0] - c[:, :, 0].mean(-1, keepdim=True)).abs().mean() > 2 * (x[:, :, 0] - corner[:, :, None]).abs().mean()
    # The shape itself is where it is in shapes: the pixels that differ from the background are mostly the same.
    fg = (x - corner[:, :, None, None]).abs().sum(1) > 0.3  # (B, H, W)
    assert fg.flatten(1).float().mean(1).min() > 0.05  # every image shows its shape
    diff = (x - c).abs().mean(1)  # (B, H, W): only the clutter and its noise differ
    assert diff[fg].mean() < 0.1 < diff[~fg].mean()
    assert plain.__class__.__name__ == "ShapesDataset" and not plain.clutter
