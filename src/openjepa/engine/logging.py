"""Metrics to JSONL and TensorBoard, and a progress bar with rate and ETA."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm


class MetricLogger:
    """Appends one JSON line per logged step to ``metrics.jsonl`` and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tb = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "time": time.time(), **{k: _scalar(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "time") and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.flush()
            self.tb.close()


def _scalar(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


def progress(total: int, initial: int, enabled: bool, desc: str = "train") -> tqdm:
    """A step progress bar (tqdm shows steps/s and ETA; the trainer adds loss and images/s)."""
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step", dynamic_ncols=True,
                smoothing=0.1)


def read_metrics(path: str | os.PathLike) -> tuple[list[dict], int]:
    """``(rows, bad)``: the JSON objects of a ``metrics.jsonl`` (as :class:`MetricLogger` writes it)
    that hold a ``step``, and the number of non-blank lines that are not such an object (e.g. the
    half-written last line of a run still training). A missing file gives ``([], 0)``."""
    path = Path(path)
    if not path.is_file():
        return [], 0
    rows, bad = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
        else:
            bad += 1
    return rows, bad
