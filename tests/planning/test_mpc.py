import math
from typing import Optional

import pytest
import torch

from openjepa.planning.cem import CEM
from openjepa.planning.mpc import MPCResult, OracleModel, RandomPlanner, reduce_distances, run_mpc
from openjepa.planning.mppi import MPPI
from openjepa.planning.sampling import PlanResult, shift_plan

from tests.planning.toy_env import PointEnv

MAX_STEPS = 40


def _cem(fs: int = 1, horizon: int = 4, seed: int = 0) -> CEM:
    return CEM(horizon, 2 * fs, 1.0, group=fs, samples=64, iterations=3, seed=seed)


class ConstantPlanner:
    """Always plans ``action`` (one env action, repeated): a planner whose behaviour the test knows.
    Records the batch size and warm start of every call."""

    def __init__(self, action: list[float], horizon: int, frameskip: int) -> None:
        self.action, self.horizon, self.frameskip = torch.tensor(action), horizon, frameskip
        self.calls: list[tuple[int, Optional[torch.Tensor]]] = []

    def reset(self) -> None:
        self.calls = []

    def plan(self, energy, batch, init=None, device=None) -> PlanResult:
        self.calls.append((batch, init))
        a = self.action.repeat(self.frameskip).expand(batch, self.horizon, -1).clone()
        return PlanResult(actions=a, energy=energy(a[:, None])[:, 0])


def _check_consistent(res: MPCResult, env: PointEnv, max_steps: int) -> None:
    """steps, success and positions tell the same story, given that success is checked every env step."""
    E = res.episodes
    assert res.positions.shape == (E, max_steps + 1, 2) and res.steps.dtype == torch.long
    torch.testing.assert_close(res.positions[:, 0], env.position(res.starts))
    dist = (res.positions - env.position(res.goals)[:, None]).norm(dim=-1)  # (E, max_steps + 1)
    inside = dist < env.radius
    for i in range(E):
        s = int(res.steps[i])
        if res.success[i]:
            assert inside[i, s] and not inside[i, :s].any()  # reached at step s, not before
            assert (res.positions[i, s:] == res.positions[i, s]).all()  # frozen from then on
        else:
            assert s == max_steps and not inside[i].any()
    if res.success.any():
        assert res.mean_steps == pytest.approx(res.steps[res.success].float().mean().item())
    else:
        assert math.isnan(res.mean_steps)


def test_oracle_cem_reaches_every_goal_and_random_does_not():
    env = PointEnv()
    cem = run_mpc(env, OracleModel(env), _cem(), episodes=6, max_steps=MAX_STEPS, progress=False)
    assert cem.success_rate == 1.0
    _check_consistent(cem, env, MAX_STEPS)
    assert cem.steps.max() < 30  # straight lines need 9..17 steps (0.85 <= distance <= 1.7 at 0.1 per step)
    rnd = run_mpc(env, OracleModel(env), RandomPlanner(4, 2, 1.0), episodes=6, max_steps=MAX_STEPS, progress=False)
    assert rnd.success_rate <= 0.2
    _check_consistent(rnd, env, MAX_STEPS)
    assert torch.equal(rnd.starts, cem.starts) and torch.equal(rnd.goals, cem.goals)  # same tasks: same seed


@pytest.mark.parametrize("planner, fs, replan_every, energy", [
    (lambda: _cem(fs=2, horizon=3), 2, 1, "final"),
    (lambda: MPPI(3, 4, 1.0, group=2, samples=64, iterations=3), 2, 2, "min"),
    (lambda: _cem(fs=1, horizon=4), 1, 1, "sum"),
])
def test_frameskip_replanning_and_energies(planner, fs, replan_every, energy):
    env = PointEnv()
    res = run_mpc(env, OracleModel(env, fs), planner(), episodes=4, max_steps=MAX_STEPS, replan_every=replan_every,
                  energy=energy, progress=False)
    assert res.success_rate == 1.0
    _check_consistent(res, env, MAX_STEPS)
    # one call per replan_every * fs env steps while any episode is unfinished
    assert res.plan_calls == math.ceil(int(res.steps.max()) / (replan_every * fs))


