"""eval.batch_size and eval.precision: validated by key, used by feature extraction, part of the cache key."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from openjepa.config import ConfigError, load_config
from openjepa.eval.features import extract
from openjepa.eval.frozen import _FeatureSource, eval_file_name


def test_eval_precision_and_batch_size_are_checked_by_key():
    cfg = load_config(None, ["eval.precision=bf16", "eval.batch_size=32"])
    assert (cfg.eval.precision, cfg.eval.batch_size) == ("bf16", 32)
    assert (load_config(None, []).eval.precision, load_config(None, []).eval.batch_size) == ("auto", 256)
    with pytest.raises(ConfigError, match=r"eval.precision='fp16' is not valid; choose one of: auto, fp32, bf16"):
        load_config(None, ["eval.precision=fp16"])
    with pytest.raises(ConfigError, match=r"eval.batch_size=0 must be at least 1"):
        load_config(None, ["eval.batch_size=0"])


def test_extract_uses_the_precision_and_any_batch_size():
    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(16, 8)
    x, y = torch.randn(10, 16, generator=g), torch.arange(10)
    exact = lin(x).detach()
    loader = DataLoader(TensorDataset(x, y), batch_size=3)
    fp32 = extract(lin, loader, "cpu", progress=False, precision="fp32")
    torch.testing.assert_close(fp32.x, exact, rtol=1e-6, atol=1e-6)  # auto on CPU is fp32 too
    assert torch.equal(extract(lin, loader, "cpu", progress=False, precision="auto").x, fp32.x)
    bf16 = extract(lin, loader, "cpu", progress=False, precision="bf16").x
    ref = torch.nn.functional.linear(x.bfloat16(), lin.weight.bfloat16(), lin.bias.bfloat16()).float()
    torch.testing.assert_close(bf16, ref, rtol=0, atol=1e-2)  # bf16 autocast: about 3 significant digits
    assert (bf16 - exact).abs().max() > 1e-4  # ... so not the fp32 result


def test_cache_key_holds_the_batch_size_and_resolved_precision():
    cfg = load_config(None, ["eval.batch_size=64"])
    key = _FeatureSource(cfg, torch.device("cpu"), None, False).key("x", "train", "w", 2)
    assert (key["batch_size"], key["precision"]) == (64, "fp32")  # auto resolves to fp32 on the CPU
    cfg.eval.precision = "bf16"
    assert _FeatureSource(cfg, torch.device("cpu"), None, False).key("x", "train", "w", 2)["precision"] == "bf16"


def test_eval_file_name_is_per_protocol_set():
    assert eval_file_name(300, "target", ["knn", "attentive"]) == "eval_step00000300_target_attentive-knn.json"
    assert eval_file_name(300, "target", ["attentive", "knn"]) == eval_file_name(300, "target", ["knn", "attentive"])
    assert eval_file_name(3, "context", ["linear"]) == "eval_step00000003_context_linear.json"


def test_probe_progress_bars_count_every_training_step(capsys):
    from openjepa.eval.attentive import attentive_probe
    from openjepa.eval.linear import linear_probe

    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = torch.randn(40, 4, generator=g) + y[:, None]
    # The grid trains on the 36 left after holding out 10% (2 epochs x 3 batches of 16), then the
    # selected head on all 40 (2 x 3): 12 steps.
    linear_probe(x, y, x, y, epochs=2, batch_size=16, progress=True, desc="linear probe: blobs")
    err = capsys.readouterr().err
    assert "linear probe: blobs" in err and "12/12" in err and "step/s" in err
    attentive_probe(x[:, None, :].repeat(1, 3, 1), y, x[:, None, :], y, epochs=1, batch_size=16, lrs=(1e-3,),
                    progress=True)
    err = capsys.readouterr().err
    assert "attentive probe" in err and "3/3" in err
    linear_probe(x, y, x, y, epochs=2, batch_size=16)
    assert capsys.readouterr().err == ""  # quiet by default
