"""The one stratified split (data/base.py), for datasets' held-out splits and the probes' validation splits."""

from collections import Counter

import pytest
import torch

from openjepa.data.base import stratified_split
from openjepa.eval.linear import probe_split


def test_pinned_splits_are_those_of_the_first_version():
    # Recorded with the list-based implementation this one replaced (the digits / folder splits).
    assert stratified_split([0, 0, 0, 1, 1, 1, 1, -1, 2, 2], 0.5, seed=0) == ([6, 8, 5, 1, 7], [0, 3, 4, 9, 2])
    assert stratified_split([3, 1, 3, 1, 3, 1, 3, 1, 0], 0.25, seed=7) == ([2, 8, 6, 0, 1, 5, 3], [7, 4])


@pytest.mark.parametrize("f", [0.0, 0.1, 0.3, 0.5])
def test_partition_and_per_class_counts(f):
    labels = [c for c, n in ((0, 37), (1, 11), (2, 4), (-1, 6)) for _ in range(n)]
    labels = [labels[i] for i in torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]
    train, held = stratified_split(labels, f, seed=3)
    assert sorted(train + held) == list(range(len(labels)))
    n = Counter(labels)
    assert Counter(labels[i] for i in held) == Counter({c: round(k * f) for c, k in n.items() if round(k * f)})
    assert stratified_split(torch.tensor(labels), f, seed=3) == (train, held)  # tensor labels: the same split
    if f:
        assert stratified_split(labels, f, seed=4) != (train, held)


def test_keep_both_keeps_one_of_each_class_on_each_side():
    labels = [0] * 20 + [1] * 2 + [2]  # round(2 * 0.1) = 0 and round(1 * 0.1) = 0 items held out
    train, held = stratified_split(labels, 0.1, seed=0)
    assert sorted(labels[i] for i in held) == [0, 0]
    train, held = stratified_split(labels, 0.1, seed=0, keep_both=True)
    assert sorted(labels[i] for i in held) == [0, 0, 1] and sorted(labels[i] for i in train) == [0] * 18 + [1, 2]
    train, held = stratified_split([0, 0, 1, 1], 0.9, seed=0, keep_both=True)  # round(1.8) = 2 would empty train
    assert len(train) == len(held) == 2 and {0, 1} <= {[0, 0, 1, 1][i] for i in train}


def test_probe_split_is_the_sorted_keep_both_split():
    y = torch.tensor([2, 0, 1, 0, 2, 2, 1, 0, 0, 1, 2, 0])
    fit, val = probe_split(y, 0.25, seed=5)
    train, held = stratified_split(y.tolist(), 0.25, seed=5, keep_both=True)
    assert fit.dtype == val.dtype == torch.long
    assert fit.tolist() == sorted(train) and val.tolist() == sorted(held)


def test_bad_fraction_names_the_setting():
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        stratified_split([0, 1], 1.0, seed=0)
