"""Mutation testing of the core modules: one AST mutation at a time, a focused test subset per module.

Each mutant is a copy of ``src/`` with ONE small change (an operator swapped, a constant moved, a
statement replaced by ``pass``, ...); the module's focused tests run on it (``pytest -x -q``) and the
mutant is *killed* when they fail, *survived* when they pass, *timeout* when they run past 3x the
clean run (at least 20 s: the machine is shared). Mutants run one at a time, each in a process
forked from a parent that has already imported torch, numpy, pytest and hypothesis (the parent
never imports openjepa), so a mutant costs its tests, not the imports. Not part of the test suite.

    python benchmarks/mutation.py --jsonl before.jsonl     # every module of MODULES, sampled per cap
    python benchmarks/mutation.py --modules objectives/combine.py --list     # the mutants, not run
    python benchmarks/mutation.py --modules engine/trainer.py --cap 10 --jsonl trainer.jsonl
    python benchmarks/mutation.py --only engine/schedules.py:12 --jsonl after.jsonl   # rerun one by id
    python benchmarks/mutation.py --after before.jsonl --jsonl after.jsonl   # rerun the survivors only
    python benchmarks/mutation.py --table before.jsonl after.jsonl           # the before/after table

A JSONL file is appended to as results come, so an interrupted run resumes where it stopped.
Survivors that are equivalent (no behaviour change) are listed in EQUIVALENT with the reason.

Operators: arithmetic (+ - * / // % ** & |, also in ``x += y``), comparison (< <= > >= == != is in),
boolean (and/or, dropping ``not`` and unary minus), constants (int +1, float -> 0 (1 if it was 0),
True <-> False), ``min``/``max`` (and ``clamp_min``/``clamp_max``) swapped, slice bounds dropped,
and statements replaced by ``pass`` (calls, augmented assignments, assignments to attributes or
items, ``raise``, ``break``/``continue``). Never mutated: docstrings, strings and f-strings,
annotations, imports, decorators, ``if TYPE_CHECKING`` blocks and ``__all__``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "src/openjepa"

MASKS = ["tests/masks/test_mask_base.py", "tests/masks/test_mask_ops.py", "tests/masks/test_mask_collate.py",
         "tests/masks/test_mask_random.py", "tests/masks/test_mask_multiblock.py"]
IJEPA = ["tests/methods/test_ijepa.py"]
LEJEPA_FAST = [f"tests/methods/test_lejepa.py::{t}" for t in (
    "test_multiview_transform_and_collator_shapes", "test_combine_variants_exact",
    "test_lejepa_step_loss_is_the_documented_combination_and_trains_everything",
    "test_online_target_ijepa_has_no_teacher_and_gradients_flow_through_targets",
    "test_online_target_sigreg_input_is_pooled_or_every_token")]
FIT = ["tests/engine/test_fit_loop.py",
       "tests/engine/test_resume.py::test_nonfinite_loss_stops_with_the_step_and_keeps_checkpoints",
       "tests/engine/test_resume.py::test_refuses_to_overwrite_a_run",
       "tests/engine/test_faults.py::test_spike_skips_the_update_only_when_the_guard_is_on",
       "tests/engine/test_faults.py::test_resume_with_drop_path_is_exact"]

# module (under src/openjepa) -> (focused tests, most mutants run: None = all, else a seeded sample)
MODULES: dict[str, tuple[list[str], int | None]] = {
    "masks/base.py": (MASKS, 20),
    "masks/collate.py": (["tests/masks/test_mask_collate.py"], None),
    "masks/multiblock.py": (["tests/masks/test_mask_multiblock.py", "tests/masks/test_mask_collate.py",
                             "tests/masks/test_mask_ops.py"], 100),
    "masks/random.py": (["tests/masks/test_mask_random.py", "tests/masks/test_mask_collate.py"], 25),
    "masks/ops.py": (["tests/masks/test_mask_ops.py", "tests/models/test_vit.py", *IJEPA], 10),
    "masks/viz.py": (["tests/masks/test_mask_ops.py"], 5),
    "masks/__init__.py": (["tests/masks/test_mask_collate.py"], None),
    "models/predictor.py": (["tests/models/test_predictor.py", "tests/models/test_vit.py", *IJEPA], None),
    "models/vit.py": (["tests/models/test_vit.py", "tests/models/test_registry.py", *IJEPA], 10),
    "objectives/regression.py": (["tests/objectives/test_regression.py", *IJEPA,
                                  "tests/objectives/test_regression_dist.py"], None),
    "objectives/sigreg.py": (["tests/objectives/test_sigreg.py", *LEJEPA_FAST, "tests/dist/test_sigreg_dist.py"], 30),
    "objectives/combine.py": (LEJEPA_FAST, None),
    "objectives/diagnostics.py": (["tests/eval/test_eval_diagnostics.py", "tests/objectives/test_diagnostics.py"],
                                  8),
    "target.py": (["tests/engine/test_ema_schedules.py", *IJEPA], None),
    "engine/schedules.py": (["tests/engine/test_ema_schedules.py"], 12),
    "engine/trainer.py": (FIT, 10),
}

# Third-party modules the parent imports before forking (openjepa itself is never imported there).
PRELOAD = ["numpy", "torch._dynamo", "torchvision", "torchvision.transforms", "scipy.integrate", "omegaconf",
           "yaml", "safetensors.torch", "tqdm", "PIL.Image", "pytest", "hypothesis"]

TIMEOUT_FACTOR, MIN_TIMEOUT_S = 3.0, 20.0  # a mutant's tests may run 3x the clean run (at least 20 s)

# Mutants judged equivalent (no observable behaviour change), by (module, original line stripped,
# mutation): they are counted apart from the survivors. Each carries the reason.
# _min_target_size: candidates on both sides of the h crossings ((k + 1/2)^2 / n) and of the w crossings
# (n / (k + 1/2)^2)
REDUNDANT = ("candidates are aspects inside the range, so a wrong one cannot undercut the true minimum, and each "
             "smallest-area interval starts at a0 or a w crossing and ends at a1 or an h crossing: the intact side "
             "still reaches it (checked against a brute-force search in the tests)")
NB_DEFAULT = "the non_blocking default: a copy's values are the same either way (only its overlap with compute differs)"
MB, CROSS = "masks/multiblock.py", "for b in ((k + 0.5) ** 2 / n, n / (k + 0.5) ** 2):"
SIDES = "cands.update((max(a0, b * (1 - 1e-9)), min(a1, b * (1 + 1e-9))))"
BATCH_U = 'u = torch.rand(3, generator=generator_for(self.seed, step, rank, 0, "mask-batch")).tolist()'
SHRINK = "targets = [(min(b[0], T - t), t, min(b[2], self._hmax - h), h, min(b[4], self._wmax - w), w)"
TO = 'def to(self, device: torch.device | str, non_blocking: bool = False) -> '
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("masks/base.py", TO + '"MaskBatch":', "False -> True"): NB_DEFAULT,
    ("masks/base.py", TO + '"Masks":', "False -> True"): NB_DEFAULT,
    ("masks/base.py", "def __call__(self, batch_size: int, step: int, rank: int = 0,", "0 -> 1"):
        "a default in a Protocol's signature: never executed",
    (MB, "keep[t0:t0 + t, top:top + h, left:left + w] = True", "t0:t0 + t -> t0:"):
        "context blocks (and the fallback's region) always span every frame: t0 = 0, t = T",
    (MB, BATCH_U, "3 -> 4"):
        "one more uniform at the end of the stream: the first three, the only ones read, are the same",
    (MB, SHRINK, "T - t -> T + t"): "a drawn block has t0 <= T - t_block <= T - t_min: the clamp never binds",
    (MB, "if a0 < b < a1:", "a0 < b < a1 -> a0 <= b < a1"):
        "a crossing exactly at a0 adds a0 * (1 + 1e-9), which rounds like a0 itself",
    (MB, "if a0 < b < a1:", "a0 < b < a1 -> a0 < b <= a1"):
        "differs only when a crossing lands exactly on the float a1 (then it adds a size drawable just below a1)",
    (MB, "for k in range(max(H, W) + 1):", "1 -> 2"):
        "one more k: its crossings, if inside the range, are drawable aspects, so they cannot lower the minimum",
    (MB, CROSS, "(k + 0.5) ** 2 -> (k + 0.5) * 2"): REDUNDANT,
    (MB, CROSS, "(k + 0.5) ** 2 / n -> (k + 0.5) ** 2 * n"): REDUNDANT,
    (MB, CROSS, "n / (k + 0.5) ** 2 -> n * (k + 0.5) ** 2"): REDUNDANT,
    (MB, CROSS, "0.5 -> 0.0"): REDUNDANT,
    (MB, CROSS, "2 -> 3"): REDUNDANT,
    (MB, SIDES, "b * (1 - 1e-9) -> b / (1 - 1e-09)"): REDUNDANT,
    (MB, SIDES, "b * (1 + 1e-9) -> b / (1 + 1e-09)"): REDUNDANT,
    (MB, SIDES, "1 + 1e-9 -> 1 - 1e-09"): REDUNDANT,
    ("masks/ops.py", "per_token = x[0, 0].numel() if x.dim() > 2 else 1", "x.dim() > 2 -> x.dim() >= 2"):
        "for a 2-D x, x[0, 0] is one element: numel() is 1 either way",
    ("objectives/diagnostics.py", 'if x.device.type == "mps":',
     "x.device.type == \"mps\" -> x.device.type != 'mps'"):
        "moving a CPU or CUDA tensor to the CPU: the same float64 SVD values",
    ("target.py", "for (n_t, t), (n_s, s) in zip(self.encoder.state_dict(keep_vars=True).items(),", "True -> False"):
        "state_dict(keep_vars=False) detaches, but the tensors share storage: the in-place lerp is the same",
    ("target.py", "online.state_dict(keep_vars=True).items()):", "True -> False"):
        "the online side is only read: detached tensors with the same values",
}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # position in the module's mutant list (the id is module:index)
    line: int
    col: int
    op: str
    before: str
    after: str
    start: int  # byte offsets of the replaced span in the source
    end: int
    text: str  # what replaces the span (``after``, parenthesised when it is an expression)

    @property
    def id(self) -> str:
        return f"{self.module}:{self.index}"


# ---- generating mutants ------------------------------------------------------------------------
BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
         ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd}
CMPOP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
         ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
MINMAX = {"min": "max", "max": "min", "clamp_min": "clamp_max", "clamp_max": "clamp_min",
          "amin": "amax", "amax": "amin"}


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes whose subtrees are never mutated (docstrings, annotations, imports, ...)."""
    skip: list[ast.AST] = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                skip.append(first)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip.extend(node.decorator_list)
            if node.returns is not None:
                skip.append(node.returns)
            args = node.args
            for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if a is not None and a.annotation is not None:
                    skip.append(a.annotation)
        elif isinstance(node, ast.ClassDef):
            skip.extend(node.decorator_list)
        elif isinstance(node, ast.AnnAssign):
            skip.append(node.annotation)
        elif isinstance(node, (ast.Import, ast.ImportFrom, ast.JoinedStr)):
            skip.append(node)
        elif isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skip.append(node)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            skip.append(node)
    out: set[int] = set()
    for s in skip:
        out.update(id(n) for n in ast.walk(s))
    return out


