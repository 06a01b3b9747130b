"""Multi-block sampler: invariants (property tests), determinism, the official-collator fixes."""

from __future__ import annotations

import math
import time

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from openjepa.masks import MultiBlockMaskSampler
from openjepa.masks.base import Masks

PROP = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- helpers ---------------------------------------------------------------------------------
def rnd(x: float) -> int:
    return math.floor(x + 0.5)


def size_rule(grid, s, a, f=1.0):
    """The documented rule, re-implemented independently of the sampler."""
    T, H, W = grid
    n = s * H * W
    return (min(max(rnd(f * T), 1), T), min(max(rnd(math.sqrt(n * a)), 1), H),
            min(max(rnd(math.sqrt(n / a)), 1), W))


def box_of(idx: torch.Tensor, grid):
    """(t, h, w) extent of a token set, asserting it is a full box (every token of its bounding box)."""
    T, H, W = grid
    t, r = idx // (H * W), idx % (H * W)
    h, w = r // W, r % W
    ext = [int(v.max() - v.min() + 1) for v in (t, h, w)]
    assert idx.numel() == ext[0] * ext[1] * ext[2], "target block is not a full box"
    assert len(set(idx.tolist())) == idx.numel()
    return tuple(ext)


def unpad(masks: Masks):
    """[context set] * B and [[target set] * n] * B as Python lists, padding removed."""
    c, t = masks.context, masks.targets
    cv = torch.ones_like(c.idx, dtype=torch.bool) if c.valid is None else c.valid
    tv = torch.ones_like(t.idx, dtype=torch.bool) if t.valid is None else t.valid
    ctx = [c.idx[i][cv[i]].tolist() for i in range(c.idx.shape[0])]
    tgt = [[t.idx[i, j][tv[i, j]].tolist() for j in range(t.idx.shape[1])] for i in range(t.idx.shape[0])]
    return ctx, tgt


def check_invariants(s: MultiBlockMaskSampler, m: Masks, B: int):
    T, H, W = s.grid
    N = T * H * W
    assert m.context.idx.dtype == torch.long and m.targets.idx.dtype == torch.long
    assert m.context.idx.shape[0] == B and m.targets.idx.shape[:2] == (B, s.num_targets)
    for mb in (m.context, m.targets):
        assert int(mb.idx.min()) >= 0 and int(mb.idx.max()) < N
        if mb.valid is not None:
            assert mb.valid.shape == mb.idx.shape
            assert (mb.idx[~mb.valid] == 0).all(), "padded idx must be 0"
            # valid entries come first: padding only at the end
            assert (mb.valid.long().diff(dim=-1) <= 0).all()
    ctx, tgt = unpad(m)
    for i in range(B):
        assert ctx[i] == sorted(set(ctx[i])) and len(ctx[i]) >= s.min_keep
        union = set()
        for blk in tgt[i]:
            assert blk == sorted(set(blk)) and len(blk) >= 1
            union |= set(blk)
        if not s.allow_overlap:
            assert not (set(ctx[i]) & union), "context overlaps targets"
    return ctx, tgt


def check_sizes(s: MultiBlockMaskSampler, tgt):
    """Exact rule: h, w, t lie between the rule at the range ends (the rule is monotone), and the
    block's area/aspect, undone from rounding, can come from a scale/aspect in the ranges."""
    T, H, W = s.grid
    (s0, s1), (a0, a1), (f0, f1) = s.target_scale, s.target_aspect, s.temporal_scale
    lo_t, lo_h, _ = size_rule(s.grid, s0, a0, f0)
    hi_t, hi_h, _ = size_rule(s.grid, s1, a1, f1)
    lo_w, hi_w = size_rule(s.grid, s0, a1)[2], size_rule(s.grid, s1, a0)[2]
    eps = 1e-9
    for blocks in tgt:
        for blk in blocks:
            t, h, w = box_of(torch.tensor(blk), s.grid)
            assert lo_t <= t <= hi_t and lo_h <= h <= hi_h and lo_w <= w <= hi_w, (t, h, w)
            # sqrt(n a) rounds to h: in [h - 1/2, h + 1/2), open above if h was clamped to H, below if to 1
            hl, hu = (0.0 if h == 1 else h - 0.5), (math.inf if h == H else h + 0.5)
            wl, wu = (0.0 if w == 1 else w - 0.5), (math.inf if w == W else w + 0.5)
            n_lo, n_hi = hl * wl, hu * wu  # n = sqrt(n a) * sqrt(n / a)
            assert n_lo <= s1 * H * W + eps and n_hi >= s0 * H * W - eps, "area outside target_scale"
            a_lo = hl / wu if wu < math.inf else 0.0
            a_hi = hu / wl if wl > 0 else math.inf
            assert a_lo <= a1 + eps and a_hi >= a0 - eps, "aspect outside target_aspect"


