"""Released JEPAs through the one entry point: load_pretrained / `openjepa convert` / `openjepa export --format hf`
detect the format, convert, and give transformers' features (Hugging Face folders, official files)."""

from __future__ import annotations

import json

import pytest
import torch

from openjepa import load_pretrained
from openjepa.cli import main
from openjepa.methods import build_encoder
from openjepa.models.vit import VisionTransformer

transformers = pytest.importorskip("transformers")


def _ijepa_folder(tmp_path):
    cfg = transformers.IJepaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                   image_size=16, patch_size=4, layer_norm_eps=1e-6)
    torch.manual_seed(0)
    model = transformers.IJepaModel(cfg).eval()
    model.save_pretrained(tmp_path / "hf_ijepa")
    return model, tmp_path / "hf_ijepa"


def _vjepa2_folder(tmp_path):
    cfg = transformers.VJEPA2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, crop_size=16,
                                    patch_size=4, frames_per_clip=4, tubelet_size=2, pred_hidden_size=32,
                                    pred_num_hidden_layers=1, pred_num_attention_heads=2, mlp_ratio=2.0)
    torch.manual_seed(0)
    model = transformers.VJEPA2Model(cfg).eval()
    model.save_pretrained(tmp_path / "hf_vjepa2")
    return model, tmp_path / "hf_vjepa2"


def test_hf_ijepa_folder_loads_converts_and_exports_back(tmp_path, capsys):
    hf, folder = _ijepa_folder(tmp_path)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ref = hf(pixel_values=x).last_hidden_state
    model = load_pretrained(folder)
    assert model.format == "hf-ijepa" and model.preprocessing.img_size == 16
    assert (model(x) - ref).abs().max() <= 1e-5
    rebuilt = build_encoder(model.config)  # the config alone rebuilds the architecture
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt(x), model(x))
    assert main(["convert", str(folder), "--out", str(tmp_path / "ours")]) == 0
    assert (load_pretrained(tmp_path / "ours")(x) - ref).abs().max() <= 1e-5
    assert main(["export", str(tmp_path / "ours"), "--format", "hf", "--out", str(tmp_path / "back")]) == 0
    again = transformers.IJepaModel.from_pretrained(tmp_path / "back").eval()
    with torch.no_grad():
        assert (again(pixel_values=x).last_hidden_state - ref).abs().max() <= 1e-5


def test_hf_vjepa2_folder_loads_with_its_predictor_and_exports_back(tmp_path):
    hf, folder = _vjepa2_folder(tmp_path)
    clip = torch.randn(2, 4, 3, 16, 16)  # transformers: (B, T, C, H, W); ours: (B, C, T, H, W)
    with torch.no_grad():
        ref = hf(clip, skip_predictor=True).last_hidden_state
    model = load_pretrained(folder, predictor=True)
    assert model.format == "hf-vjepa2" and model.predictor is not None
    assert (model.preprocessing.num_frames, model.preprocessing.img_size) == (4, 16)
    assert (model(clip.transpose(1, 2)) - ref).abs().max() <= 1e-5
    assert main(["export", str(folder), "--format", "hf", "--out", str(tmp_path / "back")]) == 0
    again = transformers.VJEPA2Model.from_pretrained(tmp_path / "back").eval()
    with torch.no_grad():
        assert (again(clip, skip_predictor=True).last_hidden_state - ref).abs().max() <= 1e-5


def test_official_ijepa_file_is_detected_and_its_encoders_chosen(tmp_path):
    torch.manual_seed(0)
    target = VisionTransformer(img_size=32, patch_size=16, embed_dim=192, depth=12, num_heads=3)  # I-JEPA's ViT-Ti
    context = VisionTransformer(img_size=32, patch_size=16, embed_dim=192, depth=12, num_heads=3)
    obj = {"encoder": {f"module.{k}": v for k, v in context.state_dict().items()},
           "target_encoder": {f"module.{k}": v for k, v in target.state_dict().items()}, "epoch": 3}
    torch.save(obj, tmp_path / "ijepa-ep3.pth.tar")
    x = torch.randn(2, 3, 32, 32)
    for which, ref in (("target", target), ("context", context)):
        model = load_pretrained(tmp_path / "ijepa-ep3.pth.tar", which=which)
        assert model.format == "official-ijepa"
        assert torch.allclose(model(x), ref.eval()(x), atol=1e-6)


class NotWeights:
    """A pickled object that needs code to unpickle: never loaded (weights_only=True)."""


def test_unusable_sources_are_one_line(tmp_path, capsys):
    torch.save({"target_encoder": NotWeights()}, tmp_path / "evil.pt")
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "model.safetensors").write_bytes(b"")
    for src, want in ((tmp_path / "evil.pt", "evil.pt"), (folder, "model_type='bert' is not a JEPA")):
        capsys.readouterr()
        assert main(["convert", str(src), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and want in err[0], err


def test_eval_and_embed_take_a_released_model_directly(tmp_path, capsys):
    from PIL import Image

    hf, folder = _ijepa_folder(tmp_path)
    data = tmp_path / "imgs"
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (16, 16), (40 * i, 200 if c == "a" else 0, 0)).save(data / c / f"{i}.png")
    assert main(["embed", str(folder), str(data), "--out", str(tmp_path / "f.npy"), "--no-progress"]) == 0
    import numpy as np

    feats = np.load(tmp_path / "f.npy")
    assert feats.shape == (12, 32)
    files = (tmp_path / "f.npy.files.txt").read_text().split()
    x = torch.stack([load_pretrained(folder).preprocessing.transform(load_pretrained(folder).config)(
        Image.open(f).convert("RGB")) for f in files[:2]])
    with torch.no_grad():
        ref = hf(pixel_values=x).last_hidden_state.mean(1)
    assert np.abs(feats[:2] - ref.numpy()).max() <= 1e-5
    capsys.readouterr()
    assert main(["eval", str(folder), f"data.root={data}", "data.val_fraction=0.5", "eval.baselines=false",
                 "train.progress=false", "eval.probe_epochs=3"]) == 0
    out = capsys.readouterr().out
    assert "is not an openjepa run: the table is printed, not saved" in out and "linear" in out


def test_report_maps_a_released_model_on_given_data(tmp_path, capsys, monkeypatch):
    from PIL import Image

    _, folder = _ijepa_folder(tmp_path)
    data = tmp_path / "imgs"
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (16, 16), (40 * i, 200 if c == "a" else 0, 0)).save(data / c / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(folder), f"data.root={data}", "data.val_fraction=0.5", "--no-tsne",
                 "--no-progress"]) == 0
    html = (tmp_path / "hf_ijepa_report.html").read_text()
    assert "a loaded model, not a run" in html and "No embeddings" not in html
    assert main(["report", str(tmp_path / "missing")]) == 2
