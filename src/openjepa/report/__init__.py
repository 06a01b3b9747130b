"""The run report: one self-contained HTML page that shows what a run did and learned.

``write_report(run_dir)`` writes ``run_dir/report.html``: training curves (``metrics.jsonl``),
mask examples (the run's sampler over its data; for video runs a filmstrip of clips with the context
and target tubes of every mask group over their frames), a 2-D map of test embeddings, nearest-neighbour
retrieval, every probe table (``eval.json``, ``eval_step*_*.json``, newest first, with the
verdicts against the baselines), the config, and the collapse banner at the top (the monitor's
warning, RankMe against the random-init encoder, neighbour similarities: see
:mod:`openjepa.report.collapse`). Every input but the directory itself is optional: a section that
cannot be built says why. Command line: ``openjepa report RUN_DIR``.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import torch

from openjepa.config import ConfigError, load_config, to_yaml
from openjepa.config.schema import Config
from openjepa.data import dataset_info
from openjepa.engine.precision import resolve_device
from openjepa.config.load import load_config_overrides
from openjepa.engine.runs import is_run, load_run
from openjepa.eval.frozen import load_any
from openjepa.methods import JEPAMethod
from openjepa.report.collapse import collapse_banner
from openjepa.report.html import Section, esc, note, page
from openjepa.report.probes import probes_section
from openjepa.report.runfiles import RunFileError, probe_tables, read_json
from openjepa.report.samples import SplitFeatures, mask_examples, split_features
from openjepa.report.sections import (config_section, curves_section, embedding_section, masks_section, retrieval,
                                      retrieval_section)
from openjepa.report.world import world_section

__all__ = ["write_report"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# What building a section from the run's data may raise when that data is not available here
# (a folder or Fashion-MNIST files gone, a config that no longer validates): shown, not fatal.
DATA_ERRORS = (OSError, ValueError)


def _attempt(what: str, fn: Callable[[], T]) -> T | str:
    """``fn()``, or the reason it failed (a line for the page) when the data is unavailable."""
    try:
        return fn()
    except DATA_ERRORS as e:
        log.warning("report: no %s: %s: %s", what, type(e).__name__, e)
        return f"No {what}: {type(e).__name__}: {e}"


def _load(run_dir: Path) -> tuple[Config | None, JEPAMethod | None, str]:
    """``(config, method, where they came from)``: the newest checkpoint, else ``config.yaml`` (no model)."""
    try:
        cfg, method, _, step = load_run(run_dir)
        return cfg, method, f"checkpoint at step {step}"
    except FileNotFoundError as e:
        reason = str(e)
    try:
        return load_config(run_dir / "config.yaml"), None, f"config.yaml only ({reason})"
    except (ConfigError, FileNotFoundError) as e:
        return None, None, f"no checkpoint and no usable config.yaml ({e})"


def _is_model(path: Path) -> bool:
    """A model file, a Hugging Face folder or an ``openjepa convert`` folder: a loaded model, not a run."""
    if path.is_file():
        return True
    run_files = is_run(path) or (path / "config.yaml").is_file()
    hf = (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    return not run_files and (hf or (path / "encoder.safetensors").is_file())


def _header(run_dir: Path, source: str, tables: list[tuple[str, Any]], sims: torch.Tensor | None) -> str:
    """Run facts (``summary.json`` when the run wrote one) and the collapse banner (:func:`collapse_banner`)."""
    facts = [f"run: {run_dir}", f"model: {source}",
             f"report written {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}"]
    extra = ""
    try:
        summary = read_json(run_dir / "summary.json")
    except RunFileError as e:
        summary, extra = None, note(str(e))
    if isinstance(summary, dict):
        facts[2:2] = [f"{k}: {summary[k]}" for k in ("steps", "device", "precision") if k in summary]
    return f'<p class="meta">{esc(" | ".join(facts))}</p>' + extra + collapse_banner(summary, tables, sims)


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, device: str | None = None,
                 max_images: int = 1000, tsne: bool = True, progress: bool | None = None,
                 overrides: Sequence[str] = ()) -> Path:
    """Write the HTML report of ``run_dir`` to ``out`` (default ``run_dir/report.html``); returns its path.

    ``max_images`` caps the images encoded per split (the map uses the test split, retrieval
    searches the train split); ``device`` defaults to the run's setting; ``tsne=False`` keeps the
    map to PCA; ``progress`` (default: the run's ``train.progress``) shows progress bars with
    rate and ETA for the encoding and the t-SNE. Missing optional files (metrics, eval tables,
    summary, checkpoint, data) leave a note in their section.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise FileNotFoundError(f"no run directory at {run_dir}")
    if not _is_model(run_dir):  # a run directory (whatever it still holds: missing files leave notes)
        out = Path(out) if out is not None else run_dir / "report.html"
        cfg, method, source = _load(run_dir)
    else:  # a released or converted model: its encoder on the data the overrides name (data.*=...)
        cfg, method, _, _ = load_any(run_dir)
        out = Path(out) if out is not None else Path.cwd() / f"{run_dir.name}_report.html"
        source = f"{run_dir} (a loaded model, not a run: no curves or probe tables)"
    if cfg is not None and overrides:
        cfg = load_config_overrides(cfg, overrides)
    show = bool(cfg.train.progress if progress is None and cfg is not None else progress)
    world_model = cfg is not None and cfg.train.method == "acjepa"  # planning and the position probe, no images
    info: Any = "No config: " + source
    if cfg is not None and not world_model:
        info = _attempt("dataset", lambda: dataset_info(cfg.data))
    chance = 1.0 / info.num_classes if not isinstance(info, str) and info.num_classes > 0 else None
    tables = probe_tables(run_dir)
    sections: list[Section] = [curves_section(run_dir, chance)]
    sims = None
    if cfg is None:
        sections += [masks_section(info, "?"), embedding_section(info, (), tsne, 0),
                     retrieval_section(info, info, (), (), ())]
    elif world_model:
        sections.append(world_section(run_dir))
    else:
        sections.append(masks_section(_attempt("mask examples", lambda: mask_examples(cfg)), cfg.mask.sampler))
        embedded, sims = _embedding_sections(cfg, method, info, device, max_images, tsne, show, source)
        sections += embedded
    if not world_model:
        sections.append(probes_section(tables, chance))
    sections.append(config_section(run_dir, to_yaml(cfg) if cfg is not None else None))
    html = page(f"openjepa run report: {run_dir.resolve().name}", _header(run_dir, source, tables, sims), sections)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def _embedding_sections(cfg: Config, method: JEPAMethod | None, info: Any, device: str | None, max_images: int,
                        tsne: bool, progress: bool, source: str) -> tuple[list[Section], torch.Tensor | None]:
    """The embedding map and the retrieval grid (both need the model and the data; ``info`` is the
    dataset's :func:`~openjepa.data.dataset_info` or why it is missing), and the retrieval's cosine
    similarities (None when there is no grid)."""
    if method is None or isinstance(info, str):
        reason = f"No model to embed with: {source}." if method is None else info
        return [embedding_section(reason, (), tsne, cfg.seed), retrieval_section(reason, reason, (), (), ())], None
    dev = resolve_device(device or cfg.device)
    method = method.to(dev).eval()
    with torch.no_grad():
        test = _attempt("test embeddings", lambda: split_features(method, cfg, "test", dev, max_images, progress))
        train = _attempt("train embeddings", lambda: split_features(method, cfg, "train", dev, max_images, progress))
    both = isinstance(test, SplitFeatures) and isinstance(train, SplitFeatures)
    neighbours = retrieval(test, train) if both else None
    names, video = info.class_names, info.kind == "video"
    return ([embedding_section(test, names, tsne, cfg.seed, progress, video),
             retrieval_section(test, train, names, info.mean, info.std, neighbours, video)],
            None if neighbours is None else neighbours[0])
