"""Run in spawned processes by ``test_faults.py`` (a module of its own, so they import little)."""

import torch
import torch.distributed as dist

from openjepa.engine.faults import SpikeGuard


def guard_on_rank(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        g = SpikeGuard(factor=3.0, window=5)
        lines: list = []
        # Rank 1's loss alone would be a spike (and rank 0's would not); the mean over ranks decides.
        losses = [1.0] * 5 + [1.0 if rank == 0 else 5.0] + [1.0 if rank == 0 else 20.0]
        taken = [g.allows(torch.tensor(v), s, lines.append) for s, v in enumerate(losses)]
        torch.save({"taken": taken, "lines": lines, "state": g.state_dict()}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
