"""Multi-block masks over a (T, H, W) token grid: I-JEPA and V-JEPA.

I-JEPA (Assran et al. 2023, arXiv 2301.08243, Sec. 3 "Targets" / "Context"): per image, sample
M = ``num_targets`` (possibly overlapping) target blocks with scale in (0.15, 0.2) and aspect ratio
in (0.75, 1.5), and one context block with scale in (0.85, 1.0) and unit aspect; remove every
target token from the context so the prediction task is not trivial.
V-JEPA (Bardes et al. 2024, arXiv 2404.08471, Sec. 3.2): the same spatial blocks, repeated over a
contiguous span of ``temporal_scale`` of the T frames (a spatio-temporal "tube" of blocks).
Context blocks always span all T frames. Images are T = 1.

Block size rule (exact; tests check it). With ``n = s * H * W`` for a scale ``s`` drawn uniformly
from the scale range (``s`` is a fraction of the *spatial* grid, the V-JEPA convention),
an aspect ``a = h / w`` drawn uniformly from the aspect range, a temporal fraction ``f`` drawn
uniformly from ``temporal_scale``, and ``rnd(x) = floor(x + 0.5)``::

    h = clamp(rnd(sqrt(n * a)), 1, H)    w = clamp(rnd(sqrt(n / a)), 1, W)    t = clamp(rnd(f * T), 1, T)

Each of h, w, t is non-decreasing in s, a (h), 1/a (w) and f, so every block satisfies
``size(s_lo, a_lo) <= h <= size(s_hi, a_hi)`` (and the mirror for w). A block's corner is uniform
over all placements that fit: ``top`` in [0, H - h], ``left`` in [0, W - w], ``t0`` in [0, T - t],
inclusive. Every draw uses the sample's own generator ``generator("mask", seed, step, rank, index)``.

Context: the union of ``num_context`` blocks, minus the union of the targets (unless
``allow_overlap``), with at least ``min_keep`` tokens (``min_keep < 1`` counts as 1: never empty). A sample is rejection-sampled: up to
``max_tries`` fresh joint draws of targets and context; the first with ``>= min_keep`` context
tokens wins. If none does (small grids), a deterministic fallback that always terminates, using
the last draw:

1. context = the whole grid minus the targets (the largest context those targets allow);
2. if still short: replace every target block by the smallest-area block the size rule can draw
   (``min_block``), at the same corner moved up/left just enough to fit; context = grid minus targets;
3. if still short: put every target block on the first one's (shrunk) place, so the targets cover
   exactly ``min_block`` tokens and the context keeps ``T*H*W - area(min_block) >= min_keep``.

Step 3 always succeeds because the constructor raises ``ValueError`` when
``min_keep > T*H*W - area(min_block)`` (or ``> T*H*W`` with ``allow_overlap``). Fallback targets
keep sizes the size rule can draw, so they still satisfy the size rule.

Fixes of the official I-JEPA collator (``src/masks/multiblock.py``), each documented:

(a) corners were drawn with ``randint(0, H - h)`` (exclusive upper bound) and blocks were clamped to
    ``h <= H - 1``, so the last row and column were never covered by any block: here the
    corner range is inclusive and a block may span the whole side;
(b) one block size was drawn per batch for all samples and blocks: here each block draws its own;
(c) all sets in a batch were truncated to the shortest one: here sets are padded with
    ``valid`` marking the real tokens (``MaskBatch``), nothing is dropped;
(d) the retry loop ran forever when no placement left ``min_keep`` context tokens (small grids), or
    dropped the "no overlap" constraint after timeouts: here retries are bounded, the fallback
    above always terminates without overlap, and impossible settings fail at construction;
(e) scale and aspect came from the *same* uniform number (perfectly correlated): here independent.

``official_compat=True`` reproduces (a), (b), (c) and (e) — exclusive corners with ``h <= H - 1``
(also for the fallback's "whole grid", which becomes the top-left ``(H-1) x (W-1)`` region),
``n = int(s * H * W)`` with Python ``round``, one target size and one context size per batch,
truncation of every set to the batch's shortest by keeping its first K sorted indices — but never
(d): a hang is not a result (on grids small enough to reach the fallback, a shrunk target block then
truncates every other block of the batch, as the original truncation would). ``min_keep`` is ">= min_keep" in both modes (the original used ">").
Differences that remain: ``num_context > 1`` gives one union here, separate views there.

``merge_targets=True`` (V-JEPA, Bardes et al. 2024, Sec. 3.2 and Appendix: "multi-block" masking) returns
the union of a sample's target blocks as its one target set, (B, 1, K): V-JEPA masks the union of the
blocks and predicts every masked token in one predictor pass, the context being the rest of the clip
(``context_scale=(1, 1)``). Its two mask groups (8 blocks of spatial scale 0.15, 2 of 0.7, aspect 0.75-1.5,
all frames) are two samplers, see :class:`GroupedMaskSampler`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Sequence

import torch
from torch import Tensor

from openjepa.layers.seed import generator
from openjepa.masks.base import MaskBatch, MaskGroups, Masks, pad_sets, sample_indices

if TYPE_CHECKING:
    from openjepa.config.schema import MaskConfig

# (t0, t, top, h, left, w): frames [t0, t0+t), rows [top, top+h), columns [left, left+w)
Block = tuple[int, int, int, int, int, int]
Size = tuple[int, int, int]  # (t, h, w)

_U_PER_TARGET = 6  # uniforms per target block and try: f, s, a, t0, top, left
_U_PER_CONTEXT = 4  # per context block and try: s, a, top, left


def _range(name: str, r: Sequence[float], lo: float = 0.0, hi: float = math.inf) -> tuple[float, float]:
    r = tuple(float(v) for v in r)
    if len(r) != 2 or not (lo < r[0] <= r[1] <= hi):
        raise ValueError(f"{name} must be a pair (lo, hi) with {lo} < lo <= hi <= {hi}, got {r}")
    return r  # type: ignore[return-value]


def _lerp(r: tuple[float, float], u: float) -> float:
    return r[0] + u * (r[1] - r[0])


def _pick(u: float, n: int) -> int:
    """A uniform integer in [0, n) from a uniform float in [0, 1)."""
    return min(int(u * n), n - 1)


class MultiBlockMaskSampler:
    """I-JEPA / V-JEPA multi-block masks; see the module docstring for the rules and the fixes.

    ``__call__(batch_size, step, rank=0, indices=None)`` returns ``Masks`` with
    context ``(B, Kc)`` and targets ``(B, num_targets, Kt)``, padded with ``valid`` where set sizes
    differ (``valid`` is ``None`` when every set is full). Sample i is a pure function of
    ``(seed, step, rank, indices[i] if indices else i)``.
    """

    def __init__(
        self,
        grid: Sequence[int] = (1, 14, 14),
        num_targets: int = 4,
        target_scale: Sequence[float] = (0.15, 0.2),
        target_aspect: Sequence[float] = (0.75, 1.5),
        num_context: int = 1,
        context_scale: Sequence[float] = (0.85, 1.0),
        context_aspect: Sequence[float] = (1.0, 1.0),
        temporal_scale: Sequence[float] = (1.0, 1.0),
        min_keep: int = 4,
        allow_overlap: bool = False,
        official_compat: bool = False,
        seed: int = 0,
        max_tries: int = 20,
        merge_targets: bool = False,
    ):
        grid = tuple(int(g) for g in grid)
        if len(grid) == 2:
            grid = (1, *grid)
        if len(grid) != 3 or min(grid) < 1:
            raise ValueError(f"grid must be (T, H, W) with positive sides, got {grid}")
        if num_targets < 1 or num_context < 1:
            raise ValueError(f"num_targets and num_context must be >= 1, got {num_targets}, {num_context}")
        if min_keep < 0 or max_tries < 1:
            raise ValueError(f"min_keep must be >= 0 and max_tries >= 1, got {min_keep}, {max_tries}")
        self.grid: tuple[int, int, int] = grid  # type: ignore[assignment]
        self.num_targets, self.num_context = int(num_targets), int(num_context)
        self.target_scale = _range("target_scale", target_scale, hi=1.0)
        self.target_aspect = _range("target_aspect", target_aspect)
        self.context_scale = _range("context_scale", context_scale, hi=1.0)
        self.context_aspect = _range("context_aspect", context_aspect)
        self.temporal_scale = _range("temporal_scale", temporal_scale, hi=1.0)
        self.min_keep = max(int(min_keep), 1)  # a context is never empty
        self.allow_overlap = bool(allow_overlap)
        self.official_compat, self.seed, self.max_tries = bool(official_compat), int(seed), int(max_tries)
        self.merge_targets = bool(merge_targets)

        T, H, W = grid
        # the region any block may cover: the whole grid, or (official) all but the last row/column
        self._hmax = max(H - 1, 1) if official_compat else H
        self._wmax = max(W - 1, 1) if official_compat else W
        self.region: Block = (0, T, 0, self._hmax, 0, self._wmax)
        self._ids = torch.arange(T * H * W).view(T, H, W)  # token index of each grid cell
        self.min_block: Size = self._min_target_size()
        region_area = T * self._hmax * self._wmax
        t, h, w = self.min_block
        most = region_area if allow_overlap else region_area - t * h * w
        if self.min_keep > most:
            why = "the grid" if allow_overlap else f"the grid minus the smallest target block ({t}x{h}x{w})"
            raise ValueError(
                f"min_keep={self.min_keep} is impossible for grid {grid} (official_compat={official_compat}): "
                f"at most {most} context tokens fit in {why}; lower min_keep or target_scale")

    @classmethod
    def from_config(cls, cfg: "MaskConfig", grid: Sequence[int], seed: int) -> "MultiBlockMaskSampler":
        return cls(grid, num_targets=cfg.num_targets, target_scale=cfg.target_scale,
                   target_aspect=cfg.target_aspect, num_context=cfg.num_context,
                   context_scale=cfg.context_scale, context_aspect=cfg.context_aspect,
                   temporal_scale=cfg.temporal_scale, min_keep=cfg.min_keep, allow_overlap=cfg.allow_overlap,
                   official_compat=cfg.official_compat, seed=seed, merge_targets=cfg.merge_targets)

    def __repr__(self) -> str:
        return (f"MultiBlockMaskSampler(grid={self.grid}, num_targets={self.num_targets}, "
                f"target_scale={self.target_scale}, target_aspect={self.target_aspect}, "
                f"num_context={self.num_context}, context_scale={self.context_scale}, "
                f"context_aspect={self.context_aspect}, temporal_scale={self.temporal_scale}, "
                f"min_keep={self.min_keep}, allow_overlap={self.allow_overlap}, "
                f"official_compat={self.official_compat}, seed={self.seed}, merge_targets={self.merge_targets})")

    # ---- sizes -------------------------------------------------------------------------------
    def block_size(self, scale: float, aspect: float, frac: float = 1.0) -> Size:
        """The size rule of the module docstring: (scale, aspect = h/w, temporal fraction) -> (t, h, w)."""
        T, H, W = self.grid
        if self.official_compat:
            n, rnd = float(int(H * W * scale)), round
        else:
            n, rnd = scale * H * W, lambda x: math.floor(x + 0.5)
        h = min(max(rnd(math.sqrt(n * aspect)), 1), self._hmax)
        w = min(max(rnd(math.sqrt(n / aspect)), 1), self._wmax)
        t = min(max(rnd(frac * T), 1), T)
        return int(t), int(h), int(w)

    def _min_target_size(self) -> Size:
        """The smallest-area target block the size rule can draw (exact: area only changes at the
        aspect values where sqrt(n*a) or sqrt(n/a) crosses k + 1/2, so try both sides of each)."""
        T, H, W = self.grid
        s, (a0, a1), f = self.target_scale[0], self.target_aspect, self.temporal_scale[0]
        n = float(int(H * W * s)) if self.official_compat else s * H * W
        cands = {a0, a1}
        if n > 0:
            for k in range(max(H, W) + 1):
                for b in ((k + 0.5) ** 2 / n, n / (k + 0.5) ** 2):
                    if a0 < b < a1:
                        cands.update((max(a0, b * (1 - 1e-9)), min(a1, b * (1 + 1e-9))))
        sizes = [self.block_size(s, a, f) for a in sorted(cands)]
        return min(sizes, key=lambda z: (z[0] * z[1] * z[2], z))

    # ---- placement ---------------------------------------------------------------------------
    def _place(self, size: Size, ut: float, utop: float, uleft: float) -> Block:
        T, H, W = self.grid
        t, h, w = size
        if self.official_compat:  # randint(0, H - h): the last admissible corner is never drawn
            top, left = _pick(utop, max(H - h, 1)), _pick(uleft, max(W - w, 1))
        else:
            top, left = _pick(utop, H - h + 1), _pick(uleft, W - w + 1)
        return _pick(ut, T - t + 1), t, top, h, left, w

    def _block_indices(self, b: Block) -> Tensor:
        """Sorted raster indices t*H*W + h*W + w of a block."""
        t0, t, top, h, left, w = b
        return self._ids[t0:t0 + t, top:top + h, left:left + w].reshape(-1)  # a copy, raster order

    def _context(self, ctx_blocks: list[Block], targets: list[Block]) -> Tensor:
        """Sorted indices of union(ctx_blocks) minus union(targets) (unless allow_overlap)."""
        keep = torch.zeros(self.grid, dtype=torch.bool)
        for t0, t, top, h, left, w in ctx_blocks:
            keep[t0:t0 + t, top:top + h, left:left + w] = True
        if not self.allow_overlap:
            for t0, t, top, h, left, w in targets:
                keep[t0:t0 + t, top:top + h, left:left + w] = False
        return keep.reshape(-1).nonzero().reshape(-1)

    def _batch_sizes(self, step: int, rank: int) -> tuple[Size, Size]:
        """official_compat: one target size and one context size per batch, scale and aspect
        from one uniform number (defects (b) and (e), reproduced on purpose)."""
        u = torch.rand(3, generator=generator("mask-batch", self.seed, step, rank)).tolist()
        tgt = self.block_size(_lerp(self.target_scale, u[0]), _lerp(self.target_aspect, u[0]),
                              _lerp(self.temporal_scale, u[1]))
        ctx = self.block_size(_lerp(self.context_scale, u[2]), _lerp(self.context_aspect, u[2]))
        return tgt, ctx

    def sample_one(self, step: int, rank: int, index: int,
                   sizes: Optional[tuple[Size, Size]] = None) -> tuple[Tensor, list[Tensor]]:
        """One sample: (context indices (Kc,), [target block indices (Kt_j,)] * num_targets), sorted."""
        T = self.grid[0]
        g = generator("mask", self.seed, step, rank, index)
        n_u = self.num_targets * _U_PER_TARGET + self.num_context * _U_PER_CONTEXT
        for _ in range(self.max_tries):
            u = torch.rand(n_u, generator=g).tolist()
            targets = []
            for j in range(self.num_targets):
                uf, us, ua, ut, utop, uleft = u[j * _U_PER_TARGET:(j + 1) * _U_PER_TARGET]
                size = sizes[0] if sizes else self.block_size(
                    _lerp(self.target_scale, us), _lerp(self.target_aspect, ua), _lerp(self.temporal_scale, uf))
                targets.append(self._place(size, ut, utop, uleft))
            ctx_blocks = []
            for j in range(self.num_context):
                o = self.num_targets * _U_PER_TARGET + j * _U_PER_CONTEXT
                us, ua, utop, uleft = u[o:o + _U_PER_CONTEXT]
                size = sizes[1] if sizes else self.block_size(
                    _lerp(self.context_scale, us), _lerp(self.context_aspect, ua))
                t, h, w = size
                ctx_blocks.append(self._place((T, h, w), 0.0, utop, uleft))  # context spans all frames
            ctx = self._context(ctx_blocks, targets)
            if ctx.numel() >= self.min_keep:
                break
        else:
            targets, ctx = self._fallback(targets)
        return ctx, [self._block_indices(b) for b in targets]

    def _fallback(self, targets: list[Block]) -> tuple[list[Block], Tensor]:
        """Deterministic steps 1-3 of the module docstring; step 3 succeeds by the constructor's check."""
        ctx = self._context([self.region], targets)  # 1. the largest context these targets allow
        if ctx.numel() >= self.min_keep:
            return targets, ctx
        T = self.grid[0]
        t, h, w = self.min_block  # 2. every target becomes min_block at its corner, moved in to fit
        targets = [(min(b[0], T - t), t, min(b[2], self._hmax - h), h, min(b[4], self._wmax - w), w)
                   for b in targets]
        ctx = self._context([self.region], targets)
        if ctx.numel() >= self.min_keep:
            return targets, ctx
        targets = [targets[0]] * len(targets)  # 3. stack them: they cover exactly min_block
        return targets, self._context([self.region], targets)

    # ---- batches -----------------------------------------------------------------------------
    def sample_sets(self, batch_size: int, step: int, rank: int = 0,
                    indices: Optional[Sequence[int]] = None) -> tuple[list[Tensor], list[list[Tensor]]]:
        """Unpadded sets: ([context (Kc_i,)] * B, [[target (Kt_ij,)] * num_targets] * B)."""
        indices = sample_indices(batch_size, indices)
        sizes = self._batch_sizes(step, rank) if self.official_compat else None
        out = [self.sample_one(step, rank, i, sizes) for i in indices]
        return [c for c, _ in out], [t for _, t in out]

    def __call__(self, batch_size: int, step: int, rank: int = 0,
                 indices: Optional[Sequence[int]] = None) -> Masks:
        ctx, tgt = self.sample_sets(batch_size, step, rank, indices)
        if self.merge_targets:  # one set per sample: the sorted union of its blocks
            tgt = [[torch.unique(torch.cat(blocks))] for blocks in tgt]
        flat = [b for blocks in tgt for b in blocks]  # B * n sets, sample-major
        if self.official_compat:  # defect (c), reproduced: keep the first K sorted indices
            context, targets = _truncate(ctx), _truncate(flat)
        else:
            context, targets = pad_sets(ctx), pad_sets(flat)
        k = targets.idx.shape[-1]
        shape = (len(ctx), 1 if self.merge_targets else self.num_targets, k)
        targets = MaskBatch(targets.idx.reshape(shape),
                            None if targets.valid is None else targets.valid.reshape(shape))
        return Masks(context=context, targets=targets)


