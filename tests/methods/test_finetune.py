"""Full fine-tuning (methods/finetune.py, eval/classify.py, `openjepa finetune`)."""

from __future__ import annotations

import json

import pytest
import torch

from openjepa.cli import main
from openjepa.config import load_config
from openjepa.engine.optim import build_optimizer, set_hparams
from openjepa.engine.runs import load_encoder
from openjepa.errors import ConfigError
from openjepa.methods import build_method, check_config
from tests.tiny import tiny

FT = ("eval.max_train_samples=96", "eval.max_test_samples=96", "monitor.every=0", "optim.warmup_steps=1")


def _finetune_cfg(tmp_path, *extra):
    return load_config(None, tiny(tmp_path / "ft", "train.method=finetune", "finetune.layer_decay=0.5", *extra))


def test_layer_decay_scales_follow_the_formula(tmp_path):
    method = build_method(_finetune_cfg(tmp_path), 10)
    depth = len(method.encoder.blocks)
    scales = method.lr_scales()
    for name, _ in method.named_parameters():
        if name.startswith("encoder.blocks."):
            i = int(name.split(".")[2])
            assert scales[name] == 0.5 ** (depth - i), name
        elif name.startswith(("encoder.patch_embed", "encoder.pos_embed")):
            assert scales[name] == 0.5 ** (depth + 1), name
        else:  # the encoder's final norm and the head train at the full rate
            assert name not in scales, name
    opt = build_optimizer(method, load_config(None).optim)
    set_hparams(opt, 1e-2, 0.05)
    by_param = {id(p): g for g in opt.param_groups for p in g["params"]}
    for name, p in method.named_parameters():
        if p.requires_grad:
            assert by_param[id(p)]["lr"] == pytest.approx(1e-2 * scales.get(name, 1.0)), name
    no_decay = build_method(_finetune_cfg(tmp_path, "finetune.layer_decay=1.0"), 10)
    assert no_decay.lr_scales() == {} and len(build_optimizer(no_decay, load_config(None).optim).param_groups) == 2


def test_training_step_is_cross_entropy_with_label_smoothing(tmp_path):
    method = build_method(_finetune_cfg(tmp_path, "finetune.label_smoothing=0.2"), 10).eval()
    x, y = torch.randn(5, 3, 16, 16), torch.tensor([0, 3, 1, 9, 2])
    out = method.training_step({"x": x, "y": y, "step": 0}, 0)
    logits = method.head(method.encoder(x))
    logp = logits.log_softmax(1)
    want = -(0.8 * logp.gather(1, y[:, None]).squeeze(1) + 0.2 * logp.mean(1)).mean()  # smoothing over all classes
    assert out.loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert out.features.shape == (5, method.feature_dim) and method.evaluation == "classification"


def test_finetune_needs_labels(tmp_path):
    from PIL import Image

    for i in range(3):  # a flat folder of images: unlabelled
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
    with pytest.raises(ConfigError, match="needs labelled data"):
        check_config(load_config(None, ["train.method=finetune", "data.name=folder", f"data.root={tmp_path}"]))
    with pytest.raises(ConfigError, match="trains on image or video data"):
        check_config(load_config(None, ["train.method=finetune", "data.name=trajectories"]))


def test_cli_finetune_from_a_run_loads_its_encoder_and_beats_nothing_by_accident(tmp_path, capsys):
    pre = tmp_path / "pre"
    assert main(["train", *tiny(pre, "train.steps=2", "eval.at_end=false", "monitor.every=0")]) == 0
    src = load_encoder(pre)
    capsys.readouterr()
    assert main(["finetune", str(pre), "train.steps=3", "train.progress=false", *FT,
                 f"run_dir={tmp_path / 'ft'}", "finetune.head=attentive"]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned top-1" in out and "fine-tuning" in out and "frozen linear probe" in out
    doc = json.loads((tmp_path / "ft" / "finetune_eval.json").read_text())
    assert doc["finetuned"]["n_test"] == 96 and 0 <= doc["finetuned"]["top1"] <= 1
    assert doc["frozen"][0]["name"].startswith("frozen") and "linear" in doc["frozen"][0]
    state = torch.load(sorted((tmp_path / "ft" / "checkpoints").iterdir())[0], weights_only=True)
    cfg = state["config"]
    assert cfg["train"]["method"] == "finetune" and cfg["model"]["encoder"] == "vit_pico"
    assert cfg["finetune"]["head"] == "attentive" and cfg["model"]["drop_path"] == 0.1  # the recipe's
    # the fresh run started from the source's weights: the patch embedding moved by few optimizer steps only
    start = src.state_dict()["patch_embed.proj.weight"]
    tuned = state["method"]["encoder.patch_embed.proj.weight"]
    assert (tuned - start).abs().max() < 0.05 < start.abs().max()


def test_finetune_resumes_exactly(tmp_path):
    common = ("train.method=finetune", "train.ckpt_every=2", *FT, "eval.at_end=false")
    assert main(["train", *tiny(tmp_path / "a", "train.steps=4", *common)]) == 0
    assert main(["train", *tiny(tmp_path / "b", "train.steps=4", *common)]) == 0
    (tmp_path / "b" / "checkpoints" / "step_00000004.pt").unlink()  # as if killed after the step-2 checkpoint
    assert main(["train", *tiny(tmp_path / "b", "train.steps=4", *common), "--resume"]) == 0
    a, b = (torch.load(tmp_path / r / "checkpoints" / "step_00000004.pt", weights_only=True) for r in ("a", "b"))
    assert all(torch.equal(a["method"][k], b["method"][k]) for k in a["method"])


def test_finetune_a_video_run_on_clips(tmp_path, capsys):
    """``openjepa finetune`` on a V-JEPA run: the clip encoder with its head, trained on moving_shapes clips."""
    from tests.report.tiny_video import MOVING

    pre = tmp_path / "pre"
    assert main(["train", *tiny(pre, *MOVING, "eval.at_end=false", "monitor.every=0")]) == 0
    assert main(["finetune", str(pre), f"run_dir={tmp_path / 'ft'}", "train.steps=2", "train.progress=false",
                 "eval.report=false", "eval.baselines=false", "data.train_size=32", "data.test_size=16",
                 "eval.video_protocols=[linear]"]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned top-1" in out
    state = torch.load(next((tmp_path / "ft" / "checkpoints").glob("*.pt")), weights_only=True)
    assert state["method"]["encoder.patch_embed.proj.weight"].ndim == 5  # the tubelet (Conv3d) encoder
