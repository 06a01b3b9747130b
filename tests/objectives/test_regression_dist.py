"""regression_loss on 2 gloo ranks with different numbers of valid target tokens: the mean of the ranks'
losses, and DDP's average of their gradients, equal one process's loss and gradient on the whole batch."""

import datetime

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from openjepa.objectives import regression_loss

WORLD, B, K, D = 2, 4, 5, 3


def _batch():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(B, K, D, generator=g, dtype=torch.float64)
    target = torch.randn(B, K, D, generator=g, dtype=torch.float64)
    valid = torch.ones(B, K, dtype=torch.bool)
    valid[0, 2:] = False  # rank 0 (rows 0-1) holds 6 valid tokens, rank 1 (rows 2-3) holds 10
    valid[1, :1] = False
    return pred, target, valid


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=120))
    try:
        pred, target, valid = (t[2 * rank:2 * rank + 2] for t in _batch())
        pred = pred.clone().requires_grad_(True)
        loss = regression_loss(pred, target, valid, kind="l2")
        loss.backward()
        torch.save({"loss": loss.item(), "grad": pred.grad}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_with_uneven_valid_counts_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    res = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    pred, target, valid = _batch()
    pred.requires_grad_(True)
    loss = regression_loss(pred, target, valid, kind="l2")
    loss.backward()
    per_token = (pred.detach() - target).square().mean(-1)  # (B, K)
    assert loss.item() == pytest.approx((per_token * valid).sum().item() / 16, rel=1e-6)
    assert sum(r["loss"] for r in res) / WORLD == pytest.approx(loss.item(), rel=1e-6)
    for rank, r in enumerate(res):  # each rank divides its sum by the mean count, 8: not by its own (6 or 10)
        rows = slice(2 * rank, 2 * rank + 2)
        assert r["loss"] == pytest.approx((per_token[rows] * valid[rows]).sum().item() / 8, rel=1e-6)
        torch.testing.assert_close(r["grad"] / WORLD, pred.grad[rows], rtol=1e-5, atol=1e-7)
