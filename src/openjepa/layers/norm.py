"""Batch normalisation over the global batch: the statistics of the batch concatenated over ranks.

BatchNorm (Ioffe & Szegedy 2015, Algorithm 1) normalises each channel c by the mean μ_c and the
biased variance σ²_c of the training batch and keeps running estimates with the unbiased one:

    y = γ (x − μ) / √(σ² + ε) + β,   running ← (1 − m) running + m · {μ, σ² · N / (N − 1)}

Under data parallelism each rank holds N/W of the N samples of a step. Per-rank statistics make
the model a function of the world size; this layer all-reduces the per-channel sums (two passes:
Σx and the count, then Σ(x − μ)², which stays accurate where Σx² − Nμ² would cancel) with the
autograd-aware ``torch.distributed.nn.functional.all_reduce``, whose backward sums the ranks'
incoming gradients. Each rank's loss then sees exactly the one-process normalisation of the
concatenated batch, and DDP/FSDP's gradient average gives the one-process gradient, the same
convention as :mod:`openjepa.objectives.sigreg` (which computes its statistic on that global batch).

On one process, or in eval mode, it *is* ``nn.BatchNorm1d`` (same forward, parameters ``weight``,
``bias`` and buffers ``running_mean``, ``running_var``, ``num_batches_tracked``), so checkpoints
load either way. Unlike ``nn.SyncBatchNorm`` (GPU-only in torch 2.x) it also runs on CPU with gloo.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn


def _all_reduce_sum(x: Tensor) -> Tensor:
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(x, op=dist.ReduceOp.SUM)


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training statistics are those of the global batch (see module doc).

    Input (N, C) or (N, C, L); statistics per channel over N (and L) on every rank together.
    Every rank must call it in the same order (it issues collectives in training mode).
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and _world_size() > 1:
            self._check_input_dim(x)
            return self._global_forward(x)
        return super().forward(x)

    def _count_batch(self) -> float:
        """Counts this batch; -> its running-average factor, as ``nn.BatchNorm1d`` computes it."""
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum

    def _global_forward(self, x: Tensor) -> Tensor:
        dims = [0, *range(2, x.ndim)]  # every axis but the channels
        shape = [1, -1] + [1] * (x.ndim - 2)  # (1, C[, 1]) broadcasts per channel
        xf = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
        local_n = xf.new_full((1,), float(xf.numel() // xf.shape[1]))
        packed = _all_reduce_sum(torch.cat([xf.sum(dims), local_n]))  # (C + 1,): Σx per channel, N
        n = packed[-1]  # stays on the device: no host sync
        mean = packed[:-1] / n  # (C,)
        centred = xf - mean.view(shape)
        var = _all_reduce_sum(centred.square().sum(dims)) / n  # (C,): biased, used to normalise
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach() * (n / (n - 1).clamp_min(1.0)))
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running(self, mean: Tensor, unbiased_var: Tensor) -> None:
        assert self.running_mean is not None and self.running_var is not None
        m = self._count_batch()
        self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean.dtype), alpha=m)
        self.running_var.mul_(1 - m).add_(unbiased_var.to(self.running_var.dtype), alpha=m)


__all__ = ["GlobalBatchNorm1d"]
