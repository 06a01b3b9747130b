"""LeJEPA and the teacher-free masked JEPA: views, loss composition, gradients, configs, end to end."""

import pytest
import torch

from openjepa.config import ConfigError, load_config
from openjepa.config.schema import Config
from openjepa.data.views import ViewCollator, multiview_transform
from openjepa.methods import check_config
from openjepa.report.pipeline import train_and_evaluate as train
from openjepa.methods import build_method
from openjepa.methods.lejepa import view_size
from openjepa.objectives.combine import combine
from tests.tiny import tiny


def _cfg(**over) -> Config:
    cfg = load_config(None, ["model.img_size=16", "model.predictor_embed_dim=32", "model.predictor_depth=1",
                             "mask.min_keep=2", "model.proj_dim=16", "model.proj_hidden=32", "sigreg.slices=32",
                             *[f"{k}={v}" for k, v in over.items()]])
    return cfg


def test_multiview_transform_and_collator_shapes():
    tf = multiview_transform(2, 3, 16, 8, [0.3, 1.0], [0.05, 0.3], [], [0.5] * 3, [0.25] * 3)
    items = [(tf(torch.rand(3, 20, 20)), i % 2, 7, i) for i in range(4)]
    batch = ViewCollator()(items)
    assert [tuple(v.shape) for v in batch["views"]] == [(4, 3, 16, 16)] * 2 + [(4, 3, 8, 8)] * 3
    assert batch["step"] == 7 and batch["y"].tolist() == [0, 1, 0, 1]
    assert view_size(_cfg(), "local") == 8  # 7/16 of 16 px on the 4 px patch grid


def test_combine_variants_exact():
    p, r = torch.tensor(2.0), torch.tensor(10.0)
    assert combine(p, r, 0.05, "convex").item() == pytest.approx(0.95 * 2 + 0.05 * 10)
    assert combine(p, r, 0.05, "add").item() == pytest.approx(2 + 0.05 * 10)
    with pytest.raises(ValueError, match="convex, add"):
        combine(p, r, 0.05, "mul")


@pytest.mark.parametrize("statistic", ["per_view", "all_views"])
def test_lejepa_step_loss_is_the_documented_combination_and_trains_everything(statistic):
    cfg = _cfg(**{"train.method": "lejepa", "sigreg.weight": 0.3, "sigreg.statistic": statistic})
    torch.manual_seed(0)
    m = build_method(cfg, 10)
    views = [torch.randn(6, 3, 16, 16)] * 2 + [torch.randn(6, 3, 8, 8)] * 2
    out = m.training_step({"views": views, "y": torch.zeros(6, dtype=torch.long)}, 3)
    _, z = m.embed_views(views)
    pred = (z - z[:2].mean(0)).square().mean()
    if statistic == "per_view":
        reg = torch.stack([m.sigreg(z[v], 3) for v in range(4)]).mean()
    else:
        reg = m.sigreg(z.flatten(0, 1), 3)
    assert out.loss.item() == pytest.approx((0.7 * pred + 0.3 * reg).item(), rel=1e-5)
    out.loss.backward()
    assert m.encoder.patch_embed.proj.weight.grad.abs().sum() > 0
    assert m.projector[0].weight.grad.abs().sum() > 0
    assert out.features.shape == (6, m.encoder.embed_dim)


def test_online_target_ijepa_has_no_teacher_and_gradients_flow_through_targets():
    cfg = _cfg(**{"train.target": "online", "sigreg.weight": 0.1})
    m = build_method(cfg, 10)
    assert m.target is None and not any(k.startswith("target.") for k in m.state_dict())
    from openjepa.masks import build_mask_sampler

    masks = build_mask_sampler(cfg.mask, m.encoder.grid, 0)(4, 0)
    x = torch.randn(4, 3, 16, 16)
    out = m.training_step({"x": x, "masks": masks}, 0)
    assert {"pred_loss", "sigreg", "loss"} <= set(out.metrics)
    # The target path alone carries gradient into the encoder (no stop-gradient): the SIGReg term on
    # the target tokens reaches parameters even with the prediction term weighted 0.
    m.sigreg_weight = 1.0
    m.zero_grad()
    m.training_step({"x": x, "masks": masks}, 0).loss.backward()
    assert m.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.predictor.parameters())


@pytest.mark.parametrize("on", ["pooled", "tokens"])
def test_online_target_sigreg_input_is_pooled_or_every_token(on):
    """``sigreg.input`` feeds SIGReg one pooled embedding per image (B, D) or every target token (B*N, D)."""
    cfg = _cfg(**{"train.target": "online", "sigreg.weight": 1.0, "sigreg.input": on})
    torch.manual_seed(0)
    m = build_method(cfg, 10)
    from openjepa.masks import build_mask_sampler

    masks = build_mask_sampler(cfg.mask, m.encoder.grid, 0)(4, 0)
    x = torch.randn(4, 3, 16, 16)
    out = m.training_step({"x": x, "masks": masks}, 5)  # weight 1: the loss is the statistic alone
    with torch.no_grad():
        t = m.encoder(x)  # (4, 16, D)
    ref = m.sigreg(t.mean(1) if on == "pooled" else t.reshape(-1, t.shape[-1]), 5)
    assert out.metrics["sigreg"].item() == pytest.approx(ref.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-5)
    other = m.sigreg(t.reshape(-1, t.shape[-1]) if on == "pooled" else t.mean(1), 5)
    assert abs(other.item() - ref.item()) > 1e-3 * abs(ref.item())  # the two inputs differ measurably


def test_online_target_without_sigreg_is_a_config_error():
    with pytest.raises(ConfigError, match="sigreg.weight"):
        check_config(load_config(None, ["train.target=online"]))
    with pytest.raises(ConfigError, match="sigreg.combine"):
        load_config(None, ["sigreg.combine=sum"])


@pytest.mark.parametrize("extra", [["train.method=lejepa", "sigreg.weight=0.05", "views.num_local=2"],
                                   ["train.method=lejepa", "sigreg.weight=0.05", "model.encoder=resnet_pico"],
                                   ["train.target=online", "sigreg.weight=0.05"]])
def test_end_to_end_and_resume(tmp_path, extra):
    args = ["train.steps=4", "train.ckpt_every=2", "eval.at_end=false", *extra]
    a = train(load_config(None, tiny(tmp_path / "a", *args)))
    assert a["steps"] == 4
    from openjepa.engine import checkpoint as ckpt

    (tmp_path / "a" / "checkpoints" / "step_00000004.pt").rename(tmp_path / "final.pt")
    train(load_config(None, tiny(tmp_path / "a", *args)), resume=True)
    ref = torch.load(tmp_path / "final.pt", weights_only=True)["method"]
    got = ckpt.load_latest(tmp_path / "a" / "checkpoints")[1]["method"]
    for k, v in ref.items():
        assert torch.equal(v, got[k]), k