@st.composite
def configs(draw, official_compat: bool = False):
    grid = (draw(st.integers(1, 3)), draw(st.integers(2, 16)), draw(st.integers(2, 16)))
    s0 = draw(st.floats(0.05, 0.5))
    a0 = draw(st.floats(0.3, 1.5))
    kw = dict(
        grid=grid, num_targets=draw(st.integers(1, 4)),
        target_scale=(s0, s0 + draw(st.floats(0.0, 0.3))),
        target_aspect=(a0, a0 + draw(st.floats(0.0, 1.5))),
        num_context=draw(st.integers(1, 2)),
        context_scale=(c0 := draw(st.floats(0.3, 1.0)), min(1.0, c0 + draw(st.floats(0.0, 0.3)))),
        temporal_scale=(f0 := draw(st.floats(0.2, 1.0)), min(1.0, f0 + draw(st.floats(0.0, 0.5)))),
        allow_overlap=draw(st.booleans()), seed=draw(st.integers(0, 2**31)), official_compat=official_compat,
    )
    probe = MultiBlockMaskSampler(**{**kw, "allow_overlap": True}, min_keep=0)  # min_block only
    t, h, w = probe.min_block
    region = probe.region[1] * probe.region[3] * probe.region[5]
    most = region - (0 if kw["allow_overlap"] else t * h * w)
    assume(most >= 1)  # else every min_keep is impossible (tested below)
    kw["min_keep"] = int(draw(st.floats(0.0, 1.0)) * most)
    return kw


# ---- properties ------------------------------------------------------------------------------
@PROP
@given(kw=configs(), step=st.integers(0, 10**6), rank=st.integers(0, 7), B=st.integers(1, 4))
def test_invariants_and_sizes(kw, step, rank, B):
    s = MultiBlockMaskSampler(**kw)
    m = s(B, step, rank)
    _, tgt = check_invariants(s, m, B)
    check_sizes(s, tgt)
    assert _equal(m, s(B, step, rank))  # pure


