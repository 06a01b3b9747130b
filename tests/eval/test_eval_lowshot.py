import statistics

import pytest
import torch

from openjepa.eval.lowshot import lowshot_indices, lowshot_probe, setting_name


def _labels():
    # class sizes 100, 50, 10, 3 (shuffled so classes interleave)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate([100, 50, 10, 3])])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_k_shot_has_exactly_k_per_class(k):
    y = _labels()
    idx = lowshot_indices(y, shots=k, seed=0)
    assert torch.bincount(y[idx], minlength=4).tolist() == [k, k, k, k]
    assert idx.unique().numel() == idx.numel() and torch.equal(idx, idx.sort().values)


@pytest.mark.parametrize("fraction,counts", [
    (0.1, [10, 5, 1, 1]),    # 0.3 rounds to 0, raised to the minimum of one per class
    (0.25, [25, 13, 3, 1]),  # 12.5 -> 13 and 2.5 -> 3: half rounds up, per class; 0.75 -> 1
    (0.01, [1, 1, 1, 1]),    # 1.0, 0.5 -> 1, 0.1 -> 1, 0.03 -> 1
    (1.0, [100, 50, 10, 3]),
])
def test_fraction_rounds_half_up_per_class(fraction, counts):
    y = _labels()
    assert torch.bincount(y[lowshot_indices(y, fraction=fraction, seed=1)], minlength=4).tolist() == counts


def test_subsets_are_deterministic_per_seed():
    y = _labels()
    a = lowshot_indices(y, shots=2, seed=5)
    assert torch.equal(a, lowshot_indices(y, shots=2, seed=5))
    assert not torch.equal(a, lowshot_indices(y, shots=2, seed=6))
    assert torch.equal(lowshot_indices(y, fraction=0.1, seed=5), lowshot_indices(y, fraction=0.1, seed=5))


def test_bad_requests_raise():
    y = _labels()
    with pytest.raises(ValueError, match="only 3"):
        lowshot_indices(y, shots=4, seed=0)
    with pytest.raises(ValueError, match="exactly one"):
        lowshot_indices(y, shots=1, fraction=0.1, seed=0)
    with pytest.raises(ValueError):
        lowshot_indices(y, fraction=0.0, seed=0)
    assert (setting_name(shots=5), setting_name(fraction=0.01), setting_name(fraction=0.1)) == ("5-shot", "1%", "10%")


def test_lowshot_probe_reports_mean_and_std_over_seeds():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=g) * 4
    ytr, yte = torch.arange(400) % 4, torch.arange(200) % 4
    xtr = centers[ytr] + torch.randn(400, 16, generator=g)
    xte = centers[yte] + torch.randn(200, 16, generator=g)
    res = lowshot_probe(xtr, ytr, xte, yte, shots=(1, 5), fractions=(0.1,), seeds=3, epochs=30, batch_size=64)
    assert [r.name for r in res] == ["1-shot", "5-shot", "10%"]
    assert [r.n_labelled for r in res] == [4, 20, 40]
    for r in res:
        assert len(r.accuracies) == 3
        assert r.mean == pytest.approx(statistics.fmean(r.accuracies))
        assert r.std == pytest.approx(statistics.stdev(r.accuracies))
    assert res[1].mean > 0.9 and res[2].mean > 0.9
    one = lowshot_probe(xtr, ytr, xte, yte, shots=(1,), fractions=(), seeds=1, epochs=30, batch_size=64)
    assert one[0].std == 0.0 and one[0].accuracies == res[0].accuracies[:1]  # seed 0's subset and probe again
