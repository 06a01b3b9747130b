"""Multi-block sampler: invariants (property tests), determinism, the official-collator fixes."""

from __future__ import annotations

import math
import time

import numpy as np
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


def test_defaults_are_ijepa_and_match_the_config_schema():
    """I-JEPA's collator settings (Sec. 3; ViT-*/16 at 224 px is a 14 x 14 grid), the same as ``MaskConfig``'s."""
    from openjepa.config.schema import MaskConfig

    s = MultiBlockMaskSampler()
    assert s.grid == (1, 14, 14) and s.num_targets == 4 and s.num_context == 1
    assert s.target_scale == (0.15, 0.2) and s.target_aspect == (0.75, 1.5)
    assert s.context_scale == (0.85, 1.0) and s.context_aspect == (1.0, 1.0) and s.temporal_scale == (1.0, 1.0)
    assert s.min_keep == 4 and s.allow_overlap is False and s.official_compat is False
    assert s.seed == 0 and s.max_tries == 20
    cfg = MaskConfig()
    c = MultiBlockMaskSampler.from_config(cfg, (1, 14, 14), seed=0)
    assert repr(c) == repr(s)
    odd = MaskConfig(num_targets=2, target_scale=[0.1, 0.3], target_aspect=[0.5, 2.0], num_context=2,
                     context_scale=[0.5, 0.9], context_aspect=[0.8, 1.2], temporal_scale=[0.5, 1.0], min_keep=3,
                     allow_overlap=True, official_compat=True)
    o = MultiBlockMaskSampler.from_config(odd, (2, 8, 8), seed=5)
    assert (o.grid, o.num_targets, o.target_scale, o.target_aspect, o.num_context, o.context_scale,
            o.context_aspect, o.temporal_scale, o.min_keep, o.allow_overlap, o.official_compat, o.seed) == (
        (2, 8, 8), 2, (0.1, 0.3), (0.5, 2.0), 2, (0.5, 0.9), (0.8, 1.2), (0.5, 1.0), 3, True, True, 5)


def test_argument_checks_name_the_setting():
    assert MultiBlockMaskSampler((6, 6)).grid == (1, 6, 6)  # an image grid (H, W) is one frame
    for grid in [(1, 0, 4), (0, 4, 4), (1, 4, 4, 4), (4,)]:
        with pytest.raises(ValueError, match="grid must be .* positive sides"):
            MultiBlockMaskSampler(grid)
    for kw in [dict(num_targets=0), dict(num_context=0)]:
        with pytest.raises(ValueError, match="num_targets and num_context must be >= 1"):
            MultiBlockMaskSampler((1, 8, 8), **kw)
    for kw in [dict(min_keep=-1), dict(max_tries=0)]:
        with pytest.raises(ValueError, match="min_keep must be >= 0 and max_tries >= 1"):
            MultiBlockMaskSampler((1, 8, 8), **kw)
    assert MultiBlockMaskSampler((1, 8, 8), max_tries=1).max_tries == 1


def test_block_size_spans_every_frame_by_default():
    s = MultiBlockMaskSampler((4, 8, 8))
    assert s.block_size(0.25, 1.0) == (4, 4, 4) == s.block_size(0.25, 1.0, 1.0)
    assert s.block_size(0.25, 1.0, 0.5) == (2, 4, 4)


def _brute_min_block(grid, scale, aspect, frac):
    """The smallest-area (t, h, w) the size rule gives at ``scale`` over 200001 aspects in ``aspect``, by numpy
    (ties: the smallest (t, h, w))."""
    T, H, W = grid
    n = scale * H * W
    a = np.concatenate([np.linspace(aspect[0], aspect[1], 200001), aspect])
    h = np.clip(np.floor(np.sqrt(n * a) + 0.5), 1, H).astype(np.int64)
    w = np.clip(np.floor(np.sqrt(n / a) + 0.5), 1, W).astype(np.int64)
    t = min(max(math.floor(frac * T + 0.5), 1), T)
    smallest = h * w == (h * w).min()
    return min((t, int(hh), int(ww)) for hh, ww in set(zip(h[smallest].tolist(), w[smallest].tolist())))


def test_min_block_is_the_smallest_block_the_size_rule_draws():
    rng = np.random.default_rng(0)
    configs = [((1, 4, 4), (0.05, 0.1), (0.2, 4.0), (1.0, 1.0)),  # n = 0.8 < 1: the area dips to 1 x 1 inside
               ((1, 14, 14), (0.15, 0.2), (0.75, 1.5), (1.0, 1.0)), ((1, 4, 4), (0.9, 1.0), (0.5, 2.0), (1.0, 1.0)),
               ((3, 6, 5), (0.3, 0.4), (0.4, 2.5), (0.5, 1.0))]
    for _ in range(40):
        grid = (int(rng.integers(1, 4)), int(rng.integers(2, 17)), int(rng.integers(2, 17)))
        s0, a0 = float(rng.uniform(0.02, 0.6)), float(rng.uniform(0.2, 1.5))
        aspect = (a0, a0 + float(rng.uniform(0.0, 3.0)))
        configs.append((grid, (s0, s0 + 0.1), aspect, (float(rng.uniform(0.2, 1.0)), 1.0)))
    for grid, scale, aspect, temporal in configs:
        s = MultiBlockMaskSampler(grid, target_scale=scale, target_aspect=aspect, temporal_scale=temporal, min_keep=0)
        assert s.min_block == _brute_min_block(grid, scale[0], aspect, temporal[0]), (grid, scale, aspect, temporal)


