"""GlobalBatchNorm1d on 2 gloo ranks = nn.BatchNorm1d on one process with the concatenated batch.

Each rank holds rows of a fixed float64 batch whose halves differ (an even split and an uneven one:
sums and counts are all-reduced, not means). Per rank: its output rows, the gradient of its rows
(the all-reduce's backward sums the ranks' gradients, so with per-rank losses that add up to the
one-process loss each rank gets exactly its rows of the one-process gradient), the ranks' parameter
gradients summed, and the running statistics. Under DDP (which averages gradients) the parameter
gradients are 1/W of the one-process ones. A per-rank nn.BatchNorm1d shows what is being caught.
"""

import datetime

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from openjepa.layers.norm import GlobalBatchNorm1d

WORLD, N, C = 2, 16, 4
SPLITS = {"even": [0, 8, 16], "uneven": [0, 5, 16]}


def _batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, C, generator=g, dtype=torch.float64)
    x[: N // 2] = x[: N // 2] * 0.5 - 1.0  # the halves differ: per-rank statistics are far from the global ones
    x[N // 2:] = x[N // 2:] * 2.0 + 1.0
    return x


def _weights() -> torch.Tensor:
    return torch.linspace(-1.0, 2.0, N * C, dtype=torch.float64).view(N, C)


def _bn(cls=GlobalBatchNorm1d) -> nn.Module:
    bn = cls(C, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 2.0, C))
        bn.bias.copy_(torch.linspace(-1.0, 1.0, C))
    return bn


def _loss(y: torch.Tensor, rows: slice) -> torch.Tensor:
    return (y * _weights()[rows]).square().sum()  # the ranks' losses add up to the one-process loss


def _step(module: nn.Module, bn: nn.Module, rows: slice) -> dict:
    x = _batch()[rows].clone().requires_grad_(True)
    y = module(x)
    _loss(y, rows).backward()
    return {"y": y.detach(), "x_grad": x.grad, "w_grad": bn.weight.grad.clone(), "b_grad": bn.bias.grad.clone(),
            "state": {k: v.clone() for k, v in bn.state_dict().items()}}


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=120))
    try:
        out = {}
        for name, bounds in SPLITS.items():
            rows = slice(bounds[rank], bounds[rank + 1])
            bn = _bn()
            ddp = DDP(_bn())
            local = _bn(nn.BatchNorm1d)
            out[name] = {"plain": _step(bn, bn, rows), "ddp": _step(ddp, ddp.module, rows),
                         "local": _step(local, local, rows)}
            bn.eval()
            out[name]["eval"] = bn(_batch()[rows]).detach()  # eval mode: the (global) running statistics
        torch.save(out, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_two_ranks_equal_batchnorm1d_on_the_concatenated_batch(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    ref_bn = _bn(nn.BatchNorm1d)
    ref = _step(ref_bn, ref_bn, slice(0, N))
    ref_bn.eval()
    ref_eval = ref_bn(_batch()).detach()

    for name, bounds in SPLITS.items():
        ranks = [r[name] for r in results]
        for rank, res in enumerate(ranks):
            rows = slice(bounds[rank], bounds[rank + 1])
            for kind in ("plain", "ddp"):
                got = res[kind]
                assert _close(got["y"], ref["y"][rows]), (name, rank, kind)
                assert _close(got["x_grad"], ref["x_grad"][rows]), (name, rank, kind)
                for k, v in ref["state"].items():
                    assert _close(got["state"][k].to(v.dtype), v), (name, rank, kind, k)
            assert _close(res["eval"], ref_eval[rows]), (name, rank)
            for key in ("w_grad", "b_grad"):  # DDP averages the ranks' gradients: 1/W of the one-process one
                assert _close(res["ddp"][key] * WORLD, ref[key]), (name, rank, key)
            assert not torch.allclose(res["local"]["y"], ref["y"][rows], atol=1e-3)  # per-rank BN differs
        for key in ("w_grad", "b_grad"):  # without DDP, each rank holds its share of the gradient
            assert _close(sum(r["plain"][key] for r in ranks), ref[key]), (name, key)
