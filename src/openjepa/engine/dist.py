"""Distributed helpers: rank and world size come from torchrun's environment; nothing runs at import.

``torchrun --nproc_per_node=N -m openjepa train CONFIG`` starts N processes; ``setup`` joins them
into one process group (NCCL on GPUs, gloo on CPUs) and ``wrap`` makes the method data-parallel:
DDP (every rank holds the whole model) or FSDP2 (``fully_shard``: parameters, gradients and
optimizer state sharded over ranks, one unit per transformer block plus one per encoder,
target encoder and predictor). Checkpoints are always *full* state dicts gathered to rank 0's CPU,
so a run saved by N ranks under FSDP2 resumes on any number of ranks, or evaluates on one process.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

PARALLEL = ("ddp", "fsdp")


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: torch.device) -> bool:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1). Returns whether it did."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group if there is one; returns this rank's device (``cuda:LOCAL_RANK``)."""
    if init_from_env(device) and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over ranks (identity on one process)."""
    if world_size() == 1:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / world_size()


def mean_over_ranks(metrics: dict[str, float], device: torch.device) -> dict[str, float]:
    """Every value averaged over ranks, in one all-reduce (all ranks must pass the same keys)."""
    if world_size() == 1 or not metrics:
        return metrics
    keys = sorted(metrics)
    t = all_reduce_mean(torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=device))
    return dict(zip(keys, t.tolist()))


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order (a one-element list on one process)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def wrap(method: nn.Module, parallel: str, device: torch.device) -> nn.Module:
    """The module the training loop calls: the method itself on one process, else DDP or FSDP2 of it."""
    if world_size() == 1:
        return method
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(method, device_ids=[device.index] if device.type == "cuda" else None)
    if parallel == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        from openjepa.layers.mlp import Block

        mesh = init_device_mesh(device.type, (world_size(),))
        for mod in list(method.modules()):
            if isinstance(mod, Block):
                fully_shard(mod, mesh=mesh)
        for mod in list(method.children()):  # encoder, EMA target, predictor: their remaining parameters
            fully_shard(mod, mesh=mesh)
        fully_shard(method, mesh=mesh)
        return method
    raise ValueError(f"unknown train.parallel {parallel!r}; choose one of: {', '.join(PARALLEL)}")


def is_sharded(method: nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in method.parameters())


def full_state(method: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Full (unsharded, CPU) model and optimizer state dicts, optimizer keyed by parameter name.

    A collective under FSDP2: every rank must call it. The format does not depend on the world size
    or on sharding, so any run resumes on any number of ranks.
    """
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(method, options=opts), get_optimizer_state_dict(method, opt, options=opts)


def load_full_state(method: nn.Module, opt: torch.optim.Optimizer | None, model_sd: dict, optim_sd: dict | None) -> None:
    """Inverse of ``full_state``: scatter full state dicts into a (possibly sharded) method and optimizer."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)

    opts = StateDictOptions(full_state_dict=True, strict=True)
    set_model_state_dict(method, model_sd, options=opts)
    if opt is not None and optim_sd is not None:
        set_optimizer_state_dict(method, opt, optim_sd, options=opts)
