"""SIGReg: Sketched Isotropic Gaussian Regularization (Balestriero & LeCun 2025, LeJEPA, arXiv:2511.08544v3).

Pushes embeddings z_1..z_N ∈ R^D towards N(0, I_D) through random 1-D projections (Sec. 4.2,
Definition 2, Eq. 5), averaged rather than maximised over the directions a ∈ A (unit vectors):

    SIGReg(A, Z) = (1/|A|) Σ_{a∈A} EP({aᵀ z_n}_{n=1..N})

with the Epps–Pulley statistic of each projection x_1..x_N (Sec. 4.2.3, display "(Epps–Pulley)"):

    EP = N ∫ |φ̂(t) − φ(t)|² w(t) dt,   φ̂(t) = (1/N) Σ_j exp(i t x_j),   φ(t) = exp(−t²/2),

and w(t) = exp(−t²/2), the window of Algorithm 1 and of the official code. (The text of Sec. 4.2.3
writes w(t) = exp(−t²/σ²) with σ = 1, i.e. exp(−t²); both code listings use σ² = 2.) The integrand is even (φ̂(−t) is the conjugate of φ̂(t), φ is real), so the integral
over [−t_max, t_max] is twice the trapezoid rule on ``knots`` equispaced points of [0, t_max] (Sec. 5.1).
Defaults ``knots=17, t_max=3``: the official code (``lejepa.univariate.EppsPulley``). The paper's
Algorithm 1 and Sec. 6.1 use 17 points on [−5, 5], which is exactly ``knots=9, t_max=5`` here.
|φ̂(t)|² needs only the means of cos(t x_j) and sin(t x_j), so the statistic costs O(N·|A|·knots).

Under the null (Theorem 6, Sec. 5.1): E[EP] = ∫ w(t)(1 − exp(−t²)) dt, whatever N (1.053 on [−3, 3],
1.059 on the whole line); a collapsed or anisotropic batch scores O(N). Directions are drawn afresh every step (Sec. 4.3, Fig. 7) from a
CPU generator seeded by (seed, step) (``openjepa.layers.seed.generator("sigreg", seed, step)``), so
every rank and device draws the same ones.

Distributed: the sums of cos(t x_j), sin(t x_j) and the sample count are summed over ranks by an
autograd-aware all-reduce, so every rank gets the statistic of the *global* batch, N being the global
batch size. Its backward sums the ranks' gradients: each rank receives ∂(Σ_ranks EP)/∂z_local =
W · ∂EP/∂z_local (W ranks). DDP and FSDP average gradients over ranks, which makes that exactly the
one-process gradient of EP on the concatenated batch: use the loss unscaled (the same convention as
``regression_loss``). Every rank must call backward through it. Without such averaging, divide by W.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from openjepa.layers.seed import generator


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward sums the ranks' incoming gradients (the adjoint of the same sum)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        x = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def _sum_over_ranks(x: Tensor) -> Tensor:
    return _AllReduceSum.apply(x)


def slice_directions(dim: int, num_slices: int, seed: int, step: int) -> Tensor:
    """(dim, num_slices) float64 CPU tensor of unit-norm columns, a function of (seed, step) only."""
    g = generator("sigreg", int(seed), int(step))
    a = torch.randn(dim, num_slices, generator=g, dtype=torch.float64)
    return a / a.norm(dim=0, keepdim=True)


def _trapezoid(knots: int, t_max: float) -> tuple[Tensor, Tensor]:
    """Knots of [0, t_max] and trapezoid weights doubled (for [−t_max, t_max]) times w(t) = exp(−t²/2)."""
    if knots < 2 or t_max <= 0:
        raise ValueError(f"need knots >= 2 and t_max > 0, got knots={knots}, t_max={t_max}")
    t = torch.linspace(0.0, t_max, knots, dtype=torch.float64)
    dt = t_max / (knots - 1)
    w = torch.full((knots,), 2 * dt, dtype=torch.float64)
    w[0] = w[-1] = dt
    return t, w * torch.exp(-0.5 * t.square())


def sigreg(z: Tensor, num_slices: int, seed: int, step: int, knots: int = 17, t_max: float = 3.0,
           reduce_ranks: bool = True) -> Tensor:
    """SIGReg of embeddings ``z`` (N, D): the mean Epps–Pulley statistic over ``num_slices`` directions.

    Computed in float32 (float64 if ``z`` is float64), outside autocast. ``reduce_ranks``: under an
    initialised process group, the statistic of the batch concatenated over ranks (see module doc);
    False: of the local batch only.
    """
    if z.ndim != 2:
        raise ValueError(f"sigreg expects embeddings of shape (N, D), got {tuple(z.shape)}")
    dtype = torch.float64 if z.dtype == torch.float64 else torch.float32
    with torch.autocast(z.device.type, enabled=False):
        z = z.to(dtype)
        a = slice_directions(z.shape[1], num_slices, seed, step).to(device=z.device, dtype=dtype)
        t, w = (v.to(device=z.device, dtype=dtype) for v in _trapezoid(knots, t_max))
        tx = (z @ a).unsqueeze(-1) * t  # (N, slices, knots)
        sums = torch.stack([tx.cos().sum(0), tx.sin().sum(0)])  # (2, slices, knots)
        n = z.new_full((1,), float(z.shape[0]))
        if reduce_ranks and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            packed = _sum_over_ranks(torch.cat([sums.flatten(), n]))
            sums, n = packed[:-1].view_as(sums), packed[-1:]
        re, im = sums / n.clamp_min(1.0)  # real and imaginary parts of φ̂ at the knots
        err = (re - torch.exp(-0.5 * t.square())).square() + im.square()  # |φ̂(t) − φ(t)|²
        return n[0] * (err @ w).mean()


class SIGReg(nn.Module):
    """SIGReg with fixed settings; ``forward(z, step)``. Defaults: 256 slices (Algorithm 1; Sec. 6.1
    recommends 1024), 17 knots on [0, 3] (official code). ``step`` must be the same on every rank."""

    def __init__(self, num_slices: int = 256, knots: int = 17, t_max: float = 3.0, seed: int = 0,
                 reduce_ranks: bool = True) -> None:
        super().__init__()
        self.num_slices, self.knots, self.t_max, self.seed = num_slices, knots, t_max, seed
        self.reduce_ranks = reduce_ranks

    def forward(self, z: Tensor, step: int) -> Tensor:
        return sigreg(z, self.num_slices, self.seed, step, self.knots, self.t_max, self.reduce_ranks)

    def extra_repr(self) -> str:
        return f"num_slices={self.num_slices}, knots={self.knots}, t_max={self.t_max}, seed={self.seed}"


__all__ = ["SIGReg", "sigreg", "slice_directions"]
