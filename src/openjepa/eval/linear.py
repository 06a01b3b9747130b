"""Linear probe: multinomial logistic regression on frozen features, a grid of heads trained at once.

The standard frozen-feature protocol (I-JEPA, Assran et al. 2023, arXiv 2301.08243, Sec. 5;
DINO, Caron et al. 2021, arXiv 2104.14294, App. "Linear evaluation") sweeps learning rate and
weight decay and keeps the best. Here every (lr, wd) pair of the grid is one head of a single
batched linear layer, weights (H, D, C): one einsum computes all H heads' logits, and each head
gets the analytic gradient of its own mean cross-entropy, exactly what it would get if trained
alone (the heads share no parameters). One batched Adam update (per-head lr and weight-decay
vectors) moves all heads, with a per-step cosine decay of the lr. Everything is a handful of
tensor ops per step whatever H is, so the sweep costs little more than one head.

Weight decay is the classic coupled L2 penalty (as ``torch.optim.Adam(weight_decay=wd)``: it adds
``wd * W`` to the gradient), i.e. each head minimises ``CE + wd/2 * ||W||^2``, the L2-regularised
logistic regression; biases are not decayed. Heads start at zero (the problem is convex, so
there is no initialisation noise to average over) and see the same seeded minibatch order.

Selection: hold out ``val_fraction`` of the train set (seeded, stratified per class), train all
heads on the rest, pick the head with the best validation top-1, then *retrain that (lr, wd) on
the full train set* and report its test top-1. The test set is never used for selection.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from openjepa.engine.logging import progress as progress_bar

from openjepa.data.base import stratified_split

DEFAULT_LRS: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
DEFAULT_WDS: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2)


@dataclass
class ProbeResult:
    """Outcome of :func:`linear_probe`. Accuracies are fractions in [0, 1]."""

    accuracy: float  # test top-1 of the selected (lr, wd), retrained on the full train set
    best_lr: float
    best_wd: float
    val_accuracy: float  # held-out top-1 of the selected head (before retraining); nan if no selection
    head_val_accuracies: list[dict[str, float]] = field(default_factory=list)  # {"lr", "wd", "val_accuracy"}

    def to_dict(self) -> dict:
        """JSON-serialisable copy."""
        return asdict(self)


def standardize(train_x: Tensor, *others: Tensor, eps: float = 1e-6) -> tuple[Tensor, ...]:
    """Z-score every tensor with the mean/std of ``train_x`` (per dimension).

    Dimensions that are constant on the train set (std < eps, e.g. always-black border pixels)
    are only centred, not divided, so an unseen test value cannot blow up.
    """
    mean = train_x.mean(dim=0)
    std = train_x.std(dim=0)
    std = torch.where(std < eps, torch.ones_like(std), std)
    return tuple((t - mean) / std for t in (train_x, *others))


def probe_split(y: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """A probe's seeded (fit, validation) split of the train indices: :func:`openjepa.data.base.stratified_split`
    with ``keep_both`` (``round(val_fraction * n_c)`` of each class c, and every class with at least two
    samples keeps at least one in each part), as sorted CPU int64 tensors."""
    fit, val = stratified_split(y, val_fraction, seed, keep_both=True)
    return torch.tensor(sorted(fit), dtype=torch.long), torch.tensor(sorted(val), dtype=torch.long)


def cosine_factor(step: int, total_steps: int) -> float:
    """Cosine decay from 1 to 0 over ``total_steps`` (Loshchilov & Hutter 2017, SGDR, no restarts)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


class _BatchedAdam:
    """Adam (Kingma & Ba 2015, Alg. 1) over a stack of H heads, with a per-head lr and L2 weight decay.

    Same arithmetic as ``torch.optim.Adam(weight_decay=wd)`` (coupled L2: ``g += wd * p``), but
    one set of tensor ops for all heads instead of one optimizer call per head; ``lr`` and ``wd``
    are (H,) tensors broadcast over each head's slice.
    """

    def __init__(self, param: Tensor, lr: Tensor, wd: Tensor, betas=(0.9, 0.999), eps: float = 1e-8):
        self.p, self.eps, (self.b1, self.b2) = param, eps, betas
        shape = (-1,) + (1,) * (param.ndim - 1)  # (H, 1, ...) to broadcast over a head's slice
        self.lr, self.wd = lr.view(shape), wd.view(shape)
        self.m, self.v = torch.zeros_like(param), torch.zeros_like(param)
        self.t = 0

    def step(self, grad: Tensor, lr_factor: float) -> None:
        self.t += 1
        grad = grad + self.wd * self.p
        self.m.lerp_(grad, 1 - self.b1)
        self.v.mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
        denom = (self.v.sqrt() / math.sqrt(1 - self.b2**self.t)).add_(self.eps)
        self.p.sub_(self.lr * (lr_factor / (1 - self.b1**self.t)) * self.m / denom)