def _offsets(source: bytes) -> list[int]:
    """Byte offset of the start of each line (1-based line numbers index ``[line - 1]``)."""
    starts, pos = [], 0
    for line in source.splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    return starts


def _candidates(node: ast.AST) -> list[tuple[str, str, bool]]:
    """(operator family, replacement source, replacement is a statement) for one node."""
    out: list[tuple[str, str, bool]] = []

    def swapped(**changes) -> ast.AST:
        new = type(node)(**{f: getattr(node, f) for f in node._fields})
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    if isinstance(node, ast.BinOp) and type(node.op) in BINOP:
        out.append(("arith", ast.unparse(swapped(op=BINOP[type(node.op)]())), False))
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP:
        out.append(("arith", ast.unparse(swapped(op=BINOP[type(node.op)]())), True))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in CMPOP:
                ops = list(node.ops)
                ops[i] = CMPOP[type(op)]()
                out.append(("compare", ast.unparse(swapped(ops=ops)), False))
    elif isinstance(node, ast.BoolOp):
        out.append(("boolean", ast.unparse(swapped(op=ast.Or() if isinstance(node.op, ast.And) else ast.And())), False))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        out.append(("boolean" if isinstance(node.op, ast.Not) else "arith", ast.unparse(node.operand), False))
    elif isinstance(node, ast.Constant) and not isinstance(node.value, (str, bytes)) and node.value is not None:
        v = node.value
        if isinstance(v, bool):
            out.append(("constant", repr(not v), False))
        elif isinstance(v, int):
            out.append(("constant", repr(v + 1), False))
        elif isinstance(v, float):
            out.append(("constant", repr(0.0 if v != 0.0 else 1.0), False))
    elif isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name) and f.id in MINMAX:
            out.append(("minmax", ast.unparse(swapped(func=ast.Name(MINMAX[f.id], ast.Load()))), False))
        elif isinstance(f, ast.Attribute) and f.attr in MINMAX:
            out.append(("minmax", ast.unparse(swapped(func=ast.Attribute(f.value, MINMAX[f.attr], ast.Load()))), False))
    elif isinstance(node, ast.Slice):
        if node.lower is not None:
            out.append(("slice", ast.unparse(swapped(lower=None)), False))
        if node.upper is not None:
            out.append(("slice", ast.unparse(swapped(upper=None)), False))
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return out  # a bare ``...`` (a Protocol body): removing it changes nothing
    if isinstance(node, (ast.Expr, ast.AugAssign, ast.Raise, ast.Break, ast.Continue)) or (
            isinstance(node, ast.Assign) and any(isinstance(t, (ast.Attribute, ast.Subscript)) for t in node.targets)):
        out.append(("statement", "pass", True))
    return out


