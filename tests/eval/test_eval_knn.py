import numpy as np
import pytest
import torch

from openjepa.eval.knn import knn_accuracy, knn_classify


def _reference(train_x, train_y, test_x, k, t, num_classes):
    """Brute force in numpy float64, one test sample at a time."""
    tr = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    preds = []
    for q in test_x:
        q = q / np.linalg.norm(q)
        sims = tr @ q
        nn = np.argsort(-sims)[:k]
        votes = np.zeros(num_classes)
        for j in nn:
            votes[train_y[j]] += np.exp(sims[j] / t)
        preds.append(int(np.argmax(votes)))
    return np.array(preds)


@pytest.mark.parametrize("k,t,batch_size", [(1, 0.07, 1024), (10, 0.07, 7), (20, 0.5, 13), (500, 0.1, 64)])
def test_knn_matches_brute_force(k, t, batch_size):
    rng = np.random.default_rng(k)
    train_x = rng.normal(size=(200, 8))
    train_y = rng.integers(0, 5, size=200)
    test_x = rng.normal(size=(60, 8))
    ref = _reference(train_x, train_y, test_x, min(k, 200), t, 5)
    got = knn_classify(
        torch.tensor(train_x, dtype=torch.float32),
        torch.tensor(train_y),
        torch.tensor(test_x, dtype=torch.float32),
        k=k,
        temperature=t,
        num_classes=5,
        batch_size=batch_size,
    )
    assert got.dtype == torch.int64 and got.shape == (60,)
    np.testing.assert_array_equal(got.numpy(), ref)


def test_knn_accuracy_on_clusters_and_self():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=g) * 5
    y = torch.arange(400) % 4
    x = centers[y] + torch.randn(400, 16, generator=g)
    assert knn_accuracy(x, y, x, y, k=1) == 1.0  # each point is its own nearest neighbour
    assert knn_accuracy(x[:300], y[:300], x[300:], y[300:], k=20) > 0.95


def test_knn_protocol_row_equals_brute_force():
    """Routed through the protocol choice (evaluate_features), kNN still equals the numpy reference."""
    from openjepa.config.schema import EvalConfig
    from openjepa.eval.table import evaluate_features

    rng = np.random.default_rng(1)
    train_x, test_x = rng.normal(size=(150, 6)), rng.normal(size=(50, 6))
    train_y, test_y = rng.integers(0, 3, size=150), rng.integers(0, 3, size=50)
    cfg = EvalConfig(knn_k=7, knn_temperature=0.2, max_train_samples=0, max_test_samples=0)
    t = lambda a, dt=torch.float32: torch.tensor(a, dtype=dt)  # noqa: E731
    rows = evaluate_features({"random": (t(train_x), t(train_y, torch.int64), t(test_x), t(test_y, torch.int64))},
                             cfg, seed=0, protocols=["knn"])
    want = (_reference(train_x, train_y, test_x, 7, 0.2, 3) == test_y).mean()
    assert rows[0]["knn"] == pytest.approx(want) and "linear" not in rows[0]
