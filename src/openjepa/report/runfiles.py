"""Reading a run directory's files for the report; every one of them may be missing.

``metrics.jsonl`` (one JSON object per logged step: ``step``, ``time`` and metrics; a row may hold
any subset of the metric keys), ``eval.json`` and ``eval_step*_*.json`` (probe tables:
``{"dataset": ..., "rows": [...]}``), ``summary.json`` and ``config.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from openjepa.engine import logging as engine_logging


class RunFileError(ValueError):
    """A run file exists but cannot be parsed (the report shows the message instead of the section)."""


def read_metrics(path: str | Path) -> tuple[list[dict], int]:
    """``(rows, bad)``: the JSON objects of ``metrics.jsonl`` and the number of lines that are not
    one (e.g. the half-written last line of a run still training). Missing file: ``([], 0)``."""
    return engine_logging.read_metrics(path)


def _number(v: Any) -> float | None:
    """A plottable value: numbers (NaN and inf kept, to be counted) but not bools, strings or None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def metric_series(rows: Sequence[dict], keys: Sequence[str]) -> dict[str, tuple[list[float], list[float]]]:
    """``{key: (steps, values)}`` for each key that at least one row holds as a number, in ``keys``
    order; each series is taken from the rows that have that key, sorted by step."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for key in keys:
        pts = sorted((float(r["step"]), v) for r in rows if (v := _number(r.get(key))) is not None)
        if pts:
            out[key] = ([s for s, _ in pts], [v for _, v in pts])
    return out


def read_json(path: str | Path) -> Any:
    """The parsed JSON file, ``None`` when it does not exist; :class:`RunFileError` when it is not JSON."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path.name} is not valid JSON: {e}") from e


def probe_tables(run_dir: str | Path) -> list[tuple[str, Any]]:
    """``[(file name, parsed table or RunFileError)]`` of ``eval.json`` and every ``eval_step*_*.json``, newest first.

    Newest by modification time (then by name), so the latest evaluation leads; every file is
    kept: evaluations of other steps, encoders or protocol sets sit side by side.
    """
    run_dir = Path(run_dir)
    files = [f for f in {run_dir / "eval.json", *run_dir.glob("eval_step*_*.json")} if f.is_file()]
    files.sort(key=lambda f: (-f.stat().st_mtime_ns, f.name))
    out: list[tuple[str, Any]] = []
    for f in files:
        try:
            data = read_json(f)
        except RunFileError as e:
            out.append((f.name, e))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            out.append((f.name, RunFileError(f"{f.name} has no 'rows' list")))
        else:
            out.append((f.name, data))
    return out
