"""The report's sections, each built from what the run directory holds; a section whose inputs
are missing says so in the page instead of failing the whole report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch import Tensor
from tqdm.auto import tqdm

from openjepa.report import plots
from openjepa.report.html import Section, esc, image, note, pre
from openjepa.report.runfiles import metric_series, read_metrics
from openjepa.report.samples import ClipExamples, SplitFeatures, nearest_neighbours, pca_2d, to_display, tsne_2d

# metrics.jsonl keys plotted, in this order (monitoring keys appear when the run logged them).
CURVE_KEYS = ("loss", "lr", "ema", "probe_acc", "rankme", "rank_centred", "spread", "pred_std", "target_std",
              "sigreg", "teacher_forcing", "rollout", "latent_std")
OPTIONAL_KEYS = ("ema", "sigreg", "teacher_forcing", "rollout", "latent_std")  # method-specific: never "not logged"


def curves_section(run_dir: Path, chance: float | None = None) -> Section:
    """Curves of :data:`CURVE_KEYS` over steps, each from the ``metrics.jsonl`` rows that hold it; accuracy
    curves with the ``chance`` level (``1 / num_classes``) dashed."""
    title = "Training curves"
    rows, bad = read_metrics(run_dir / "metrics.jsonl")
    if not rows:
        return Section("curves", title, note("No metrics.jsonl rows in this run directory."))
    series = metric_series(rows, CURVE_KEYS)
    if not series:
        return Section("curves", title, note(f"metrics.jsonl holds none of: {', '.join(CURVE_KEYS)}."))
    body = image(plots.curves(series, chance=chance), "training curves: " + ", ".join(series))
    absent = [k for k in CURVE_KEYS if k not in series and k not in OPTIONAL_KEYS]
    if absent:
        body += note(f"Not logged by this run: {', '.join(absent)}.")
    if bad:
        body += note(f"{bad} line(s) of metrics.jsonl could not be read and were left out.")
    return Section("curves", title, body)


def masks_section(examples: tuple[list[np.ndarray], list[np.ndarray]] | ClipExamples | str, sampler: str) -> Section:
    """Context and target masks over a few training images, the filmstrip of a few clips with every
    mask group (:class:`ClipExamples`), or the reason they are missing."""
    title = "Masks"
    if isinstance(examples, str):
        return Section("masks", title, note(examples))
    if isinstance(examples, ClipExamples):
        return Section("masks", title, _filmstrip_body(examples, sampler))
    images, maps = examples
    body = (f"<p>The <code>{esc(sampler)}</code> sampler's masks for the first training images (step 0): the "
            "context encoder sees the top row's unshaded tokens; the predictor predicts the target encoder's "
            "tokens in the coloured blocks of the bottom row.</p>")
    return Section("masks", title, body + image(plots.masks(images, maps), "context and target masks"))


def _filmstrip_body(ex: ClipExamples, sampler: str) -> str:
    """The filmstrip and what it shows."""
    t, h, w = ex.maps[0][0].shape
    frames, height, width = ex.clips[0].shape[:3]
    shown = plots.shown_frames(frames, ex.tubelet)
    which = "every frame" if len(shown) == frames else f"frames {', '.join(map(str, shown))}"
    per_group = "one row per mask group" if len(ex.groups) > 1 else "one row of masks"
    body = (f"<p>The <code>{esc(sampler)}</code> sampler's masks for the first {len(ex.clips)} training clips "
            f"(step 0), {which} of {frames} left to right: each clip's frames, then {per_group}. A token covers "
            f"{ex.tubelet} frame(s) and {height // h}x{width // w} pixels ({t}x{h}x{w} tokens); the context "
            "encoder sees the clear tokens, the predictor predicts the target encoder's tokens in the tinted "
            "tubes (one colour per group"
            + ("" if all(b == 1 for b in ex.blocks) else " and target block") + "); pale tokens are in neither.</p>")
    png = plots.filmstrip(ex.clips, ex.maps, ex.labels, ex.groups, ex.blocks, ex.tubelet)
    return body + image(png, "filmstrip: context and target tubes")


def embedding_section(test: SplitFeatures | str, class_names: Sequence[str], tsne: bool, seed: int,
                      progress: bool = False, video: bool = False) -> Section:
    """PCA (and t-SNE) of test features, coloured by label; ``progress`` shows the t-SNE's elapsed time;
    ``video``: the items are clips."""
    title = "Embedding map"
    if isinstance(test, str):
        return Section("embeddings", title, note(test))
    xy, (v1, v2) = pca_2d(test.features)
    maps: dict[str, Any] = {f"PCA (PC1 {100 * v1:.0f}%, PC2 {100 * v2:.0f}% of variance)": xy}
    if tsne:
        with tqdm(total=1, disable=not progress, desc=f"t-SNE of {test.features.shape[0]} points", unit="map",
                  dynamic_ncols=True) as bar:
            t = tsne_2d(test.features, seed)
            bar.update(1)
        if t is not None:
            maps["t-SNE"] = t
    labels = test.labels.numpy()
    n, d = test.features.shape
    what = "coloured by label" if (labels >= 0).any() else "unlabelled (one colour)"
    how = " and ".join("PCA" if k.startswith("PCA") else k for k in maps)
    items = "clips" if video else "images"
    body = f"<p>Pooled features of {n} test {items} (dimension {d}), {what}, projected to 2-D by {how}.</p>"
    return Section("embeddings", title, body + image(plots.embedding_map(maps, labels, class_names), "embedding map"))


def _label(y: int, class_names: Sequence[str]) -> str:
    return class_names[y] if 0 <= y < len(class_names) else str(y)


def retrieval(test: SplitFeatures, train: SplitFeatures, queries: int = 6, k: int = 6) -> tuple[Tensor, Tensor]:
    """The first ``queries`` test items' top-``k`` training neighbours: ``(cosine sims (Q, k), indices (Q, k))``."""
    return nearest_neighbours(test.features[: min(queries, test.features.shape[0])], train.features, k)


