import pytest
import torch

from openjepa.objectives import normalized_targets, regression_loss


def test_losses_against_hand_computation():
    pred = torch.tensor([[[0.0, 2.0], [1.0, 1.0]]])
    tgt = torch.tensor([[[0.5, 0.0], [1.0, 4.0]]])
    # per-element |d| = .5, 2, 0, 3 ; d^2 = .25, 4, 0, 9 ; smooth_l1 = .125, 1.5, 0, 2.5
    assert regression_loss(pred, tgt, kind="l1").item() == pytest.approx((0.5 + 2 + 0 + 3) / 4)
    assert regression_loss(pred, tgt, kind="l2").item() == pytest.approx((0.25 + 4 + 0 + 9) / 4)
    assert regression_loss(pred, tgt, kind="smooth_l1").item() == pytest.approx((0.125 + 1.5 + 0 + 2.5) / 4)


def test_invalid_tokens_do_not_count():
    pred = torch.tensor([[[1.0], [100.0]]])
    tgt = torch.zeros(1, 2, 1)
    valid = torch.tensor([[True, False]])
    assert regression_loss(pred, tgt, valid, "l1").item() == pytest.approx(1.0)


def test_unknown_loss():
    with pytest.raises(ValueError, match="smooth_l1"):
        regression_loss(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), kind="huber")


def test_layernorm_targets():
    h = torch.randn(2, 5, 16) * 3 + 7
    n = normalized_targets(h)
    torch.testing.assert_close(n.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(n.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3, rtol=0)


def test_mean_over_valid_tokens_of_many_and_none():
    g = torch.Generator().manual_seed(0)
    pred, tgt = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    valid = torch.tensor([[True, False, True], [False, True, True]])
    per_token = (pred - tgt).abs().mean(-1)
    assert regression_loss(pred, tgt, valid, "l1").item() == pytest.approx(per_token[valid].mean().item(), rel=1e-6)
    none = regression_loss(pred, tgt, torch.zeros(2, 3, dtype=torch.bool), "l1")
    assert none.item() == 0.0  # no valid token: 0, not 0/0
    assert regression_loss(pred.bfloat16(), tgt.bfloat16(), kind="l2").dtype == torch.float32
