"""GlobalBatchNorm1d on one process is nn.BatchNorm1d; its all-reduce formula is BatchNorm's too.

On one process (and in eval mode) the layer must be exactly ``nn.BatchNorm1d``: outputs, input and
parameter gradients, running statistics, state-dict names. Its multi-rank path (sums all-reduced,
statistics recomputed by hand) runs here with the all-reduce replaced by the identity, as on a
world of one rank holding the whole batch: it must match nn.BatchNorm1d to float64 round-off,
running variance unbiased as torch keeps it. tests/dist/test_global_batchnorm_dist.py runs it on 2 ranks.
"""

import pytest
import torch
from torch import nn

from openjepa.layers import norm
from openjepa.layers.norm import GlobalBatchNorm1d


def _pair(momentum, dtype=torch.float32):
    torch.manual_seed(0)
    ref = nn.BatchNorm1d(5, momentum=momentum, dtype=dtype)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 2.0)
        ref.bias.uniform_(-1.0, 1.0)
    ours = GlobalBatchNorm1d(5, momentum=momentum, dtype=dtype)
    ours.load_state_dict(ref.state_dict(), strict=True)  # the same parameter and buffer names
    return ref, ours


def _batches(dtype, shape=(12, 5)):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(*shape, generator=g, dtype=dtype) * (1 + i) + i) for i in range(3)]


def _run(bn, xs, train: bool):
    """Outputs and input gradients over a few batches, then parameter gradients and the state."""
    bn.train(train)
    bn.zero_grad()
    outs, grads = [], []
    w = torch.linspace(-1.0, 2.0, xs[0].numel(), dtype=xs[0].dtype).view_as(xs[0])
    for x in xs:
        x = x.clone().requires_grad_(True)
        y = bn(x)
        (y * w).square().sum().backward()  # a loss whose gradient depends on the normalisation
        outs.append(y.detach())
        grads.append(x.grad)
    return outs, grads, [bn.weight.grad, bn.bias.grad], {k: v.clone() for k, v in bn.state_dict().items()}


def _compare(a, b, exact: bool):
    check = torch.equal if exact else (lambda u, v: torch.allclose(u, v, rtol=1e-10, atol=1e-12))
    for xs, ys in zip(a[:3], b[:3]):
        for u, v in zip(xs, ys):
            assert check(u, v)
    assert a[3].keys() == b[3].keys()
    for k in a[3]:
        assert check(a[3][k], b[3][k]), k


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(12, 5), (6, 5, 3)])
def test_one_process_is_exactly_batchnorm1d(momentum, shape):
    ref, ours = _pair(momentum)
    xs = _batches(torch.float32, shape)
    for train in (True, False):  # training (batch statistics, running updates), then eval (running ones)
        _compare(_run(ref, xs, train), _run(ours, xs, train), exact=True)
    assert int(ours.num_batches_tracked) == 3


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(12, 5), (6, 5, 3)])
def test_all_reduce_formula_equals_batchnorm1d(monkeypatch, momentum, shape):
    monkeypatch.setattr(norm, "_world_size", lambda: 2)  # take the multi-rank path ...
    monkeypatch.setattr(norm, "_all_reduce_sum", lambda x: x)  # ... with this process holding every sample
    ref, ours = _pair(momentum, torch.float64)
    xs = _batches(torch.float64, shape)
    _compare(_run(ref, xs, True), _run(ours, xs, True), exact=False)
    _compare(_run(ref, xs, False), _run(ours, xs, False), exact=False)


def test_bfloat16_input_keeps_its_dtype(monkeypatch):
    monkeypatch.setattr(norm, "_world_size", lambda: 2)
    monkeypatch.setattr(norm, "_all_reduce_sum", lambda x: x)
    bn = GlobalBatchNorm1d(5)
    x = _batches(torch.float32)[1]
    y = bn(x.bfloat16())
    assert y.dtype == torch.bfloat16 and bn.running_mean.dtype == torch.float32
    ref = nn.BatchNorm1d(5)(x)
    assert torch.allclose(y.float(), ref, atol=0.05)  # statistics in float32, only the input rounded
