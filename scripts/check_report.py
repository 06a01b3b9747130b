#!/usr/bin/env python3
"""Open a run report (``report.html``) in headless Chromium and check what a person would see.

Checks: the screenshot is not blank; every ``<img>`` decoded (the page is opened from a copy in
an empty temporary folder, so an image that is not embedded fails too); no JavaScript error,
console error or failed resource load. Needs Debian's ``chromium`` (or ``chromium-browser`` /
``google-chrome``) on PATH; the test suite runs this through ``tests/report/test_report_browser.py``.

    python scripts/check_report.py runs/quickstart/report.html --screenshot shot.png
    python scripts/check_report.py runs/quickstart/report.html --thumbnail docs/images/report.png

Exit status: 0 when the page passes, 1 when it does not (the reasons are printed), 2 without Chromium.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Runs first in the page copy: records errors and, once loaded, how many images decoded.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__errors.push(t && t !== window && t.tagName ? "failed to load <" + t.tagName.toLowerCase() + ">"
                                                       : "error: " + e.message);
}, true);
window.addEventListener("unhandledrejection", function (e) {
  window.__errors.push("unhandled rejection: " + e.reason);
});
var __consoleError = console.error;
console.error = function () {
  window.__errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
  __consoleError.apply(console, arguments);
};
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var decoded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var out = document.createElement("pre");
  out.id = "__report_check";
  out.textContent = JSON.stringify({images: imgs.length, decoded: decoded, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""
RESULT = re.compile(r'<pre id="__report_check">(.*?)</pre>', re.S)


@dataclass
class CheckResult:
    """What the browser showed: ``ok`` when ``problems`` is empty."""

    screenshot: Path
    images: int = 0
    decoded: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def find_chromium() -> str | None:
    """The first Chromium-family browser on PATH, or ``None``."""
    return next((p for b in BROWSERS if (p := shutil.which(b))), None)


def _chromium(browser: str, args: Sequence[str], profile: Path, timeout: float) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
           "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def blank_reasons(png: Path, min_std: float = 8.0, min_ink: float = 0.03) -> list[str]:
    """Why the screenshot looks blank (empty list: it does not): too little pixel variance, or too
    few pixels that differ from the background (the most common colour)."""
    from PIL import Image

    with Image.open(png) as im:
        grey = im.convert("L")
        hist = grey.histogram()
    n = sum(hist)
    mean = sum(i * c for i, c in enumerate(hist)) / n
    std = (sum(c * (i - mean) ** 2 for i, c in enumerate(hist)) / n) ** 0.5
    background = max(range(256), key=hist.__getitem__)
    ink = sum(c for i, c in enumerate(hist) if abs(i - background) > 16) / n
    out = []
    if std < min_std:
        out.append(f"screenshot is nearly uniform (grey-level std {std:.1f} < {min_std})")
    if ink < min_ink:
        out.append(f"screenshot is nearly empty ({100 * ink:.1f}% of pixels differ from the background)")
    return out


def check_report(report: str | Path, screenshot: str | Path | None = None, window: tuple[int, int] = (1200, 3000),
                 browser: str | None = None, timeout: float = 120.0) -> CheckResult:
    """Render ``report`` in headless Chromium; return the screenshot path and any problems found."""
    report = Path(report).resolve()
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError(f"no Chromium on PATH (looked for {', '.join(BROWSERS)})")
    with tempfile.TemporaryDirectory(prefix="check_report_") as tmp:
        tmp_dir = Path(tmp)
        shot = Path(screenshot).resolve() if screenshot else tmp_dir / "screenshot.png"
        result = CheckResult(shot)
        # 1. A copy with the probe, alone in an empty folder: images decoded, errors recorded.
        text = report.read_text(encoding="utf-8")
        probe_copy = tmp_dir / "page" / "report.html"
        probe_copy.parent.mkdir()
        probe_copy.write_text(re.sub(r"<head>", "<head>" + PROBE, text, count=1, flags=re.I), encoding="utf-8")
        dom = _chromium(browser, ["--dump-dom", "--virtual-time-budget=10000", probe_copy.as_uri()],
                        tmp_dir / "profile1", timeout)
        found = RESULT.search(dom.stdout)
        if found is None:
            result.problems.append(f"the page did not finish loading (chromium exit {dom.returncode}): "
                                   f"{dom.stderr.strip()[-500:]}")
        else:
            probe = json.loads(html.unescape(found.group(1)))
            result.images, result.decoded = probe["images"], probe["decoded"]
            if result.images == 0:
                result.problems.append("the page has no images")
            elif result.decoded < result.images:
                result.problems.append(f"only {result.decoded} of {result.images} images decoded")
            result.problems += [f"page error: {e}" for e in probe["errors"]]
        # 2. The page itself, as a person opens it: screenshot and the browser's console log.
        shot.parent.mkdir(parents=True, exist_ok=True)
        run = _chromium(browser, [f"--screenshot={shot}", f"--window-size={window[0]},{window[1]}",
                                  "--enable-logging=stderr", "--v=0", report.as_uri()], tmp_dir / "profile2", timeout)
        console = [ln for ln in run.stderr.splitlines() if "Uncaught" in ln or "ERROR:CONSOLE" in ln]
        result.problems += [f"console: {ln.strip()}" for ln in console]
        if not shot.is_file():
            result.problems.append(f"chromium wrote no screenshot (exit {run.returncode}): {run.stderr.strip()[-500:]}")
        else:
            result.problems += blank_reasons(shot)
        if screenshot is None:  # the temporary screenshot goes with the folder
            result.screenshot = Path()
    return result


def thumbnail(screenshot: str | Path, out: str | Path, width: int = 600, height: int = 0, colours: int = 128) -> Path:
    """A small copy for documentation: cropped to ``height`` screenshot pixels (0: all), scaled to
    ``width``, reduced to a ``colours``-colour palette."""
    from PIL import Image

    with Image.open(screenshot) as im:
        im = im.convert("RGB")
        if height:
            im = im.crop((0, 0, im.width, min(height, im.height)))
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
        im = im.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    im.save(out, optimize=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", help="report.html to check")
    p.add_argument("--screenshot", help="keep the full screenshot here (PNG)")
    p.add_argument("--window", default="1200,3000", help="browser window WIDTH,HEIGHT (default: 1200,3000)")
    p.add_argument("--thumbnail", help="also write a small copy of the screenshot here (for docs)")
    p.add_argument("--thumb-width", type=int, default=600, help="thumbnail width in pixels (default: 600)")
    p.add_argument("--thumb-crop", type=int, default=0, help="crop the screenshot to this height first (0: no)")
    args = p.parse_args(argv)
    if find_chromium() is None:
        print(f"check_report: no Chromium on PATH (looked for {', '.join(BROWSERS)})", file=sys.stderr)
        return 2
    w, h = (int(v) for v in args.window.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(args.screenshot) if args.screenshot else Path(tmp) / "shot.png"
        res = check_report(args.report, shot, (w, h))
        print(f"{args.report}: {res.decoded}/{res.images} images decoded")
        if args.thumbnail and shot.is_file():
            out = thumbnail(shot, args.thumbnail, args.thumb_width, args.thumb_crop)
            print(f"thumbnail: {out} ({out.stat().st_size // 1024} KiB)")
    for problem in res.problems:
        print(f"FAIL: {problem}")
    print("OK" if res.ok else "report check failed")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