def test_success_mid_block_counts_and_finished_episodes_freeze():
    # frameskip 4: one plan step is 4 env steps of (1, 0) * dt = 0.1. Episode 0 passes its goal
    # (0.2, 0) after 2 env steps, in the middle of the first block (it would be 0.2 beyond it after
    # the block); episode 1 reaches (0.9, 0) after 9.
    starts = torch.zeros(2, 2)
    goals = torch.tensor([[0.2, 0.0], [0.9, 0.0]])
    env = PointEnv(radius=0.05, tasks=(starts, goals))
    planner = ConstantPlanner([1.0, 0.0], horizon=2, frameskip=4)
    res = run_mpc(env, OracleModel(env, frameskip=4), planner, episodes=2, max_steps=20, progress=False)
    assert res.success.tolist() == [True, True] and res.steps.tolist() == [2, 9]
    torch.testing.assert_close(res.positions[0, 2:], torch.tensor([0.2, 0.0]).expand(19, 2))
    torch.testing.assert_close(res.positions[1, :10, 0], torch.arange(10) * 0.1)
    torch.testing.assert_close(res.positions[1, 9:], torch.tensor([0.9, 0.0]).expand(12, 2))
    # calls at env steps 0, 4, 8; episode 0 finished at step 2 and is no longer planned for
    assert [b for b, _ in planner.calls] == [2, 1, 1]
    assert res.plan_calls == 3 and res.plan_episode_calls == 4
    _check_consistent(res, env, 20)


def test_warm_start_is_the_shifted_previous_plan():
    env = PointEnv()
    seen = []

    class Recording(CEM):
        def plan(self, energy, batch, init=None, device=None):
            res = super().plan(energy, batch, init, device)
            seen.append((init, res.actions))
            return res

    run_mpc(env, OracleModel(env), Recording(4, 2, 1.0, samples=32, iterations=2), episodes=3, max_steps=6,
            replan_every=2, progress=False)
    assert seen[0][0] is None and len(seen) == 3
    for (_, prev), (init, _) in zip(seen, seen[1:]):  # no episode finishes in 6 steps: same rows
        torch.testing.assert_close(init, shift_plan(prev, 2))


def test_runs_are_reproducible_and_chunks_work():
    env = PointEnv()
    planner = _cem()
    a = run_mpc(env, OracleModel(env), planner, episodes=5, max_steps=MAX_STEPS, progress=False)
    b = run_mpc(env, OracleModel(env), planner, episodes=5, max_steps=MAX_STEPS, progress=False)  # reset() inside
    assert torch.equal(a.steps, b.steps) and torch.equal(a.positions, b.positions)
    chunked = run_mpc(env, OracleModel(env), planner, episodes=5, max_steps=MAX_STEPS, batch=2, progress=False)
    assert torch.equal(chunked.starts, a.starts) and chunked.success_rate == 1.0
    _check_consistent(chunked, env, MAX_STEPS)
    assert chunked.plan_calls > a.plan_calls  # three chunks planned one after another
    other = run_mpc(env, OracleModel(env), planner, episodes=5, max_steps=MAX_STEPS, seed=1, progress=False)
    assert not torch.equal(other.starts, a.starts)


def test_result_numbers():
    res = MPCResult(success=torch.tensor([True, False, True]), steps=torch.tensor([4, 10, 8]),
                    positions=torch.zeros(3, 11, 2), starts=torch.zeros(3, 2), goals=torch.ones(3, 2),
                    plan_seconds_total=6.0, plan_calls=5, plan_episode_calls=12)
    s = res.summary()
    assert s == {"episodes": 3.0, "success_rate": 2 / 3, "mean_steps": 6.0, "plan_seconds_total": 6.0,
                 "plan_calls": 5.0, "seconds_per_episode": 2.0, "seconds_per_step": 0.5}
    assert all(type(v) is float for v in s.values())
    none = MPCResult(torch.tensor([False]), torch.tensor([10]), torch.zeros(1, 11, 2), torch.zeros(1, 2),
                     torch.ones(1, 2), 0.0, 0, 0)
    assert math.isnan(none.mean_steps) and math.isnan(none.seconds_per_step)


def test_oracle_model_rollout_and_distance():
    env = PointEnv()
    model = OracleModel(env, frameskip=2)
    z = torch.tensor([[0.0, 0.0], [0.5, 0.5]])  # (N=2, S)
    acts = torch.zeros(2, 3, 2, 4)  # (N, K=3, H=2, 2 env actions of 2)
    acts[:, 1, :, 0::2] = 1.0  # candidate 1: +x at full speed, 4 env steps
    acts[:, 2, 0, :2] = torch.tensor([30.0, 40.0])  # candidate 2: one over-long action, clipped to (0.6, 0.8)
    pred = model.rollout(z, acts)
    assert pred.shape == (2, 3, 2, 2)
    torch.testing.assert_close(pred[:, 0], z[:, None].expand(2, 2, 2))
    torch.testing.assert_close(pred[0, 1], torch.tensor([[0.2, 0.0], [0.4, 0.0]]))
    torch.testing.assert_close(pred[0, 2, 1], torch.tensor([0.06, 0.08]))
    d = model.distance(pred, torch.tensor([[0.4, 0.0], [0.5, 0.5]]))
    assert d.shape == (2, 3, 2)
    torch.testing.assert_close(d[0, 1], torch.tensor([0.2, 0.0]))
    torch.testing.assert_close(d[1, 0], torch.zeros(2))
    with pytest.raises(ValueError, match="frameskip"):
        model.rollout(z, torch.zeros(2, 3, 2, 2))


