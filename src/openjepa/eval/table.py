"""The probe table: linear / kNN / RankMe for each feature set, and a one-line verdict.

Rows are plain JSON-serialisable dicts (``name, dim, linear, knn, rankme, feature_std, best_lr,
best_wd, n_train, n_test, seconds``; accuracies are fractions in [0, 1]) so the CLI can save them
beside the run and the report can plot them. Baselines sit next to the model on purpose: a
probe number means little without raw pixels and a random-init encoder of the same shape beside it.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import Tensor

from openjepa.config.schema import EvalConfig
from openjepa.eval.diagnostics import feature_std, rankme
from openjepa.eval.knn import knn_accuracy
from openjepa.eval.linear import linear_probe

FeatureSplits = tuple[Tensor, Tensor, Tensor, Tensor]  # train_x (N, D), train_y (N,), test_x, test_y

_COLUMNS = ("features", "dim", "linear", "kNN", "RankMe")


def _cap(n: int, cap: int, seed: int) -> Tensor | None:
    """Seeded sorted subset of ``cap`` indices out of ``n`` (None: keep all)."""
    if cap <= 0 or cap >= n:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:cap].sort().values


def evaluate_features(
    named_features: Mapping[str, FeatureSplits],
    cfg: EvalConfig,
    seed: int,
    device: torch.device | str | None = None,
) -> list[dict]:
    """Linear probe, kNN and RankMe for every named feature set; one row per name, in order.

    ``cfg.max_train_samples`` / ``cfg.max_test_samples`` (> 0) cap each split with a seeded
    random subset (the same indices for every feature set of the same size). RankMe and
    feature_std are computed on the (capped) train features.
    """
    rows = []
    for name, (tr_x, tr_y, te_x, te_y) in named_features.items():
        t0 = time.perf_counter()
        if (i := _cap(tr_x.shape[0], cfg.max_train_samples, seed)) is not None:
            tr_x, tr_y = tr_x[i.to(tr_x.device)], tr_y[i.to(tr_y.device)]
        if (i := _cap(te_x.shape[0], cfg.max_test_samples, seed + 1)) is not None:
            te_x, te_y = te_x[i.to(te_x.device)], te_y[i.to(te_y.device)]
        if device is not None:
            tr_x, tr_y, te_x, te_y = (t.to(device) for t in (tr_x, tr_y, te_x, te_y))
        num_classes = int(max(tr_y.max().item(), te_y.max().item())) + 1
        probe = linear_probe(
            tr_x, tr_y, te_x, te_y, epochs=cfg.probe_epochs, batch_size=cfg.probe_batch_size,
            seed=seed, num_classes=num_classes,
        )
        knn = knn_accuracy(tr_x, tr_y, te_x, te_y, k=cfg.knn_k, temperature=cfg.knn_temperature,
                           num_classes=num_classes)
        rows.append({
            "name": name,
            "dim": int(tr_x.shape[1]),
            "linear": probe.accuracy,
            "knn": knn,
            "rankme": rankme(tr_x),
            "feature_std": feature_std(tr_x),
            "best_lr": probe.best_lr,
            "best_wd": probe.best_wd,
            "n_train": int(tr_x.shape[0]),
            "n_test": int(te_x.shape[0]),
            "seconds": round(time.perf_counter() - t0, 2),
        })
    return rows


def _short(name: str) -> str:
    """'I-JEPA (target encoder)' -> 'I-JEPA' for the verdict sentence."""
    return re.sub(r"\s*\(.*\)\s*$", "", name) or name


def _pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


@dataclass
class ProbeTable:
    """Rows from :func:`evaluate_features`; ``subject`` (default: the first row) is judged against ``reference``."""

    rows: list[dict] = field(default_factory=list)
    reference: str = "raw pixels"
    subject: str | None = None

    def _row(self, name: str) -> dict | None:
        return next((r for r in self.rows if r["name"] == name), None)

    def verdict(self) -> str | None:
        """'X beats raw pixels by +a.b points (linear) ...', 'X does NOT beat ...', or 'X is level with ...'.

        None when the subject or the reference row is missing. A linear difference smaller than
        twice its standard error (binomial, on ``n_test`` images per row) is called level: a
        +1 point gain on 2,000 test images is noise, not a win.
        """
        if not self.rows:
            return None
        subj = self._row(self.subject) if self.subject else self.rows[0]
        ref = self._row(self.reference)
        if subj is None or ref is None or subj is ref:
            return None
        lin = round(100 * (subj["linear"] - ref["linear"]), 1)
        knn = round(100 * (subj["knn"] - ref["knn"]), 1)
        who, base = _short(subj["name"]), self.reference
        se = _diff_se(subj, ref)
        if se is not None and abs(lin) < 2 * se:
            return (f"{who} is level with {base} (linear: {lin:+.1f} points, within 2 standard errors = "
                    f"{2 * se:.1f}; kNN: {knn:+.1f} points)")
        if lin > 0:
            return f"{who} beats {base} by {lin:+.1f} points (linear); kNN: {knn:+.1f} points"
        return f"{who} does NOT beat {base} (linear: {lin:+.1f} points; kNN: {knn:+.1f} points)"

    def format(self) -> str:
        """Fixed-width table ``features | dim | linear | kNN | RankMe`` plus the verdict line."""
        cells = [
            (r["name"], str(r["dim"]), _pct(r.get("linear")), _pct(r.get("knn")),
             "-" if r.get("rankme") is None else f"{r['rankme']:.1f}")
            for r in self.rows
        ]
        widths = [max(len(c[j]) for c in [_COLUMNS, *cells]) for j in range(len(_COLUMNS))]

        def line(c: tuple[str, ...]) -> str:
            return " | ".join([c[0].ljust(widths[0])] + [x.rjust(w) for x, w in zip(c[1:], widths[1:])])

        out = [line(_COLUMNS), "-+-".join("-" * w for w in widths), *(line(c) for c in cells)]
        if (v := self.verdict()) is not None:
            out += ["", v]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


def format_table(rows: list[dict], reference: str = "raw pixels", subject: str | None = None) -> str:
    """:meth:`ProbeTable.format` of ``rows``."""
    return ProbeTable(rows, reference, subject).format()


def _diff_se(a: dict, b: dict) -> float | None:
    """Standard error, in points, of the difference of two linear accuracies (independent binomials)."""
    na, nb = a.get("n_test"), b.get("n_test")
    if not na or not nb:
        return None
    pa, pb = a["linear"], b["linear"]
    return 100 * math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
