"""The compute of one training step, counted by PyTorch's FLOP counter on a real batch.

``torch.utils.flop_counter.FlopCounterMode`` counts the floating-point operations of the matrix products,
convolutions and attention kernels a forward and backward pass dispatches (2 per multiply-add), which is
where a JEPA step spends its compute; element-wise ops are not counted. Used by ``openjepa sweep`` to put
probe accuracy against compute.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from openjepa.config.schema import Config
from openjepa.data import build_dataset
from openjepa.engine.trainer import build_loader
from openjepa.methods import build_method


def train_step_flops(cfg: Config) -> int:
    """FLOPs of one training step (forward and backward) of ``cfg``'s method on its first global batch, on the CPU.

    ``cfg`` must be prepared (:func:`openjepa.engine.trainer.prepare`). The batch is the run's own step 0, built
    by the trainer's :func:`~openjepa.engine.trainer.build_loader` (its augmentations, masks and, for a video run
    with ``data.images``, its image batch), so the count is what a step of that run costs, summed over ranks.
    """
    torch.manual_seed(cfg.seed)
    dataset = build_dataset(cfg.data, "train", cfg.model.img_size, seed=cfg.seed)
    method = build_method(cfg, max(cfg.train.steps, 1)).train()
    batch = next(iter(build_loader(cfg, method, dataset, 0, 1, torch.device("cpu"))))
    with FlopCounterMode(display=False) as counter:
        method.training_step(batch, 0).loss.backward()
    return int(counter.get_total_flops())
