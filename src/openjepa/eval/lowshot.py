"""Low-shot linear evaluation: a linear probe trained on a small labelled subset, over several seeds.

The semi-supervised protocol of I-JEPA (Assran et al. 2023, arXiv 2301.08243, Sec. 5, "Low-shot
ImageNet-1K": 1% of the labels, about 12-13 images per class) and MSN (Assran et al. 2022, arXiv
2204.07141: 1, 2 and 5 images per class, and 1%), with the results reported as mean ± std over
label subsets. Two kinds of subset, both stratified per class and deterministic given the seed:

* ``k-shot``: exactly ``k`` training images of every class (a class with fewer is an error);
* a fraction ``f``: ``max(1, floor(f * n_c + 0.5))`` images of class c (``n_c`` its train count),
  i.e. the fraction rounded half-up *per class*, and at least one so no class is missing.

Each subset trains one linear head (:func:`openjepa.eval.linear.linear_probe` with a single lr and
wd: a 1-shot subset has nothing to hold out for selection) and is scored on the full test set.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from openjepa.eval.linear import linear_probe


def lowshot_indices(y: Tensor, *, seed: int, shots: int | None = None, fraction: float | None = None) -> Tensor:
    """Sorted CPU int64 indices of a stratified subset of labels ``y``: ``shots`` per class, or ``fraction``.

    Exactly one of ``shots`` / ``fraction`` is given; see the module docstring for the counts.
    Classes are visited in increasing label order, each drawing ``torch.randperm`` from one
    ``torch.Generator`` seeded with ``seed``, so a seed always gives the same subset.
    """
    if (shots is None) == (fraction is None):
        raise ValueError("give exactly one of shots or fraction")
    if shots is not None and shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    g = torch.Generator().manual_seed(seed)
    y = y.cpu()
    parts = []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        n = idx.numel()
        take = shots if shots is not None else max(1, math.floor(fraction * n + 0.5))
        if take > n:
            raise ValueError(f"{shots}-shot needs {shots} images of class {c}, which has only {n}")
        parts.append(idx[torch.randperm(n, generator=g)[:take]])
    return torch.cat(parts).sort().values


def setting_name(shots: int | None = None, fraction: float | None = None) -> str:
    """'5-shot' or '1%' / '10%' (the table column and the JSON key)."""
    return f"{shots}-shot" if shots is not None else f"{100 * fraction:g}%"


@dataclass
class LowShotResult:
    """One low-shot setting over seeds. Accuracies are test top-1 fractions in [0, 1]."""

    name: str  # "1-shot", "1%", ...
    mean: float
    std: float  # sample standard deviation over seeds (0 with one seed)
    accuracies: list[float] = field(default_factory=list)  # one per seed
    n_labelled: int = 0  # size of each labelled subset (the same for every seed)

    def to_dict(self) -> dict:
        """JSON-serialisable copy."""
        return asdict(self)


def lowshot_probe(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    shots: tuple[int, ...] | list[int] = (1, 5),
    fractions: tuple[float, ...] | list[float] = (0.01, 0.1),
    seeds: int = 3,
    seed: int = 0,
    lr: float = 1e-2,
    wd: float = 1e-3,
    epochs: int = 100,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    num_classes: int | None = None,
    progress: bool = False,
    desc: str = "low-shot probes",
) -> list[LowShotResult]:
    """Low-shot linear-probe accuracy for every setting (``shots`` first, then ``fractions``).

    Subset ``i`` of a setting uses seed ``seed + i`` (for the subset and the probe's minibatch
    order), for ``i`` in ``range(seeds)``. ``progress`` shows a bar over the probes (one per
    setting and subset; probes/s and ETA) named ``desc``.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if num_classes is None:
        num_classes = int(max(train_y.max().item(), test_y.max().item())) + 1
    settings = [dict(shots=k) for k in shots] + [dict(fraction=f) for f in fractions]
    results = []
    with tqdm(total=len(settings) * seeds, disable=not progress, desc=desc, unit="probe", dynamic_ncols=True) as bar:
        for setting in settings:
            accs, n = [], 0
            for s in range(seed, seed + seeds):
                idx = lowshot_indices(train_y, seed=s, **setting).to(train_x.device)
                n = idx.numel()
                r = linear_probe(train_x[idx], train_y[idx.to(train_y.device)], test_x, test_y, epochs=epochs,
                                 batch_size=batch_size, lrs=(lr,), wds=(wd,), seed=s, device=device,
                                 num_classes=num_classes)
                accs.append(r.accuracy)
                bar.update(1)
            std = statistics.stdev(accs) if len(accs) > 1 else 0.0
            results.append(LowShotResult(setting_name(**setting), statistics.fmean(accs), std, accs, n))
    return results
