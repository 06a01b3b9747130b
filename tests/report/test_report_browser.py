"""The report as a person sees it: headless Chromium renders it without errors and it is not blank.

Skipped where Chromium is not installed (CI installs Debian's ``chromium``).
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from openjepa.cli import main
from openjepa.report import write_report
from tests.report.tiny_video import MOVING
from tests.tiny import tiny

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_report.py"


def _load_checker():
    spec = importlib.util.spec_from_file_location("check_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


check = _load_checker()
if check.find_chromium() is None and os.environ.get("OPENJEPA_REQUIRE_CHROMIUM"):
    raise RuntimeError("OPENJEPA_REQUIRE_CHROMIUM is set (CI) but no chromium is on PATH")
pytestmark = pytest.mark.skipif(check.find_chromium() is None, reason="chromium is not installed")


def test_report_renders_in_chromium(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *tiny(run, "train.steps=3")]) == 0
    report = write_report(run, tsne=False)  # curves, masks, map, retrieval and the probe bars (eval.json)
    res = check.check_report(report, tmp_path / "shot.png")
    assert res.ok, res.problems
    assert res.images == res.decoded == 5 and res.screenshot.is_file()
    thumb = check.thumbnail(res.screenshot, tmp_path / "thumb.png", width=300)
    assert thumb.stat().st_size < 300_000


def test_video_report_renders_in_chromium(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *tiny(run, *MOVING)]) == 0
    report = write_report(run, tsne=False)  # curves, the filmstrip, map, retrieval and the probe bars
    assert 'alt="filmstrip: context and target tubes"' in report.read_text()
    res = check.check_report(report, tmp_path / "shot.png")
    assert res.ok, res.problems
    assert res.images == res.decoded == 5 and res.screenshot.is_file()


def test_checker_catches_broken_pages(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body><p>x</p><img src="gone.png">'
                    "<script>notAFunction();</script></body></html>")
    res = check.check_report(page)
    text = "\n".join(res.problems)
    assert not res.ok
    assert "0 of 1 images decoded" in text and "notAFunction" in text and "nearly" in text
