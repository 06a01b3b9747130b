"""The probe table: one row per feature set, a column per protocol, RankMe, and a one-line verdict.

Rows are plain JSON-serialisable dicts so the CLI can save them beside the run and the report can
plot them: ``name, dim``, then per protocol run ``linear, best_lr, best_wd`` (linear probe),
``attentive, attentive_lr, attentive_heads, tokens`` (attentive probe), ``knn``, ``lowshot``
(``{"1-shot": {"mean", "std", "accuracies", "n_labelled"}, "1%": ...}``), then ``rankme,
feature_std, n_train, n_test, seconds``. Accuracies are fractions in [0, 1]. Baselines sit next to
the model on purpose: a probe number means little without raw pixels and a random-init encoder of
the same shape beside it (and, on video, an image encoder applied per frame and averaged); the
verdict lines say whether the model beats each of them by more than two standard errors
(:func:`standard_error`).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor

from openjepa.config.load import check_protocols
from openjepa.config.schema import EvalConfig
from openjepa.eval.attentive import attentive_probe
from openjepa.objectives.diagnostics import feature_std, rankme
from openjepa.eval.knn import knn_accuracy
from openjepa.eval.linear import linear_probe
from openjepa.eval.lowshot import lowshot_probe


class FeatureSplits(NamedTuple):
    """A feature set's train and test splits; a plain 4-tuple (no tokens) converts with ``FeatureSplits(*t)``."""

    train_x: Tensor  # (N, D) pooled features
    train_y: Tensor  # (N,) int64 labels
    test_x: Tensor
    test_y: Tensor
    train_tokens: Tensor | None = None  # (N, T, Dt) patch tokens, needed by the attentive probe only
    test_tokens: Tensor | None = None


ACC_COLUMNS = (("linear", "linear"), ("attentive", "attentive"), ("knn", "kNN"))  # (row key, header)
RANDOM_INIT = "random-init encoder"  # the baseline rows' names (see openjepa.eval.frozen)
RAW_PIXELS = "raw pixels"
FRAME_AVERAGED = "frame-averaged image encoder"  # video data with eval.frame_encoder


def standard_error(p: float | None, n: int | None) -> float | None:
    """Binomial standard error ``sqrt(p (1 - p) / n)`` of a top-1 accuracy ``p`` measured on ``n`` test images.

    The sampling error of the test set alone (each image is an independent Bernoulli trial); a
    fraction like ``p``. None when ``p`` or ``n`` is missing (or ``n`` is 0).
    """
    if p is None or not n or (isinstance(p, float) and math.isnan(p)):
        return None
    return math.sqrt(p * (1 - p) / n)


def _cap(n: int, cap: int, seed: int) -> Tensor | None:
    """Seeded sorted subset of ``cap`` indices out of ``n`` (None: keep all)."""
    if cap <= 0 or cap >= n:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:cap].sort().values


def _take(t: Tensor | None, i: Tensor | None) -> Tensor | None:
    return t if t is None or i is None else t[i.to(t.device)]


def _capped(fs: FeatureSplits, cfg: EvalConfig, seed: int) -> FeatureSplits:
    """Apply ``cfg.max_train_samples`` / ``max_test_samples`` to features, labels and tokens alike."""
    i = _cap(fs.train_x.shape[0], cfg.max_train_samples, seed)
    j = _cap(fs.test_x.shape[0], cfg.max_test_samples, seed + 1)
    return FeatureSplits(_take(fs.train_x, i), _take(fs.train_y, i), _take(fs.test_x, j), _take(fs.test_y, j),
                         _take(fs.train_tokens, i), _take(fs.test_tokens, j))


