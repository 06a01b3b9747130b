"""``openjepa report``: the HTML page of a tiny run, with and without the optional inputs."""

import json
import re
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from openjepa.cli import main
from openjepa.report import write_report
from openjepa.report.samples import tsne_2d
from tests.tiny import tiny

HEADINGS = ["Training curves", "Masks", "Embedding map", "Nearest neighbours", "Probe results", "Configuration"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "run"
    assert main(["train", *tiny(run, "train.steps=4", "monitor.every=0", "eval.report=true")]) == 0
    assert "<h2>Training curves</h2>" in (run / "report.html").read_text()  # training writes the report
    (run / "report.html").unlink()
    return run


def _h2(html):
    return re.findall(r"<h2>(.*?)</h2>", html)


def _imgs(html):
    return re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]*)">', html)


def test_all_sections(run, tmp_path):
    run = shutil.copytree(run, tmp_path / "run")
    rows = [{"step": 2, "time": 0.0, "rankme": 3.5, "spread": 0.1},  # rows hold subsets of the keys
            {"step": 4, "time": 0.0, "rankme": 2.5, "probe_acc": 0.25, "spread": 0.08, "rank_centred": 5.0}]
    with open(run / "metrics.jsonl", "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    (run / "summary.json").write_text(json.dumps({"steps": 4, "collapse_warning": "RankMe fell to 1.2 <b>"}))
    (run / "eval_step00000004_context.json").write_text((run / "eval.json").read_text())
    out = write_report(run)
    assert out == run / "report.html"
    html = out.read_text()
    assert _h2(html) == HEADINGS
    alts = _imgs(html)
    assert alts == ["training curves: loss, lr, ema, probe_acc, rankme, rank_centred, spread, pred_std, target_std",
                    "context and target masks", "embedding map", "nearest-neighbour retrieval",
                    "probe accuracies (eval_step00000004_context.json)", "probe accuracies (eval.json)"]
    assert html.count("<img") == len(alts)
    assert 'class="alert bad"' in html and "RankMe fell to 1.2 &lt;b&gt;" in html  # prominent, escaped
    assert re.findall(r"<h3>(.*?)</h3>", html) == ["eval_step00000004_context.json", "eval.json"]  # newest first
    assert "ijepa (target encoder)" in html and "%" in html  # accuracies as percentages
    assert "Not logged" not in html and "t-SNE" in html and "multiblock" in html
    assert "run_dir:" in html  # config.yaml


def test_without_monitoring_keys_and_summary(run, tmp_path, capsys):
    run = shutil.copytree(run, tmp_path / "run")
    (run / "summary.json").unlink()
    out = tmp_path / "r" / "page.html"
    assert main(["report", str(run), "--out", str(out), "--no-tsne", "--device", "cpu"]) == 0
    assert str(out) in capsys.readouterr().out
    html = out.read_text()
    assert _h2(html) == HEADINGS and len(_imgs(html)) == 5  # curves, masks, map, retrieval, probe bars
    assert _imgs(html)[0] == "training curves: loss, lr, ema, pred_std, target_std"
    assert "Not logged by this run: probe_acc, rankme, rank_centred, spread." in html
    assert "alert" not in html.split("<nav>")[0].split("<h1>")[1] and "t-SNE" not in html
    assert not (run / "report.html").exists()


def test_unlabelled_folder_then_data_gone(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    run = tmp_path / "run"
    assert main(["train", *tiny(run, "data.name=folder", f"data.root={root}", "train.steps=2")]) == 0
    html = write_report(run).read_text()
    assert _h2(html) == HEADINGS and len(_imgs(html)) == 4
    assert "unlabelled (one colour)" in html and "green: same label" not in html
    assert "No eval.json" in html
    shutil.rmtree(root)  # the report still comes out, saying what it could not show
    html = write_report(run, tsne=False).read_text()
    assert _h2(html) == HEADINGS and len(_imgs(html)) == 1  # the curves only
    assert html.count("No dataset: FileNotFoundError") == 2 and "No mask examples: FileNotFoundError" in html


def test_missing_files(tmp_path, run):
    html = write_report(tmp_path).read_text()  # an empty directory
    assert _h2(html) == HEADINGS and "<img" not in html
    assert "No metrics.jsonl rows" in html and "No config.yaml and no checkpoint" in html
    only_config = tmp_path / "cfg"
    only_config.mkdir()
    shutil.copy(run / "config.yaml", only_config / "config.yaml")
    (only_config / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo')  # half-written line
    html = write_report(only_config).read_text()
    assert _imgs(html) == ["training curves: loss", "context and target masks"]
    assert "1 line(s) of metrics.jsonl could not be read" in html and html.count("No model to embed with") == 2
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope")


def test_tsne_needs_sklearn(monkeypatch):
    import torch

    x = torch.randn(40, 8)
    assert tsne_2d(x, 0).shape == (40, 2)
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)  # import fails: PCA only
    assert tsne_2d(x, 0) is None


def _doc(rows, protocols=("linear", "knn", "attentive", "lowshot")):
    return json.dumps({"dataset": "shapes", "step": 4, "encoder": "target", "protocols": list(protocols),
                       "rows": rows})


def _row(name, linear, rankme):
    return {"name": name, "dim": 96, "linear": linear, "knn": linear - 0.05, "attentive": linear + 0.05,
            "rankme": rankme, "feature_std": 0.3, "n_train": 192, "n_test": 96, "best_lr": 1e-3, "best_wd": 0.0,
            "lowshot": {"1-shot": {"mean": linear - 0.2, "std": 0.031, "accuracies": [0.1, 0.2, 0.3],
                                   "n_labelled": 4}}}


def _banner(html):
    return html.split("<nav>")[0]


def test_probe_tables_collapse_banner_both_ways(run, tmp_path):
    run = shutil.copytree(run, tmp_path / "run")
    (run / "summary.json").write_text(json.dumps({"steps": 4, "collapse_warning": None}))  # the monitor was quiet
    collapsed = [_row("ijepa (target encoder)", 0.62, 2.0), _row("random-init encoder", 0.30, 7.0),
                 _row("raw pixels", 0.40, 60.0)]
    (run / "eval.json").write_text(_doc(collapsed))
    html = write_report(run, tsne=False).read_text()
    banner = _banner(html)
    assert 'class="alert bad"' in banner and "Looks collapsed: RankMe of the trained encoder (2.0) is at or below " \
        "the random-init encoder&#x27;s (7.0) in eval.json" in banner
    assert "No collapse" not in html and 'class="alert good"' not in html
    # The table as printed: top-1 ± binomial standard error on the 96 test images, low-shot mean ± std.
    se = 100 * np.sqrt(0.62 * 0.38 / 96)
    assert f"<td>62.0 ± {se:.1f}%</td>" in html and "<td>42.0 ± 3.1%</td>" in html and "<td>67.0 ± " in html
    assert "&#x27;mean&#x27;" not in html and "{" not in html.split('id="probes"')[1].split("</section>")[0]
    assert "ijepa beats random-init encoder by +32.0 points (linear)" in html
    assert "ijepa beats raw pixels by +22.0 points (linear)" in html  # 2 s.e. of the difference: 14.1 points
    assert "mean ± std over 3 label subsets" in html

    healthy = [_row("ijepa (target encoder)", 0.62, 12.0), _row("random-init encoder", 0.30, 7.0),
               _row("raw pixels", 0.60, 60.0)]
    (run / "eval.json").write_text(_doc(healthy))
    html = write_report(run, tsne=False).read_text()
    banner = _banner(html)
    assert 'class="alert good"' in banner and "No collapse detected: the training monitor raised no warning; " \
        "RankMe 12.0 above the random-init encoder&#x27;s 7.0 (eval.json); nearest-neighbour cosine " \
        "similarities down to 0." in banner
    assert "alert bad" not in html
    assert "ijepa is level with raw pixels (linear: +2.0 points, within 2 standard errors" in html


def test_two_evals_with_other_protocols_are_both_kept_and_shown(run, tmp_path):
    import os

    from openjepa.eval.frozen import evaluate_checkpoint

    run = shutil.copytree(run, tmp_path / "run")
    evaluate_checkpoint(run, ["eval.probe_epochs=2"], protocols=["knn"])
    evaluate_checkpoint(run, ["eval.probe_epochs=2"], protocols=["linear", "knn"])
    first, second = run / "eval_step00000004_target_knn.json", run / "eval_step00000004_target_knn-linear.json"
    assert json.loads(first.read_text())["protocols"] == ["knn"]
    assert json.loads(second.read_text())["protocols"] == ["linear", "knn"]
    os.utime(first, ns=(2 * 10**18, 2 * 10**18))  # the knn-only one is now the newest
    html = write_report(run, tsne=False).read_text()
    assert re.findall(r"<h3>(.*?)</h3>", html) == [first.name, second.name, "eval.json"]
    assert "protocols: knn · dataset: shapes" in html and "protocols: linear, knn · dataset: shapes" in html
