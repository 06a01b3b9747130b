import math

import pytest
import torch

from openjepa.planning.cem import CEM
from openjepa.planning.mppi import MPPI
from openjepa.planning.sampling import project_actions, shift_plan, uniform_actions

H, A = 5, 2


def _quadratic(c: torch.Tensor, scale: torch.Tensor | None = None):
    """E(a) = scale_b * sum_h ||a_h - c_{b,h}||², candidates (B, S, H, A) -> (B, S)."""
    def energy(x: torch.Tensor) -> torch.Tensor:
        e = (x - c[:, None]).square().sum((-1, -2))
        return e if scale is None else e * scale[:, None]
    return energy


def _targets(B: int, radius: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(B, H, A, generator=g) * 2 - 1) * radius


def _cem(**kw) -> CEM:
    return CEM(H, kw.pop("action_dim", A), kw.pop("bound", 1.0), samples=200, iterations=8, **kw)


def _mppi(**kw) -> MPPI:
    return MPPI(H, kw.pop("action_dim", A), kw.pop("bound", 1.0), samples=200, iterations=10, noise_std=0.2,
                temperature=0.1, **kw)


PLANNERS = {"cem": (_cem, 0.03), "mppi": (_mppi, 0.08)}  # factory, max |error| per coordinate


# ---------------------------------------------------------------- project_actions / shift_plan / uniform


