import json

import torch
from safetensors import safe_open

from openjepa.cli import main
from openjepa.eval import cache
from openjepa.eval.features import Features
from openjepa.eval.frozen import evaluate_checkpoint
from openjepa.models.vit import VisionTransformer
from tests.tiny import tiny


def test_save_load_roundtrip_stale_key_and_missing_tokens(tmp_path, capsys):
    f = Features(torch.randn(5, 3), torch.arange(5), torch.randn(5, 4, 3).half())
    key = {"source": "step00000002_target", "split": "train", "step": 2, "max_items": 5, "img_size": (16, 16)}
    path = cache.save_features(cache.cache_path(tmp_path, "step00000002_target", "train"), f, key)
    assert path.name == "step00000002_target_train.safetensors"
    got = cache.load_features(path, key, need_tokens=True)
    assert torch.equal(got.x, f.x) and torch.equal(got.y, f.y) and torch.equal(got.tokens, f.tokens)
    assert cache.load_features(path, key).tokens is None  # tokens only read when needed
    assert cache.load_features(path, {**key, "max_items": 4}) is None
    assert "stale (differs in max_items)" in capsys.readouterr().out
    cache.save_features(path, Features(f.x, f.y), key)
    assert cache.load_features(path, key, need_tokens=True) is None
    assert cache.load_features(tmp_path / "absent.safetensors", key) is None
    path.write_bytes(b"not a safetensors file")
    assert cache.load_features(path, key) is None and "cannot read" in capsys.readouterr().out


def test_fingerprint_tracks_weights():
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    assert cache.fingerprint(a) == cache.fingerprint(b)
    with torch.no_grad():
        b.weight[0, 0] += 1e-3
    assert cache.fingerprint(a) != cache.fingerprint(b)


def test_second_eval_hits_the_cache_and_a_changed_cap_does_not(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["train", *tiny(run, "train.steps=2", "eval.at_end=false")]) == 0
    calls = []
    forward = VisionTransformer.forward
    monkeypatch.setattr(VisionTransformer, "forward", lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    over = ["eval.baselines=true", "eval.probe_epochs=2"]
    first = evaluate_checkpoint(run, over, protocols=["knn"])
    assert calls  # trained and random-init encoders ran
    files = sorted(p.name for p in (run / "features").iterdir())
    assert files == [f"{s}_{split}.safetensors" for s in ("baseline-pixels", "baseline-random", "step00000002_target")
                     for split in ("test", "train")]
    calls.clear()
    second = evaluate_checkpoint(run, over, protocols=["knn"])
    assert calls == []  # every feature set came from the cache
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(second) == drop(first)
    evaluate_checkpoint(run, [*over, "eval.max_train_samples=100"], protocols=["knn"])
    n_train_only = len(calls)
    assert n_train_only > 0  # the train split was re-extracted ...
    calls.clear()
    evaluate_checkpoint(run, [*over, "eval.max_train_samples=100"], protocols=["knn"])
    assert calls == []  # ... and cached again
    evaluate_checkpoint(run, [*over, "eval.max_train_samples=100", "eval.attentive_epochs=1"],
                        protocols=["attentive"])
    assert len(calls) > 0  # the cache had no tokens
    with safe_open(str(run / "features" / "step00000002_target_test.safetensors"), "pt") as f:
        assert f.get_slice("tokens").get_shape() == [96, 16, 96]  # (N, T, D): 16x16 image, 4x4 patches
        assert json.loads(f.metadata()["key"])["step"] == 2
    capsys.readouterr()
