"""hubconf.py: torch.hub.load from a local clone, offline, weights from a path or the cache directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from openjepa.cli import main
from openjepa.models import list_models
from tests.tiny import tiny

ROOT = Path(__file__).resolve().parents[1]


def test_hub_entry_points_load_local_weights(tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", *tiny(run, "train.steps=2", "eval.at_end=false", "monitor.every=0")]) == 0
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf_under_test", ROOT / "hubconf.py")
    hub_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub_module)
    assert all(callable(getattr(hub_module, n, None)) for n in list_models())  # one entry point per model
    enc = torch.hub.load(str(ROOT), "vit_pico", source="local", weights=run / "encoder.safetensors")
    from openjepa import load_pretrained

    ref = load_pretrained(run)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(enc(x), ref(x))
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "vit_pico.safetensors").write_bytes((run / "encoder.safetensors").read_bytes())
    monkeypatch.setenv("OPENJEPA_HUB", str(hub))
    cached = torch.hub.load(str(ROOT), "vit_pico", source="local")
    assert torch.equal(cached(x), ref(x))
    with pytest.raises(FileNotFoundError, match="no weights given"):
        torch.hub.load(str(ROOT), "vit_nano", source="local")
    rand = torch.hub.load(str(ROOT), "vit_nano", source="local", pretrained=False, img_size=16, patch_size=4)
    assert rand(x).shape[-1] == rand.embed_dim
    assert "http" not in (ROOT / "hubconf.py").read_text()
