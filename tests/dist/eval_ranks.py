"""Run in spawned processes by ``test_eval_alone.py``: a 2-rank gloo run whose end-of-training evaluation
is replaced by a probe that records whether a process group is still open while rank 0 evaluates."""

from __future__ import annotations

import json
import os
import time

import torch.distributed as dist


def run_rank(rank: int, world: int, port: int, run_dir: str, out_dir: str, overrides: list[str]) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from openjepa.config import load_config
    from openjepa.eval.registry import EVALUATIONS
    from openjepa.report.pipeline import train_and_evaluate

    def slow_probe(method, cfg, device, run_dir, step):
        start = time.time()
        group_open = dist.is_initialized()
        time.sleep(2.0)  # a long evaluation: nobody may be waiting on rank 0 in a collective meanwhile
        return {"group_open": group_open, "start": start, "end": time.time(), "step": step}

    EVALUATIONS._entries["probes"] = slow_probe  # this process only
    summary = train_and_evaluate(load_config(None, [f"run_dir={run_dir}", *overrides]))
    record = {"returned": time.time(), "eval": summary.get("eval"), "trained": summary["trained"]}
    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump(record, f)
