"""build_optimizer picks the fused AdamW kernel from where the parameters are, not from whether CUDA exists."""

import pytest
import torch

from openjepa.config.schema import OptimConfig
from openjepa.engine.optim import build_optimizer


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    x = torch.randn(4, 3, device=next(model.parameters()).device)
    model(x).square().mean().backward()
    opt.step()


def test_cpu_parameters_get_plain_adamw_even_when_cuda_exists(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(model, OptimConfig())
    assert not opt.defaults.get("fused")
    monkeypatch.undo()  # optimizer.step asks CUDA about graph capture when it claims to exist
    before = model.weight.detach().clone()
    _step(model, opt)
    assert not torch.equal(before, model.weight.detach())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_parameters_get_fused_adamw():
    model = torch.nn.Linear(3, 2).cuda()
    opt = build_optimizer(model, OptimConfig())
    assert opt.defaults.get("fused") is True
    _step(model, opt)
