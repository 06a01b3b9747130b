"""Online monitor: spread formula, prequential online probe, collapse warning, exact resume of its state."""

import copy
import json
import io

import numpy as np
import pytest
import torch

from openjepa.config.schema import MonitorConfig
from openjepa.engine.monitor import TrainingMonitor, spread


def test_spread_matches_numpy_and_its_extremes():
    f = torch.randn(50, 8) + 3.0
    a = f.double().numpy()
    ref = np.sqrt(np.trace(np.cov(a.T, bias=True)) / np.mean(np.sum(a * a, axis=1)))
    assert spread(f) == pytest.approx(ref, rel=1e-9)
    assert spread(torch.ones(10, 4) * 5) == pytest.approx(0.0, abs=1e-9)
    z = torch.randn(400, 4)
    assert spread(z - z.mean(0)) == pytest.approx(1.0, abs=1e-9)


def _clusters(n: int, dim: int = 8, classes: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)) * 3
    y = torch.randint(0, classes, (n,), generator=g)
    return means[y] + torch.randn(n, dim, generator=g), y


def test_online_probe_learns_and_scores_before_training():
    mon = TrainingMonitor(8, 4, MonitorConfig(buffer=64, probe_lr=1e-2))
    x, y = _clusters(32)
    before = copy.deepcopy(mon.head).train()
    mon.update(x, y)
    # Prequential: the batch is scored by the head as it was before training on that batch.
    assert mon.compute(1)["probe_acc"] == pytest.approx((before(x).argmax(1) == y).float().mean().item())
    for s in range(2, 60):
        mon.update(*_clusters(32, seed=s))
    assert mon.compute(60)["probe_acc"] > 0.9
    # Unlabelled items (-1) are ignored; no labels at all means no probe metric.
    mon.update(x, torch.full_like(y, -1))
    assert "probe_acc" not in mon.compute(61)


def test_collapse_warning_fires_once_for_collapsed_features_and_not_for_healthy_ones():
    cfg = MonitorConfig(buffer=64, collapse_ratio=0.2)
    healthy, collapsed = TrainingMonitor(8, 0, cfg), TrainingMonitor(8, 0, cfg)
    for mon in (healthy, collapsed):
        mon.update(torch.randn(64, 8) + 2.0, None)  # the reference: diverse features
    for s in range(5):
        healthy.update(torch.randn(64, 8) + 2.0, None)
        collapsed.update(torch.full((64, 8), 2.0) + 1e-3 * torch.randn(64, 8), None)
        m_h, m_c = healthy.compute(s), collapsed.compute(s)
    assert healthy.warning is None
    assert collapsed.warning is not None and collapsed.warning["step"] == 0
    assert "optim.ema" in collapsed.warning["message"] and "SIGReg" in collapsed.warning["message"]
    assert m_c["spread"] < 0.01 < m_h["spread"]


def test_monitor_state_round_trips():
    cfg = MonitorConfig(buffer=16)
    a = TrainingMonitor(8, 4, cfg)
    for s in range(3):
        a.update(*_clusters(8, seed=s))
    b = TrainingMonitor(8, 4, cfg)
    buf = io.BytesIO()
    torch.save(a.extra_state(), buf)  # as in a checkpoint, loaded safely
    b.load_extra_state(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    x, y = _clusters(8, seed=7)
    a.update(x, y), b.update(x, y)
    assert a.compute(4) == b.compute(4)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def _run(run_dir, *extra):
    from openjepa.config import load_config
    from openjepa.report.pipeline import train_and_evaluate as train
    from tests.tiny import tiny

    return train(load_config(None, tiny(run_dir, "train.steps=60", "eval.at_end=false", "monitor.every=10",
                                        "monitor.buffer=256", *extra)))


def test_a_run_driven_into_collapse_warns_and_a_healthy_one_does_not(tmp_path, capsys):
    """No EMA (the target is the online encoder) and a high learning rate collapse I-JEPA within tens of
    steps; the default tiny recipe does not."""
    from openjepa.engine.logging import read_metrics

    bad = _run(tmp_path / "bad", "optim.ema=[0.0,0.0]", "optim.lr=1e-2")
    assert bad["collapse_warning"] and "representation collapse" in bad["collapse_warning"]
    assert capsys.readouterr().out.count("WARNING: representation collapse") >= 1
    saved = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert saved["collapse"]["step"] == bad["collapse"]["step"] <= 60

    good = _run(tmp_path / "good")
    assert good["collapse_warning"] is None
    all_rows, bad = read_metrics(tmp_path / "good" / "metrics.jsonl")
    assert bad == 0
    rows = [r for r in all_rows if "rankme" in r]
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50, 60]
    assert all({"probe_acc", "spread", "rank_centred"} <= set(r) for r in rows)


def test_collapse_after_an_early_rise_is_measured_against_the_best_value():
    """Spread that first rises (as SIGReg makes it) and then falls back together is a collapse."""
    mon = TrainingMonitor(8, 0, MonitorConfig(buffer=64, collapse_ratio=0.2))
    mon.update(torch.randn(64, 8) * 0.1 + 2.0, None)  # reference: low spread around a large mean
    mon.update(torch.randn(64, 8), None)  # spread rises to ~1
    assert mon.compute(1) and mon.warning is None
    mon.update(torch.randn(64, 8) * 0.1 + 2.0, None)  # back to the low, initial spread
    mon.compute(2)
    assert mon.warning is not None and "best value" in mon.warning["message"]
