"""The report's collapse banner: red when any evidence says the features collapsed, green only when none does.

Three independent pieces of evidence, each checked when the run has it:

* the training monitor's warning (``summary.json``'s ``collapse_warning``);
* RankMe (Garrido et al. 2023, arXiv 2210.02885: the exponential of the entropy of the normalised
  singular values) of the trained encoder at or below that of the same architecture at random
  init, in the newest eval table holding both rows: training has not added any dimension;
* the nearest-neighbour cosine similarities the report computes all at or above
  :data:`COSINE_COLLAPSED`: every test image maps to (almost) the same direction.

"No collapse detected" is only said when the monitor ran and raised no warning and neither
other check holds; without the monitor's result and without evidence the banner is left out.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor

from openjepa.eval.table import RANDOM_INIT, RAW_PIXELS
from openjepa.report.html import alert

COSINE_COLLAPSED = 0.999  # all neighbour similarities at or above this: the features have collapsed


def _rankme(row: dict | None) -> float | None:
    v = None if row is None else row.get("rankme")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def rankme_check(tables: Sequence[tuple[str, Any]]) -> tuple[bool, str] | None:
    """``(collapsed, sentence)`` from the newest table with the trained encoder's and the random-init
    encoder's RankMe (``tables``: newest first, as :func:`openjepa.report.runfiles.probe_tables`); None
    when no table has both."""
    for name, data in tables:
        rows = [r for r in (data.get("rows", []) if isinstance(data, dict) else []) if isinstance(r, dict)]
        trained = next((r for r in rows if r.get("name") not in (RANDOM_INIT, RAW_PIXELS)), None)
        rand = next((r for r in rows if r.get("name") == RANDOM_INIT), None)
        a, b = _rankme(trained), _rankme(rand)
        if a is None or b is None:
            continue
        if a <= b:
            return True, (f"RankMe of the trained encoder ({a:.1f}) is at or below the random-init encoder's "
                          f"({b:.1f}) in {name}")
        return False, f"RankMe {a:.1f} above the random-init encoder's {b:.1f} ({name})"
    return None


def neighbour_check(sims: Tensor | None) -> tuple[bool, str] | None:
    """``(collapsed, sentence)`` from the retrieval grid's cosine similarities (Q, k); None without them."""
    if sims is None or sims.numel() == 0:
        return None
    low = float(sims.min())
    if low >= COSINE_COLLAPSED:
        return True, (f"every nearest-neighbour cosine similarity is at least {COSINE_COLLAPSED} (lowest {low:.4f}): "
                      "the images map to (almost) the same feature")
    return False, f"nearest-neighbour cosine similarities down to {low:.3f}"


def collapse_banner(summary: Any, tables: Sequence[tuple[str, Any]], sims: Tensor | None) -> str:
    """The banner's HTML (empty when there is neither evidence nor a monitor result); see the module docstring."""
    checks = [c for c in (rankme_check(tables), neighbour_check(sims)) if c is not None]
    evidence = [text for collapsed, text in checks if collapsed]
    monitored = isinstance(summary, dict) and "collapse_warning" in summary
    warning = summary.get("collapse_warning") if monitored else None
    if evidence:
        extra = f" The training monitor also warned: {warning}" if warning else ""
        return alert("Looks collapsed: " + "; ".join(evidence) + "." + extra, bad=True)
    if warning:
        return alert(f"Collapse warning: {warning}", bad=True)
    if not monitored:
        return ""
    passed = ["the training monitor raised no warning", *(text for _, text in checks)]
    return alert("No collapse detected: " + "; ".join(passed) + ".", bad=False)
