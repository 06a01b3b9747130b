import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad, trapezoid

from openjepa.objectives import SIGReg, sigreg, slice_directions

N, D, M, SEED, STEP = 64, 4, 6, 1, 2


def _samples() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    sign = torch.randn(N, D, generator=g, dtype=torch.float64).sign()
    return {
        "gaussian": torch.randn(N, D, generator=g, dtype=torch.float64),
        "uniform": (torch.rand(N, D, generator=g, dtype=torch.float64) * 2 - 1) * math.sqrt(3),
        "bimodal": 1.5 * sign + 0.3 * torch.randn(N, D, generator=g, dtype=torch.float64),
        "collapsed": torch.full((N, D), 0.7, dtype=torch.float64),
    }


def _projections(z: torch.Tensor) -> np.ndarray:
    return z.numpy() @ slice_directions(D, M, SEED, STEP).numpy()  # (N, M), the directions sigreg draws


def _quad_reference(z: torch.Tensor, t_max: float) -> float:
    """Mean over slices of N ∫ |φ̂(t) − exp(−t²/2)|² exp(−t²/2) dt over [−t_max, t_max], by adaptive quadrature."""
    stats = []
    for x in _projections(z).T:
        def integrand(t: float) -> float:
            return ((np.cos(t * x).mean() - np.exp(-t * t / 2)) ** 2 + np.sin(t * x).mean() ** 2) * np.exp(-t * t / 2)

        stats.append(len(x) * 2 * quad(integrand, 0, t_max, limit=200, epsabs=1e-13, epsrel=1e-12)[0])
    return float(np.mean(stats))


def _closed_form_reference(z: torch.Tensor) -> float:
    """The integral over the whole real line in closed form (Gaussian integrals of cos):
    N [√(2π)/N² Σ_jk exp(−(x_j − x_k)²/2) − 2√π/N Σ_j exp(−x_j²/4) + √(2π/3)]."""
    stats = []
    for x in _projections(z).T:
        n = len(x)
        pair = math.sqrt(2 * math.pi) * np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2).sum() / n**2
        cross = 2 * math.sqrt(math.pi) * np.exp(-0.25 * x**2).sum() / n
        stats.append(n * (pair - cross + math.sqrt(2 * math.pi / 3)))
    return float(np.mean(stats))


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "bimodal", "collapsed"])
def test_matches_quadrature_and_closed_form(kind):
    z = _samples()[kind]
    ref3 = _quad_reference(z, 3.0)
    assert sigreg(z, M, SEED, STEP, knots=4001, t_max=3.0).item() == pytest.approx(ref3, rel=1e-7)
    # whole real line, as the paper defines EP: truncation at 12 and the trapezoid error are negligible
    assert sigreg(z, M, SEED, STEP, knots=4001, t_max=12.0).item() == pytest.approx(_closed_form_reference(z), rel=1e-7)
    # the defaults: official code (17 knots on [0, 3]); paper's Algorithm 1 (17 on [-5, 5] = 9 on [0, 5])
    assert sigreg(z, M, SEED, STEP).item() == pytest.approx(ref3, rel=2e-3)
    assert sigreg(z.float(), M, SEED, STEP).item() == pytest.approx(ref3, rel=2e-3)
    assert sigreg(z, M, SEED, STEP, knots=9, t_max=5.0).item() == pytest.approx(_quad_reference(z, 5.0), rel=2e-4)


def test_half_range_equals_the_papers_symmetric_trapezoid():
    """Algorithm 1: trapz over linspace(-5, 5, 17) of |ecf − φ|² φ, times N, averaged over slices."""
    z = _samples()["uniform"]
    t = np.linspace(-5, 5, 17)
    ecf = np.exp(1j * _projections(z)[:, :, None] * t).mean(0)  # (M, 17)
    err = np.abs(ecf - np.exp(-t**2 / 2)) ** 2 * np.exp(-t**2 / 2)
    paper = (N * trapezoid(err, t, axis=1)).mean()
    assert sigreg(z, M, SEED, STEP, knots=9, t_max=5.0).item() == pytest.approx(paper, rel=1e-12)


def test_null_value_on_gaussian_and_large_on_collapse_or_anisotropy():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2000, 16, generator=g)
    # Theorem 6: E[EP] = ∫ w(t)(1 − exp(−t²)) dt under the null, for any N; here on [-3, 3] (≈ 1.053)
    null = 2 * quad(lambda t: np.exp(-t * t / 2) * (1 - np.exp(-t * t)), 0, 3)[0]
    value = sigreg(z, 256, 0, 0).item()
    assert abs(value - null) < 0.3
    assert sigreg(torch.zeros(2000, 16), 256, 0, 0).item() > 100 * null  # all rows equal
    rank_one = torch.randn(2000, 1, generator=g) @ torch.randn(1, 16, generator=g)
    assert sigreg(rank_one, 256, 0, 0).item() > 100 * null
    anisotropic = z * torch.linspace(0.2, 2.0, 16)
    assert sigreg(anisotropic, 256, 0, 0).item() > 20 * null
    assert sigreg(z + 1.0, 256, 0, 0).item() > 20 * null  # shifted mean


def test_gradcheck():
    z = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sigreg(x, 4, SEED, STEP, knots=5), (z,))


def test_directions_deterministic_unit_norm_and_fresh_each_step():
    a = slice_directions(8, 16, seed=1, step=3)
    assert a.shape == (8, 16) and a.dtype == torch.float64
    torch.testing.assert_close(a.norm(dim=0), torch.ones(16, dtype=torch.float64))
    assert torch.equal(a, slice_directions(8, 16, seed=1, step=3))
    assert not torch.allclose(a, slice_directions(8, 16, seed=1, step=4))
    assert not torch.allclose(a, slice_directions(8, 16, seed=2, step=3))
    assert not torch.allclose(slice_directions(8, 16, seed=0, step=1), slice_directions(8, 16, seed=1, step=0))
    z = torch.randn(32, 8)
    assert sigreg(z, 16, 1, 3).item() == sigreg(z, 16, 1, 3).item()
    assert sigreg(z, 16, 1, 3).item() != sigreg(z, 16, 1, 4).item()


def test_module_dtype_and_shape_checks():
    z = torch.randn(32, 8)
    reg = SIGReg(num_slices=16, knots=9, t_max=5.0, seed=7)
    assert reg(z, step=5).item() == sigreg(z, 16, 7, 5, knots=9, t_max=5.0).item()
    assert "num_slices=16" in repr(reg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sigreg(z.bfloat16(), 16, 0, 0)
    assert out.dtype == torch.float32 and out.item() == pytest.approx(sigreg(z.bfloat16().float(), 16, 0, 0).item())
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        sigreg(torch.randn(2, 3, 4), 4, 0, 0)
    with pytest.raises(ValueError, match="knots"):
        sigreg(z, 4, 0, 0, knots=1)


def test_module_defaults_are_the_official_settings():
    """256 slices (Algorithm 1), 17 knots on [0, 3] (official code), seed 0, the global batch under DDP."""
    reg = SIGReg()
    assert (reg.num_slices, reg.knots, reg.t_max, reg.seed, reg.reduce_ranks) == (256, 17, 3.0, 0, True)
    z = torch.randn(16, 4)
    assert reg(z, step=2).item() == sigreg(z, 256, 0, 2, knots=17, t_max=3.0).item()
    assert sigreg(z, 8, 0, 2).item() == sigreg(z, 8, 0, 2, knots=17, t_max=3.0, reduce_ranks=True).item()