def test_project_actions_norm_exact():
    a = torch.tensor([[[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [0.6, 0.8]]])  # (1, H=4, 2)
    out = project_actions(a, 1.0, "norm")
    expected = torch.tensor([[[0.6, 0.8], [0.3, 0.4], [0.0, 0.0], [0.6, 0.8]]])
    torch.testing.assert_close(out, expected)
    assert torch.equal(out[0, 1:], a[0, 1:])  # inside (or on) the ball: bitwise unchanged, no NaN at zero


def test_project_actions_group_clips_each_sub_action():
    a = torch.tensor([[3.0, 4.0, 0.3, 0.4, 0.0, -10.0]])  # (H=1, A=6) = 3 env actions of 2 dims
    out = project_actions(a, 2.0, "norm", group=3)
    torch.testing.assert_close(out, torch.tensor([[1.2, 1.6, 0.3, 0.4, 0.0, -2.0]]))
    # without groups the whole 6-vector is one action: norm sqrt(125.25) -> 2
    whole = project_actions(a, 2.0, "norm", group=1)
    assert whole.norm().item() == pytest.approx(2.0)
    assert not torch.allclose(whole, out)


def test_project_actions_box_exact():
    a = torch.tensor([[[2.0, -3.0, 0.5, -0.5]]])
    torch.testing.assert_close(project_actions(a, 1.0, "box", group=2), torch.tensor([[[1.0, -1.0, 0.5, -0.5]]]))


@pytest.mark.parametrize("bound, kind, group, match", [
    (0.0, "norm", 1, "bound"), (math.inf, "box", 1, "bound"), (1.0, "l2", 1, "'l2'"), (1.0, "norm", 3, "group=3"),
])
def test_project_actions_errors(bound, kind, group, match):
    with pytest.raises(ValueError, match=match):
        project_actions(torch.zeros(1, 2, 4), bound, kind, group)


def test_shift_plan():
    plan = torch.arange(2 * 3 * 1, dtype=torch.float32).view(2, 3, 1)  # [[0,1,2],[3,4,5]]
    assert shift_plan(plan)[..., 0].tolist() == [[1, 2, 2], [4, 5, 5]]
    assert shift_plan(plan, 2, fill="zero")[..., 0].tolist() == [[2, 0, 0], [5, 0, 0]]
    assert shift_plan(plan, 5)[..., 0].tolist() == [[2, 2, 2], [5, 5, 5]]
    assert shift_plan(plan, 0)[..., 0].tolist() == plan[..., 0].tolist()
    with pytest.raises(ValueError, match="'first'"):
        shift_plan(plan, fill="first")
    with pytest.raises(ValueError, match=r"\(B, H, A\)"):
        shift_plan(plan[0])


@pytest.mark.parametrize("kind, group", [("norm", 1), ("norm", 2), ("box", 1)])
def test_uniform_actions_fill_the_action_set(kind, group):
    g = torch.Generator().manual_seed(0)
    a = uniform_actions((4000, 4), 2.0, kind, group, g)
    assert torch.equal(project_actions(a, 2.0, kind, group), a)  # within bounds
    if kind == "norm":
        norms = a.unflatten(-1, (group, 4 // group)).norm(dim=-1) / 2.0
        d = 4 // group
        assert norms.mean().item() == pytest.approx(d / (d + 1), abs=0.02)  # E|x| of a uniform d-ball
    else:
        assert a.abs().max().item() > 1.99 and a.mean().abs().item() < 0.05


# ---------------------------------------------------------------- CEM and MPPI


@pytest.mark.parametrize("name", PLANNERS)
def test_finds_unconstrained_minimum(name):
    make, tol = PLANNERS[name]
    c = _targets(3, 0.6)  # a different optimum per problem, inside the unit ball
    res = make().plan(_quadratic(c), batch=3)
    assert res.actions.shape == (3, H, A) and res.energy.shape == (3,)
    assert (res.actions - c).abs().max().item() < tol
    torch.testing.assert_close(res.energy, _quadratic(c)(res.actions[:, None])[:, 0])  # energy of the returned plan


def _within(x: torch.Tensor, kind: str, group: int) -> bool:
    """Inside the action set up to float rounding (rescaling to norm 1 can give 1 + 1 ulp)."""
    if kind == "box":
        return bool(x.abs().max() <= 1.0)
    return bool(x.unflatten(-1, (group, x.shape[-1] // group)).norm(dim=-1).max() <= 1.0 + 1e-6)


@pytest.mark.parametrize("name, tol", [("cem", 0.05), ("mppi", 0.2)])
@pytest.mark.parametrize("kind, group, c_step, optimum", [
    ("norm", 1, [2.0, 0.0], [1.0, 0.0]),
    ("box", 1, [2.0, -0.5], [1.0, -0.5]),
    # per-sub-action clipping: the optimum is (0, 1 | 0, 0.5); clipping the whole 4-vector would give
    # (0, 0.986, 0, 0.164) instead, 0.34 away
    ("norm", 2, [0.0, 3.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.5]),
])
def test_constrained_optimum_on_the_boundary(name, tol, kind, group, c_step, optimum):
    dim, h = len(c_step), 2
    c = torch.tensor(c_step).expand(2, h, dim)
    seen = []

    def energy(x):
        seen.append(x)
        return _quadratic(c)(x)

    planner = (CEM(h, dim, 1.0, kind, group, samples=200, iterations=10) if name == "cem" else
               MPPI(h, dim, 1.0, kind, group, samples=200, iterations=10, noise_std=0.2, temperature=0.1))
    res = planner.plan(energy, batch=2)
    assert all(_within(x, kind, group) for x in seen)  # every candidate the energy was asked about
    assert _within(res.actions, kind, group)
    assert (res.actions - torch.tensor(optimum)).abs().max().item() < tol


@pytest.mark.parametrize("name", PLANNERS)
def test_deterministic_by_seed(name):
    make, _ = PLANNERS[name]
    energy = _quadratic(_targets(2, 0.6))
    a = make(seed=3).plan(energy, 2).actions
    assert torch.equal(a, make(seed=3).plan(energy, 2).actions)
    assert not torch.equal(a, make(seed=4).plan(energy, 2).actions)
    p = make(seed=3)
    first, second = p.plan(energy, 2).actions, p.plan(energy, 2).actions  # the stream continues ...
    assert torch.equal(first, a) and not torch.equal(second, a)
    p.reset()  # ... until reset
    assert torch.equal(p.plan(energy, 2).actions, a)


@pytest.mark.parametrize("name", PLANNERS)
def test_problems_are_independent(name):
    make, tol = PLANNERS[name]
    c = _targets(2, 0.6)
    same = make().plan(_quadratic(c, torch.tensor([1.0, 1.0])), 2)
    large = make().plan(_quadratic(c, torch.tensor([1.0, 1e6])), 2)
    # problem 0 sees the same noise and its own energy only: the other problem's scale cannot change it
    assert torch.equal(same.actions[0], large.actions[0])
    assert (same.actions - c).abs().max() < tol
    if name == "cem":  # elites depend on the ranking only: CEM is invariant to rescaling an energy
        assert torch.equal(same.actions[1], large.actions[1])


@pytest.mark.parametrize("name", PLANNERS)
def test_warm_start_is_a_candidate(name):
    c = _targets(2, 0.6)
    planner = (CEM if name == "cem" else MPPI)(H, A, 1.0, samples=20, iterations=1)
    assert planner.plan(_quadratic(c), 2).energy.min().item() > 0.01  # cold: far from the optimum
    warm = planner.plan(_quadratic(c), 2, init=c)
    assert torch.equal(warm.actions, c) and warm.energy.abs().max().item() == 0.0


@pytest.mark.parametrize("name", PLANNERS)
def test_returns_the_best_candidate_evaluated(name):
    make, _ = PLANNERS[name]
    c = _targets(2, 0.6)
    calls = []

    def energy(x):
        e = _quadratic(c)(x)
        calls.append((x, e))
        return e

    planner = make()
    res = planner.plan(energy, 2, init=torch.full((2, H, A), 5.0))  # an out-of-bounds warm start is projected
    assert len(calls) == planner.iterations + 1 and calls[-1][0].shape[1] == 1  # + the final mean
    assert (calls[0][0][:, 0].norm(dim=-1) - 1.0).abs().max() < 1e-6  # candidate 0 = the (projected) mean
    all_e = torch.cat([e for _, e in calls], 1)  # (B, total candidates)
    torch.testing.assert_close(res.energy, all_e.min(1).values)


def test_cem_refit_uses_the_elites():
    cem = CEM(1, 1, 10.0, samples=4, elite_frac=0.5, momentum=0.25, min_std=0.1)
    cands = torch.tensor([1.0, 2.0, 3.0, 7.0]).view(1, 4, 1, 1)
    e = torch.tensor([[3.0, 0.0, 1.0, 2.0]])  # elites: 2 and 3
    mean, std = cem._refit(torch.zeros(1, 1, 1), torch.ones(1, 1, 1), cands, e)
    assert mean.item() == pytest.approx(0.75 * 2.5) and std.item() == pytest.approx(0.25 + 0.75 * 0.5)
    _, std = CEM(1, 1, 10.0, samples=4, elite_frac=0.25, min_std=0.1)._refit(mean, std, cands, e)
    assert std.item() == pytest.approx(0.1)  # a single elite has std 0: min_std applies


def test_mppi_refit_is_the_softmin_weighted_mean():
    mppi = MPPI(1, 1, 10.0, samples=3, temperature=2.0)
    cands = torch.tensor([0.0, 3.0, 9.0]).view(1, 3, 1, 1)
    e = torch.tensor([[100.0, 100.0 + 2.0 * math.log(2.0), math.inf]])  # weights 2/3, 1/3, 0
    mean, _ = mppi._refit(torch.zeros(1, 1, 1), torch.ones(1, 1, 1), cands, e)
    assert mean.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"problem\(s\) \[0\]"):
        mppi._refit(torch.zeros(1, 1, 1), torch.ones(1, 1, 1), cands, torch.full((1, 3), math.inf))


@pytest.mark.parametrize("make, match", [
    (lambda: CEM(0, 2, 1.0), "horizon"),
    (lambda: CEM(3, 2, 1.0, samples=1), "samples"),
    (lambda: CEM(3, 2, 1.0, iterations=0), "iterations"),
    (lambda: CEM(3, 2, 1.0, samples=10, elite_frac=0.01), "0 elites"),
    (lambda: CEM(3, 2, 1.0, elite_frac=1.5), "elite_frac"),
    (lambda: CEM(3, 2, 1.0, momentum=1.0), "momentum"),
    (lambda: CEM(3, 2, 1.0, init_std=0.0), "init_std"),
    (lambda: CEM(3, 2, -1.0), "bound"),
    (lambda: CEM(3, 4, 1.0, group=3), "group=3"),
    (lambda: MPPI(3, 2, 1.0, temperature=0.0), "temperature"),
    (lambda: MPPI(3, 2, 1.0, noise_std=-1.0), "noise_std"),
    (lambda: MPPI(3, 2, 1.0, bound_kind="sphere"), "'sphere'"),
])
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_energies_and_inputs():
    cem = CEM(H, A, 1.0, samples=10, iterations=1)
    with pytest.raises(ValueError, match=r"shape \(2, 10\), got \(2, 10, 1\)"):
        cem.plan(lambda x: x.sum((-1, -2))[..., None], 2)
    with pytest.raises(ValueError, match="NaN"):
        cem.plan(lambda x: torch.full(x.shape[:2], math.nan), 2)
    with pytest.raises(ValueError, match="init must have shape"):
        cem.plan(_quadratic(_targets(2, 0.5)), 2, init=torch.zeros(2, H + 1, A))
    with pytest.raises(ValueError, match="batch"):
        cem.plan(_quadratic(_targets(2, 0.5)), 0)
