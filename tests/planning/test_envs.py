"""The pure-torch batched environments: dynamics, walls, sampling, rendering, the stateful batch."""

import pytest
import torch

from openjepa.config import ConfigError
from openjepa.envs import EnvBatch, PointMass, TwoRooms, env_names, make_env
from openjepa.envs.base import AGENT


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_and_kwargs_roundtrip():
    assert env_names() == ["point_mass", "two_rooms"]
    for name in env_names():
        env = make_env(name, img_size=32)
        assert env.name == name and env.img_size == 32
        again = make_env(name, **env.kwargs())
        assert again.kwargs() == env.kwargs()
    with pytest.raises(ConfigError, match="point_mass, two_rooms"):
        make_env("three_rooms")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) colour; valid settings: size, img_size"):
        make_env("two_rooms", colour="red")


def test_two_rooms_validation():
    with pytest.raises(ConfigError, match="max_action"):
        TwoRooms(max_action=7.0)  # wall 4 + 2 * 1.5 = 7: one step could jump it
    with pytest.raises(ValueError, match="door_width"):
        TwoRooms(door_width=3.0)
    with pytest.raises(ValueError, match="door"):
        TwoRooms(door_center=2.0)
    with pytest.raises(ValueError, match="damping"):
        PointMass(damping=1.0)