def mutants_of(module: str, source: str) -> list[Mutant]:
    """Every mutant of ``source`` (a module under src/openjepa), in source order."""
    raw = source.encode()
    starts = _offsets(raw)
    tree = ast.parse(source)
    skip = _skipped_nodes(tree)
    found: list[tuple] = []
    seen: set[bytes] = set()
    for node in ast.walk(tree):
        if id(node) in skip or not hasattr(node, "end_lineno"):
            continue
        start = starts[node.lineno - 1] + node.col_offset
        end = starts[node.end_lineno - 1] + node.end_col_offset
        before = raw[start:end].decode()
        for op, repl, is_stmt in _candidates(node):
            text = repl if is_stmt or isinstance(node, ast.Slice) else f"({repl})"
            mutated = raw[:start] + text.encode() + raw[end:]
            if mutated == raw or mutated in seen:
                continue
            try:
                compile(mutated, module, "exec")
            except SyntaxError:
                continue
            seen.add(mutated)
            found.append((node.lineno, node.col_offset, op, before, repl, start, end, text))
    found.sort(key=lambda f: (f[0], f[1], f[2], f[4]))
    return [Mutant(module, i, *f) for i, f in enumerate(found)]


def apply(m: Mutant, source: str) -> str:
    raw = source.encode()
    return (raw[:m.start] + m.text.encode() + raw[m.end:]).decode()


