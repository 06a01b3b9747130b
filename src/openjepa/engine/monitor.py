"""Online monitoring during training: an online linear probe, RankMe, feature spread, collapse warning.

Nothing here sends a gradient into the model: the monitor sees the pooled target features a method
returns in ``StepOutput.features`` (detached), which the training step computes anyway.

- **Online probe** (the "online linear evaluation" of SimCLR / solo-learn): a BatchNorm + linear
  head trained on each batch's detached features with its own Adam. Accuracy is *prequential*:
  each batch is scored before the head trains on it, so the reported figure is on unseen images.
- **RankMe** (Garrido et al. 2023, arXiv 2210.02885) of the last ``monitor.buffer`` pooled
  features, as in the probe table (uncentred, as in the paper).
- **Spread**: ``sqrt(trace Cov(f)) / sqrt(E ||f||^2)``, how much pooled features vary *between
  images* relative to their size; 1 when they are zero-mean, 0 when every image maps to the same
  vector. Unlike a per-token std it catches the positional collapse where tokens differ by
  position but not by image (benchmarks/RESULTS.md, Fashion-MNIST).
- **Collapse** is declared when the spread or the centred effective rank (RankMe of mean-removed
  features) falls below ``monitor.collapse_ratio`` of its reference: its best value so far, starting
  from the value measured as soon as the buffer first holds 2 features per dimension (the first few
  steps, near random init). The best value, not the first: a run whose features first spread out
  (SIGReg does that within tens of steps) and then fall back together has collapsed. Ratios,
  not absolute thresholds: a random-init ViT's pooled features already share a large mean
  direction, so its uncentred RankMe is near 1 and an absolute threshold would fire at step 0.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from openjepa.config.schema import MonitorConfig
from openjepa.objectives.diagnostics import rankme

FIXES = ("a slower EMA teacher (optim.ema=[0.999,1.0]), a lower learning rate (optim.lr), a deeper or wider "
         "predictor (model.predictor_depth, model.predictor_embed_dim), larger target blocks (mask.target_scale), "
         "or a regulariser in place of the EMA (SIGReg, LeJEPA)")


@torch.no_grad()
def spread(features: Tensor) -> float:
    """sqrt(trace of the covariance) / sqrt(mean squared norm) of (N, D) features, in [0, 1]."""
    f = features.double()
    var = (f - f.mean(0)).square().sum(1).mean()
    return math.sqrt(var.item() / max(f.square().sum(1).mean().item(), 1e-300))


class TrainingMonitor(nn.Module):
    """Accumulates detached features every step; ``compute`` returns the metrics every ``cfg.every`` steps."""

    def __init__(self, dim: int, num_classes: int, cfg: MonitorConfig):
        super().__init__()
        self.cfg = cfg
        self.head: Optional[nn.Sequential] = None
        if cfg.probe and num_classes > 0:
            self.head = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, num_classes))
            self.opt = torch.optim.Adam(self.head.parameters(), lr=cfg.probe_lr)
        self.register_buffer("buffer", torch.zeros(cfg.buffer, dim))  # ring of the last pooled features
        self.register_buffer("counts", torch.zeros(4, dtype=torch.long))  # filled, write position, correct, scored
        self.register_buffer("reference", torch.full((2,), float("nan"), dtype=torch.float64))  # spread, rank
        self.warning: Optional[dict[str, Any]] = None

    def update(self, features: Tensor, labels: Optional[Tensor]) -> None:
        """features: (B, D) pooled target features of this batch; labels: (B,) with -1 for unlabelled."""
        f = features.detach().float()
        B, n = f.shape[0], self.buffer.shape[0]
        pos = int(self.counts[1])
        idx = (pos + torch.arange(B, device=f.device)) % n
        self.buffer[idx[-n:]] = f[-n:]
        self.counts[0] = min(n, int(self.counts[0]) + B)
        self.counts[1] = (pos + B) % n
        if torch.isnan(self.reference).any() and int(self.counts[0]) >= self._needed():
            buf = self.buffer[: int(self.counts[0])]
            self.reference[0], self.reference[1] = spread(buf), rankme(buf - buf.mean(0))
        if self.head is None or labels is None:
            return
        keep = labels >= 0
        if int(keep.sum()) < 2:
            return
        x, y = f[keep], labels[keep]
        with torch.enable_grad():
            self.head.train()
            logits = self.head(x)  # (B', C)
            loss = F.cross_entropy(logits, y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        self.counts[2] += int((logits.argmax(1) == y).sum())  # scored before this update took effect
        self.counts[3] += int(y.numel())

    @torch.no_grad()
    def compute(self, step: int) -> dict[str, float]:
        """Metrics over the buffer (and the probe since the last call); may set ``self.warning``."""
        filled = int(self.counts[0])
        out: dict[str, float] = {}
        if filled >= 2:
            f = self.buffer[:filled]
            out["rankme"] = rankme(f)
            out["spread"] = spread(f)
            out["rank_centred"] = rankme(f - f.mean(0))
        if int(self.counts[3]) > 0:
            out["probe_acc"] = int(self.counts[2]) / int(self.counts[3])
            self.counts[2:] = 0
        if "spread" in out and not torch.isnan(self.reference).any():
            self._check(step, out)
        return out

    def _needed(self) -> int:
        """Features needed before the first (reference) measurement: 2 per dimension, at most the buffer."""
        return min(self.buffer.shape[0], 2 * self.buffer.shape[1])

    def _check(self, step: int, m: dict[str, float]) -> None:
        ref = self.reference
        ratio = self.cfg.collapse_ratio
        low = [f"{k} {m[k]:.3g} is {m[k] / r:.0%} of its best value {r:.3g}"
               for k, r in (("spread", ref[0].item()), ("rank_centred", ref[1].item())) if m[k] < ratio * r]
        ref[0], ref[1] = max(ref[0].item(), m["spread"]), max(ref[1].item(), m["rank_centred"])
        if low and self.warning is None:
            msg = (f"representation collapse at step {step}: the pooled target features lost most of their "
                   f"variation between images ({'; '.join(low)}; RankMe {m['rankme']:.2f} of "
                   f"{self.buffer.shape[1]} dims). "
                   f"What usually fixes it: {FIXES}.")
            self.warning = {"step": step, "message": msg, **{k: float(v) for k, v in m.items()}}

    def extra_state(self) -> dict[str, Any]:
        """Everything to resume the monitor exactly (weights, buffers, probe optimizer, warning)."""
        return {"module": self.state_dict(), "opt": self.opt.state_dict() if self.head is not None else None,
                "warning": self.warning}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["module"])
        if self.head is not None and state["opt"] is not None:
            self.opt.load_state_dict(state["opt"])
        self.warning = state["warning"]


__all__ = ["FIXES", "TrainingMonitor", "spread"]
