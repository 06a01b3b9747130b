"""``openjepa sweep``: a grid of training runs, one table, and plots of probe accuracy against each setting.

An override with more than one comma-separated value at the top level is an axis of the grid:
``mask.target_scale=[0.1,0.15],[0.15,0.2]`` sweeps two ranges, ``model.encoder=vit_pico,vit_nano`` two
encoders, while ``eval.protocols=[linear,knn]`` (no comma outside the brackets) is one fixed setting. Every
point of the cartesian product is a normal run directory under ``--out``, named by its values, trained by
``openjepa train`` in a process of its own (``--jobs`` at once, the CPU threads shared between them, or one
GPU each with ``--devices``). Every point's config is checked before anything runs, so a bad key costs
nothing. The sweep is resumable: a finished point (its ``summary.json`` written) is kept, an interrupted one
resumes from its last checkpoint, so ``openjepa sweep`` with the same arguments continues where it stopped.

At the end ``sweep.json`` / ``sweep.csv`` / ``sweep.md`` hold one row per point: the swept values, the
method's probe accuracies with their binomial standard errors, RankMe, the baselines of the same run, the
training FLOPs per step (:func:`openjepa.engine.flops.train_step_flops`) and the wall time; ``sweep.png``
plots accuracy against every swept setting and against compute (FLOPs per step, wall time).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from openjepa.config.load import load_config
from openjepa.errors import ConfigError

PROTOCOLS = ("linear", "attentive", "knn")
POINT_FILE = "sweep_point.json"


def split_values(text: str) -> list[str]:
    """``text`` split at the commas outside brackets, braces and quotes: ``[0.1,0.2],[0.3,0.4]`` -> two values."""
    out, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        cur += ch
    out.append(cur)
    return [v.strip() for v in out]


def parse_grid(overrides: Sequence[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(fixed overrides, axes [(key, values)]) of ``overrides``; ConfigError for a malformed or repeated one."""
    fixed, axes = [], []
    for o in overrides:
        if "=" not in o:
            raise ConfigError(f"sweep: expected key=value or key=v1,v2,..., got {o!r}")
        key, value = o.split("=", 1)
        values = split_values(value)
        if any(v == "" for v in values):
            raise ConfigError(f"sweep: {o!r} has an empty value")
        if len(values) > 1:
            if len(set(values)) != len(values):
                raise ConfigError(f"sweep: {key} repeats a value: {value}")
            axes.append((key, values))
        else:
            fixed.append(o)  # a fixed key given twice: the later wins, as in openjepa train
    swept = [k for k, _ in axes]
    for key in swept:
        if swept.count(key) > 1:
            raise ConfigError(f"sweep: {key} is swept twice; give its values once, comma-separated")
    fixed = [o for o in fixed if o.split("=", 1)[0] not in swept]  # a swept key overrides a fixed one
    return fixed, axes


def point_name(point: dict[str, str]) -> str:
    """A run directory name for a point: ``key=value`` pairs joined by ``__``, brackets and spaces dropped
    (an empty value such as ``[]`` is ``none``)."""
    if not point:
        return "run"
    parts = [f"{k}={re.sub(r'[^A-Za-z0-9._+-]+', '-', v).strip('-') or 'none'}" for k, v in point.items()]
    return "__".join(parts)


@dataclass
class Point:
    """One run of the grid."""

    values: dict[str, str]
    run_dir: Path
    overrides: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return (self.run_dir / "summary.json").exists()

    @property
    def meta(self) -> dict[str, Any]:
        """What the sweep recorded of this point (``sweep_point.json``): wall time, exit code, FLOPs per step."""
        path = self.run_dir / POINT_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def save_meta(self, meta: dict[str, Any]) -> None:
        (self.run_dir / POINT_FILE).write_text(json.dumps(meta, indent=2))

    @property
    def started(self) -> bool:
        return any((self.run_dir / "checkpoints").glob("*.pt")) if (self.run_dir / "checkpoints").exists() else False


def plan_sweep(config: str | None, overrides: Sequence[str], out: str | Path) -> tuple[list[Point], list[str]]:
    """The grid's points (each config checked now: a bad key raises ConfigError before anything runs) and its axes."""
    from openjepa.engine.trainer import prepare

    fixed, axes = parse_grid(overrides)
    if any(k == "run_dir" for k, _ in axes) or any(o.startswith("run_dir=") for o in fixed):
        raise ConfigError("sweep: run_dir is set per point under --out; do not give it")
    out = Path(out)
    points = []
    for combo in itertools.product(*[vals for _, vals in axes]) if axes else [()]:
        values = {k: v for (k, _), v in zip(axes, combo)}
        run_dir = out / point_name(values)
        ov = [*fixed, *(f"{k}={v}" for k, v in values.items()), f"run_dir={run_dir}"]
        try:
            prepare(load_config(config, ov))
        except ConfigError as e:
            where = f" (point {point_name(values)})" if values else ""
            raise ConfigError(f"{e}{where}") from e
        points.append(Point(values, run_dir, ov))
    return points, [k for k, _ in axes]


