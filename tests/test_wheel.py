"""Packaging: the sdist and the wheel hold the package and its shipped configs (and no tests or runs), and a wheel
installed into a fresh virtualenv trains a shipped config from an empty working directory.

The fresh venv holds only openjepa (from the wheel); its dependencies (torch, ...) come from the running
interpreter's site-packages through a ``.pth`` file, so nothing is downloaded. The ``.pth`` is written after the
install, so pip never sees another openjepa (e.g. an editable install of this checkout) while installing.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.tiny import TINY

ROOT = Path(__file__).resolve().parents[1]


def _shipped() -> list[str]:
    """``openjepa/configs/....yaml`` for every config in this checkout: what both archives must hold."""
    return sorted(p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src/openjepa/configs").rglob("*.yaml"))


def _run(cmd: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _checkout_copy(dst: Path) -> Path:
    """The files a build reads, plus tests/ and a runs/ folder that must stay out of both archives."""
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(ROOT / name, dst / name)
    shutil.copytree(ROOT / "src", dst / "src", ignore=skip)
    shutil.copytree(ROOT / "tests", dst / "tests", ignore=skip)
    (dst / "runs" / "old").mkdir(parents=True)
    (dst / "runs" / "old" / "config.yaml").write_text("run_dir: runs/old\n")
    return dst


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """sdist from a copy of the checkout, then the wheel from the unpacked sdist (as ``python -m build`` does)."""
    tmp = tmp_path_factory.mktemp("pkg")
    (tmp / "checkout").mkdir()
    src = _checkout_copy(tmp / "checkout")
    _run([sys.executable, "-c", f"from setuptools import build_meta as b; b.build_sdist({str(tmp / 'sdist')!r})"],
         cwd=src)
    (sdist,) = (tmp / "sdist").glob("openjepa-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
        tar.extractall(tmp / "unpacked", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    assert not [n for n in names if n.startswith(("tests", "runs"))], names
    assert sorted(n.removeprefix("src/") for n in names if n.endswith(".yaml")) == _shipped()
    (unpacked,) = (tmp / "unpacked").iterdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", tmp / "wheel", "."], cwd=unpacked)
    (whl,) = (tmp / "wheel").glob("openjepa-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_holds_the_package_and_configs_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n for n in names if n.endswith(".yaml")) == _shipped()
    assert all(n.startswith(("openjepa/", "openjepa-0.1.0.dist-info/")) for n in names), names
    assert "openjepa/cli.py" in names and "openjepa/config/load.py" in names


@pytest.mark.slow
def test_installed_wheel_trains_a_shipped_config_from_an_empty_directory(wheel, tmp_path):
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         cwd=tmp_path)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=work).stdout.strip())
    deps = dict.fromkeys(p for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *sys.path)
                         if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir())
    (site / "_openjepa_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"

    where = _run([python, "-c", "import openjepa, openjepa.config.load as c; print(openjepa.__file__); "
                  "print(c.CONFIG_DIR)"], cwd=work, env=env).stdout.splitlines()
    assert Path(where[0]).resolve() == (site / "openjepa" / "__init__.py").resolve()
    assert Path(where[1]).resolve() == (site / "openjepa" / "configs").resolve()

    cli = venv / "bin" / "openjepa"
    assert cli.read_text().splitlines()[0] == f"#!{python}"  # the console script runs the fresh venv's python
    listed = _run([cli, "config", "list"], cwd=work, env=env).stdout.split()
    assert listed == sorted(n.removeprefix("openjepa/configs/").removesuffix(".yaml") for n in _shipped())
    _run([cli, "train", "quickstart", *TINY, "train.steps=2", "eval.at_end=false", "monitor.every=0",
          "run_dir=./r"], cwd=work, env=env)
    assert (work / "r" / "checkpoints" / "step_00000002.pt").is_file()
    assert (work / "r" / "config.yaml").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["r"]  # nothing else written to the working directory
