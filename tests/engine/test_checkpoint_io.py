"""Checkpoint reads and writes: only a bad file counts as corrupt; written files get the normal mode."""

import contextlib
import io
import os
import pickle

import pytest
import torch
from safetensors import safe_open

from openjepa.engine import checkpoint as ckpt
from openjepa.eval import cache
from openjepa.eval.features import Features


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _two_checkpoints(tmp_path):
    d = tmp_path / "checkpoints"
    for s in (1, 2):
        ckpt.save_checkpoint({"step": s}, d, s, keep_last=5)
    return d


# --- what counts as an unreadable file ---------------------------------------------------------------

@pytest.mark.parametrize("error", [MemoryError, TypeError, AttributeError, torch.cuda.OutOfMemoryError])
def test_bugs_and_resource_errors_propagate_instead_of_falling_back(tmp_path, monkeypatch, error):
    d = _two_checkpoints(tmp_path)
    real_load = torch.load

    def load(path, *args, **kwargs):  # only the newest fails; the older one would be "fallen back" to
        if str(path).endswith("step_00000002.pt"):
            raise error("not a property of the file")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    with pytest.raises(error, match="not a property of the file"):
        ckpt.load_latest(d)


def test_a_decode_error_still_falls_back(tmp_path, monkeypatch):
    d = _two_checkpoints(tmp_path)
    real_load = torch.load

    def load(path, *args, **kwargs):
        if str(path).endswith("step_00000002.pt"):
            raise RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    path, state = ckpt.load_latest(d)
    assert path.name == "step_00000001.pt" and state["step"] == 1


class Foreign:
    pass


@pytest.mark.parametrize("data", [pickle.dumps(Foreign(), protocol=2), pickle.dumps({"step": 1}, protocol=2), b"", b"PK\x03\x04"])
def test_foreign_pickles_and_stubs_are_named_checkpoint_errors(tmp_path, data):
    path = tmp_path / "step_00000001.pt"
    path.write_bytes(data)
    with pytest.raises(ckpt.CheckpointError, match=str(path)):
        ckpt.load_file(path)


def test_truncated_zip_checkpoint_is_a_named_checkpoint_error(tmp_path):
    buf = io.BytesIO()
    torch.save({"step": 1, "w": torch.randn(8, 8)}, buf)
    path = tmp_path / "step_00000001.pt"
    for cut in (10, len(buf.getvalue()) // 2, len(buf.getvalue()) - 1):
        path.write_bytes(buf.getvalue()[:cut])
        with pytest.raises(ckpt.CheckpointError, match=str(path)):
            ckpt.load_file(path)


# --- file modes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_safetensors_and_checkpoints_get_the_mode_open_gives(tmp_path, mask):
    want = 0o666 & ~mask
    with umask(mask):
        st = ckpt.save_safetensors({"w": torch.arange(6.0).reshape(2, 3)}, tmp_path / "sub" / "encoder.safetensors",
                                   metadata={"format": "x"})
        pt = ckpt.save_checkpoint({"step": 1}, tmp_path / "ck", 1)
        feats = cache.save_features(tmp_path / "features" / "a_train.safetensors",
                                    Features(torch.randn(3, 2), torch.arange(3)), {"split": "train"})
        with open(tmp_path / "plain", "wb"):
            pass
    assert os.stat(tmp_path / "plain").st_mode & 0o777 == want  # what a normal open() gives
    for path in (st, pt, feats):
        assert os.stat(path).st_mode & 0o777 == want, (path, oct(os.stat(path).st_mode))
    with safe_open(str(st), framework="pt") as f:
        assert f.metadata() == {"format": "x"}
        assert torch.equal(f.get_tensor("w"), torch.arange(6.0).reshape(2, 3))
    assert sorted(p.name for p in st.parent.iterdir()) == ["encoder.safetensors"]  # no temporary file left


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_feature_exports_and_trajectory_shards_get_the_mode_open_gives(tmp_path, mask):
    from openjepa.eval.embed import Embeddings, save_embeddings
    from openjepa.planning.collect import collect

    want = 0o666 & ~mask
    emb = Embeddings(torch.randn(2, 3), ["a.png", "b.png"])
    with umask(mask):
        written = save_embeddings(emb, tmp_path / "emb" / "feats.safetensors", metadata={"pool": "mean"})
        out = collect("point_mass", 3, 2, tmp_path / "traj", env_kwargs={"img_size": 8}, shard_size=2,
                      progress=False)
    shards = sorted(out.glob("*.safetensors"))
    assert [p.name for p in shards] == ["shard_00000.safetensors", "shard_00001.safetensors"]
    for path in (*written, *shards, out / "meta.json"):
        assert os.stat(path).st_mode & 0o777 == want, (path, oct(os.stat(path).st_mode))
    with safe_open(str(written[0]), framework="pt") as f:
        assert f.metadata()["pool"] == "mean" and torch.equal(f.get_tensor("features"), emb.features)
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["feats.safetensors", "feats.safetensors.files.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", *(p.name for p in shards)]  # no temporary file


def test_save_safetensors_replaces_atomically_and_leaves_no_temporary_on_failure(tmp_path):
    path = ckpt.save_safetensors({"w": torch.zeros(2)}, tmp_path / "e.safetensors")
    with pytest.raises(ValueError, match="non contiguous"):
        ckpt.save_safetensors({"w": torch.zeros(4)[::2]}, path)  # safetensors refuses non-contiguous tensors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.safetensors"]
    with safe_open(str(path), framework="pt") as f:
        assert torch.equal(f.get_tensor("w"), torch.zeros(2))  # the old file is intact