def _run_point(config: str | None, point: Point, env: dict[str, str]) -> tuple[int, float]:
    """Train one point in a process of its own (resuming when it has checkpoints); (exit code, seconds)."""
    point.run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "openjepa", "train", *([config] if config else []), *point.overrides,
           "train.progress=false"] + (["--resume"] if point.started else [])
    t0 = time.perf_counter()
    with open(point.run_dir / "train.log", "a") as log:
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - t0
    meta = point.meta
    meta.update(values=point.values, overrides=point.overrides, returncode=rc,
                wall_s=float(meta.get("wall_s", 0.0)) + seconds)  # a resumed point adds its new time
    point.save_meta(meta)
    return rc, seconds


def _envs(jobs: int, devices: Sequence[str]) -> list[dict[str, str]]:
    """One environment per job slot: the CPU threads split evenly, or one device each (CUDA_VISIBLE_DEVICES)."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    envs = []
    for j in range(jobs):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        if devices:
            dev = devices[j % len(devices)]
            env["CUDA_VISIBLE_DEVICES"] = dev.split(":")[-1] if dev.startswith("cuda") else dev
        envs.append(env)
    return envs


def run_sweep(config: str | None, overrides: Sequence[str], out: str | Path, jobs: int = 1,
              devices: Sequence[str] = (), progress: bool = True) -> dict[str, Any]:
    """Plan, run the points not yet done (``jobs`` at once), collect; returns the sweep's table as a dict."""
    from openjepa.engine.logging import progress as progress_bar

    points, axes = plan_sweep(config, overrides, out)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [p for p in points if not p.done]
    print(f"sweep: {len(points)} point(s) over {', '.join(axes) or 'no axis'}; {len(points) - len(todo)} done, "
          f"{len(todo)} to run, {jobs} at a time -> {out}")
    failed: list[str] = []
    if todo:
        envs = _envs(jobs, devices)
        free = list(range(jobs))
        with progress_bar(len(todo), 0, progress, "sweep") as bar, ThreadPoolExecutor(jobs) as pool:
            pending = {}
            queue = list(todo)
            while queue or pending:
                while queue and free:
                    slot, p = free.pop(), queue.pop(0)
                    pending[pool.submit(_run_point, config, p, envs[slot])] = (p, slot)
                fut = next(as_completed(pending))
                p, slot = pending.pop(fut)
                free.append(slot)
                rc, _ = fut.result()
                if rc != 0:
                    failed.append(p.run_dir.name)
                    bar.write(f"sweep: {p.run_dir.name} failed (exit {rc}); see {p.run_dir / 'train.log'}")
                bar.update(1)
    table = collect(config, points, axes)
    write_outputs(table, out)
    if failed:
        table["failed"] = failed
    return table


def _row_metrics(rows: list[dict], prefix: str = "") -> dict[str, Any]:
    if not rows:
        return {}
    r = rows[0]
    out = {f"{prefix}{p}": r[p] for p in PROTOCOLS if isinstance(r.get(p), (int, float))}
    if "rankme" in r and not prefix:
        out["rankme"] = r["rankme"]
    if "n_test" in r and not prefix:
        out["n_test"] = r["n_test"]
    return out


def collect(config: str | None, points: list[Point], axes: list[str]) -> dict[str, Any]:
    """One row per point from its run directory: probe accuracies (method and baselines), FLOPs, wall time."""
    from openjepa.engine.flops import train_step_flops
    from openjepa.engine.trainer import prepare

    rows = []
    for p in points:
        row: dict[str, Any] = {"point": p.run_dir.name, **p.values, "done": p.done}
        if p.done:
            summary = json.loads((p.run_dir / "summary.json").read_text())
            ev = summary.get("eval") or []
            row.update(_row_metrics(ev))
            for base in ev[1:]:
                key = {"random-init encoder": "random_", "raw pixels": "pixels_"}.get(base.get("name", ""))
                if key:
                    row.update(_row_metrics([base], key))
            row["collapse_warning"] = bool(summary.get("collapse_warning"))
        meta = p.meta
        if "flops_per_step" not in meta:  # counted once per point (a real step on the CPU), then kept
            meta["flops_per_step"] = train_step_flops(prepare(load_config(config, p.overrides)))
            if p.run_dir.exists():
                p.save_meta(meta)
        row["flops_per_step"] = meta["flops_per_step"]
        if "wall_s" in meta:
            row["wall_s"] = meta["wall_s"]
        rows.append(row)
    return {"config": config or "quickstart", "axes": axes, "rows": rows}


