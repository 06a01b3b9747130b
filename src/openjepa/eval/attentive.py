"""Attentive probe: a learned-query cross-attention pooler + linear classifier on frozen patch tokens.

The frozen evaluation of V-JEPA (Bardes et al. 2024, "Revisiting Feature Prediction for Learning
Visual Representations from Video", arXiv 2404.08471, "attentive probing" of frozen features):
instead of average pooling, a light cross-attention block with a learned query token reads the
encoder's (frozen) tokens, and a linear layer classifies its output. The block is pre-norm:

    q <- q + CrossAttn(q, LayerNorm(tokens));   q <- q + MLP(LayerNorm(q));   logits = Linear(q)

(as the official ``AttentivePooler`` / ``AttentiveClassifier`` with depth 1), trained with AdamW
and a cosine learning-rate decay to zero. Because the query chooses *which* tokens to read, the
probe can use spatial information that an average pool throws away.

Selection as in :func:`openjepa.eval.linear.linear_probe`: each learning rate of the grid is
trained on the train split minus a seeded, stratified ``val_fraction``; the best on the held-out
part is retrained on the full train split and its test top-1 reported. The test set is never
used for selection.

Multi-view items (video: ``K`` clips x ``S`` spatial views per video, tokens (N, V, T, D)): the
probe reads each view's tokens on its own. Training treats every view as an example with its
item's label (the loss is the mean over views, as V-JEPA trains its probe on all the clips of a
video); a prediction is the argmax of the probe's logits averaged over the item's V views. Logits,
not pooled features, are averaged because the probe is nonlinear: the K clips cover different
moments and the S crops different places, so the query attends to each view's own tokens and
the views vote (the multi-clip, multi-view averaging of V-JEPA's evaluation). Concatenating the
views' tokens instead would make the probe's cost grow with V and its input differ from training
on one clip.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from openjepa.engine.logging import progress as progress_bar
from openjepa.eval.linear import cosine_factor, probe_split
from openjepa.models.heads import AttentiveClassifier, CrossAttention, heads_for  # noqa: F401


@dataclass
class AttentiveResult:
    """Outcome of :func:`attentive_probe`. Accuracies are fractions in [0, 1]."""

    accuracy: float  # test top-1 of the selected lr, retrained on the full train set
    best_lr: float
    val_accuracy: float  # held-out top-1 of the selected lr; nan with a single lr (no selection)
    num_heads: int  # attention heads actually used (see heads_for)
    lr_val_accuracies: list[dict[str, float]] = field(default_factory=list)  # {"lr", "val_accuracy"}

    def to_dict(self) -> dict:
        """JSON-serialisable copy."""
        return asdict(self)


def train_attentive(tokens: Tensor, y: Tensor, num_classes: int, *, lr: float, wd: float, epochs: int,
                    batch_size: int, seed: int, device: torch.device, num_heads: int = 4,
                    num_queries: int = 1, bar: tqdm | None = None) -> AttentiveClassifier:
    """Train one probe with AdamW (decay on matrices and the queries, not on biases/norms).

    ``tokens`` (N, T, D), or (N, V, T, D) with V views per item (each view an example with the
    item's label), may stay on the CPU (any float dtype): each minibatch of items is moved to
    ``device`` as float32. Initialisation and minibatch order are seeded by ``seed``. ``bar``
    (a progress bar) advances by one per step.
    """
    n, d = tokens.shape[0], tokens.shape[-1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AttentiveClassifier(d, num_classes, heads_for(d, num_heads), num_queries)
    model = model.to(device).train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    y = y.long()
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    g = torch.Generator().manual_seed(seed)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            xb = tokens[idx.to(tokens.device)].to(device, torch.float32, non_blocking=True)  # (B, [V,] T, D)
            yb = y[idx.to(y.device)].to(device)
            if xb.ndim == 4:  # (B, V, T, D) -> (B*V, T, D), each view with its item's label
                yb = yb.repeat_interleave(xb.shape[1])
                xb = xb.flatten(0, 1)
            for group in opt.param_groups:
                group["lr"] = lr * cosine_factor(step, total)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if bar is not None:
                bar.update(1)
    return model.eval()


@torch.no_grad()
def attentive_logits(model: AttentiveClassifier, tokens: Tensor) -> Tensor:
    """The probe's logits (B, classes) for ``tokens`` (B, T, D), or for (B, V, T, D) the mean of the V views' logits."""
    device = next(model.parameters()).device
    x = tokens.to(device, torch.float32)
    if x.ndim == 3:
        return model(x)
    b, v = x.shape[:2]
    return model(x.flatten(0, 1)).reshape(b, v, -1).mean(dim=1)  # (B*V, C) -> (B, V, C) -> mean over views


@torch.no_grad()
def predict_attentive(model: AttentiveClassifier, tokens: Tensor, batch_size: int = 1024) -> Tensor:
    """Predicted classes (N,) on the CPU for ``tokens`` (N, T, D) or multi-view (N, V, T, D) (the argmax of
    the logits averaged over views, :func:`attentive_logits`), in batches on the model's device."""
    out = [attentive_logits(model, tokens[i : i + batch_size]).argmax(dim=1).cpu()
           for i in range(0, tokens.shape[0], batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def _accuracy(model: AttentiveClassifier, tokens: Tensor, y: Tensor) -> float:
    return (predict_attentive(model, tokens) == y.cpu()).float().mean().item()


def attentive_probe(
    train_tokens: Tensor,
    train_y: Tensor,
    test_tokens: Tensor,
    test_y: Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 256,
    lrs: Sequence[float] = (1e-3, 3e-3, 1e-2),
    wd: float = 1e-3,
    num_heads: int = 4,
    num_queries: int = 1,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: torch.device | str | None = None,
    num_classes: int | None = None,
    progress: bool = False,
    desc: str = "attentive probe",
) -> AttentiveResult:
    """Attentive-probe top-1 accuracy of frozen tokens (see the module docstring for the protocol).

    ``train_tokens`` / ``test_tokens``: (N, T, D) tokens, or (N, V, T, D) with V views per item
    (see the module docstring; float16 from the cache is fine; they may stay on the CPU and are
    moved to ``device`` per minibatch; default device: the tokens').
    With a single lr no held-out split is made (``val_accuracy`` is nan). ``progress`` shows a
    bar over the training steps of every lr and the retraining (steps/s and ETA) named ``desc``.
    """
    if train_tokens.ndim not in (3, 4) or test_tokens.ndim not in (3, 4):
        raise ValueError(f"tokens must be (N, T, D) or (N, V, T, D), got {tuple(train_tokens.shape)} and "
                         f"{tuple(test_tokens.shape)}")
    device = torch.device(device) if device is not None else train_tokens.device
    train_y, test_y = train_y.long().cpu(), test_y.long().cpu()
    if num_classes is None:
        num_classes = int(max(train_y.max().item(), test_y.max().item())) + 1
    lrs = list(lrs)
    split = None  # (fit, val) indices when there are lrs to select from
    if len(lrs) > 1:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"selecting among {len(lrs)} lrs needs 0 < val_fraction < 1, got {val_fraction}")
        split = probe_split(train_y, val_fraction, seed)
    runs = [train_tokens.shape[0]] + ([] if split is None else [split[0].numel()] * len(lrs))  # images per run
    with progress_bar(sum(epochs * math.ceil(n / batch_size) for n in runs), 0, progress, desc) as bar:
        kw = dict(wd=wd, epochs=epochs, batch_size=batch_size, seed=seed, device=device, num_heads=num_heads,
                  num_queries=num_queries, bar=bar)
        return _select_and_fit(train_tokens, train_y, test_tokens, test_y, lrs, split, num_classes, kw)


def _select_and_fit(train_tokens: Tensor, train_y: Tensor, test_tokens: Tensor, test_y: Tensor, lrs: list[float],
                    split: tuple[Tensor, Tensor] | None, num_classes: int, kw: dict) -> AttentiveResult:
    """:func:`attentive_probe` after the checks: pick the lr on the held-out ``split``, retrain, test."""
    best_lr, val_acc, per_lr = lrs[0], float("nan"), []
    if split is not None:
        fit, val = split
        fit_t, val_t = train_tokens[fit.to(train_tokens.device)], train_tokens[val.to(train_tokens.device)]
        for lr in lrs:
            model = train_attentive(fit_t, train_y[fit], num_classes, lr=lr, **kw)
            per_lr.append({"lr": lr, "val_accuracy": _accuracy(model, val_t, train_y[val])})
        best = max(range(len(lrs)), key=lambda i: per_lr[i]["val_accuracy"])  # first of the best on ties
        best_lr, val_acc = lrs[best], per_lr[best]["val_accuracy"]
    model = train_attentive(train_tokens, train_y, num_classes, lr=best_lr, **kw)
    return AttentiveResult(_accuracy(model, test_tokens, test_y), best_lr, val_acc,
                           heads_for(train_tokens.shape[-1], kw["num_heads"]), per_lr)
