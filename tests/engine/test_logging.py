"""The one metrics.jsonl reader: what MetricLogger writes reads back; bad lines are counted, not fatal."""

import json

import torch

from openjepa.engine.logging import MetricLogger, read_metrics
from openjepa.report import runfiles


def test_logger_rows_read_back_and_bad_lines_are_counted(tmp_path):
    log = MetricLogger(tmp_path, tensorboard=False)
    log.log(1, {"loss": torch.tensor(0.5), "lr": 1e-3})
    log.log(2, {"loss": float("nan")})
    log.close()
    path = tmp_path / "metrics.jsonl"
    rows, bad = read_metrics(path)
    assert bad == 0 and [r["step"] for r in rows] == [1, 2]
    assert rows[0]["loss"] == 0.5 and rows[0]["lr"] == 1e-3 and rows[1]["loss"] != rows[1]["loss"]  # NaN kept

    with open(path, "a") as f:
        f.write("\n   \n")  # blank lines: skipped, not bad
        f.write(json.dumps([1, 2]) + "\n")  # JSON, but not an object
        f.write(json.dumps({"loss": 1.0}) + "\n")  # an object without a step
        f.write(json.dumps({"step": 3, "loss": 0.25}) + "\n")
        f.write('{"step": 4, "lo')  # the half-written last line of a run still training
    rows, bad = read_metrics(path)
    assert [r["step"] for r in rows] == [1, 2, 3] and bad == 3
    report_rows, report_bad = runfiles.read_metrics(path)  # the report reads through the same function
    assert [r["step"] for r in report_rows] == [1, 2, 3] and report_bad == 3


def test_missing_file_reads_as_empty(tmp_path):
    assert read_metrics(tmp_path / "nope" / "metrics.jsonl") == ([], 0)