def _probe_row(fs: FeatureSplits, protocols: list[str], cfg: EvalConfig, seed: int, num_classes: int,
               device: torch.device | str | None, name: str, progress: bool = False) -> dict:
    """The protocol columns of one row (see the module docstring for the keys); ``progress``: a bar per probe."""
    tr_x, tr_y, te_x, te_y = (t.to(device) if device is not None else t for t in fs[:4])
    row: dict = {}
    if "linear" in protocols:
        probe = linear_probe(tr_x, tr_y, te_x, te_y, epochs=cfg.probe_epochs, batch_size=cfg.probe_batch_size,
                             seed=seed, num_classes=num_classes, progress=progress, desc=f"linear probe: {name}")
        row.update(linear=probe.accuracy, best_lr=probe.best_lr, best_wd=probe.best_wd)
    if "attentive" in protocols:
        if fs.train_tokens is None or fs.test_tokens is None:
            print(f"attentive probe skipped for {name!r}: no patch tokens")
            row.update(attentive=None)
        else:
            att = attentive_probe(
                fs.train_tokens, fs.train_y, fs.test_tokens, fs.test_y, epochs=cfg.attentive_epochs,
                batch_size=cfg.attentive_batch_size, lrs=cfg.attentive_lrs, wd=cfg.attentive_wd,
                num_heads=cfg.attentive_heads, num_queries=cfg.attentive_queries, seed=seed,
                device=device if device is not None else tr_x.device, num_classes=num_classes, progress=progress,
                desc=f"attentive probe: {name}")
            row.update(attentive=att.accuracy, attentive_lr=att.best_lr, attentive_heads=att.num_heads,
                       tokens=list(fs.train_tokens.shape[1:]))
    if "knn" in protocols:
        row["knn"] = knn_accuracy(tr_x, tr_y, te_x, te_y, k=cfg.knn_k, temperature=cfg.knn_temperature,
                                  num_classes=num_classes)
    if "lowshot" in protocols:
        res = lowshot_probe(tr_x, tr_y, te_x, te_y, shots=cfg.lowshot_shots, fractions=cfg.lowshot_fractions,
                            seeds=cfg.lowshot_seeds, seed=seed, lr=cfg.lowshot_lr, wd=cfg.lowshot_wd,
                            epochs=cfg.probe_epochs, batch_size=cfg.probe_batch_size, num_classes=num_classes,
                            progress=progress, desc=f"low-shot probes: {name}")
        row["lowshot"] = {r.name: {k: v for k, v in r.to_dict().items() if k != "name"} for r in res}
    return row


def evaluate_features(
    named_features: Mapping[str, Sequence[Tensor | None]],
    cfg: EvalConfig,
    seed: int,
    device: torch.device | str | None = None,
    protocols: Sequence[str] | None = None,
    progress: bool = False,
) -> list[dict]:
    """Run ``protocols`` (default ``cfg.protocols``) and RankMe on every named feature set; one row each.

    Each value is a :class:`FeatureSplits` or a plain ``(train_x, train_y, test_x, test_y)``
    tuple; the attentive probe needs the tokens and is skipped, with a printed note, for a set
    without them. ``cfg.max_train_samples`` / ``cfg.max_test_samples`` (> 0) cap each split with a
    seeded random subset (the same indices for every feature set of the same size). RankMe and
    feature_std are computed on the (capped) train features. ``progress`` shows a bar (rate and
    ETA) for each probe's training.
    """
    protocols = check_protocols(list(cfg.protocols if protocols is None else protocols), "protocols")
    rows = []
    for name, splits in named_features.items():
        t0 = time.perf_counter()
        fs = _capped(FeatureSplits(*splits), cfg, seed)
        num_classes = int(max(fs.train_y.max().item(), fs.test_y.max().item())) + 1
        row = {"name": name, "dim": int(fs.train_x.shape[1])}
        row.update(_probe_row(fs, protocols, cfg, seed, num_classes, device, name, progress))
        tr_x = fs.train_x.to(device) if device is not None else fs.train_x
        row.update(rankme=rankme(tr_x), feature_std=feature_std(tr_x), n_train=int(fs.train_x.shape[0]),
                   n_test=int(fs.test_x.shape[0]), seconds=round(time.perf_counter() - t0, 2))
        rows.append(row)
    return rows