# ---- running them ------------------------------------------------------------------------------
def run_tests(tree: Path, tests: list[str], timeout: float, log: Path) -> tuple[str, float]:
    """Run ``pytest -x -q tests`` in a forked child over ``tree``: ('pass'|'fail'|'timeout'|'empty'|'error', s)."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        _child(tree, tests, log)  # never returns
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.perf_counter() - t0 > timeout:
                return "timeout", time.perf_counter() - t0
            time.sleep(0.02)
    finally:
        _kill_group(pid)  # the child's DataLoader workers too; also when the parent is interrupted
        shutil.rmtree(tree / ".hypothesis", ignore_errors=True)  # no example database carried between mutants
    rc = os.waitstatus_to_exitcode(status)
    return {0: "pass", 5: "empty", 99: "error"}.get(rc, "fail"), time.perf_counter() - t0


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # the group is gone: the usual case
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        return  # already reaped


def _child(tree: Path, tests: list[str], log: Path) -> None:
    """The forked child: pytest over the mutated tree, its exit status the child's; never returns."""
    rc = 99
    try:
        os.setpgid(0, 0)
        os.chdir(tree)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.path[:0] = [str(tree / "src"), str(tree)]
        import importlib.util

        import pytest
        origin = importlib.util.find_spec("openjepa").origin
        if not origin.startswith(str(tree)):
            raise RuntimeError(f"openjepa resolves to {origin}, not the mutated tree {tree}")
        rc = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0", *tests]))
    except BaseException as e:  # noqa: BLE001 - reported through the exit status (99) and the log
        print(f"mutation child: {type(e).__name__}: {e}", flush=True)
    finally:
        sys.stdout.flush()
        os._exit(rc)