def _equal(a: Masks, b: Masks) -> bool:
    def eq(x, y):
        return (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
    return all(eq(getattr(a, f).idx, getattr(b, f).idx) and eq(getattr(a, f).valid, getattr(b, f).valid)
               for f in ("context", "targets"))


@PROP
@given(kw=configs(official_compat=True), step=st.integers(0, 10**6), B=st.integers(1, 4))
def test_official_compat_invariants(kw, step, B):
    """Compat still never overlaps, stays sorted and in bounds; it never reaches the last row/column.
    Target blocks stay boxes unless a tiny-grid fallback shrank one (then truncation cuts the others)."""
    s = MultiBlockMaskSampler(**kw)
    T, H, W = s.grid
    ctx, tgt = check_invariants(s, s(B, step), B)
    _, raw_t = s.sample_sets(B, step)
    same_size = len({b.numel() for blocks in raw_t for b in blocks}) == 1
    for i in range(B):
        for tok in ctx[i] + [x for b in tgt[i] for x in b]:
            assert (tok % (H * W)) // W < H - 1 and tok % W < W - 1
        for b in tgt[i]:
            if same_size:
                box_of(torch.tensor(b), s.grid)


@PROP
@given(kw=configs(), step=st.integers(0, 10**6))
def test_per_sample_independent_of_batch(kw, step):
    s = MultiBlockMaskSampler(**kw)
    big_c, big_t = unpad(s(5, step))
    small_c, small_t = unpad(s(2, step))
    assert small_c == big_c[:2] and small_t == big_t[:2]
    idx_c, idx_t = unpad(s(2, step, indices=[4, 3]))
    assert idx_c == [big_c[4], big_c[3]] and idx_t == [big_t[4], big_t[3]]


@settings(max_examples=30, deadline=None)
@given(kw=configs())
def test_impossible_min_keep_raises(kw):
    T, H, W = kw["grid"]
    probe = MultiBlockMaskSampler(**{**kw, "min_keep": 0, "allow_overlap": True})
    t, h, w = probe.min_block
    most = T * H * W - (0 if kw["allow_overlap"] else t * h * w)
    if most >= 1:
        MultiBlockMaskSampler(**{**kw, "min_keep": most})  # barely feasible: fine
    with pytest.raises(ValueError, match="min_keep"):
        MultiBlockMaskSampler(**{**kw, "min_keep": most + 1})


# ---- determinism -----------------------------------------------------------------------------
def test_determinism_and_streams():
    s = MultiBlockMaskSampler((1, 14, 14), seed=3)
    a = s(8, 10, 0)
    assert _equal(a, MultiBlockMaskSampler((1, 14, 14), seed=3)(8, 10, 0))
    assert not _equal(a, s(8, 11, 0))
    assert not _equal(a, s(8, 10, 1))
    assert not _equal(a, MultiBlockMaskSampler((1, 14, 14), seed=4)(8, 10, 0))
    ctx, _ = unpad(a)
    assert len({tuple(c) for c in ctx}) == 8  # samples in a batch differ


def test_sizes_drawn_per_block():
    """Fix (b): block sizes vary within a batch (the official drew one size per batch)."""
    s = MultiBlockMaskSampler((1, 14, 14))
    _, tgt = unpad(s(16, 0))
    sizes = {box_of(torch.tensor(b), s.grid) for blocks in tgt for b in blocks}
    assert len(sizes) > 3


# ---- fix (a): the last row and column ------------------------------------------------------
def _coverage(s, steps=4, B=32):
    T, H, W = s.grid
    rows_c, cols_c, rows_t, cols_t = set(), set(), set(), set()
    for step in range(steps):
        ctx, tgt = unpad(s(B, step))
        for c in ctx:
            rows_c |= {(i % (H * W)) // W for i in c}
            cols_c |= {i % W for i in c}
        for blocks in tgt:
            for b in blocks:
                rows_t |= {(i % (H * W)) // W for i in b}
                cols_t |= {i % W for i in b}
    return rows_c, cols_c, rows_t, cols_t


def test_last_row_and_column_are_covered():
    H = W = 14
    rows_c, cols_c, rows_t, cols_t = _coverage(MultiBlockMaskSampler((1, H, W)))
    for cover in (rows_c, cols_c, rows_t, cols_t):
        assert H - 1 in cover and 0 in cover


def test_official_compat_never_covers_last_row_and_column():
    H = W = 14
    rows_c, cols_c, rows_t, cols_t = _coverage(MultiBlockMaskSampler((1, H, W), official_compat=True))
    for cover in (rows_c, cols_c, rows_t, cols_t):
        assert H - 1 not in cover and 0 in cover


# ---- fix (c): padding vs the official truncation --------------------------------------------
def test_padding_valid_counts_match_real_sizes():
    s = MultiBlockMaskSampler((1, 14, 14))
    raw_c, raw_t = s.sample_sets(16, 7)
    m = s(16, 7)
    assert m.context.valid is not None and m.targets.valid is not None
    assert m.context.valid.sum(-1).tolist() == [c.numel() for c in raw_c]
    assert m.targets.valid.sum(-1).tolist() == [[b.numel() for b in blocks] for blocks in raw_t]
    assert m.context.idx.shape[1] == max(c.numel() for c in raw_c)
    assert m.targets.idx.shape[2] == max(b.numel() for blocks in raw_t for b in blocks)
    assert (m.context.idx[~m.context.valid] == 0).all() and (m.targets.idx[~m.targets.valid] == 0).all()


def test_official_compat_truncates_to_min():
    s = MultiBlockMaskSampler((1, 14, 14), official_compat=True)
    raw_c, raw_t = s.sample_sets(16, 7)
    m = s(16, 7)
    assert m.context.valid is None and m.targets.valid is None
    kc = min(c.numel() for c in raw_c)
    assert max(c.numel() for c in raw_c) > kc  # the truncation really drops tokens here
    assert m.context.idx.shape == (16, kc)
    for i, c in enumerate(raw_c):
        assert torch.equal(m.context.idx[i], c[:kc])  # the first K sorted indices
    # defect (b) reproduced: one target size for the whole batch
    assert len({b.numel() for blocks in raw_t for b in blocks}) == 1
    assert m.targets.idx.shape == (16, 4, raw_t[0][0].numel())


# ---- fix (d): termination on tiny grids -------------------------------------------------------
@pytest.mark.parametrize("grid,kw", [
    ((1, 2, 2), dict(min_keep=3)),
    ((1, 3, 3), dict(min_keep=8)),
    ((1, 3, 3), dict(target_scale=(0.3, 0.5), min_keep=5)),
    ((2, 2, 3), dict(target_scale=(0.4, 0.6), temporal_scale=(0.5, 1.0), min_keep=10)),
    ((1, 3, 3), dict(min_keep=3, official_compat=True)),
    ((1, 3, 3), dict(min_keep=4, allow_overlap=True, context_scale=(0.1, 0.2))),
])
def test_tiny_grids_terminate(grid, kw):
    s = MultiBlockMaskSampler(grid, **kw)
    t0 = time.perf_counter()
    for step in range(4):
        m = s(32, step)
        if not s.official_compat:
            check_invariants(s, m, 32)
    assert time.perf_counter() - t0 < 5.0


def test_fallback_keeps_min_keep_exactly_when_barely_feasible():
    s = MultiBlockMaskSampler((1, 3, 3), target_scale=(0.3, 0.5), min_keep=0)
    t, h, w = s.min_block
    s = MultiBlockMaskSampler((1, 3, 3), target_scale=(0.3, 0.5), min_keep=9 - t * h * w)
    ctx, tgt = unpad(s(64, 0))
    assert all(len(c) == 9 - t * h * w for c in ctx)
    check_sizes(s, tgt)


def test_official_defaults_that_hang_upstream_now_raise_or_run():
    # official: 2x2 grid with min_keep=4 loops forever; here it is a construction error
    with pytest.raises(ValueError, match="impossible"):
        MultiBlockMaskSampler((1, 2, 2), min_keep=4)
    with pytest.raises(ValueError, match="impossible"):
        MultiBlockMaskSampler((1, 2, 2), min_keep=5, allow_overlap=True)


def test_video_blocks_span_frames():
    s = MultiBlockMaskSampler((4, 8, 8), temporal_scale=(0.5, 0.5))
    ctx, tgt = unpad(s(8, 0))
    for blocks in tgt:
        for b in blocks:
            assert box_of(torch.tensor(b), s.grid)[0] == 2
    T, H, W = s.grid
    for c in ctx:  # context blocks span all frames (minus targets): some token in every frame
        assert {i // (H * W) for i in c} == set(range(T))


def test_bad_arguments():
    with pytest.raises(ValueError, match="grid"):
        MultiBlockMaskSampler((1, 0, 4))
    with pytest.raises(ValueError, match="target_scale"):
        MultiBlockMaskSampler((1, 8, 8), target_scale=(0.3, 0.2))
    with pytest.raises(ValueError, match="indices"):
        MultiBlockMaskSampler((1, 8, 8))(3, 0, indices=[0, 1])