@torch.no_grad()
def train_linear_heads(
    x: Tensor,
    y: Tensor,
    num_classes: int,
    lrs: Sequence[float],
    wds: Sequence[float],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    bar: tqdm | None = None,
) -> tuple[Tensor, Tensor]:
    """Train H = len(lrs) heads at once; head h uses ``lrs[h]`` and ``wds[h]``.

    ``x`` (N, D) float and ``y`` (N,) int64 live on the training device. Minibatch order: a
    ``torch.Generator`` seeded with ``seed`` draws ``torch.randperm(N)`` once per epoch, on the
    CPU, so the order is identical on every device and for every grid; the last batch of an
    epoch may be smaller. The lr follows :func:`cosine_factor` per step. Returns weights
    (H, D, C) and biases (H, C). ``bar`` (a progress bar) advances by one per step.
    """
    if len(lrs) != len(wds):
        raise ValueError(f"need one wd per lr, got {len(lrs)} lrs and {len(wds)} wds")
    n, d = x.shape
    h = len(lrs)
    w = torch.zeros(h, d, num_classes, device=x.device, dtype=x.dtype)  # (H, D, C)
    b = torch.zeros(h, num_classes, device=x.device, dtype=x.dtype)  # (H, C)
    lr = torch.tensor(list(lrs), dtype=x.dtype, device=x.device)
    opt_w = _BatchedAdam(w, lr, torch.tensor(list(wds), dtype=x.dtype, device=x.device))
    opt_b = _BatchedAdam(b, lr, torch.zeros_like(lr))  # biases are not decayed
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    g = torch.Generator().manual_seed(seed)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=g).to(x.device)
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            xb, yb = x[idx], y[idx]  # (B, D), (B,)
            logits = torch.einsum("bd,hdc->hbc", xb, w) + b[:, None, :]  # (H, B, C): all heads at once
            # Gradient of each head's mean cross-entropy w.r.t. its logits: (softmax - onehot) / B.
            # Heads share no parameters, so this is exactly each head's single-head gradient.
            dlogits = logits.softmax(dim=-1)
            dlogits[:, torch.arange(yb.shape[0], device=x.device), yb] -= 1.0
            dlogits /= yb.shape[0]
            f = cosine_factor(step, total)
            opt_w.step(torch.einsum("bd,hbc->hdc", xb, dlogits), f)
            opt_b.step(dlogits.sum(dim=1), f)
            step += 1
            if bar is not None:
                bar.update(1)
    return w, b


@torch.no_grad()
def predict_heads(x: Tensor, weights: Tensor, biases: Tensor, batch_size: int = 8192) -> Tensor:
    """Class predictions (H, N) of every head for ``x`` (N, D), in batches."""
    out = []
    for i in range(0, x.shape[0], batch_size):
        logits = torch.einsum("bd,hdc->hbc", x[i : i + batch_size], weights) + biases[:, None, :]
        out.append(logits.argmax(dim=-1))
    return torch.cat(out, dim=1)


def linear_probe(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    epochs: int = 100,
    batch_size: int = 1024,
    lrs: Sequence[float] = DEFAULT_LRS,
    wds: Sequence[float] = DEFAULT_WDS,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: torch.device | str | None = None,
    num_classes: int | None = None,
    progress: bool = False,
    desc: str = "linear probe",
) -> ProbeResult:
    """Linear-probe top-1 accuracy of frozen features (see the module docstring for the protocol).

    Features are standardised with the full train set's per-dimension mean/std. The grid is
    ``lrs x wds``; with a single pair no held-out split is made (``val_accuracy`` is nan).
    Runs on ``device`` (default: the features' device). ``progress`` shows a bar over the
    training steps (both phases; steps/s and ETA) named ``desc``.
    """
    device = torch.device(device) if device is not None else train_x.device
    tr_x, te_x = standardize(train_x.float().to(device), test_x.float().to(device))
    tr_y, te_y = train_y.long().to(device), test_y.long().to(device)
    if num_classes is None:
        num_classes = int(max(tr_y.max().item(), te_y.max().item())) + 1
    grid = list(itertools.product(lrs, wds))
    split = None  # (fit, val) indices when there is a grid to select from
    if len(grid) > 1:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"selecting among {len(grid)} heads needs 0 < val_fraction < 1, got {val_fraction}")
        split = tuple(i.to(device) for i in probe_split(tr_y, val_fraction, seed))
    sizes = [tr_x.shape[0]] if split is None else [split[0].numel(), tr_x.shape[0]]  # the training phases
    with progress_bar(sum(epochs * math.ceil(n / batch_size) for n in sizes), 0, progress, desc) as bar:
        return _select_and_fit(tr_x, tr_y, te_x, te_y, grid, split, num_classes,
                               dict(epochs=epochs, batch_size=batch_size, seed=seed, bar=bar))


def _select_and_fit(tr_x: Tensor, tr_y: Tensor, te_x: Tensor, te_y: Tensor, grid: list[tuple[float, float]],
                    split: tuple[Tensor, ...] | None, num_classes: int, kw: dict) -> ProbeResult:
    """:func:`linear_probe` after standardisation: pick (lr, wd) on the held-out ``split``, retrain, test."""
    head_vals: list[dict[str, float]] = []
    best_lr, best_wd = grid[0]
    val_acc = float("nan")
    if split is not None:
        fit_idx, val_idx = split
        w, b = train_linear_heads(
            tr_x[fit_idx], tr_y[fit_idx], num_classes, [p[0] for p in grid], [p[1] for p in grid], **kw
        )
        accs = (predict_heads(tr_x[val_idx], w, b) == tr_y[val_idx]).float().mean(dim=1).tolist()
        head_vals = [{"lr": lr, "wd": wd, "val_accuracy": a} for (lr, wd), a in zip(grid, accs)]
        best = max(range(len(grid)), key=lambda i: accs[i])  # first of the best on ties
        (best_lr, best_wd), val_acc = grid[best], accs[best]

    w, b = train_linear_heads(tr_x, tr_y, num_classes, [best_lr], [best_wd], **kw)
    test_acc = (predict_heads(te_x, w, b)[0] == te_y).float().mean().item()
    return ProbeResult(test_acc, best_lr, best_wd, val_acc, head_vals)
