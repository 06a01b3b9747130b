"""The layering rule of docs/architecture.md, enforced: no import cycle, no import against the layer order.

Every ``import openjepa.X`` / ``from openjepa.X import ...`` counts, at module level or deferred inside a
function. A package may import its own layer and those below it. The graph is built here from the
source with ``ast`` (independently of any external script), so a cycle or upward import fails the suite.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "openjepa"
# Lowest first; packages in one string share a layer (docs/architecture.md, "Layers").
LAYERS = ["errors", "registry layers objectives target", "config", "masks models", "data envs", "methods", "engine",
          "eval planning interop", "report", "pretrained hub", "cli __main__ __init__"]
RANK = {name: i for i, line in enumerate(LAYERS) for name in line.split()}


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The openjepa modules ``path`` (module ``name``) imports, resolved to modules that exist."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            targets.add(base)
            targets |= {f"{base}.{a.name}" for a in node.names}
    out = set()
    for t in targets:
        if not t.startswith("openjepa"):
            continue
        while t and t not in known:
            t = t.rpartition(".")[0]
        if t and t != name and (t != "openjepa" or name.count(".") == 0):
            out.add(t)
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imported(p, m, known) for m, p in known.items()}


def test_every_package_has_a_layer(graph):
    assert {layer(m) for m in graph} <= set(RANK), sorted({layer(m) for m in graph} - set(RANK))


def test_no_upward_import(graph):
    upward = [f"{a} -> {b}" for a, bs in graph.items() for b in bs if RANK[layer(b)] > RANK[layer(a)]]
    assert not upward, "imports against the layer order:\n" + "\n".join(sorted(upward))


def test_no_import_cycle(graph):
    """Depth-first search for a back edge, ignoring a package ``__init__`` re-exporting its own modules."""
    edges = {a: {b for b in bs if not (a == f"openjepa.{layer(a)}" and layer(b) == layer(a))} for a, bs in graph.items()}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_deferred_upward_import(tmp_path):
    """The rule counts imports inside functions too (a planted one must be found)."""
    pkg = tmp_path / "openjepa"
    (pkg / "config").mkdir(parents=True)
    (pkg / "methods").mkdir()
    for f in ("__init__.py", "config/__init__.py", "methods/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "config" / "load.py").write_text("def f():\n    from openjepa.methods import x\n")
    known = {"openjepa": pkg / "__init__.py", "openjepa.config": pkg / "config/__init__.py",
             "openjepa.methods": pkg / "methods/__init__.py", "openjepa.config.load": pkg / "config/load.py"}
    assert imported(pkg / "config" / "load.py", "openjepa.config.load", known) == {"openjepa.methods"}