def _truncate(sets: list[Tensor]) -> MaskBatch:
    """official_compat: every set cut to the batch's shortest (its first K sorted indices)."""
    k = min(int(s.numel()) for s in sets)
    return MaskBatch(torch.stack([s[:k] for s in sets]), None)


class GroupedMaskSampler:
    """Several mask samplers over one grid, drawn for the same batch: ``__call__`` returns
    :class:`~openjepa.masks.base.MaskGroups`, one :class:`Masks` per group (the method runs one predictor
    pass per group, with mask token ``g``). Group ``g`` draws from seed ``mix_seed(seed, g)``, so groups are
    independent and each is a pure function of (seed, step, rank, sample index)."""

    def __init__(self, samplers: Sequence["MultiBlockMaskSampler"], seed: int):
        grids = {s.grid for s in samplers}
        if not samplers or len(grids) != 1:
            raise ValueError(f"mask groups need at least one sampler, all on one grid; got grids {sorted(grids)}")
        self.samplers = list(samplers)
        self.grid = self.samplers[0].grid
        self.seed = int(seed)  # the run's seed, which the groups' own seeds are derived from

    def __repr__(self) -> str:
        return f"GroupedMaskSampler({self.samplers!r})"

    def __call__(self, batch_size: int, step: int, rank: int = 0,
                 indices: Optional[Sequence[int]] = None) -> MaskGroups:
        return MaskGroups(s(batch_size, step, rank, indices) for s in self.samplers)
