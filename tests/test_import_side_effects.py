"""Importing openjepa changes no global state: every module of the package, in a fresh interpreter.

The third-party modules the package imports at module level are imported first, so what they do
on import (torch sets TORCHINDUCTOR_CACHE_DIR and warnings filters, for one) is in the baseline
and only openjepa's own code is judged. Recorded before and after the imports: the matplotlib backend and rcParams (read without
resolving the backend), torch's default dtype, RNG state, thread counts and matmul/determinism
flags, Python's and numpy's RNG state, the root logger's handlers and level, the warnings
filters, os.environ, the recursion limit and the SIGINT/SIGTERM handlers.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SRC = Path(__file__).resolve().parents[1] / "src"

SCRIPT = r'''
import importlib, logging, os, pkgutil, random, signal, sys, warnings
import matplotlib, numpy as np, torch

def state():
    rc = matplotlib.rcParams
    return {
        "matplotlib.backend": repr(dict.__getitem__(rc, "backend")),
        "matplotlib.rcParams": {k: repr(dict.__getitem__(rc, k)) for k in dict.keys(rc)},
        "torch.default_dtype": str(torch.get_default_dtype()),
        "torch.rng": torch.get_rng_state().tolist(),
        "torch.num_threads": torch.get_num_threads(),
        "torch.num_interop_threads": torch.get_num_interop_threads(),
        "torch.float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch.deterministic": torch.are_deterministic_algorithms_enabled(),
        "torch.cudnn.benchmark": torch.backends.cudnn.benchmark,
        "random.state": repr(random.getstate()),
        "numpy.random.state": repr(np.random.get_state()),
        "logging.root.handlers": [repr(h) for h in logging.root.handlers],
        "logging.root.level": logging.root.level,
        "logging.disable": logging.root.manager.disable,
        "warnings.filters": [repr(f) for f in warnings.filters],
        "os.environ": dict(os.environ),
        "sys.recursionlimit": sys.getrecursionlimit(),
        "signal.handlers": [repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)],
    }

for dep in sys.argv[1:]:
    importlib.import_module(dep)
before = state()
import openjepa
names = sorted(m.name for m in pkgutil.walk_packages(openjepa.__path__, "openjepa.") if m.name != "openjepa.__main__")
for name in names:
    importlib.import_module(name)
after = state()
changed = sorted(k for k in before if before[k] != after[k])
print(f"imported {len(names) + 1} modules")
for k in changed:
    b, a = before[k], after[k]
    if isinstance(b, dict):
        keys = sorted(x for x in set(b) | set(a) if b.get(x) != a.get(x))
        print(f"CHANGED {k}: {[(x, b.get(x), a.get(x)) for x in keys][:10]}")
    else:
        print(f"CHANGED {k}: {b!r} -> {a!r}"[:400])
sys.exit(1 if changed else 0)
'''


def third_party_imports() -> list[str]:
    """Modules outside openjepa that some openjepa module imports when it is imported (module level,
    including inside ``if``/``try`` blocks, not inside functions)."""
    found = set()
    for path in SRC.rglob("*.py"):
        todo = list(ast.parse(path.read_text()).body)
        while todo:
            node = todo.pop()
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
            elif isinstance(node, (ast.If, ast.Try)):
                todo.extend(node.body + node.orelse + getattr(node, "finalbody", [])
                            + [n for h in getattr(node, "handlers", []) for n in h.body])
    return sorted(m for m in found if m.split(".")[0] != "openjepa" and m != "__future__")


@pytest.mark.slow  # a fresh interpreter that imports torch, matplotlib and all of openjepa
def test_importing_every_module_changes_no_global_state():
    deps = third_party_imports()
    assert "torch" in deps and "matplotlib.figure" in deps
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    env.pop("MPLBACKEND", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *deps], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "imported" in proc.stdout and int(proc.stdout.split()[1]) > 50  # the walk found the package


def test_trajectory_plot_leaves_pyplot_alone():
    matplotlib = pytest.importorskip("matplotlib")
    from openjepa.envs.point_mass import PointMass
    from openjepa.planning.viz import plot_trajectories

    backend = dict.__getitem__(matplotlib.rcParams, "backend")
    env = PointMass(img_size=16)
    starts, goals = env.sample_tasks(2, torch.Generator().manual_seed(0))
    positions = torch.stack([env.position(starts), env.position(goals)], dim=1)  # (E=2, T+1=2, 2)
    png = plot_trajectories(env, positions, starts, goals, torch.tensor([True, False]), torch.tensor([1, 1]),
                            title="t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert dict.__getitem__(matplotlib.rcParams, "backend") == backend
    plt = sys.modules.get("matplotlib.pyplot")
    assert plt is None or not plt.get_fignums()  # no pyplot figure left open
