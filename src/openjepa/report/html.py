"""The report page: one self-contained HTML file (inline CSS, images as base64 PNG, no scripts).

Builders return HTML snippets (strings); every piece of text from the run goes through
:func:`esc`, so a file name or a config value cannot break the page.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from typing import Any, Sequence

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2330;
       background: #f6f7f9; line-height: 1.45; }
main { max-width: 1150px; margin: 0 auto; padding: 20px 28px 60px; }
h1 { font-size: 1.6em; margin: 0.4em 0 0.2em; }
h2 { font-size: 1.25em; margin: 0 0 0.6em; border-bottom: 1px solid #dde1e7; padding-bottom: 0.25em; }
h3 { font-size: 1.0em; margin: 1.1em 0 0.4em; }
section { background: #fff; border: 1px solid #e3e6eb; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
nav a { margin-right: 14px; color: #2456a6; text-decoration: none; }
.meta { color: #5a6272; font-size: 0.92em; }
.note { color: #5a6272; font-style: italic; }
.alert { border-radius: 8px; padding: 12px 16px; margin: 16px 0; font-weight: 600; }
.alert.bad { background: #fde8e8; border: 2px solid #d33; color: #8a1010; }
.alert.good { background: #e7f6ea; border: 1px solid #5bab6b; color: #1e5c2b; }
.verdict { font-weight: 600; margin: 4px 0; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
table { border-collapse: collapse; font-size: 0.92em; margin: 4px 0 10px; }
th, td { border: 1px solid #dde1e7; padding: 4px 10px; text-align: right; }
th { background: #f0f2f5; }
td:first-child, th:first-child { text-align: left; }
.wide { overflow-x: auto; }
.wide td { white-space: nowrap; }
pre { background: #f6f7f9; border: 1px solid #e3e6eb; padding: 10px 12px; font-size: 0.85em; overflow: auto;
      max-height: 520px; }
"""


@dataclass
class Section:
    """One titled part of the page; ``body`` is HTML."""

    id: str
    title: str
    body: str


def esc(value: Any) -> str:
    """HTML-escaped ``str(value)``."""
    return html.escape(str(value), quote=True)


def image(png: bytes, alt: str) -> str:
    """An ``<img>`` holding ``png`` inline (base64), so the page needs no other file."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def note(text: str) -> str:
    """A grey line that says why something is not shown."""
    return f'<p class="note">{esc(text)}</p>'


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def alert(text: str, bad: bool) -> str:
    """A coloured box at the top of the page (red when ``bad``)."""
    return f'<div class="alert {"bad" if bad else "good"}">{esc(text)}</div>'


def _cell(value: Any, percent: bool) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return esc(value)
        return f"{100 * value:.1f}%" if percent else f"{value:.4g}"
    return esc("" if value is None else value)


def table(columns: Sequence[tuple[str, str]], rows: Sequence[dict], percent: Sequence[str] = ()) -> str:
    """A table of ``rows`` (dicts); ``columns`` are ``(key, header)``; keys in ``percent`` are fractions
    shown as percentages; a missing key is an empty cell."""
    head = "".join(f"<th>{esc(h)}</th>" for _, h in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(k), k in percent)}</td>" for k, _ in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_table(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A table of preformatted text ``cells`` (one list per row) under ``headers``; every cell is escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in cells)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def page(title: str, header: str, sections: Sequence[Section]) -> str:
    """The whole document: title, ``header`` HTML (run facts, warnings), a contents line, the sections."""
    nav = " ".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "\n".join(f'<section id="{esc(s.id)}">\n<h2>{esc(s.title)}</h2>\n{s.body}\n</section>' for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{esc(title)}</h1>\n{header}\n<nav>{nav}</nav>\n{body}\n</main>\n</body>\n</html>\n"
    )