def retrieval_section(test: SplitFeatures | str, train: SplitFeatures | str, class_names: Sequence[str],
                      mean: Sequence[float], std: Sequence[float],
                      neighbours: tuple[Tensor, Tensor] | None = None, video: bool = False) -> Section:
    """A few test queries and their training-split neighbours by cosine similarity (``neighbours``: from
    :func:`retrieval`, computed here when not given); ``video``: the items are clips, shown by their first frame."""
    title = "Nearest neighbours"
    if isinstance(test, str) or isinstance(train, str):
        return Section("neighbours", title, note(test if isinstance(test, str) else str(train)))
    sims, idx = neighbours if neighbours is not None else retrieval(test, train)
    q = idx.shape[0]
    q_imgs = [to_display(test.dataset[i][0], mean, std) for i in range(q)]
    n_imgs = [[to_display(train.dataset[int(j)][0], mean, std) for j in row] for row in idx]
    labelled = bool((test.labels[:q] >= 0).any())
    q_names = [_label(int(y), class_names) for y in test.labels[:q]] if labelled else None
    n_names = [[_label(int(train.labels[int(j)]), class_names) for j in row] for row in idx] if labelled else None
    png = plots.retrieval(q_imgs, n_imgs, sims.numpy(), q_names, n_names)
    items = "clips (each shown by its first frame)" if video else "images"
    body = (f"<p>Each row: a test {'clip' if video else 'image'}, then its {idx.shape[1]} nearest of "
            f"{train.features.shape[0]} training {items} by cosine similarity of pooled features"
            + (" (caption: label and similarity; green: same label as the query)" if labelled else "")
            + ".</p>")
    return Section("neighbours", title, body + image(png, "nearest-neighbour retrieval"))


def config_section(run_dir: Path, fallback_yaml: str | None) -> Section:
    """``config.yaml`` as saved with the run (else the checkpoint's config)."""
    path = run_dir / "config.yaml"
    if path.is_file():
        return Section("config", "Configuration", f'<p class="meta">{esc(path.name)}</p>' + pre(path.read_text()))
    if fallback_yaml is not None:
        return Section("config", "Configuration", '<p class="meta">from the checkpoint (no config.yaml)</p>'
                       + pre(fallback_yaml))
    return Section("config", "Configuration", note("No config.yaml and no checkpoint in this run directory."))
