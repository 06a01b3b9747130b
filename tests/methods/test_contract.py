"""Every registered image method honours the contract of methods/base.py (timm-style: a new method is tested
automatically), and what it exports loads back as the same encoder."""

from __future__ import annotations

import pytest
import torch

from openjepa.config import load_config
from openjepa.data import build_dataset, prepare_config
from openjepa.engine.runs import load_encoder
from openjepa.errors import ConfigError
from openjepa.eval.registry import EVALUATIONS
from openjepa.report import pipeline  # noqa: F401  (registers every evaluation)
from openjepa.interop import export_encoder
from openjepa.methods import METHODS, JEPAMethod, build_method, check_config
from tests.tiny import tiny

EXTRA = {"lejepa": ["sigreg.weight=0.05", "views.num_local=1"]}
IMAGE_METHODS = [n for n in METHODS if "image" in METHODS.get(n).data_kinds]


def _setup(name: str, tmp_path, *extra: str):
    cfg = load_config(None, tiny(tmp_path / name, f"train.method={name}", *EXTRA.get(name, []), *extra))
    check_config(cfg)
    prepare_config(cfg)
    method = build_method(cfg, 10)
    pipe = method.data_pipeline(cfg)
    ds = build_dataset(cfg.data, "train", cfg.model.img_size, seed=cfg.seed)
    if pipe.transform is not None:
        ds.transform = pipe.transform
    batch = pipe.collate([(*ds[i], 3, i) for i in range(6)])
    return cfg, method, batch


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_registered_method_honours_the_contract(name, tmp_path):
    cfg, method, batch = _setup(name, tmp_path)
    assert isinstance(method, JEPAMethod) and method.evaluation in EVALUATIONS
    assert method.batch_size(batch) == 6 and batch["step"] == 3
    out = method.training_step(batch, 3)
    assert out.loss.ndim == 0 and out.loss.requires_grad
    assert out.features.shape == (6, method.feature_dim) and not out.features.requires_grad
    assert all(not torch.is_tensor(v) or not v.requires_grad for v in out.metrics.values())
    x = build_dataset(cfg.data, "test", cfg.model.img_size, seed=0)[0][0][None]
    tokens = method.encode(x, "target")
    assert tokens.ndim == 3 and tokens.shape[-1] == method.eval_encoder("target").embed_dim
    assert method.has_teacher == (method.eval_encoder("target") is not method.eval_encoder("context"))
    with pytest.raises(ConfigError, match="target, context"):
        method.eval_encoder("student")
    assert method.pretrained_sources(cfg) == {}


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_exported_encoder_loads_back_with_the_same_features(name, tmp_path):
    cfg, method, _ = _setup(name, tmp_path)
    path = export_encoder(method.eval(), cfg, tmp_path / "encoder.safetensors")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    x = torch.randn(2, 3, cfg.model.img_size, cfg.model.img_size)
    assert torch.equal(load_encoder(path)(x), method.encode(x, "target"))


def test_ijepa_logs_its_ema_momentum_and_online_targets_do_not(tmp_path):
    _, method, batch = _setup("ijepa", tmp_path, "optim.ema=[0.9,1.0]")
    assert method.training_step(batch, 5).metrics["ema"] == pytest.approx(0.9 + 0.1 * 5 / 10)
    _, online, batch = _setup("ijepa", tmp_path, "train.target=online", "sigreg.weight=0.05")
    assert "ema" not in online.training_step(batch, 5).metrics and not online.has_teacher


def test_a_method_and_dataset_of_different_kinds_are_refused_by_key():
    with pytest.raises(ConfigError, match="data.name from: trajectories"):
        check_config(load_config(None, ["train.method=acjepa", "sigreg.weight=0.1"]))
    with pytest.raises(ConfigError, match=r"train.method='jepa' is not a registered method \(did you mean 'ijepa'"):
        check_config(load_config(None, ["train.method=jepa"]))


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