def _se(p: float, n: int | None) -> float:
    return math.sqrt(p * (1 - p) / n) if n else float("nan")


def format_markdown(table: dict[str, Any]) -> str:
    """The table as Markdown: swept values, accuracy ± standard error per protocol, baselines, RankMe, compute."""
    rows, axes = table["rows"], table["axes"]
    protos = [p for p in PROTOCOLS if any(p in r for r in rows)]
    head = [*axes, *protos, *(f"random-init {p}" for p in protos if any(f"random_{p}" in r for r in rows)),
            *(f"raw pixels {p}" for p in protos if any(f"pixels_{p}" in r for r in rows)), "RankMe", "GFLOPs/step",
            "wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r.get(a, "")) for a in axes]
        for p in protos:
            cells.append(f"{100 * r[p]:.1f} ± {100 * _se(r[p], r.get('n_test')):.1f}%" if p in r else "-")
        for pre in ("random_", "pixels_"):
            for p in protos:
                if any(f"{pre}{p}" in x for x in rows):
                    cells.append(f"{100 * r[pre + p]:.1f}%" if pre + p in r else "-")
        cells.append(f"{r['rankme']:.1f}" if "rankme" in r else "-")
        cells.append(f"{r['flops_per_step'] / 1e9:.2f}")
        cells.append(f"{r['wall_s']:.0f}" if r.get("wall_s") else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("accuracy: top-1 ± binomial standard error sqrt(p(1-p)/n) on the n test items")
    return "\n".join(lines) + "\n"


def write_outputs(table: dict[str, Any], out: Path) -> None:
    """``sweep.json``, ``sweep.csv``, ``sweep.md`` and ``sweep.png`` in ``out``; the Markdown is also printed."""
    (out / "sweep.json").write_text(json.dumps(table, indent=2))
    keys = list(dict.fromkeys(k for r in table["rows"] for k in r))
    with open(out / "sweep.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(table["rows"])
    md = format_markdown(table)
    (out / "sweep.md").write_text(md)
    print(md, end="")
    plot_sweep(table, out / "sweep.png")
    print(f"sweep: wrote {out / 'sweep.md'}, sweep.csv, sweep.json and sweep.png")


def plot_sweep(table: dict[str, Any], path: Path) -> None:
    """Accuracy (every protocol, baselines dashed) against each swept setting, then against FLOPs/step and wall time."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in table["rows"] if r.get("done")]
    axes = table["axes"]
    protos = [p for p in PROTOCOLS if any(p in r for r in rows)]
    panels = [*axes, "flops_per_step", "wall_s"]
    fig = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    for i, what in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if what in axes:  # categorical: mean over the other axes' points at each value, every point as a dot
            values = list(dict.fromkeys(r[what] for r in rows))
            for p in protos:
                ys = [[100 * r[p] for r in rows if r[what] == v and p in r] for v in values]
                x = range(len(values))
                ax.plot(x, [sum(y) / len(y) if y else float("nan") for y in ys], marker="o", label=p)
                for xi, y in zip(x, ys):
                    ax.scatter([xi] * len(y), y, s=8, alpha=0.4)
                for pre, style in (("random_", ":"), ("pixels_", "--")):
                    b = [r[pre + p] for r in rows if pre + p in r]
                    if b:
                        ax.axhline(100 * sum(b) / len(b), linestyle=style, linewidth=1,
                                   label=f"{'random-init' if pre == 'random_' else 'raw pixels'} {p}")
            ax.set_xticks(range(len(values)), values, rotation=20, fontsize=8)
            ax.set_xlabel(what)
        else:
            xs = []
            for p in protos:
                pts = [(r[what], 100 * r[p]) for r in rows if r.get(what) and p in r]
                if pts:
                    ax.scatter(*zip(*pts), label=p)
                    xs += [x for x, _ in pts]
            if xs and max(xs) > 10 * min(xs):  # log only across orders of magnitude
                ax.set_xscale("log")
            ax.set_xlabel("training FLOPs per step" if what == "flops_per_step" else "wall time (s)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(alpha=0.3)
    if fig.axes[0].get_legend_handles_labels()[1]:
        fig.axes[0].legend(fontsize=7)
    fig.suptitle(f"openjepa sweep: {table['config']}")
    fig.savefig(path, dpi=110)
