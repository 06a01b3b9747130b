import math

import pytest
import torch

from openjepa.engine.optim import param_groups
from openjepa.engine.schedules import lr_at, wd_at
from openjepa.models import VisionTransformer
from openjepa.target import EMATarget, momentum_at


def test_ema_update_matches_hand_formula():
    online = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    ema = EMATarget(online)
    before = {k: v.clone() for k, v in ema.encoder.state_dict().items()}
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    m = 0.9
    ema.update(online, m)
    for k, v in ema.encoder.state_dict().items():
        expect = m * before[k] + (1 - m) * online.state_dict()[k]
        torch.testing.assert_close(v, expect)
    assert not any(p.requires_grad for p in ema.parameters())


def test_momentum_schedule():
    assert momentum_at(0, 100, 0.996, 1.0) == pytest.approx(0.996)
    assert momentum_at(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    assert momentum_at(100, 100, 0.996, 1.0) == pytest.approx(1.0)
    assert momentum_at(500, 100, 0.996, 1.0) == pytest.approx(1.0)


def test_lr_warmup_cosine():
    kw = dict(lr=1.0, start_lr=0.1, final_lr=0.0, warmup=10)
    assert lr_at(0, 110, **kw) == pytest.approx(0.1)
    assert lr_at(5, 110, **kw) == pytest.approx(0.55)
    assert lr_at(10, 110, **kw) == pytest.approx(1.0)
    assert lr_at(60, 110, **kw) == pytest.approx(0.5)
    assert lr_at(110, 110, **kw) == pytest.approx(0.0)


def test_lr_wsd():
    kw = dict(lr=1.0, start_lr=0.0, final_lr=0.0, warmup=10, schedule="wsd", decay_fraction=0.2)
    assert lr_at(50, 100, **kw) == 1.0
    assert lr_at(79, 100, **kw) == 1.0
    assert lr_at(90, 100, **kw) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="cosine"):
        lr_at(0, 10, lr=1, start_lr=0, final_lr=0, warmup=0, schedule="linear")


def test_wd_cosine():
    assert wd_at(0, 100, weight_decay=0.04, final_weight_decay=0.4) == pytest.approx(0.04)
    assert wd_at(50, 100, weight_decay=0.04, final_weight_decay=0.4) == pytest.approx(0.22)
    assert wd_at(100, 100, weight_decay=0.04, final_weight_decay=0.4) == pytest.approx(0.4)
    assert math.isfinite(wd_at(5, 0, weight_decay=0.1, final_weight_decay=0.2))


def test_no_decay_on_biases_norms_and_pos_embed():
    m = VisionTransformer(img_size=8, patch_size=4, embed_dim=16, depth=1, num_heads=2)
    decay, no_decay = param_groups(m)
    ids = {id(p) for p in decay["params"]}
    named = dict(m.named_parameters())
    assert id(named["blocks.0.attn.qkv.weight"]) in ids
    assert id(named["blocks.0.attn.qkv.bias"]) not in ids
    assert id(named["blocks.0.norm1.weight"]) not in ids
    all_ids = ids | {id(p) for p in no_decay["params"]}
    assert id(named["pos_embed"]) not in all_ids  # fixed, not trained


def test_momentum_defaults_and_degenerate_totals():
    """I-JEPA's EMA schedule 0.996 -> 1.0 by default; a 0-step run uses ``end``, a 1-step run starts at ``start``."""
    assert momentum_at(0, 100) == 0.996 and momentum_at(100, 100) == 1.0
    assert momentum_at(3, 0, 0.9, 0.95) == 0.95  # no division by a zero total
    assert momentum_at(0, 1, 0.9, 0.95) == 0.9 and momentum_at(1, 1, 0.9, 0.95) == 0.95


def test_ema_teacher_is_in_eval_mode_from_construction_and_after_train():
    online = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5)).train()
    ema = EMATarget(online)
    assert not any(m.training for m in ema.encoder.modules())  # eval before any .train() call
    ema.encoder.train()  # whatever flipped it, .train() on the wrapper puts the teacher back in eval
    assert ema.train() is ema and ema.training
    assert not any(m.training for m in ema.encoder.modules())
    ema.eval()
    assert not ema.training and not ema.encoder.training
    x = torch.randn(4, 3)
    torch.testing.assert_close(ema(x), ema(x), rtol=0, atol=0)  # dropout off in the teacher


def test_ema_update_refuses_a_different_architecture():
    ema = EMATarget(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    other = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(3, 2))  # same shapes, other names
    with pytest.raises(RuntimeError, match="'0.weight' vs '1.weight'"):
        ema.update(other, 0.9)


def test_schedule_edges():
    kw = dict(lr=1.0, start_lr=0.1, final_lr=0.0)
    assert lr_at(0, 10, warmup=0, **kw) == 1.0  # no warm-up: the peak at step 0, no division by zero
    wsd = dict(warmup=10, schedule="wsd", **kw)
    assert lr_at(90, 100, **wsd) == lr_at(90, 100, decay_fraction=0.2, **wsd)  # default 0.2
    assert lr_at(85, 100, warmup=10, schedule="wsd", **kw) == pytest.approx(0.75)
    assert wd_at(1, 1, weight_decay=0.04, final_weight_decay=0.4) == pytest.approx(0.4)  # one-step run ends at final
