"""Trajectory collection: the files, their consistency with the environment, determinism, the CLI."""

import json

import pytest
import torch
from safetensors.torch import load_file

from openjepa.cli import main
from openjepa.config import ConfigError
from openjepa.planning.collect import POLICIES, collect, episode_generator
from openjepa.envs import make_env


def _load(out):
    meta = json.loads((out / "meta.json").read_text())
    shards = [load_file(str(out / n)) for n in meta["shards"]]
    return meta, {k: torch.cat([s[k] for s in shards]) for k in ("obs", "actions", "states")}


@pytest.mark.parametrize("name,s_dim", [("two_rooms", 2), ("point_mass", 4)])
def test_arrays_shapes_and_consistency(tmp_path, name, s_dim):
    out = collect(name, 5, 7, tmp_path / "c", seed=3, env_kwargs={"img_size": 16}, shard_size=2, progress=False)
    meta, a = _load(out)
    assert meta["shards"] == ["shard_00000.safetensors", "shard_00001.safetensors", "shard_00002.safetensors"]
    assert (meta["format"], meta["version"], meta["env"], meta["episodes"], meta["steps"], meta["seed"]) == \
        ("openjepa.trajectories", 1, name, 5, 7, 3)
    assert (meta["policy"], meta["img_size"], meta["state_dim"], meta["action_dim"]) == ("noisy", 16, s_dim, 2)
    assert set(meta["arrays"]) == {"obs", "actions", "states"}
    assert a["obs"].shape == (5, 8, 3, 16, 16) and a["obs"].dtype == torch.uint8
    assert a["actions"].shape == (5, 7, 2) and a["actions"].dtype == torch.float32
    assert a["states"].shape == (5, 8, s_dim) and a["states"].dtype == torch.float32
    env = make_env(meta["env"], **meta["env_kwargs"])
    s = a["states"][:, 0]
    for t in range(7):  # re-stepping the env with the stored actions gives the stored states, bit for bit
        s = env.step(s, a["actions"][:, t])
        assert torch.equal(s, a["states"][:, t + 1])
        assert torch.equal(a["obs"][:, t + 1], env.render(s))
    assert torch.equal(a["obs"][:, 0], env.render(a["states"][:, 0]))
    norms = a["actions"].norm(dim=-1)
    assert (norms <= env.max_action * (1 + 1e-5)).all() and (norms >= 0.5 * env.max_action * (1 - 1e-5)).all()


def test_deterministic_by_seed_not_by_shard_size(tmp_path):
    kw = dict(env_kwargs={"img_size": 16}, progress=False)
    collect("two_rooms", 4, 6, tmp_path / "a", seed=1, shard_size=4, **kw)
    collect("two_rooms", 4, 6, tmp_path / "b", seed=1, shard_size=4, **kw)
    collect("two_rooms", 4, 6, tmp_path / "c", seed=1, shard_size=3, **kw)
    collect("two_rooms", 4, 6, tmp_path / "d", seed=2, shard_size=4, **kw)
    fa = (tmp_path / "a" / "shard_00000.safetensors").read_bytes()
    assert fa == (tmp_path / "b" / "shard_00000.safetensors").read_bytes()
    assert (tmp_path / "a" / "meta.json").read_text() == (tmp_path / "b" / "meta.json").read_text()
    a, c, d = (_load(tmp_path / x)[1] for x in "acd")
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert not torch.equal(a["states"], d["states"])


def test_random_policy_in_disk_and_noisy_persistence():
    env = make_env("two_rooms")
    r = POLICIES["random"](env, 1, 2000, episode_generator(0, 0))[0]
    assert (r.norm(dim=1) <= env.max_action * (1 + 1e-6)).all()
    assert r.norm(dim=1).mean() > 0.6 * env.max_action  # area-uniform: mean radius 2/3
    n = POLICIES["noisy"](env, 1, 2000, episode_generator(0, 0))[0]
    cos = torch.nn.functional.cosine_similarity(n[1:], n[:-1], dim=1)
    assert cos.mean() > 0.9  # the heading persists


def test_noisy_policy_crosses_the_door_sometimes(tmp_path):
    out = collect("two_rooms", 40, 100, tmp_path / "c", env_kwargs={"img_size": 8}, progress=False)
    _, a = _load(out)
    env = make_env("two_rooms")
    rooms = env.room(a["states"].reshape(-1, 2)).reshape(40, 101)
    assert (rooms != rooms[:, :1]).any(1).sum() >= 3
    assert 0.25 < rooms.float().mean() < 0.75


def test_overwrite_rules(tmp_path):
    out = tmp_path / "c"
    collect("two_rooms", 3, 2, out, env_kwargs={"img_size": 8}, shard_size=1, progress=False)
    collect("two_rooms", 2, 2, out, env_kwargs={"img_size": 8}, shard_size=2, progress=False)  # replaces it
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "shard_00000.safetensors"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        collect("two_rooms", 1, 2, tmp_path / "other", progress=False)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "meta.json").write_text('{"format": "something else"}')
    with pytest.raises(FileExistsError, match="not a trajectory collection"):
        collect("two_rooms", 1, 2, tmp_path / "m", progress=False)
    assert (tmp_path / "m" / "meta.json").exists() and (tmp_path / "other" / "notes.txt").exists()
    with pytest.raises(ConfigError, match="noisy, random"):
        collect("two_rooms", 1, 2, tmp_path / "x", policy="greedy", progress=False)
    with pytest.raises(ConfigError, match="episodes"):
        collect("two_rooms", 0, 2, tmp_path / "x", progress=False)


def test_a_killed_shard_write_does_not_block_the_next_collection(tmp_path):
    out = tmp_path / "c"
    collect("two_rooms", 2, 2, out, env_kwargs={"img_size": 8}, shard_size=1, progress=False)
    (out / ".shard_00001.safetensors.tmp.4242").write_bytes(b"half a shard")  # what a SIGKILL leaves
    collect("two_rooms", 1, 2, out, env_kwargs={"img_size": 8}, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "shard_00000.safetensors"]
    (out / ".shard_0001.safetensors.tmp.1").write_bytes(b"")  # not a name collect writes: someone else's
    with pytest.raises(FileExistsError, match="shard_0001"):
        collect("two_rooms", 1, 2, out, progress=False)


def test_cli_collect_end_to_end(tmp_path, capsys):
    out = tmp_path / "data"
    args = ["collect", "two_rooms", "--episodes", "4", "--steps", "10", "--out", str(out), "--img-size", "32",
            "--seed", "7", "--policy", "random", "--shard-size", "3", "--no-progress"]
    assert main(args) == 0
    assert "4 episodes x 10 steps" in capsys.readouterr().out
    meta, a = _load(out)
    assert (meta["seed"], meta["policy"], meta["img_size"], len(meta["shards"])) == (7, "random", 32, 2)
    assert a["obs"].shape == (4, 11, 3, 32, 32)
    assert main(["collect", "three_rooms", "--episodes", "1", "--steps", "1", "--out", str(tmp_path / "x")]) == 2
    assert "point_mass, two_rooms" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "a.txt").write_text("")
    assert main(["collect", "two_rooms", "--episodes", "1", "--steps", "1", "--out", str(tmp_path / "busy")]) == 2
    assert "a.txt" in capsys.readouterr().err