def test_reduce_distances():
    d = torch.tensor([[[3.0, 1.0, 2.0]]])
    assert [reduce_distances(d, k).item() for k in ("final", "sum", "min")] == [2.0, 6.0, 1.0]
    with pytest.raises(ValueError, match="'max'"):
        reduce_distances(d, "max")


@pytest.mark.parametrize("kwargs, match", [
    ({"energy": "max"}, "'max'"), ({"episodes": 0}, "episodes"), ({"replan_every": 0}, "replan_every"),
    ({"max_steps": 0}, "max_steps"), ({"batch": 0}, "batch"),
    ({"replan_every": 5}, r"horizon >= replan_every=5"),  # the planner's horizon is 4
])
def test_invalid_mpc_arguments(kwargs, match):
    env = PointEnv()
    args = {"episodes": 2, "max_steps": 5, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        run_mpc(env, OracleModel(env), _cem(), **args)


def test_planner_action_dim_must_match_frameskip():
    env = PointEnv()
    with pytest.raises(ValueError, match=r"frameskip \* env.action_dim = 2 \* 2"):
        run_mpc(env, OracleModel(env, frameskip=2), RandomPlanner(4, 2, 1.0), episodes=2, max_steps=5,
                progress=False)


def test_task_solved_at_the_start_takes_zero_steps():
    env = PointEnv(tasks=(torch.tensor([[0.5, 0.5], [0.0, 0.0]]), torch.tensor([[0.5, 0.5], [0.5, 0.0]])))
    res = run_mpc(env, OracleModel(env), _cem(), episodes=2, max_steps=MAX_STEPS, progress=False)
    assert res.success.tolist() == [True, True] and res.steps[0].item() == 0
    _check_consistent(res, env, MAX_STEPS)


class _CudaPointEnv(PointEnv):
    def sample_tasks(self, n, generator):
        return tuple(x.cuda() for x in super().sample_tasks(n, generator))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("make", [lambda: CEM(4, 2, 1.0, samples=64, iterations=3),
                                  lambda: MPPI(4, 2, 1.0, samples=64, iterations=3)])
def test_planning_on_cuda(make):
    planner = make()
    c = torch.full((2, 4, 2), 0.3, device="cuda")
    energy = lambda x: (x - c[:, None]).square().sum((-1, -2))  # noqa: E731
    first = planner.plan(energy, 2, device="cuda")
    assert first.actions.device.type == "cuda" and first.energy.device.type == "cuda"
    assert not torch.equal(planner.plan(energy, 2, device="cuda").actions, first.actions)  # the stream continues
    planner.reset()
    assert torch.equal(planner.plan(energy, 2, device="cuda").actions, first.actions)
    env = _CudaPointEnv()
    res = run_mpc(env, OracleModel(env), make(), episodes=4, max_steps=MAX_STEPS, progress=False)
    assert res.success_rate == 1.0 and res.plan_seconds_total > 0
    _check_consistent(res, env, MAX_STEPS)


def test_mpc_runs_on_the_one_env_type():
    """run_mpc takes an openjepa.envs Env (there is no second, planning-only Env type): tasks come from
    env.sample_tasks under the seed, and the executed steps are env.step."""
    from openjepa import planning
    from openjepa.envs import Env, make_env
    from openjepa.planning import mpc

    assert planning.Env is Env and mpc.Env is Env  # the name mpc annotates with is the envs class
    env = make_env("point_mass", img_size=8)
    planner = ConstantPlanner([0.6, -0.8], horizon=2, frameskip=1)
    res = run_mpc(env, OracleModel(env), planner, episodes=3, max_steps=2, seed=4, progress=False)
    starts, goals = env.sample_tasks(3, torch.Generator().manual_seed(4))
    assert torch.equal(res.starts, starts) and torch.equal(res.goals, goals)
    s1 = env.step(starts, torch.tensor([[0.6, -0.8]]).expand(3, 2))
    torch.testing.assert_close(res.positions[:, 1], env.position(s1))
    assert not res.success.any() and res.steps.tolist() == [2, 2, 2]  # min_task_distance 16 >> 2 steps
