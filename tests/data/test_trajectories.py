"""TrajectoryDataset: windows, frameskip, action concatenation, episode split, errors."""

import json

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from openjepa.data.base import DataError
from openjepa.data.trajectories import TrajectoryDataset
from openjepa.planning.collect import collect

E, T = 10, 9


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    out = tmp_path_factory.mktemp("traj") / "c"
    collect("point_mass", E, T, out, seed=0, env_kwargs={"img_size": 8}, shard_size=4, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    shards = [load_file(str(out / n)) for n in meta["shards"]]
    raw = {k: torch.cat([s[k] for s in shards]) for k in ("obs", "actions", "states")}
    return out, raw


def test_windows_by_index(coll):
    out, raw = coll
    ds = TrajectoryDataset(out, num_frames=3, frameskip=2, split="all")
    assert ds.windows == T - 4 + 1 and len(ds) == E * ds.windows
    seen = set()
    for i in range(len(ds)):
        it = ds[i]
        e, t0 = it["episode"], it["start"]
        seen.add((e, t0))
        frames = [t0, t0 + 2, t0 + 4]
        assert it["obs"].shape == (3, 3, 8, 8) and it["obs"].dtype == torch.float32
        assert torch.equal(it["obs"], raw["obs"][e, frames].float() / 127.5 - 1)
        assert torch.equal(it["states"], raw["states"][e, frames])
        assert it["actions"].shape == (2, 4)
        for j in range(2):  # row j: the two env actions from frame j to frame j+1, in time order
            a = raw["actions"][e, frames[j]:frames[j] + 2]
            assert torch.equal(it["actions"][j], torch.cat([a[0], a[1]]))
    assert seen == {(e, t) for e in range(E) for t in range(T - 4 + 1)}  # every valid window, once
    assert ds[-1]["start"] == T - 4 and ds[-1]["episode"] == E - 1
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert -1 <= ds[0]["obs"].min() and ds[0]["obs"].max() <= 1


def test_frameskip_one_and_full_length(coll):
    out, raw = coll
    ds = TrajectoryDataset(out, num_frames=T + 1, split="all")
    assert len(ds) == E
    it = ds[3]
    assert torch.equal(it["actions"], raw["actions"][3]) and torch.equal(it["states"], raw["states"][3])
    with pytest.raises(DataError, match="num_frames=11"):
        TrajectoryDataset(out, num_frames=T + 2)
    with pytest.raises(DataError, match="frameskip=5"):
        TrajectoryDataset(out, num_frames=3, frameskip=5)
    with pytest.raises(DataError, match="frameskip"):
        TrajectoryDataset(out, num_frames=3, frameskip=0)
    with pytest.raises(ValueError, match="train, val, all"):
        TrajectoryDataset(out, num_frames=2, split="test")


def test_episode_split(coll):
    out, _ = coll
    tr = TrajectoryDataset(out, 2, split="train", val_fraction=0.3, seed=1)
    va = TrajectoryDataset(out, 2, split="val", val_fraction=0.3, seed=1)
    assert len(va.episodes) == 3 and not set(tr.episodes) & set(va.episodes)
    assert sorted(tr.episodes + va.episodes) == list(range(E))
    assert {tr[i]["episode"] for i in range(len(tr))} == set(tr.episodes)
    assert TrajectoryDataset(out, 2, split="val", val_fraction=0.3, seed=1).episodes == va.episodes
    assert TrajectoryDataset(out, 2, split="val", val_fraction=0.3, seed=2).episodes != va.episodes
    assert len(TrajectoryDataset(out, 2, split="val", val_fraction=0.01).episodes) == 1
    assert TrajectoryDataset(out, 2, split="val", val_fraction=0.0).episodes == []


def test_default_collate_and_env(coll):
    out, raw = coll
    ds = TrajectoryDataset(out, num_frames=4, frameskip=1, split="all")
    b = next(iter(DataLoader(ds, batch_size=5, shuffle=False)))
    assert b["obs"].shape == (5, 4, 3, 8, 8) and b["actions"].shape == (5, 3, 2) and b["states"].shape == (5, 4, 4)
    assert b["episode"].tolist() == [0] * 5 and b["start"].tolist() == [0, 1, 2, 3, 4]
    env = ds.env()
    assert env.name == "point_mass" and env.img_size == 8
    assert torch.equal(env.step(b["states"][:, 0], b["actions"][:, 0]), b["states"][:, 1])


def test_errors_name_the_file(coll, tmp_path):
    out, _ = coll
    with pytest.raises(DataError, match="meta.json not found"):
        TrajectoryDataset(tmp_path / "nowhere", 2)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="meta.json"):
        TrajectoryDataset(bad, 2)
    meta = json.loads((out / "meta.json").read_text())
    for name, content in [("truncated", (out / meta["shards"][0]).read_bytes()[:100]), ("garbage", b"\x00" * 64)]:
        d = tmp_path / name
        d.mkdir()
        (d / "meta.json").write_text(json.dumps(meta))
        for s in meta["shards"]:
            (d / s).write_bytes((out / s).read_bytes())
        (d / meta["shards"][1]).write_bytes(content)
        with pytest.raises(DataError, match="shard_00001.safetensors"):
            TrajectoryDataset(d, 2)
    (d / meta["shards"][1]).unlink()
    with pytest.raises(DataError, match="shard_00001.safetensors"):
        TrajectoryDataset(d, 2)
    d = tmp_path / "fewer"
    d.mkdir()
    (d / "meta.json").write_text(json.dumps({**meta, "episodes": E + 1}))
    for s in meta["shards"]:
        (d / s).write_bytes((out / s).read_bytes())
    with pytest.raises(DataError, match="meta.json says 11"):
        TrajectoryDataset(d, 2)
