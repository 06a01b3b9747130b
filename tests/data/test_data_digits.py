"""scikit-learn digits as a dataset: split, stratification, upsampling."""

from collections import Counter

import numpy as np
import pytest

from openjepa.data.digits import DigitsDataset, load_digits_tensor


@pytest.fixture(scope="module")
def all_labels():
    _, y = load_digits_tensor(8)
    return y.tolist()


def test_split_sizes_disjoint_and_stratified(all_labels):
    tr = DigitsDataset("train", val_fraction=0.2, seed=0)
    te = DigitsDataset("test", val_fraction=0.2, seed=0)
    assert len(all_labels) == 1797
    assert len(tr) + len(te) == 1797
    assert not set(tr.indices) & set(te.indices)
    assert set(tr.indices) | set(te.indices) == set(range(1797))
    per_class = Counter(all_labels)
    test_counts = Counter(te.targets)
    for c, n in per_class.items():
        assert test_counts[c] == round(n * 0.2)
    # Labels follow the rows they came from.
    assert te.targets == [all_labels[i] for i in te.indices]
    # A prefix mixes the classes (the order is shuffled, not grouped by class).
    assert len(set(tr.targets[:50])) >= 8


def test_split_is_deterministic_by_seed():
    a = DigitsDataset("test", seed=1).indices
    assert a == DigitsDataset("test", seed=1).indices
    assert set(a) != set(DigitsDataset("test", seed=2).indices)
    assert len(DigitsDataset("test", val_fraction=0.5).indices) in range(895, 903)


def test_images_upsampled_and_exact_at_native_size():
    from sklearn.datasets import load_digits

    ref = load_digits().images
    te = DigitsDataset("test", img_size=8)
    x, y = te[3]
    assert x.shape == (1, 8, 8)
    np.testing.assert_allclose(x[0].numpy() * 16.0, ref[te.indices[3]], atol=1e-5)
    x16, y16 = DigitsDataset("test", img_size=16)[3]
    assert x16.shape == (1, 16, 16) and y16 == y
    assert 0.0 <= x16.min() and x16.max() <= 1.0
    # Bilinear upsampling keeps the mean intensity (up to edge effects).
    assert abs(x16.mean().item() - x.mean().item()) < 0.05


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        DigitsDataset("holdout")
    with pytest.raises(ValueError, match="val_fraction"):
        DigitsDataset("train", val_fraction=1.0)
