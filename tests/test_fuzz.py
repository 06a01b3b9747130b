"""Fuzzing the inputs a user hands over: random and truncated bytes as image files, checkpoints and
YAML configs. Each must give a clean skip or a clear error (our own exception type, naming the file;
through the command line, exit code 2 and one ``openjepa CMD: error:`` line), never a hang and
never a traceback from deep inside torch, PIL or yaml. Seeded, so a failure replays exactly.
"""

import contextlib
import io
import random
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image

from openjepa.cli import main
from openjepa.config import ConfigError, available_configs, load_config
from openjepa.config.load import resolve_config_path
from openjepa.data import DataError
from openjepa.data.folder import FolderDataset
from openjepa.engine import checkpoint as ckpt
from openjepa.engine.runs import load_run
from tests.tiny import tiny

SEEDS = range(24)
FORMATS = ("png", "jpeg", "bmp", "gif", "webp", "tiff")


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail (rather than hang) when the block runs longer than ``seconds``."""
    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def mangled(good: bytes, rng: random.Random) -> bytes:
    """Random bytes (any length, empty included) or ``good`` cut short at a random point."""
    if rng.random() < 0.5:
        return rng.randbytes(rng.randint(0, 2048))
    return good[: rng.randint(0, len(good) - 1)]


def error_lines(err: str, command: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith(f"openjepa {command}: error: ")]


# --- (a) image files ---------------------------------------------------------------------------

def encoded(fmt: str, seed: int) -> bytes:
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (12, 16, 3), dtype=torch.uint8, generator=g).numpy()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt.upper())
    return buf.getvalue()


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzzed_images_are_skipped_or_named(tmp_path, seed):
    rng = random.Random(seed)
    good, bad = [], []
    for i, fmt in enumerate(FORMATS):
        data = encoded(fmt, seed * 10 + i)
        path = tmp_path / f"good{i}.{fmt}"
        path.write_bytes(data)
        good.append(str(path))
        path = tmp_path / f"bad{i}.{fmt}"
        path.write_bytes(mangled(data, rng))
        bad.append(str(path))
    with deadline(30):
        ds = FolderDataset(tmp_path, "train", val_fraction=0.0, on_error="skip")
        items = [ds[i] for i in range(len(ds))]
        assert all(x.shape[0] == 3 for x, _ in items)
        skipped = [p for p, _ in ds.skipped]
        assert set(skipped) <= set(bad) and len(skipped) == len(set(skipped))  # each listed once, good ones never
        strict = FolderDataset(tmp_path, "train", val_fraction=0.0, on_error="raise")
        for i, (path, _) in enumerate(strict.samples):
            try:
                strict[i]
            except DataError as e:
                assert path in bad and path in str(e)
            else:
                assert path not in skipped  # what decodes in one mode decodes in the other


# --- (b) checkpoint files ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    from openjepa.report.pipeline import train_and_evaluate as train

    run = tmp_path_factory.mktemp("fuzz") / "run"
    train(load_config(None, tiny(run, "train.steps=1", "eval.at_end=false", "monitor.every=0")))
    return run


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzzed_checkpoints_give_a_named_error(tmp_path, capsys, real_run, seed):
    rng = random.Random(seed)
    good = real_run / "checkpoints" / "step_00000001.pt"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_00000001.pt").write_bytes(good.read_bytes())
    bad = run / "checkpoints" / "step_00000002.pt"
    bad.write_bytes(mangled(good.read_bytes(), rng))
    with deadline(30):
        with pytest.raises(ckpt.CheckpointError, match=str(bad)):
            ckpt.load_file(bad)
        with pytest.raises(ckpt.CheckpointError, match=str(bad)):
            load_run(bad)
        path, state = ckpt.load_latest(run / "checkpoints")  # the corrupt newest is skipped
        assert path.name == "step_00000001.pt" and state["step"] == 1

        capsys.readouterr()
        assert main(["eval", str(bad)]) == 2
        [line] = error_lines(capsys.readouterr().err, "eval")
        assert str(bad) in line
        (run / "checkpoints" / "step_00000001.pt").unlink()
        assert main(["eval", str(run)]) == 2  # no readable checkpoint left in the run
        [line] = error_lines(capsys.readouterr().err, "eval")
        assert "no readable checkpoint" in line and str(run) in line


def test_many_fuzzed_checkpoints_never_escape_load_file(tmp_path):
    """Random bytes and both torch serialisations cut short: the restricted unpickler and the zip
    reader raise a zoo of types (UnpicklingError, EOFError, IndexError, KeyError, struct.error, ...)."""
    rng = random.Random(0)
    sources = []
    for zipped in (True, False):
        buf = io.BytesIO()
        torch.save({"step": 3, "method": {"w": torch.randn(16, 16)}, "config": {"seed": 0}}, buf,
                   _use_new_zipfile_serialization=zipped)
        sources.append(buf.getvalue())
    path = tmp_path / "step_00000001.pt"
    with deadline(60):
        for i in range(300):
            path.write_bytes(mangled(sources[i % 2], rng))
            with pytest.raises(ckpt.CheckpointError, match=str(path)) as e:
                ckpt.load_file(path)
            assert "\n" not in str(e.value)


# --- (c) YAML config files ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_fuzzed_configs_load_or_give_a_config_error(tmp_path, seed):
    rng = random.Random(seed)
    shipped = resolve_config_path(available_configs()[seed % len(available_configs())]).read_bytes()
    path = tmp_path / "fuzzed.yaml"
    for data in (rng.randbytes(rng.randint(0, 512)), shipped[: rng.randint(0, len(shipped))],
                 bytes(rng.choice(b" :-[]{}\n\t'\"!&*#%@`|>,?0a\xff") if rng.random() < 0.05 else c
                       for c in shipped)):
        path.write_bytes(data)
        with deadline(30):
            try:
                load_config(path)
            except ConfigError as e:
                assert "fuzzed.yaml" in str(e) or "config key" in str(e) or "=" in str(e)


@pytest.mark.parametrize("seed", SEEDS[:8])
def test_fuzzed_config_files_through_the_command_line(tmp_path, capsys, seed):
    rng = random.Random(seed)
    path = tmp_path / "fuzzed.yaml"
    path.write_bytes(b"model: " + rng.randbytes(rng.randint(1, 256)))  # a mapping with a garbage value
    with deadline(60):
        code = main(["train", str(path), *tiny(tmp_path / "run", "train.steps=1", "eval.at_end=false")])
    assert code == 2
    [line] = error_lines(capsys.readouterr().err, "train")
    assert "fuzzed.yaml" in line
    path.write_bytes(rng.randbytes(rng.randint(1, 512)))
    with deadline(60):
        code = main(["config", "show", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and len(error_lines(err, "config")) == 1 or code == 0 and not err
