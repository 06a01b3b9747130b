import math

import pytest
import torch
import torch.nn.functional as F

from openjepa.eval.linear import (
    cosine_factor,
    linear_probe,
    probe_split,
    standardize,
    train_linear_heads,
)


def _blobs(n, d=20, c=4, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(c, d, generator=g) * scale
    y = torch.randint(0, c, (n,), generator=g)
    return centers[y] + torch.randn(n, d, generator=g), y


def test_separable_blobs_above_95():
    x, y = _blobs(1200)
    r = linear_probe(x[:1000], y[:1000], x[1000:], y[1000:], epochs=30, batch_size=128)
    assert r.accuracy > 0.95
    assert len(r.head_val_accuracies) == 12 and r.val_accuracy == max(h["val_accuracy"] for h in r.head_val_accuracies)
    assert (r.best_lr, r.best_wd) in {(h["lr"], h["wd"]) for h in r.head_val_accuracies}


def test_random_labels_give_chance():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3000, 32, generator=g)
    y = torch.randint(0, 4, (3000,), generator=g)
    r = linear_probe(x[:1000], y[:1000], x[1000:], y[1000:], epochs=20, batch_size=256)
    assert abs(r.accuracy - 0.25) < 0.04


def test_parallel_heads_equal_single_heads():
    x, y = _blobs(300, d=12, c=3)
    lrs, wds = [1e-3, 1e-2, 3e-2], [0.0, 1e-2, 1e-1]
    kw = dict(epochs=4, batch_size=64, seed=3)
    w, b = train_linear_heads(x, y, 3, lrs, wds, **kw)
    assert w.shape == (3, 12, 3) and b.shape == (3, 3)
    for h in range(3):
        w1, b1 = train_linear_heads(x, y, 3, [lrs[h]], [wds[h]], **kw)
        torch.testing.assert_close(w[h], w1[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b[h], b1[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(w[0], w[1])  # the heads really differ


def test_heads_match_plain_torch_adam_reference():
    """One head equals a textbook loop: x @ W + b, cross-entropy, torch.optim.Adam, cosine lr."""
    x, y = _blobs(200, d=6, c=3)
    lr, wd, epochs, bs, seed = 1e-2, 1e-2, 3, 32, 5
    w, b = train_linear_heads(x, y, 3, [lr], [wd], epochs=epochs, batch_size=bs, seed=seed)
    rw = torch.zeros(6, 3, requires_grad=True)
    rb = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([{"params": [rw], "weight_decay": wd}, {"params": [rb], "weight_decay": 0.0}], lr=lr)
    steps = math.ceil(200 / bs)
    g = torch.Generator().manual_seed(seed)
    t = 0
    for _ in range(epochs):
        order = torch.randperm(200, generator=g)
        for i in range(steps):
            idx = order[i * bs : (i + 1) * bs]
            for group in opt.param_groups:
                group["lr"] = lr * cosine_factor(t, epochs * steps)
            loss = F.cross_entropy(x[idx] @ rw + rb, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            t += 1
    torch.testing.assert_close(w[0], rw.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b[0], rb.detach(), rtol=1e-4, atol=1e-5)


def test_probe_is_seeded_and_single_pair_skips_selection():
    x, y = _blobs(400, c=3)
    kw = dict(epochs=5, batch_size=64, seed=7)
    r1 = linear_probe(x[:300], y[:300], x[300:], y[300:], **kw)
    r2 = linear_probe(x[:300], y[:300], x[300:], y[300:], **kw)
    assert r1 == r2
    r = linear_probe(x[:300], y[:300], x[300:], y[300:], lrs=(1e-2,), wds=(0.0,), **kw)
    assert r.head_val_accuracies == [] and math.isnan(r.val_accuracy)
    with pytest.raises(ValueError):
        linear_probe(x[:300], y[:300], x[300:], y[300:], val_fraction=0.0, **kw)


def test_probe_split_and_standardize():
    y = torch.cat([torch.zeros(100), torch.ones(50), torch.full((10,), 2)]).long()
    tr, va = probe_split(y, 0.1, seed=0)
    assert sorted(torch.cat([tr, va]).tolist()) == list(range(160))
    assert torch.bincount(y[va]).tolist() == [10, 5, 1]
    assert torch.equal(probe_split(y, 0.1, seed=0)[1], va)
    assert not torch.equal(probe_split(y, 0.1, seed=1)[1], va)
    x = torch.randn(50, 3) * 4 + 2
    x[:, 2] = 0.0  # constant dimension: centred only
    test = torch.ones(5, 3)
    xs, ts = standardize(x, test)
    torch.testing.assert_close(xs[:, :2].mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(xs[:, :2].std(0), torch.ones(2))
    assert torch.equal(ts[:, 2], torch.ones(5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_probe_on_cuda_matches_cpu():
    x, y = _blobs(400, c=3)
    kw = dict(epochs=5, batch_size=64, seed=0)
    cpu = linear_probe(x[:300], y[:300], x[300:], y[300:], **kw)
    gpu = linear_probe(x[:300].cuda(), y[:300].cuda(), x[300:].cuda(), y[300:].cuda(), **kw)
    assert abs(cpu.accuracy - gpu.accuracy) < 0.02
