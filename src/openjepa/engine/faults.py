"""Keeping a run going through bad steps and bad files, and saying so.

- :class:`SpikeGuard` (``train.spike_factor``, off by default): a step whose loss exceeds a multiple
  of the recent mean is skipped (no optimizer step, no EMA update) and reported. Its state is a
  few numbers saved in every checkpoint, so a resumed run skips exactly the steps an uninterrupted
  one would.
- Unreadable images (``data.on_error=skip``): :func:`track_skipped_images` has the dataset append
  every file it skips to ``run_dir/skipped_images.txt`` (also from DataLoader workers, which do not
  share memory with the trainer) and :func:`report_skipped_images` prints their count and paths.

A non-finite loss is not a spike: the trainer stops on it (``engine/trainer.py``, ``optimise``).
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

SKIPPED_IMAGES = "skipped_images.txt"  # in the run directory: path<TAB>reason per unreadable image
MIN_HISTORY = 5  # taken steps the guard waits for before it judges a loss (fewer when the window is smaller)


class SpikeGuard:
    """Skip a step whose loss exceeds ``factor`` × the mean loss of the last ``window`` taken steps.

    ``factor`` 0 turns the guard off (:meth:`allows` is then always True and costs nothing). Only
    taken steps enter the window, so a spike does not raise the bar for the next one; the guard
    judges once the window holds ``min(MIN_HISTORY, window)`` losses, and never when the recent mean
    is not positive. If ``window`` steps in a row are skipped, the loss has shifted rather than
    spiked and :meth:`allows` raises ``FloatingPointError`` instead of skipping forever.

    Under ``torch.distributed`` the loss is averaged over the ranks first, so every rank takes the
    same decision (a rank that skipped alone would leave the others waiting in the gradient
    all-reduce). :meth:`state_dict` is plain floats and ints, saved in the checkpoint.
    """

    def __init__(self, factor: float = 0.0, window: int = 50) -> None:
        if factor != 0 and factor <= 1:
            raise ValueError(f"spike factor must be 0 (off) or greater than 1, got {factor}")
        if window < 1:
            raise ValueError(f"spike window must be at least 1, got {window}")
        self.factor, self.window = float(factor), int(window)
        self.losses: deque[float] = deque(maxlen=self.window)
        self.skipped = 0  # steps skipped so far in the run
        self.consecutive = 0  # steps skipped since the last taken one

    @property
    def enabled(self) -> bool:
        """True when the guard judges steps (``factor`` > 0)."""
        return self.factor > 0

    def allows(self, loss: torch.Tensor | float, step: int, write: Callable[[str], Any] = print) -> bool:
        """True when step ``step`` (with this ``loss``) may update the weights; False after writing
        ``skipped step S: loss X > F × recent mean M`` with ``write`` (rank 0 only)."""
        if not self.enabled:
            return True
        value = _mean_over_ranks(loss)
        if not math.isfinite(value):
            return True  # non-finite: not judged here, the trainer stops on it with the step and the checkpoints
        mean = sum(self.losses) / len(self.losses) if self.losses else 0.0
        if len(self.losses) < min(MIN_HISTORY, self.window) or mean <= 0 or value <= self.factor * mean:
            self.losses.append(value)
            self.consecutive = 0
            return True
        self.skipped += 1
        self.consecutive += 1
        if self.consecutive >= self.window:
            raise FloatingPointError(
                f"the loss exceeded {self.factor:g} × the recent mean for {self.consecutive} steps in a row "
                f"(step {step}: loss {value:.4g}, recent mean {mean:.4g}): a shift, not a spike; lower optim.lr or "
                f"raise train.spike_factor (0 turns the guard off), then resume with --resume")
        if _is_main():
            write(f"skipped step {step}: loss {value:.4g} > {self.factor:g} × recent mean {mean:.4g}")
        return False

    def state_dict(self) -> dict[str, Any]:
        """The window and counters (plain Python numbers, safe for ``torch.load(weights_only=True)``)."""
        return {"losses": list(self.losses), "skipped": self.skipped, "consecutive": self.consecutive}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict`; ``None`` (a checkpoint from before the guard) starts afresh."""
        if state is None:
            return
        self.losses = deque((float(v) for v in state["losses"]), maxlen=self.window)
        self.skipped, self.consecutive = int(state["skipped"]), int(state["consecutive"])


def _is_main() -> bool:
    """Rank 0 under torch.distributed (the one that prints), or the only process."""
    return not dist.is_initialized() or dist.get_rank() == 0


def _mean_over_ranks(loss: torch.Tensor | float) -> float:
    if not isinstance(loss, torch.Tensor):
        return float(loss)
    if dist.is_initialized() and dist.get_world_size() > 1:
        total = loss.detach().float().reshape(1).clone()
        dist.all_reduce(total)
        return total.item() / dist.get_world_size()
    return loss.detach().float().item()


def track_skipped_images(dataset: Any, run_dir: str | Path, fresh: bool) -> Path | None:
    """Have ``dataset`` append each unreadable file it skips to ``run_dir/skipped_images.txt``.

    Works for datasets with a ``skip_log`` attribute (:class:`~openjepa.data.folder.FolderDataset`);
    returns the file, or None for other datasets. ``fresh`` (a new run, not a resumed one) removes a
    list left by an earlier run in the same directory.
    """
    if not hasattr(dataset, "skip_log"):
        return None
    path = Path(run_dir) / SKIPPED_IMAGES
    if fresh and _is_main():
        path.unlink(missing_ok=True)
    dataset.skip_log = path
    return path


def report_skipped_images(run_dir: str | Path, write: Callable[[str], Any] = print,
                          show: int = 10) -> list[tuple[str, str]]:
    """Print (rank 0) how many images were skipped as unreadable during the run and which (the first
    ``show``); return every ``(path, reason)``. Nothing is printed when none was skipped."""
    from openjepa.data.folder import read_skip_log

    path = Path(run_dir) / SKIPPED_IMAGES
    skipped = read_skip_log(path)
    if skipped and _is_main():
        write(f"skipped {len(skipped)} unreadable image(s) (data.on_error=skip), all listed in {path}:")
        for image, reason in skipped[:show]:
            write(f"  {image}: {reason}")
        if len(skipped) > show:
            write(f"  ... and {len(skipped) - show} more")
    return skipped
