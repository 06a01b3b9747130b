import pytest
import torch

from openjepa.eval.attentive import AttentiveClassifier, attentive_probe, heads_for, train_attentive
from openjepa.eval.linear import linear_probe


def _which_token(n, t=8, d=16, seed=0):
    """The class is WHICH of t tokens carries a signal vector; every token also has fixed content
    per position (like a position embedding), so the token index is readable from the token.
    The mean over tokens is the same for every class (pos.mean + sig / t + noise): mean pooling
    is at chance, attention that finds the signal token can read the class off it."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(t, d, generator=g)
    sig = torch.randn(d, generator=g)
    sig = 4.0 * sig / sig.norm()
    y = torch.randint(0, t, (n,), generator=g)
    x = pos + 0.5 * torch.randn(n, t, d, generator=g)
    x[torch.arange(n), y] += sig
    return x, y


def test_attention_reads_which_token_where_mean_pooling_fails():
    x, y = _which_token(1100)
    tr, te = slice(0, 800), slice(800, None)
    r = attentive_probe(x[tr].half(), y[tr], x[te].half(), y[te], epochs=20, batch_size=64, lrs=(3e-2,),
                        num_heads=4, seed=0)
    lin = linear_probe(x[tr].mean(1), y[tr], x[te].mean(1), y[te], epochs=20, batch_size=64)
    assert r.accuracy > 0.6, r  # chance is 1/8
    assert lin.accuracy < 0.3, lin.accuracy


def test_heads_shapes_and_seeded_training():
    assert (heads_for(96, 4), heads_for(48, 5), heads_for(49, 4), heads_for(3, 16)) == (4, 4, 1, 3)
    model = AttentiveClassifier(dim=12, num_classes=5, num_heads=3, num_queries=2)
    assert model(torch.randn(7, 9, 12)).shape == (7, 5)
    x, y = _which_token(64, t=4, d=12)
    kw = dict(lr=1e-2, wd=1e-3, epochs=2, batch_size=16, seed=3, device=torch.device("cpu"), num_heads=3)
    a, b = train_attentive(x, y, 4, **kw), train_attentive(x.half(), y, 4, **kw)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name, atol=1e-3, rtol=1e-3)  # float16 tokens: ~same model
    c = train_attentive(x, y, 4, **{**kw, "seed": 4})
    assert not torch.allclose(a.head.weight, c.head.weight)


def test_lr_selection_on_held_out_and_single_lr_skips_it():
    x, y = _which_token(100, t=4, d=8)
    r = attentive_probe(x[:80], y[:80], x[80:], y[80:], epochs=1, batch_size=32, lrs=(1e-3, 1e-2), num_heads=2)
    assert [v["lr"] for v in r.lr_val_accuracies] == [1e-3, 1e-2] and r.num_heads == 2
    assert r.val_accuracy == max(v["val_accuracy"] for v in r.lr_val_accuracies)
    vals = [v["val_accuracy"] for v in r.lr_val_accuracies]
    assert r.best_lr == r.lr_val_accuracies[vals.index(r.val_accuracy)]["lr"]  # the first of the best
    r = attentive_probe(x[:80], y[:80], x[80:], y[80:], epochs=1, batch_size=32, lrs=(1e-3,), num_heads=2)
    assert r.lr_val_accuracies == [] and r.val_accuracy != r.val_accuracy  # nan: nothing was held out
    assert 0.0 <= r.accuracy <= 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_attentive_probe_on_cuda_from_cpu_float16_tokens():
    x, y = _which_token(1100)
    r = attentive_probe(x[:800].half(), y[:800], x[800:].half(), y[800:], epochs=20, batch_size=64, lrs=(3e-2,),
                        device="cuda")
    assert r.accuracy > 0.6, r
