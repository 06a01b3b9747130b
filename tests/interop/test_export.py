"""`openjepa convert` and `openjepa export --format safetensors|onnx` (onnxruntime runs the ONNX graph)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openjepa import load_pretrained
from openjepa.cli import main
from tests.tiny import tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    r = tmp_path_factory.mktemp("export") / "run"
    assert main(["train", *tiny(r, "train.steps=2", "eval.at_end=false", "monitor.every=0")]) == 0
    return r


def test_convert_writes_a_folder_that_loads_back_identical(run, tmp_path):
    for which in ("target", "context"):
        out = tmp_path / which
        assert main(["convert", str(run), "--out", str(out), "--encoder", which]) == 0
        ref, got = load_pretrained(run, which=which), load_pretrained(out)
        assert got.format == "openjepa-encoder" and got.preprocessing == ref.preprocessing
        assert all(torch.equal(v, ref.state_dict()[k]) for k, v in got.state_dict().items())


def test_onnx_export_runs_in_onnxruntime_with_a_dynamic_batch(run, tmp_path, capsys):
    import onnxruntime as ort

    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path)]) == 0
    assert "onnxruntime matches" in capsys.readouterr().out
    session = ort.InferenceSession(str(tmp_path / "encoder.onnx"), providers=["CPUExecutionProvider"])
    enc = load_pretrained(run).encoder
    for batch in (1, 7):  # batch sizes the export never saw
        x = torch.randn(batch, 3, 16, 16)
        got = session.run(None, {"pixel_values": x.numpy()})[0]
        assert got.shape == (batch, 16, enc.embed_dim)
        assert np.abs(got - enc(x).detach().numpy()).max() <= 1e-4


def test_safetensors_export_and_bad_sources_are_one_line(run, tmp_path, capsys):
    assert main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "encoder.safetensors").stat().st_size > 0
    capsys.readouterr()
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 64)
    assert main(["convert", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "junk.pt" in err[0]
    assert main(["export", str(tmp_path / "nothing"), "--format", "onnx", "--out", str(tmp_path / "o")]) == 2
    assert "no model at" in capsys.readouterr().err
