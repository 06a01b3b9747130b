"""Rank 0 evaluates after the process group is closed: the other ranks are not held in a collective
(which would exceed the NCCL timeout on a long evaluation); they return as soon as training ends."""

from __future__ import annotations

import json
import socket

import pytest
import torch.multiprocessing as mp

from tests.dist.eval_ranks import run_rank
from tests.tiny import TINY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_rank0_evaluates_alone_with_no_open_process_group(tmp_path):
    overrides = [*TINY, "train.steps=2", "monitor.every=0", "eval.at_end=true", "eval.report=false"]
    mp.spawn(run_rank, args=(2, _free_port(), str(tmp_path / "run"), str(tmp_path), overrides), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["trained"] and r1["trained"]
    assert r0["eval"]["group_open"] is False and r0["eval"]["step"] == 2
    assert r1["eval"] is None  # only rank 0 evaluates
    assert r1["returned"] < r0["eval"]["end"]  # rank 1 was already gone while rank 0 was still evaluating
