import json

import torch

from openjepa.config.schema import EvalConfig
from openjepa.eval.table import ProbeTable, evaluate_features, format_table


def _row(name, linear, knn, dim=192, rankme=40.0):
    return {"name": name, "dim": dim, "linear": linear, "knn": knn, "rankme": rankme}


def test_table_verdict_positive():
    rows = [_row("I-JEPA (target encoder)", 0.873, 0.85), _row("random-init encoder", 0.70, 0.6),
            _row("raw pixels", 0.841, 0.855, dim=784, rankme=300.0)]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split("|")[0].strip() == "features"
    assert [c.strip() for c in lines[0].split("|")] == ["features", "dim", "linear", "kNN", "RankMe"]
    assert len({len(l) for l in lines[:5]}) == 1  # fixed width
    assert "87.3%" in text and "784" in text
    assert lines[-1] == "I-JEPA beats raw pixels by +3.2 points (linear); kNN: -0.5 points"


def test_table_verdict_negative_and_zero():
    rows = [_row("I-JEPA (target encoder)", 0.80, 0.80), _row("raw pixels", 0.841, 0.79)]
    assert str(ProbeTable(rows)).splitlines()[-1] == (
        "I-JEPA does NOT beat raw pixels (linear: -4.1 points; kNN: +1.0 points)"
    )
    rows[0]["linear"] = 0.841
    assert "does NOT beat" in format_table(rows)
    assert ProbeTable([_row("I-JEPA", 0.9, 0.9)]).verdict() is None  # no reference row


def test_evaluate_features_rows():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 10, generator=g) * 4
    ytr, yte = torch.arange(300) % 3, torch.arange(90) % 3
    good = (centers[ytr] + torch.randn(300, 10, generator=g), ytr, centers[yte] + torch.randn(90, 10, generator=g), yte)
    noise = (torch.randn(300, 10, generator=g), ytr, torch.randn(90, 10, generator=g), yte)
    cfg = EvalConfig(probe_epochs=20, probe_batch_size=64, max_train_samples=200, max_test_samples=0)
    rows = evaluate_features({"I-JEPA (target encoder)": good, "raw pixels": noise}, cfg, seed=0)
    json.dumps(rows)
    assert [r["name"] for r in rows] == ["I-JEPA (target encoder)", "raw pixels"]
    assert rows[0]["n_train"] == 200 and rows[0]["n_test"] == 90 and rows[0]["dim"] == 10
    assert rows[0]["linear"] > 0.95 and rows[0]["knn"] > 0.95
    assert rows[1]["linear"] < 0.6
    assert 1.0 <= rows[0]["rankme"] <= 10.0
    assert format_table(rows).splitlines()[-1].startswith("I-JEPA beats raw pixels by +")


def test_small_differences_are_called_level_not_wins():
    from openjepa.eval.table import format_table

    def row(name, lin, n):
        return {"name": name, "dim": 4, "linear": lin, "knn": lin, "rankme": 1.0, "n_test": n}

    noisy = format_table([row("ijepa (target encoder)", 0.117, 2000), row("raw pixels", 0.107, 2000)])
    assert "is level with raw pixels" in noisy  # +1.0 point, 2 s.e. = 1.9 points
    clear = format_table([row("ijepa (target encoder)", 0.90, 10000), row("raw pixels", 0.845, 10000)])
    assert "beats raw pixels by +5.5 points" in clear
    worse = format_table([row("ijepa (target encoder)", 0.70, 10000), row("raw pixels", 0.845, 10000)])
    assert "does NOT beat raw pixels" in worse


def test_protocol_columns_lowshot_mean_std_and_attentive_verdict():
    def row(name, att, dim=96):
        return {"name": name, "dim": dim, "attentive": att, "rankme": 3.0, "n_test": 10000,
                "lowshot": {"1-shot": {"mean": att - 0.2, "std": 0.031, "accuracies": [0.1, 0.2, 0.3]},
                            "10%": {"mean": att - 0.1, "std": 0.0, "accuracies": [0.1, 0.2, 0.3]}}}

    text = format_table([row("ijepa (target encoder)", 0.9), row("raw pixels", 0.8, dim=768)])
    lines = text.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == ["features", "dim", "attentive", "1-shot", "10%", "RankMe"]
    # attentive: top-1 ± binomial s.e. sqrt(0.9 * 0.1 / 10000) = 0.3 points; low-shot: mean ± std over subsets
    assert "70.0 ± 3.1%" in lines[2] and "80.0 ± 0.0%" in lines[2] and "90.0 ± 0.3%" in lines[2]
    assert "attentive: top-1 ± binomial standard error sqrt(p(1-p)/n) on n = 10000 test images" in text
    assert len({len(l) for l in lines[:4]}) == 1
    assert "mean ± std over 3 label subsets" in text
    assert lines[-1] == "ijepa beats raw pixels by +10.0 points (attentive)"


def test_evaluate_features_protocol_choice_and_attentive_without_tokens(capsys):
    import pytest

    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    x = torch.randn(3, 8, generator=g)[y] * 3 + torch.randn(120, 8, generator=g)
    cfg = EvalConfig(probe_epochs=5, probe_batch_size=64, max_train_samples=0, max_test_samples=0,
                     lowshot_shots=[2], lowshot_fractions=[], lowshot_seeds=2, attentive_epochs=1)
    rows = evaluate_features({"blobs": (x[:90], y[:90], x[90:], y[90:])}, cfg, seed=0,
                             protocols=["lowshot", "attentive"])
    assert "skipped" in capsys.readouterr().out
    r = rows[0]
    assert r["attentive"] is None and "linear" not in r and "knn" not in r
    assert list(r["lowshot"]) == ["2-shot"] and r["lowshot"]["2-shot"]["n_labelled"] == 6
    tokens = torch.randn(120, 4, 8, generator=g)
    rows = evaluate_features({"tok": (x[:90], y[:90], x[90:], y[90:], tokens[:90], tokens[90:])}, cfg, seed=0,
                             protocols=["attentive"])
    assert 0.0 <= rows[0]["attentive"] <= 1.0 and rows[0]["tokens"] == [4, 8] and rows[0]["attentive_heads"] == 4
    json.dumps(rows)
    with pytest.raises(ValueError, match="choose from: linear, attentive, knn, lowshot"):
        evaluate_features({"blobs": (x, y, x, y)}, cfg, seed=0, protocols=["linaer"])
