"""The report's probe results: every eval table of the run (newest first), formatted as the printed table.

Each ``eval.json`` / ``eval_step*_*.json`` becomes: its step, encoder and protocols; the table of
:class:`openjepa.eval.table.ProbeTable` (accuracies as top-1 ± binomial standard error, low-shot
settings as mean ± std over label subsets, RankMe) with the feature statistics beside it; the
verdict lines (does the model beat the random-init encoder and raw pixels by more than two
standard errors?); and a bar chart of the accuracies with the chance level.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from openjepa.eval.table import ACC_COLUMNS, ProbeTable, standard_error
from openjepa.report import plots
from openjepa.report.html import Section, esc, image, note, text_table
from openjepa.report.runfiles import RunFileError


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) else format(v, fmt)


def _settings(r: dict) -> str:
    """The hyper-parameters the probes selected, e.g. 'linear lr 0.001 wd 0; attentive lr 0.003, 4 heads'."""
    parts = []
    if "best_lr" in r:
        parts.append(f"linear lr {_num(r.get('best_lr'), 'g')} wd {_num(r.get('best_wd'), 'g')}")
    if r.get("attentive_lr") is not None:
        parts.append(f"attentive lr {_num(r['attentive_lr'], 'g')}, {_num(r.get('attentive_heads'), 'd')} heads")
    return "; ".join(parts)


def table_columns(pt: ProbeTable) -> list[tuple[str, Callable[[dict], str]]]:
    """The printed table's columns (:meth:`ProbeTable.columns`) and the feature statistics and probe settings."""
    cols = pt.columns()
    cols += [("feature std", lambda r: _num(r.get("feature_std"), ".3g")),
             ("train", lambda r: _num(r.get("n_train"), "d")), ("test", lambda r: _num(r.get("n_test"), "d"))]
    if any(_settings(r) for r in pt.rows):
        cols.append(("probe settings", _settings))
    return cols


def bar_values(rows: Sequence[dict]) -> tuple[dict[str, list[float | None]], dict[str, list[float | None]]]:
    """``(accuracies, error bars)`` per column for :func:`openjepa.report.plots.accuracy_bars`.

    Single accuracies get two standard errors (:func:`openjepa.eval.table.standard_error`) as
    their bar, low-shot settings the std over label subsets.
    """
    acc: dict[str, list[float | None]] = {}
    err: dict[str, list[float | None]] = {}
    for key, head in ACC_COLUMNS:
        vals = [r.get(key) if isinstance(r.get(key), (int, float)) else None for r in rows]
        if any(v is not None for v in vals):
            acc[head] = vals
            se = [standard_error(v, r.get("n_test")) for v, r in zip(vals, rows)]
            err[head] = [None if s is None else 2 * s for s in se]
    for name in dict.fromkeys(n for r in rows for n in (r.get("lowshot") or {})):
        cells = [(r.get("lowshot") or {}).get(name) or {} for r in rows]
        acc[name] = [c.get("mean") for c in cells]
        err[name] = [c.get("std") for c in cells]
    return acc, err


def _describe(name: str, data: dict) -> str:
    """'step 300 · target encoder · protocols: attentive, knn · dataset shapes' for a table's header line."""
    bits = []
    if data.get("step") is not None:
        bits.append(f"step {data['step']}")
    if data.get("encoder"):
        bits.append(f"{data['encoder']} encoder")
    if data.get("protocols"):
        bits.append("protocols: " + ", ".join(map(str, data["protocols"])))
    bits.append(f"dataset: {data.get('dataset', '?')}")
    where = "written at the end of training" if name == "eval.json" else "written by openjepa eval"
    return f'<p class="meta">{esc(" · ".join(bits))} ({where}); accuracies on the test split</p>'


def table_html(name: str, data: dict, chance: float | None) -> str:
    """One eval file: its header line, table, notes, verdict lines and bar chart."""
    rows = [r for r in data["rows"] if isinstance(r, dict) and "name" in r and "dim" in r]
    if not rows:
        return note(f"{name} holds no rows.")
    pt = ProbeTable(rows, judge_on="attentive" if "clips" in data else None)  # video: the V-JEPA protocol decides
    cols = table_columns(pt)
    html = _describe(name, data) + text_table([h for h, _ in cols], [[f(r) for _, f in cols] for r in rows])
    html += "".join(f'<p class="meta">{esc(n)}</p>' for n in pt.notes())
    verdicts = pt.verdicts()
    if verdicts:
        html += "".join(f'<p class="verdict">{esc(v)}</p>' for v in verdicts)
    else:
        html += note("No verdict: this table has no baseline rows (random-init encoder, raw pixels) to compare "
                     "with (eval.baselines=false).")
    acc, err = bar_values(rows)
    if acc:
        png = plots.accuracy_bars([r["name"] for r in rows], acc, err, chance)
        html += image(png, f"probe accuracies ({name})")
        html += note("Bars: test top-1; error bars: 2 standard errors (linear, attentive, kNN) or ± std over "
                     "label subsets (low-shot)" + ("; dashed: chance (1 / number of classes)." if chance else "."))
    return html


def probes_section(tables: Sequence[tuple[str, Any]], chance: float | None = None) -> Section:
    """Every probe table of the run (``(file name, data or RunFileError)``, newest first) side by side."""
    title = "Probe results"
    if not tables:
        return Section("probes", title, note("No eval.json: the run was not evaluated (or its data is unlabelled)."))
    body = ""
    for name, data in tables:
        body += f"<h3>{esc(name)}</h3>"
        body += note(str(data)) if isinstance(data, RunFileError) else table_html(name, data, chance)
    return Section("probes", title, body)
