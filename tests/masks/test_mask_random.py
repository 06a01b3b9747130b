"""Random-token and tube masks: exact sizes, a partition of the grid, determinism."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from openjepa.masks import RandomMaskSampler


@settings(max_examples=100, deadline=None)
@given(T=st.integers(1, 3), H=st.integers(2, 16), W=st.integers(2, 16), ratio=st.floats(0.01, 0.99),
       tube=st.booleans(), seed=st.integers(0, 2**31), step=st.integers(0, 10**6), B=st.integers(1, 4))
def test_counts_exact_and_partition(T, H, W, ratio, tube, seed, step, B):
    s = RandomMaskSampler((T, H, W), ratio=ratio, seed=seed, tube=tube)
    m = s(B, step)
    N, n = T * H * W, (H * W if tube else T * H * W)
    k = min(max(round(ratio * n), 1), n - 1) * (T if tube else 1)
    assert m.context.valid is None and m.targets.valid is None
    assert m.targets.idx.shape == (B, 1, k) and m.context.idx.shape == (B, N - k)
    for i in range(B):
        c, t = m.context.idx[i], m.targets.idx[i, 0]
        assert torch.equal(torch.sort(torch.cat([c, t])).values, torch.arange(N))  # disjoint, covers all
        assert torch.equal(c, c.sort().values) and torch.equal(t, t.sort().values)
        if tube:  # the same spatial tokens in every frame
            sp = t.view(T, -1) % (H * W)
            assert (sp == sp[0]).all()
    again = s(B, step)
    assert torch.equal(m.context.idx, again.context.idx) and torch.equal(m.targets.idx, again.targets.idx)


def test_streams_and_independence():
    s = RandomMaskSampler((1, 8, 8), ratio=0.5, seed=1)
    a = s(4, 3)
    assert not torch.equal(a.targets.idx, s(4, 4).targets.idx)
    assert not torch.equal(a.targets.idx, s(4, 3, rank=1).targets.idx)
    assert torch.equal(s(2, 3).targets.idx, a.targets.idx[:2])
    assert torch.equal(s(1, 3, indices=[2]).targets.idx[0], a.targets.idx[2])


def test_bad_arguments():
    with pytest.raises(ValueError, match="ratio"):
        RandomMaskSampler((1, 4, 4), ratio=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        RandomMaskSampler((3, 1, 1), tube=True)


def test_defaults_sizes_and_smallest_grid():
    s = RandomMaskSampler()
    assert (s.grid, s.ratio, s.seed, s.tube) == ((1, 14, 14), 0.75, 0, False)  # MAE's 75% on a 14 x 14 grid
    assert RandomMaskSampler((4, 4)).grid == (1, 4, 4)
    t = RandomMaskSampler((3, 4, 4), ratio=0.5, tube=True)  # 8 of 16 spatial tokens, in each of 3 frames
    assert (t.num_drawn, t.num_targets_tokens, t.num_context_tokens) == (8, 24, 24)
    f = RandomMaskSampler((2, 4, 3), ratio=0.25)
    assert (f.num_drawn, f.num_targets_tokens, f.num_context_tokens) == (6, 6, 18)
    m = f(2, 0)
    assert m.targets.idx.shape == (2, 1, 6) and m.context.idx.shape == (2, 18)
    two = RandomMaskSampler((1, 1, 2), ratio=0.5)  # the smallest grid: one target, one context token
    assert two(1, 0).targets.idx.numel() == 1 and two(1, 0).context.idx.numel() == 1
    for ratio in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\)"):
            RandomMaskSampler((1, 4, 4), ratio=ratio)