def test_one_context_block_with_overlap_is_exactly_its_box():
    """allow_overlap, one context block: the context is the block itself, a full box of the rule's size
    (scale 0.25 of 14 x 14, unit aspect: 7 x 7) at a corner inside the grid."""
    s = MultiBlockMaskSampler((2, 14, 14), context_scale=(0.25, 0.25), allow_overlap=True, min_keep=1)
    ctx, _ = unpad(s(16, 3))
    tops = set()
    for c in ctx:
        assert box_of(torch.tensor(c), s.grid) == (2, 7, 7)
        tops.add((c[0] // 14, c[0] % 14))
    assert len(tops) > 4 and any(r > 0 for r, _ in tops) and any(col > 0 for _, col in tops)


def test_a_draw_with_exactly_min_keep_context_tokens_is_accepted():
    """">= min_keep" (not ">"): the first draw is kept when its context has exactly min_keep tokens."""
    kw = dict(grid=(1, 10, 10), context_scale=(0.5, 0.5), max_tries=1)
    first = MultiBlockMaskSampler(**kw, min_keep=0)
    ctx, _ = first.sample_one(3, 0, 0)
    k = ctx.numel()
    assert 0 < k < 50  # a strict part of the grid: the fallback (grid minus targets) would differ
    again, _ = MultiBlockMaskSampler(**kw, min_keep=k).sample_one(3, 0, 0)
    assert torch.equal(again, ctx)
    fallback, tgt = MultiBlockMaskSampler(**kw, min_keep=k + 1).sample_one(3, 0, 0)  # rejected: step 1
    covered = set(torch.cat(tgt).tolist())
    assert fallback.tolist() == [i for i in range(100) if i not in covered]


def test_official_compat_scale_and_aspect_come_from_one_uniform():
    """Defect (e), reproduced: per batch, one u gives both the scale and the aspect of the target size."""
    s = MultiBlockMaskSampler((1, 16, 16), target_scale=(0.05, 0.6), target_aspect=(0.3, 3.0), min_keep=1,
                              official_compat=True)
    us = np.linspace(0.0, 1.0, 20001)
    explained = set()
    for u in us:
        explained.add(s.block_size(0.05 + u * 0.55, 0.3 + u * 2.7))
    sizes = set()
    for step in range(40):
        _, tgt = s.sample_sets(2, step)
        (size,) = {box_of(b, s.grid) for blocks in tgt for b in blocks}
        assert size in explained, size
        sizes.add(size)
    assert len(sizes) > 10


def _fallback_sampler(grid, min_keep):
    """A sampler whose smallest target block is one token (scale 0.05 of a 4-token frame rounds to 1 x 1)."""
    s = MultiBlockMaskSampler(grid, target_scale=(0.05, 0.05), target_aspect=(1.0, 1.0),
                              temporal_scale=(0.25, 0.25), min_keep=min_keep)
    assert s.min_block == (1, 1, 1)
    return s


def test_fallback_steps_stop_at_the_first_that_keeps_min_keep():
    N = 16
    big, other = (0, 1, 0, 2, 0, 2), (0, 1, 2, 2, 2, 2)  # two 2 x 2 blocks (t0, t, top, h, left, w)
    # step 1: the whole grid minus the targets has exactly min_keep = 12 tokens: the targets stay as drawn
    targets, ctx = _fallback_sampler((1, 4, 4), 12)._fallback([big])
    assert targets == [big] and ctx.tolist() == [i for i in range(N) if i not in (0, 1, 4, 5)]
    # step 2: 8 covered tokens leave 8 < 14; each target shrinks to 1 x 1 at its corner: exactly 14 left
    targets, ctx = _fallback_sampler((1, 4, 4), 14)._fallback([big, other])
    assert targets == [(0, 1, 0, 1, 0, 1), (0, 1, 2, 1, 2, 1)] and ctx.numel() == 14
    # step 3: 15 needs one covered token: every target on the first one's place
    targets, ctx = _fallback_sampler((1, 4, 4), 15)._fallback([big, other])
    assert targets == [(0, 1, 0, 1, 0, 1)] * 2 and ctx.tolist() == list(range(1, N))
    # video: a shrunk target keeps its frame (t0 = 3 of T = 4 frames of 2 x 2)
    targets, ctx = _fallback_sampler((4, 2, 2), 15)._fallback([(3, 1, 0, 2, 0, 2)])
    assert targets == [(3, 1, 0, 1, 0, 1)] and ctx.tolist() == list(range(12)) + [13, 14, 15]


def test_every_context_block_draws_its_own_place():
    """Context blocks and target blocks use separate uniforms: with overlap allowed and equal sizes (7 x 7),
    the target is not always inside the union of the two context blocks (it would be if a context block
    reused the target's corner uniforms)."""
    s = MultiBlockMaskSampler((1, 14, 14), num_targets=1, target_scale=(0.25, 0.25), target_aspect=(1.0, 1.0),
                              num_context=2, context_scale=(0.25, 0.25), allow_overlap=True, min_keep=1)
    ctx, tgt = unpad(s(32, 0))
    inside = [set(t[0]) <= set(c) for c, t in zip(ctx, tgt)]
    assert not all(inside)
    assert all(49 <= len(c) <= 98 for c in ctx)  # two 7 x 7 blocks, overlapping or not
