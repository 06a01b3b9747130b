"""IJEPA.training_step against an independent computation of the I-JEPA loss, and the EMA teacher's mode.

I-JEPA (Assran et al. 2023, Sec. 3, Eq. 1): the target encoder sees the whole image, its outputs
are layer-normed over features, and for each target block the predictor, given the context
encoding and the block's positions, predicts the block's target tokens; the loss is the distance
averaged over target blocks and their tokens (with equal-sized blocks, as here, the mean over
blocks of the per-block token mean and the mean over all target tokens coincide).
"""

import pytest
import torch

from openjepa.masks.base import MaskBatch, Masks
from openjepa.methods.ijepa import IJEPA
from openjepa.models import Predictor
from openjepa.models.vit import vit_pico

CONTEXT = [[0, 1, 2, 4, 5, 8, 9], [3, 6, 7, 10, 11, 14, 15]]  # (B=2, Kc=7) on the 4x4 token grid
TARGETS = [[[10, 11, 14], [2, 3, 7]], [[0, 4, 5], [8, 12, 13]]]  # (B=2, n=2 blocks, Kt=3)


def _method(loss: str = "smooth_l1", drop_path: float = 0.0) -> IJEPA:
    encoder = vit_pico(img_size=16, patch_size=4, drop_path=drop_path)
    predictor = Predictor(encoder.grid, encoder.embed_dim, predictor_embed_dim=32, depth=1, num_heads=2)
    method = IJEPA(encoder, predictor, loss=loss)
    with torch.no_grad():  # a teacher that differs from the student, so using the wrong one shows
        for p in method.target.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return method


def _distance(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-token distance (mean over features), written out from the definitions."""
    d = pred - target
    if kind == "l2":
        return (d * d).mean()
    a = d.abs()
    return torch.where(a < 1.0, 0.5 * d * d, a - 0.5).mean()  # smooth L1 with beta = 1


def _layer_norm(h: torch.Tensor) -> torch.Tensor:
    mu = h.mean(dim=-1, keepdim=True)
    var = ((h - mu) ** 2).mean(dim=-1, keepdim=True)
    return (h - mu) / torch.sqrt(var + 1e-5)


@torch.no_grad()
def _reference_loss(method: IJEPA, x: torch.Tensor, kind: str, shift_positions: int = 0) -> torch.Tensor:
    """Sample by sample, block by block; ``shift_positions`` tells the predictor wrong target positions."""
    per_block = []
    for b in range(x.shape[0]):
        full = _layer_norm(method.target.encoder(x[b:b + 1])[0])  # (N, D)
        ctx = torch.tensor(CONTEXT[b])
        z = method.encoder(x[b:b + 1], MaskBatch(ctx[None]))  # (1, Kc, D)
        for block in TARGETS[b]:
            idx = torch.tensor(block)
            h = full.index_select(0, idx)  # (Kt, D)
            told = (idx + shift_positions) % full.shape[0]
            pred = method.predictor(z, MaskBatch(ctx[None]), MaskBatch(told[None]))[0]  # (Kt, D)
            per_block.append(torch.stack([_distance(pred[k], h[k], kind) for k in range(len(block))]).mean())
    return torch.stack(per_block).mean()


@pytest.mark.parametrize("kind", ["smooth_l1", "l2"])
def test_training_step_is_the_ijepa_loss(kind):
    method = _method(kind).train()
    x = torch.randn(2, 3, 16, 16)
    masks = Masks(MaskBatch(torch.tensor(CONTEXT)), MaskBatch(torch.tensor(TARGETS)))
    loss = method.training_step({"x": x, "masks": masks}, step=0).loss
    expect = _reference_loss(method, x, kind)
    assert abs(loss.item() - expect.item()) < 1e-6
    wrong = _reference_loss(method, x, kind, shift_positions=5)
    assert abs(loss.item() - wrong.item()) > 1e-4  # the predictor's target positions matter


def test_ema_teacher_stays_in_eval_mode_under_drop_path():
    method = _method(drop_path=0.5).train()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert not torch.equal(method.encoder(x), method.encoder(x))  # stochastic depth is on for the student
        torch.testing.assert_close(method.target(x), method.target(x), rtol=0, atol=0)
    assert method.training and method.encoder.training and not method.target.encoder.training
    method.eval().train()
    assert not any(m.training for m in method.target.encoder.modules())
