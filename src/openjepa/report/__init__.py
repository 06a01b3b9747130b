"""The run report: one self-contained HTML page that shows what a run did and learned.

``write_report(run_dir)`` writes ``run_dir/report.html``: training curves (``metrics.jsonl``),
mask examples (the run's sampler over its data), a 2-D map of test embeddings, nearest-neighbour
retrieval, the probe tables (``eval.json``, ``eval_step*_*.json``), the config, and
``summary.json``'s collapse warning at the top. Every input but the directory itself is optional:
a section that cannot be built says why. Command line: ``openjepa report RUN_DIR``.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from openjepa.config import ConfigError, load_config, to_yaml
from openjepa.config.schema import Config
from openjepa.data import dataset_info
from openjepa.engine.precision import resolve_device
from openjepa.engine.runs import load_run
from openjepa.methods import JEPAMethod
from openjepa.report.html import Section, alert, esc, note, page
from openjepa.report.runfiles import RunFileError, read_json
from openjepa.report.samples import mask_examples, split_features
from openjepa.report.world import world_section
from openjepa.report.sections import (config_section, curves_section, embedding_section, masks_section,
                                      probes_section, retrieval_section)

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


def _header(run_dir: Path, source: str) -> str:
    """Run facts and the collapse warning of ``summary.json`` (when the run wrote one)."""
    facts = [f"run: {run_dir}", f"model: {source}",
             f"report written {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}"]
    html = ""
    try:
        summary = read_json(run_dir / "summary.json")
    except RunFileError as e:
        return f'<p class="meta">{esc(" | ".join(facts))}</p>' + note(str(e))
    if isinstance(summary, dict):
        facts[2:2] = [f"{k}: {summary[k]}" for k in ("steps", "device", "precision") if k in summary]
        if "collapse_warning" in summary:
            warning = summary["collapse_warning"]
            html = alert(f"Collapse warning: {warning}", bad=True) if warning else alert(
                "No collapse warning (summary.json).", bad=False)
    return f'<p class="meta">{esc(" | ".join(facts))}</p>' + html


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, device: str | None = None,
                 max_images: int = 1000, tsne: bool = True, progress: bool = False) -> Path:
    """Write the HTML report of ``run_dir`` to ``out`` (default ``run_dir/report.html``); returns its path.

    ``max_images`` caps the images encoded per split (the map uses the test split, retrieval
    searches the train split); ``device`` defaults to the run's setting; ``tsne=False`` keeps the
    map to PCA. Missing optional files (metrics, eval tables, summary, checkpoint, data) leave a
    note in their section.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run directory at {run_dir}")
    out = Path(out) if out is not None else run_dir / "report.html"
    cfg, method, source = _load(run_dir)
    sections: list[Section] = [curves_section(run_dir)]
    world_model = cfg is not None and cfg.train.method == "acjepa"  # planning and the position probe, no images
    if cfg is None:
        missing = "No config: " + source
        sections += [masks_section(missing, "?"), embedding_section(missing, (), tsne, 0),
                     retrieval_section(missing, missing, (), (), ())]
    elif world_model:
        sections.append(world_section(run_dir))
    else:
        sections.append(masks_section(_attempt("mask examples", lambda: mask_examples(cfg)), cfg.mask.sampler))
        sections += _embedding_sections(cfg, method, device, max_images, tsne, progress, source)
    if not world_model:
        sections.append(probes_section(run_dir))
    sections.append(config_section(run_dir, to_yaml(cfg) if cfg is not None else None))
    html = page(f"openjepa run report: {run_dir.resolve().name}", _header(run_dir, source), sections)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def _embedding_sections(cfg: Config, method: JEPAMethod | None, device: str | None, max_images: int, tsne: bool,
                        progress: bool, source: str) -> list[Section]:
    """The embedding map and the retrieval grid (both need the model and the data)."""
    if method is None:
        reason = f"No model to embed with: {source}."
        return [embedding_section(reason, (), tsne, cfg.seed), retrieval_section(reason, reason, (), (), ())]
    dev = resolve_device(device or cfg.device)
    method = method.to(dev).eval()
    info: Any = _attempt("dataset", lambda: dataset_info(cfg.data))
    if isinstance(info, str):
        return [embedding_section(info, (), tsne, cfg.seed), retrieval_section(info, info, (), (), ())]
    with torch.no_grad():
        test = _attempt("test embeddings", lambda: split_features(method, cfg, "test", dev, max_images, progress))
        train = _attempt("train embeddings", lambda: split_features(method, cfg, "train", dev, max_images, progress))
    names = info.class_names
    return [embedding_section(test, names, tsne, cfg.seed),
            retrieval_section(test, train, names, info.mean, info.std)]