@pytest.mark.parametrize("name", ["two_rooms", "point_mass"])
def test_clip_action_exact_norm_and_nan(name):
    env = make_env(name)
    m = env.max_action
    a = torch.tensor([[30.0, -40.0], [0.9 * m, 1.2 * m], [0.1, 0.2], [0.0, 0.0], [-m, 0.0]])
    c = env.clip_action(a)
    assert torch.allclose(c[:2].norm(dim=1), torch.tensor([m, m]), rtol=1e-6, atol=0)
    assert torch.allclose(c[0] / c[0].norm(), torch.tensor([0.6, -0.8]))  # direction kept
    assert torch.allclose(c[1] / c[1].norm(), torch.tensor([0.6, 0.8]))
    assert torch.equal(c[2:], a[2:])  # actions within the disk are unchanged
    with pytest.raises(ValueError, match="finite"):
        env.clip_action(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        env.clip_action(torch.zeros(3))
    # A clipped step moves at most max_action.
    s = env.sample_free(64, gen())
    nxt = env.step(s, 100 * torch.randn(64, 2, generator=gen(1)))
    if name == "two_rooms":
        assert (env.position(nxt) - env.position(s)).norm(dim=1).max() <= env.max_action * (1 + 1e-6)


def test_wall_blocks_outside_the_door():
    env = TwoRooms()
    y = torch.tensor([5.0, 20.0, 45.0, 60.0])  # far above / below the door at 26..38
    left = torch.stack([torch.full_like(y, 10.0), y], 1)
    right = torch.stack([torch.full_like(y, 54.0), y], 1)
    away = torch.sign(y - 32) * 0.3  # slide along the wall, away from the door
    for s, dx in ((left, 1.0), (right, -1.0)):
        for _ in range(40):
            s = env.step(s, torch.stack([torch.full_like(y, dx * 2.4), away], 1))
            side = s[:, 0] < 32 if dx > 0 else s[:, 0] > 32
            assert side.all()
        wall_face = 30.0 - 1.5 if dx > 0 else 34.0 + 1.5
        assert torch.allclose(s[:, 0], torch.full((4,), wall_face))  # pressed against the wall
        assert ((s[:, 1] - y) * away > 0).all()  # and slid along it


def test_door_passes_both_ways():
    env = TwoRooms()
    s = torch.tensor([[10.0, 32.0], [54.0, 30.0]])
    a = torch.tensor([[2.0, 0.0], [-2.0, 0.0]])
    for _ in range(30):
        s = env.step(s, a)
    assert torch.equal(env.room(s), torch.tensor([1, 0]))
    assert s[0, 0] > 50 and s[1, 0] < 14


def test_door_edges_stop_vertical_motion_in_the_corridor():
    env = TwoRooms()
    s = torch.tensor([[32.0, 32.0]])
    for _ in range(10):
        s = env.step(s, torch.tensor([[0.0, 2.0]]))
    assert torch.allclose(s, torch.tensor([[32.0, 38.0 - 1.5]]))


@pytest.mark.parametrize("name", ["two_rooms", "point_mass"])
def test_stays_in_bounds_and_free(name):
    env = make_env(name)
    s = env.sample_free(200, gen())
    g = gen(2)
    for _ in range(60):
        s = env.step(s, 3 * torch.randn(200, 2, generator=g))
        p = env.position(s)
        assert (p >= env.agent_radius).all() and (p <= env.size - env.agent_radius).all()
        if name == "two_rooms":
            assert _free(env, p).all()


def _free(env, p):
    """Not inside a wall expanded by the agent radius."""
    r, ok = env.agent_radius, torch.ones(p.shape[0], dtype=torch.bool)
    for x0, y0, x1, y1 in env.walls():
        ok &= ~((p[:, 0] > x0 - r) & (p[:, 0] < x1 + r) & (p[:, 1] > y0 - r) & (p[:, 1] < y1 + r))
    return ok


@pytest.mark.parametrize("name", ["two_rooms", "point_mass"])
def test_batch_equals_single(name):
    env = make_env(name)
    s = env.sample_free(32, gen())
    if name == "point_mass":
        s[:, 2:] = torch.randn(32, 2, generator=gen(3))
    for t in range(5):
        a = 3 * torch.randn(32, 2, generator=gen(10 + t))
        batch = env.step(s, a)
        single = torch.cat([env.step(s[i:i + 1], a[i:i + 1]) for i in range(32)])
        assert torch.equal(batch, single)
        s = batch


def test_point_mass_dynamics_by_hand():
    env = PointMass(damping=0.8, max_action=1.0)
    s = torch.tensor([[10.0, 20.0, 1.0, -2.0], [62.0, 1.6, 1.0, -0.5]])
    a = torch.tensor([[0.6, 0.8], [3.0, 0.0]])  # the second is clipped to (1, 0)
    n = env.step(s, a)
    # row 0: v = 0.8 * (1, -2) + (0.6, 0.8) = (1.4, -0.8); p = (11.4, 19.2)
    assert torch.allclose(n[0], torch.tensor([11.4, 19.2, 1.4, -0.8]))
    # row 1: v = (0.8 + 1, -0.4) = (1.8, -0.4); p = (63.8, 1.2) -> clamped to (62.5, 1.5), both v zeroed
    assert torch.allclose(n[1], torch.tensor([62.5, 1.5, 0.0, 0.0]))
    # no action: speed decays geometrically
    n = env.step(torch.tensor([[30.0, 30.0, 2.0, 0.0]]), torch.zeros(1, 2))
    assert torch.allclose(n, torch.tensor([[31.6, 30.0, 1.6, 0.0]]))


def test_sample_free_and_tasks():
    env = TwoRooms()
    p = env.sample_free(500, gen())
    assert _free(env, p).all() and (p >= 1.5).all() and (p <= 62.5).all()
    assert torch.equal(p, env.sample_free(500, gen()))  # deterministic given the generator
    start, goal = env.sample_tasks(300, gen(1))
    assert (env.room(start) != env.room(goal)).all()
    assert 0.3 < env.room(start).float().mean() < 0.7  # both rooms start
    assert _free(env, start).all() and _free(env, goal).all()
    assert ((start - goal).norm(dim=1) >= env.min_task_distance).all()
    assert not env.success(start, goal).any()
    pm = PointMass()
    s, g = pm.sample_tasks(100, gen())
    assert (s[:, 2:] == 0).all() and (g[:, 2:] == 0).all()
    assert ((s[:, :2] - g[:, :2]).norm(dim=1) >= pm.min_task_distance).all()


@pytest.mark.parametrize("name,img", [("two_rooms", 64), ("two_rooms", 32), ("point_mass", 48)])
def test_render_shows_agent_at_position(name, img):
    env = make_env(name, img_size=img)
    s = env.sample_free(6, gen())
    x = env.render(s)
    assert x.shape == (6, 3, img, img) and x.dtype == torch.uint8
    is_agent = (x == torch.tensor(AGENT, dtype=torch.uint8)[None, :, None, None]).all(1)  # (N, H, W)
    for i in range(6):
        ys, xs = torch.nonzero(is_agent[i], as_tuple=True)
        assert len(xs) >= 9 and xs.max() - xs.min() >= 2 and ys.max() - ys.min() >= 2  # >= 3 px across
        centre = torch.stack([xs.float().mean(), ys.float().mean()]) + 0.5  # pixel units, x then y
        assert (centre * env.size / img - env.position(s)[i]).abs().max() < 1.5 * env.size / img
    if name == "two_rooms":
        wall_px = x[0, :, 2, img // 2]  # the wall's centre column, near the top: wall colour
        assert not torch.equal(wall_px, x[0, :, 2, 2])


def test_env_batch_reset_step_and_goal():
    env = TwoRooms(img_size=32)
    b = EnvBatch(env, 8, seed=0)
    o1 = b.reset(seed=5)
    s1, g1 = b.state.clone(), b.goal.clone()
    assert o1.shape == (8, 3, 32, 32) and o1.dtype == torch.uint8
    assert torch.equal(b.goal_obs(), env.render(g1))
    b.reset(seed=5)
    assert torch.equal(b.state, s1) and torch.equal(b.goal, g1)
    b.reset(seed=6)
    assert not torch.equal(b.state, s1)
    b.reset()  # continues the generator: new tasks
    assert not torch.equal(b.goal, g1)
    b.reset(seed=5)
    a = torch.randn(8, 2, generator=gen())
    o = b.step(a)
    assert torch.equal(b.state, env.step(s1, a)) and torch.equal(o, env.render(b.state))
    b.state = b.goal.clone()
    assert b.reached().all()
    b.state = b.goal + torch.tensor([env.goal_radius * 1.01, 0.0])
    assert not b.reached().any()
