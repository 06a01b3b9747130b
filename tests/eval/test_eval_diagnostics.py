import numpy as np
import torch

from openjepa.objectives.diagnostics import feature_std, rankme


def _rankme_numpy(x, eps=1e-7):
    s = np.linalg.svd(x, compute_uv=False)
    p = s / np.abs(s).sum() + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def test_rankme_matches_numpy_formula():
    rng = np.random.default_rng(0)
    for shape in [(100, 20), (20, 100), (300, 64)]:
        x = rng.normal(size=shape) * rng.uniform(0.1, 3.0, size=shape[1])  # anisotropic
        x32 = x.astype(np.float32)
        got = rankme(torch.from_numpy(x32))
        want = _rankme_numpy(x32.astype(np.float64))
        assert abs(got - want) < 1e-5, (shape, got, want)


def test_rankme_isotropic_is_about_d_and_rank_one_is_one():
    g = torch.Generator().manual_seed(0)
    d = 32
    iso = torch.randn(20000, d, generator=g)
    assert 0.97 * d < rankme(iso) <= d
    rank1 = torch.randn(500, 1, generator=g) @ torch.randn(1, d, generator=g)
    assert abs(rankme(rank1) - 1.0) < 1e-3


def test_feature_std_collapse_indicator():
    g = torch.Generator().manual_seed(0)
    d = 64
    collapsed = torch.randn(1, d, generator=g).repeat(1000, 1)
    assert feature_std(collapsed) < 1e-6
    spread = torch.randn(20000, d, generator=g)
    assert abs(feature_std(spread) - d**-0.5) < 0.01