def _short(name: str) -> str:
    """'I-JEPA (target encoder)' -> 'I-JEPA' for the verdict sentence."""
    return re.sub(r"\s*\(.*\)\s*$", "", name) or name


def _acc(row: dict, key: str) -> float | None:
    """``row[key]`` when it is a number (not missing, None or nan)."""
    v = row.get(key)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _acc_cell(row: dict, key: str) -> str:
    """An accuracy cell: 'p ± s.e.' in percent (:func:`standard_error` on ``n_test``), or 'p%' without ``n_test``."""
    p = _acc(row, key)
    se = standard_error(p, row.get("n_test"))
    return _pct(p) if se is None else f"{100 * p:.1f} ± {100 * se:.1f}%"


def _mean_std(v: dict | None) -> str:
    """A low-shot cell: 'mean ± std' in percent."""
    return "-" if not v else f"{100 * v['mean']:.1f} ± {100 * v['std']:.1f}%"


@dataclass
class ProbeTable:
    """Rows from :func:`evaluate_features`; ``subject`` (default: the first row) is judged against the baselines.

    ``reference`` is the baseline of :meth:`verdict`; :meth:`verdicts` judges the subject against
    the random-init encoder, the frame-averaged image encoder and ``reference`` (raw pixels),
    each when its row is present. ``judge_on`` (e.g. ``attentive`` on video, the V-JEPA
    protocol) is the accuracy judged when both rows have it, before the linear, attentive, kNN order.
    """

    rows: list[dict] = field(default_factory=list)
    reference: str = RAW_PIXELS
    subject: str | None = None
    judge_on: str | None = None

    def _row(self, name: str) -> dict | None:
        return next((r for r in self.rows if r["name"] == name), None)

    def verdict(self, reference: str | None = None) -> str | None:
        """'X beats <reference> by +a.b points (linear) ...', 'X does NOT beat ...', or 'X is level with ...'.

        ``reference`` defaults to ``self.reference``. Judged on ``judge_on`` when both rows have
        it, else on the first accuracy both rows have, in the order linear, attentive, kNN (kNN
        is quoted beside it). None when the
        subject or the reference row is missing. A difference smaller than twice its standard
        error (binomial, on ``n_test`` images per row) is called level: a +1 point gain on 2,000
        test images is noise, not a win.
        """
        if not self.rows:
            return None
        base = reference or self.reference
        subj = self._row(self.subject) if self.subject else self.rows[0]
        ref = self._row(base)
        if subj is None or ref is None or subj is ref:
            return None
        both = [k for k, _ in ACC_COLUMNS if _acc(subj, k) is not None and _acc(ref, k) is not None]
        if self.judge_on in both:
            both.insert(0, both.pop(both.index(self.judge_on)))
        if not both:
            return None
        key, label = both[0], dict(ACC_COLUMNS)[both[0]]
        diff = round(100 * (subj[key] - ref[key]), 1)
        tail = ""
        if key != "knn" and "knn" in both:
            tail = f"; kNN: {round(100 * (subj['knn'] - ref['knn']), 1):+.1f} points"
        who = _short(subj["name"])
        se = _diff_se(subj, ref, key)
        if se is not None and abs(diff) < 2 * se:
            return (f"{who} is level with {base} ({label}: {diff:+.1f} points, within 2 standard errors = "
                    f"{2 * se:.1f}{tail})")
        if diff > 0:
            return f"{who} beats {base} by {diff:+.1f} points ({label}){tail}"
        return f"{who} does NOT beat {base} ({label}: {diff:+.1f} points{tail})"

    def verdicts(self) -> list[str]:
        """:meth:`verdict` against the random-init encoder, the frame-averaged image encoder, then ``reference``:
        one line each present."""
        refs = dict.fromkeys((RANDOM_INIT, FRAME_AVERAGED, self.reference))
        return [v for v in (self.verdict(r) for r in refs) if v is not None]

    def columns(self) -> list[tuple[str, Callable[[dict], str]]]:
        """(header, cell formatter) pairs: features, dim, one per protocol present in the rows, RankMe.

        Accuracy cells are 'top-1 ± standard error' (see :func:`standard_error`), low-shot cells
        'mean ± std' over label subsets; :meth:`notes` says which is which.
        """
        cols: list[tuple[str, Callable[[dict], str]]] = [("features", lambda r: r["name"]),
                                                         ("dim", lambda r: str(r["dim"]))]
        cols += [(head, lambda r, k=key: _acc_cell(r, k)) for key, head in ACC_COLUMNS
                 if any(key in r for r in self.rows)]
        settings = dict.fromkeys(n for r in self.rows for n in (r.get("lowshot") or {}))
        cols += [(n, lambda r, n=n: _mean_std((r.get("lowshot") or {}).get(n))) for n in settings]
        cols.append(("RankMe", lambda r: "-" if r.get("rankme") is None else f"{r['rankme']:.1f}"))
        return cols

    def notes(self) -> list[str]:
        """What the '±' of the accuracy and low-shot columns mean, for the rows present."""
        out = []
        n_test = sorted({r["n_test"] for r in self.rows if r.get("n_test") and any(_acc(r, k) is not None
                                                                                  for k, _ in ACC_COLUMNS)})
        if n_test:
            heads = "/".join(h for k, h in ACC_COLUMNS if any(_acc(r, k) is not None for r in self.rows))
            out.append(f"{heads}: top-1 ± binomial standard error sqrt(p(1-p)/n) on n = "
                       f"{'/'.join(map(str, n_test))} test images")
        seeds = {len(v.get("accuracies", [])) for r in self.rows for v in (r.get("lowshot") or {}).values()}
        if seeds:
            n = "/".join(str(k) for k in sorted(seeds))
            out.append(f"low-shot: linear probe on k images per class (k-shot) or a fraction of the labels; "
                       f"mean ± std over {n} label subsets")
        return out

    def format(self) -> str:
        """Fixed-width table ``features | dim | <protocols> | RankMe`` plus notes and the verdict lines.

        Protocol columns: ``linear``, ``attentive``, ``kNN`` (top-1 ± standard error) and one per
        low-shot setting (``1-shot``, ``1%``, ...: ``mean ± std`` top-1 over label subsets), each
        only when a row has it.
        """
        cols = self.columns()
        header = tuple(h for h, _ in cols)
        cells = [tuple(f(r) for _, f in cols) for r in self.rows]
        widths = [max(len(c[j]) for c in [header, *cells]) for j in range(len(cols))]

        def line(c: tuple[str, ...]) -> str:
            return " | ".join([c[0].ljust(widths[0])] + [x.rjust(w) for x, w in zip(c[1:], widths[1:])])

        out = [line(header), "-+-".join("-" * w for w in widths), *(line(c) for c in cells), *self.notes()]
        if verdicts := self.verdicts():
            out += ["", *verdicts]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


def format_table(rows: list[dict], reference: str = RAW_PIXELS, subject: str | None = None,
                 judge_on: str | None = None) -> str:
    """:meth:`ProbeTable.format` of ``rows``."""
    return ProbeTable(rows, reference, subject, judge_on).format()


def _diff_se(a: dict, b: dict, key: str = "linear") -> float | None:
    """Standard error, in points, of the difference of two accuracies ``key`` (independent binomials)."""
    sa, sb = standard_error(_acc(a, key), a.get("n_test")), standard_error(_acc(b, key), b.get("n_test"))
    return None if sa is None or sb is None else 100 * math.sqrt(sa**2 + sb**2)
