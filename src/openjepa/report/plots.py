"""The report's figures, drawn with matplotlib's Agg canvas and returned as PNG bytes.

Every function takes plain arrays or lists and returns ``bytes``; nothing here reads files or
runs a model, so each figure can be tested (and reused) on its own. Figures are ``Figure``
objects on a ``FigureCanvasAgg``, not pyplot: headless, and the caller's pyplot backend and open
figures are left alone.
"""

from __future__ import annotations

import io
import math
import textwrap
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

DPI = 100
# What each plotted metrics.jsonl key means (the subplot titles).
CURVE_TITLES: dict[str, str] = {
    "loss": "loss",
    "lr": "learning rate",
    "ema": "EMA momentum (target encoder)",
    "rankme": "RankMe (collapse: falls to 1)",
    "spread": "spread between images (collapse: falls to 0)",
    "rank_centred": "centred effective rank (collapse: falls to 1)",
    "probe_acc": "online probe accuracy",
    "pred_std": "prediction std",
    "target_std": "target std",
}
FRACTION_KEYS = ("probe_acc",)  # plotted as percentages


def _figure(nrows: int, ncols: int, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    """A figure on the Agg canvas and its (nrows, ncols) array of axes."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def to_png(fig: Figure) -> bytes:
    """Render ``fig`` to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def accuracy_ylim(values: Sequence[float], chance: float | None) -> tuple[float, float] | None:
    """The y-range of an accuracy plot: from 0 to a little above both the data and twice ``chance``.

    Starting at 0 with chance (``1 / num_classes``) well inside keeps a probe that wanders between
    9.6% and 10.6% on 10 classes looking like what it is, noise at chance, not a trend. None
    (matplotlib's own range) without a chance level.
    """
    if chance is None:
        return None
    vals = np.asarray(values, dtype=float)
    vals = vals[np.isfinite(vals)]
    top = max(float(vals.max()) if vals.size else 0.0, 2 * chance)
    return 0.0, min(1.0, 1.1 * top)


def chance_line(ax, chance: float | None) -> None:
    """A dashed grey line at ``chance`` (a fraction), labelled in the legend."""
    if chance is not None:
        ax.axhline(chance, ls="--", lw=1.2, color="tab:gray", label=f"chance {100 * chance:.3g}%")
        ax.legend(fontsize=7, loc="best", frameon=False)


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], ncols: int = 3,
           chance: float | None = None) -> bytes:
    """One subplot per key: ``series[key] = (steps, values)``; non-finite values are left out of the line.

    Accuracy keys (:data:`FRACTION_KEYS`) are shown in percent with the ``chance`` level (a
    fraction, ``1 / num_classes``) as a dashed line inside the y-range (:func:`accuracy_ylim`).
    """
    keys = list(series)
    nrows = max(1, math.ceil(len(keys) / ncols))
    fig, axes = _figure(nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows))
    for ax, key in zip(axes.flat, keys):
        steps, values = (np.asarray(v, dtype=float) for v in series[key])
        ok = np.isfinite(values)
        ax.plot(steps[ok], values[ok], lw=1.4, marker="." if ok.sum() < 30 else None, color="tab:blue")
        title = CURVE_TITLES.get(key, key)
        if (~ok).any():
            title += f" ({int((~ok).sum())} non-finite)"
        ax.set_title(f"{title}\n[{key}]", fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        pos = values[ok]
        if key == "loss" and pos.size and (pos > 0).all() and pos.max() / pos.min() > 20:
            ax.set_yscale("log")
        if key in FRACTION_KEYS:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            chance_line(ax, chance)
            if (lim := accuracy_ylim(pos, chance)) is not None:
                ax.set_ylim(*lim)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    return to_png(fig)


def _show(ax, img: np.ndarray) -> None:
    """(H, W, 3) or (H, W) floats in [0, 1], no axes."""
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img


def masks(images: Sequence[np.ndarray], token_maps: Sequence[np.ndarray]) -> bytes:
    """Context and targets over each image. ``images[i]``: (H, W[, 3]) in [0, 1]; ``token_maps[i]``:
    (h, w) ints from :func:`openjepa.masks.mask_image` (0 dropped, 1 context, 2 + j target block j).

    Top row: the context encoder's view (tokens outside the context greyed out). Bottom row: the
    target blocks the predictor must predict, one colour per block.
    """
    n = len(images)
    fig, axes = _figure(2, n, figsize=(1.9 * n, 4.1))
    block_colours = colormaps["tab10"]
    for i, (img, tok) in enumerate(zip(images, token_maps)):
        rgb = _rgb(np.asarray(img, dtype=float))
        h, w = rgb.shape[:2]
        # Token map -> pixel map (nearest): each token covers a (h / th) x (w / tw) patch.
        rows = np.arange(h) * tok.shape[0] // h
        cols = np.arange(w) * tok.shape[1] // w
        pix = tok[rows][:, cols]
        ctx = np.where((pix == 1)[..., None], rgb, 0.7 + 0.2 * rgb)  # outside the context: pale
        _show(axes[0, i], ctx)
        tgt = 0.25 + 0.5 * rgb  # dimmed, so the coloured blocks stand out
        for j in range(int(tok.max()) - 1):
            sel = pix == 2 + j
            colour = np.asarray(block_colours(j % 10)[:3])
            tgt[sel] = 0.45 * rgb[sel] + 0.55 * colour
        _show(axes[1, i], tgt)
        kept, total = int((tok == 1).sum()), tok.size
        axes[0, i].set_title(f"context {kept}/{total}", fontsize=8)
        axes[1, i].set_title(f"{int(tok.max()) - 1} target blocks", fontsize=8)
    axes[0, 0].set_ylabel("context", fontsize=9)
    axes[1, 0].set_ylabel("targets", fontsize=9)
    fig.tight_layout()
    return to_png(fig)


# The filmstrip's layout, in pixels: the PNG holds the mosaic unscaled with its top-left corner at
# (FILM_LEFT, FILM_TOP); frames are resampled (nearest) to FILM_SIDE pixels high.
FILM_SIDE = 64
FILM_GAP = 2  # between frames, and between the rows of one clip
FILM_CLIP_GAP = 14  # between clips
FILM_LEFT, FILM_TOP, FILM_MARGIN = 210, 40, 8
FILM_MAX_FRAMES = 16
FILM_CAPTION_CHARS = 32  # a caption line left of the frames wraps here, to stay inside FILM_LEFT


def shown_frames(num_frames: int, tubelet: int, most: int = FILM_MAX_FRAMES) -> list[int]:
    """The frames a filmstrip row shows: all of them, else the first frame of each tubelet, else
    ``most`` of those, evenly spaced."""
    if num_frames <= most:
        return list(range(num_frames))
    starts = list(range(0, num_frames, max(1, tubelet)))
    if len(starts) <= most:
        return starts
    return [starts[k] for k in np.linspace(0, len(starts) - 1, most).round().astype(int)]


def token_pixels(token_map: np.ndarray, num_frames: int, height: int, width: int) -> np.ndarray:
    """A (T, h, w) token map -> the (F, H, W) map of every pixel of every frame: frame f is token time
    ``f * T // F`` (a token covers ``F / T`` frames, the tubelet), pixel (y, x) token row ``y * h // H``
    and column ``x * w // W`` (a patch_size x patch_size patch)."""
    T, h, w = token_map.shape
    t = np.arange(num_frames) * T // num_frames
    rows = np.arange(height) * h // height
    cols = np.arange(width) * w // width
    return token_map[t][:, rows][:, :, cols]


def group_colour(group: int, block: int, blocks: Sequence[int]) -> np.ndarray:
    """The RGB tint of target set ``block`` of mask group ``group`` (``blocks[g]``: target sets of group g):
    tab10 colours in turn over the groups' sets, so merged groups (V-JEPA) get one colour each."""
    return np.asarray(colormaps["tab10"]((sum(blocks[:group]) + block) % 10)[:3])


def overlay(frames: np.ndarray, pix: np.ndarray, colours: Sequence[np.ndarray]) -> np.ndarray:
    """Frames (F, H, W, 3) in [0, 1] under one group's pixel map (F, H, W) (0 dropped, 1 context, 2 + j
    target set j): context as it is, target set j tinted ``0.45 * rgb + 0.55 * colours[j]``, dropped pale."""
    out = np.where((pix == 1)[..., None], frames, 0.7 + 0.2 * frames)
    for j, colour in enumerate(colours):
        sel = pix == 2 + j
        out[sel] = 0.45 * frames[sel] + 0.55 * colour
    return out


def _nearest(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(F, H, W, 3) -> (F, height, width, 3), nearest-neighbour."""
    rows = np.arange(height) * frames.shape[1] // height
    cols = np.arange(width) * frames.shape[2] // width
    return frames[:, rows][:, :, cols]


def filmstrip_mosaic(clips: Sequence[np.ndarray], maps: Sequence[Sequence[np.ndarray]], blocks: Sequence[int],
                     tubelet: int = 1) -> tuple[np.ndarray, list[int], list[int], list[int]]:
    """The filmstrip's pixels: ``(mosaic (Hm, Wm, 3) uint8, row tops, column lefts, frames shown)``.
    It shows masks as tubes over the frames, as V-JEPA's multi-block masks are drawn (Bardes et al.
    2024, arXiv 2404.08471, Sec. 3.2).

    Clip i (``clips[i]``: (F, H, W, 3) in [0, 1]) is a block of ``1 + G`` rows: its frames, then one
    :func:`overlay` row per mask group g (``maps[i][g]``: (T, h, w) from :func:`openjepa.masks.mask_image`),
    frames left to right (:func:`shown_frames`), each ``FILM_SIDE`` pixels high; white between frames.
    """
    F, H, W, _ = np.asarray(clips[0]).shape
    frames = shown_frames(F, tubelet)
    side_w = max(1, round(W * FILM_SIDE / H))
    n_rows = 1 + len(blocks)
    lefts = [k * (side_w + FILM_GAP) for k in range(len(frames))]
    tops = [i * (n_rows * (FILM_SIDE + FILM_GAP) - FILM_GAP + FILM_CLIP_GAP) + r * (FILM_SIDE + FILM_GAP)
            for i in range(len(clips)) for r in range(n_rows)]
    mosaic = np.ones((tops[-1] + FILM_SIDE, lefts[-1] + side_w, 3))
    for i, clip in enumerate(clips):
        clip = np.asarray(clip, dtype=float)
        rows = [clip] + [overlay(clip, token_pixels(np.asarray(m), F, H, W),
                                 [group_colour(g, j, blocks) for j in range(blocks[g])])
                         for g, m in enumerate(maps[i])]
        for r, row in enumerate(rows):
            shown = _nearest(row[frames], FILM_SIDE, side_w)
            y = tops[i * n_rows + r]
            for k, x in enumerate(lefts):
                mosaic[y:y + FILM_SIDE, x:x + side_w] = shown[k]
    return (mosaic.clip(0, 1) * 255).round().astype(np.uint8), tops, lefts, frames


def filmstrip(clips: Sequence[np.ndarray], maps: Sequence[Sequence[np.ndarray]], labels: Sequence[str],
              groups: Sequence[str], blocks: Sequence[int], tubelet: int = 1) -> bytes:
    """Sample clips with the context and target tubes of each mask group over their frames
    (:func:`filmstrip_mosaic`), captioned: frame and token-time numbers on top, the clip's label and
    each group's context and target token counts on the left.

    The mosaic is drawn unscaled (``figimage``) at ``(FILM_LEFT, FILM_TOP)`` of the PNG, so each
    of its pixels is exactly one pixel of the picture.
    """
    mosaic, tops, lefts, frames = filmstrip_mosaic(clips, maps, blocks, tubelet)
    mh, mw = mosaic.shape[:2]
    width, height = FILM_LEFT + mw + FILM_MARGIN, FILM_TOP + mh + FILM_MARGIN
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.figimage(mosaic, xo=FILM_LEFT, yo=height - FILM_TOP - mh, origin="upper")
    side_w = mosaic.shape[1] if len(lefts) == 1 else lefts[1] - lefts[0] - FILM_GAP
    num_frames, num_times = np.asarray(clips[0]).shape[0], np.asarray(maps[0][0]).shape[0]
    for k, x in enumerate(lefts):
        f = frames[k]
        fig.text((FILM_LEFT + x + side_w / 2) / width, 1 - (FILM_TOP - 4) / height,
                 f"f{f}\nt{f * num_times // num_frames}", ha="center", va="bottom", fontsize=7)
    fig.text(4 / width, 1 - (FILM_TOP - 4) / height, "frame f, token time t", ha="left", va="bottom", fontsize=7)
    n_rows = 1 + len(blocks)
    for i, label in enumerate(labels):
        _film_caption(fig, tops[i * n_rows], height, width, f"clip {i}" + (f": {label}" if label else ""),
                      "frames", "black")
        for g, m in enumerate(maps[i]):
            m = np.asarray(m)
            text = f"context {int((m == 1).sum())}/{m.size}, targets {int((m >= 2).sum())}"
            _film_caption(fig, tops[i * n_rows + 1 + g], height, width, f"group {g}: {groups[g]}", text,
                          group_colour(g, 0, blocks))
    return to_png_exact(fig)


def _film_caption(fig: Figure, top: int, height: int, width: int, line1: str, line2: str, colour: Any) -> None:
    """Two lines of caption left of the filmstrip row whose top is ``top`` pixels into the mosaic."""
    y = 1 - (FILM_TOP + top + FILM_SIDE / 2) / height
    text = "\n".join([*textwrap.wrap(line1, FILM_CAPTION_CHARS), line2])
    fig.text((FILM_LEFT - 6) / width, y, text, ha="right", va="center", fontsize=7, color=colour)


def to_png_exact(fig: Figure) -> bytes:
    """``fig`` as PNG bytes at its own size (no tight cropping: figure pixels stay where they were drawn)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def embedding_map(maps: Mapping[str, np.ndarray], labels: np.ndarray, class_names: Sequence[str] = ()) -> bytes:
    """Scatter plots of 2-D embeddings (``maps[title] = (N, 2)``) coloured by ``labels`` (N,);
    labels < 0 are unlabelled (one grey colour)."""
    labels = np.asarray(labels)
    classes = sorted(int(c) for c in np.unique(labels) if c >= 0)
    fig, axes = _figure(1, len(maps), figsize=(5.6 * len(maps), 5.0))
    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20" if len(classes) <= 20 else "viridis"]
    size = 7 if len(labels) > 400 else 16  # points: small when many
    for ax, (title, xy) in zip(axes.flat, maps.items()):
        xy = np.asarray(xy)
        unl = labels < 0
        if unl.any():
            ax.scatter(xy[unl, 0], xy[unl, 1], s=size, color="tab:gray", alpha=0.7, lw=0, label="unlabelled")
        for k, c in enumerate(classes):
            sel = labels == c
            colour = cmap(k / max(1, len(classes) - 1)) if len(classes) > 20 else cmap(k)
            name = class_names[c] if c < len(class_names) else str(c)
            ax.scatter(xy[sel, 0], xy[sel, 1], s=size, color=colour, alpha=0.8, lw=0, label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if len(classes) <= 20:
        handles, names = axes.flat[-1].get_legend_handles_labels()
        fig.legend(handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2.5,
                   frameon=False)
    fig.tight_layout()
    return to_png(fig)


def retrieval(queries: Sequence[np.ndarray], neighbours: Sequence[Sequence[np.ndarray]],
              sims: np.ndarray, query_labels: Sequence[str] | None = None,
              neighbour_labels: Sequence[Sequence[str]] | None = None) -> bytes:
    """One row per query: the query image, then its neighbours with their cosine similarity.

    With labels, a neighbour's caption is green when its label equals the query's, red otherwise.
    """
    n, k = len(queries), len(neighbours[0])
    fig, axes = _figure(n, k + 1, figsize=(1.45 * (k + 1), 1.6 * n))
    for i in range(n):
        _show(axes[i, 0], np.asarray(queries[i], dtype=float))
        qname = query_labels[i] if query_labels is not None else ""
        axes[i, 0].set_title(f"query {qname}".strip(), fontsize=8, fontweight="bold")
        for spine in axes[i, 0].spines.values():
            spine.set_edgecolor("black")
            spine.set_linewidth(2)
        for j in range(k):
            ax = axes[i, j + 1]
            _show(ax, np.asarray(neighbours[i][j], dtype=float))
            colour = "black"
            caption = f"{sims[i, j]:.3f}"
            if query_labels is not None and neighbour_labels is not None:
                colour = "tab:green" if neighbour_labels[i][j] == query_labels[i] else "tab:red"
                caption = f"{neighbour_labels[i][j]} {caption}"
            ax.set_title(caption, fontsize=7, color=colour)
    fig.tight_layout()
    return to_png(fig)


def accuracy_bars(names: Sequence[str], columns: Mapping[str, Sequence[float | None]],
                  errors: Mapping[str, Sequence[float | None]], chance: float | None = None) -> bytes:
    """Grouped bars: one group per column (``columns[head][i]``: row ``names[i]``'s accuracy, a fraction or
    None), one bar per row, error bars ``errors[head][i]`` (None: none), and the ``chance`` line."""
    heads = list(columns)
    fig, axes = _figure(1, 1, figsize=(3.0 + 0.5 * len(heads) * max(1, len(names)), 3.4))
    ax = axes[0, 0]
    width = 0.8 / max(1, len(names))
    colours = colormaps["tab10"]
    for i, name in enumerate(names):
        x = np.arange(len(heads)) + (i - (len(names) - 1) / 2) * width
        val = np.array([np.nan if columns[h][i] is None else columns[h][i] for h in heads], dtype=float)
        err = np.array([0.0 if errors[h][i] is None else errors[h][i] for h in heads], dtype=float)
        ax.bar(x, np.nan_to_num(val), width, yerr=err, capsize=3, color=colours(i % 10), label=name,
               error_kw={"lw": 1})
    ax.set_xticks(np.arange(len(heads)), heads, fontsize=9)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel("top-1 (test)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(labelsize=8)
    tops = [v + (e or 0.0) for h in heads for v, e in zip(columns[h], errors[h]) if v is not None]
    ax.set_ylim(*(accuracy_ylim(tops, chance) or (0.0, min(1.0, 1.1 * max(tops, default=1.0)))))
    chance_line(ax, chance)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return to_png(fig)