def select(module: str, cap: int | None, seed: int) -> list[Mutant]:
    source = (ROOT / PKG / module).read_text()
    ms = mutants_of(module, source)
    if cap is not None and len(ms) > cap:
        ms = sorted(random.Random(f"{seed}:{module}").sample(ms, cap), key=lambda m: m.index)
    return ms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modules", nargs="*", default=list(MODULES), help="modules under src/openjepa")
    p.add_argument("--cap", type=int, default=None, help="override every module's sample size")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-module sample")
    p.add_argument("--only", nargs="*", default=None, help="mutant ids module:index to run")
    p.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    p.add_argument("--jsonl", type=Path, default=None,
                   help="append each result here as it comes; results already there are reused (resume)")
    p.add_argument("--after", type=Path, default=None,
                   help="a finished run's JSONL: rerun only its mutants that were not killed (tests are only "
                        "ever added, so a killed mutant stays killed) and print the before/after table")
    p.add_argument("--table", nargs="+", type=Path, default=None, metavar="JSONL",
                   help="print the table of a run (or BEFORE AFTER: the before/after table), run nothing")
    args = p.parse_args(argv)
    if args.table is not None:
        runs = [read_jsonl(path) for path in args.table]
        print_table(runs[-1], runs[0] if len(runs) > 1 else None)
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        p.error(f"unknown module(s) {unknown}; choose from: {', '.join(MODULES)}")
    every = {m.id: m for module in MODULES for m in mutants_of(module, (ROOT / PKG / module).read_text())}
    if args.only is not None or args.after is not None:
        wanted = set(args.only or [])
        if args.after is not None:
            wanted |= {r["id"] for r in read_jsonl(args.after) if r["status"] != "killed"}
        missing = wanted - set(every)
        if missing:
            p.error(f"unknown mutant id(s) (has the source changed?): {sorted(missing)}")
        plan: dict[str, list[Mutant]] = {}
        for m in sorted((every[i] for i in wanted), key=lambda m: (list(MODULES).index(m.module), m.index)):
            plan.setdefault(m.module, []).append(m)
    else:
        plan = {module: select(module, args.cap if args.cap is not None else MODULES[module][1], args.seed)
                for module in args.modules}
    if args.list:
        for module, ms in plan.items():
            print(f"# {module}: {len(ms)} of {sum(m.module == module for m in every.values())} mutants")
            for m in ms:
                print(f"{m.id:32s} {PKG}/{module}:{m.line}  {m.op:9s} {m.before!r} -> {m.after!r}")
        return 0
    out = args.jsonl or Path(tempfile.mkstemp(prefix="mutation-", suffix=".jsonl")[1])
    done = {r["id"]: r for r in read_jsonl(out)} if out.exists() else {}
    for mid in args.only or []:  # asked for by id: run again (the newest result counts)
        done.pop(mid, None)
    if args.after is not None:  # carry the killed mutants of the first run
        with open(out, "a") as f:
            for r in read_jsonl(args.after):
                if r["status"] == "killed" and r["id"] not in done:
                    done[r["id"]] = {**r, "carried": True}
                    f.write(json.dumps(done[r["id"]]) + "\n")
    rc = run(plan, out, done)
    print_table(read_jsonl(out), read_jsonl(args.after) if args.after is not None else None)
    print(f"\nresults: {out}")
    return rc


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run(plan: dict[str, list[Mutant]], out: Path, done: dict[str, dict]) -> int:
    """Run every mutant of ``plan`` not already in ``done`` (same mutation), appending results to ``out``."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: the machine is shared
    import importlib

    import torch

    for name in PRELOAD:  # imported once here, inherited by every forked child
        importlib.import_module(name)
    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill PID` cleans up like Ctrl-C
    tmp = Path(tempfile.mkdtemp(prefix="openjepa-mutation-"))
    try:
        shutil.copytree(ROOT / "src", tmp / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        shutil.copytree(ROOT / "tests", tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
        log = tmp / "pytest.log"
        for module, mutants in plan.items():
            todo = [m for m in mutants if not _same(done.get(m.id), m)]
            if not todo:
                continue
            tests = [t for t in MODULES[module][0] if (tmp / t.split("::")[0]).exists()]  # older trees lack new files
            target = tmp / PKG / module
            source = target.read_text()
            clean, clean_s = run_tests(tmp, tests, 900.0, log)
            if clean != "pass":
                print(f"{module}: the clean run did not pass ({clean}); see the log below\n{log.read_text()[-3000:]}")
                return 1
            timeout = max(TIMEOUT_FACTOR * clean_s, MIN_TIMEOUT_S)
            print(f"# {module}: {len(todo)} mutants; clean run {clean_s:.1f} s, timeout {timeout:.0f} s", flush=True)
            for m in todo:
                target.write_text(apply(m, source))
                try:
                    outcome, secs = run_tests(tmp, tests, timeout, log)
                finally:
                    target.write_text(source)
                if outcome in ("empty", "error"):  # a broken setup, not a verdict on the mutant
                    print(f"{m.id}: the test run did not start ({outcome})\n{log.read_text()[-3000:]}")
                    return 1
                status = {"pass": "survived", "timeout": "timeout"}.get(outcome, "killed")
                record = {**asdict(m), "id": m.id, "status": status, "seconds": round(secs, 2),
                          "line_text": source.splitlines()[m.line - 1].strip()}
                with open(out, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"  {m.id:30s} {status:9s} {secs:6.1f}s  line {m.line}: {m.before!r} -> {m.after!r}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _same(r: dict | None, m: Mutant) -> bool:
    return r is not None and (r["line"], r["col"], r["before"], r["after"]) == (m.line, m.col, m.before, m.after)


def _latest(results: list[dict]) -> dict[str, dict]:
    """One result per mutant id: the last one written."""
    return {r["id"]: r for r in results}


def _verdict(r: dict) -> str:
    """killed | timeout | equivalent | survived (an EQUIVALENT entry turns a survivor into equivalent)."""
    if r["status"] == "survived" and (r["module"], r["line_text"], f"{r['before']} -> {r['after']}") in EQUIVALENT:
        return "equivalent"
    return r["status"]


def print_table(results: list[dict], before: list[dict] | None = None) -> None:
    """module, mutants, killed (before and after when ``before`` is given), survived, timeout, equivalent."""
    now = _latest(results)
    old = _latest(before) if before is not None else {}
    by_module: dict[str, list[dict]] = {}
    for r in now.values():
        by_module.setdefault(r["module"], []).append(r)
    cols = ["module", "mutants", *(["killed before"] if before is not None else []), "killed", "survived",
            "timeout", "equivalent", "score"]
    rows, total = [], None
    for module in [m for m in MODULES if m in by_module]:
        rs = by_module[module]
        v = [_verdict(r) for r in rs]
        row = {"module": module, "mutants": len(rs), "killed": v.count("killed"), "survived": v.count("survived"),
               "timeout": v.count("timeout"), "equivalent": v.count("equivalent")}
        if before is not None:
            row["killed before"] = sum(old.get(r["id"], {}).get("status") == "killed" for r in rs)
        rows.append(row)
    if rows:
        total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "module"}
        total["module"] = "total"
        rows.append(total)
    for r in rows:
        judged = r["mutants"] - r["equivalent"]
        r["score"] = f"{100 * (r['killed'] + r['timeout']) / judged:.1f}%" if judged else "-"
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in cols}
    print(" | ".join(c.ljust(widths[c]) if c == "module" else c.rjust(widths[c]) for c in cols))
    print("-+-".join("-" * widths[c] for c in cols))
    for r in rows:
        print(" | ".join(str(r[c]).ljust(widths[c]) if c == "module" else str(r[c]).rjust(widths[c]) for c in cols))
    for title, want in (("survivors", "survived"), ("timeouts (counted as killed)", "timeout")):
        rs = [r for r in now.values() if _verdict(r) == want]
        if rs:
            print(f"\n{title}:")
            for r in sorted(rs, key=lambda r: (list(MODULES).index(r["module"]), r["index"])):
                print(f"  {PKG}/{r['module']}:{r['line']}  [{r['id']}] {r['op']}: {r['before']!r} -> {r['after']!r}")
    eq = [r for r in now.values() if _verdict(r) == "equivalent"]
    if eq:
        print("\nequivalent (not in the score):")
        for r in sorted(eq, key=lambda r: (list(MODULES).index(r["module"]), r["index"])):
            key = (r["module"], r["line_text"], f"{r['before']} -> {r['after']}")
            print(f"  {PKG}/{r['module']}:{r['line']}  {r['before']!r} -> {r['after']!r}: {EQUIVALENT[key]}")


if __name__ == "__main__":
    sys.exit(main())
