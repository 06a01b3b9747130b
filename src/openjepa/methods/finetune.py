"""Full fine-tuning: a pretrained encoder and a classification head trained together on labels.

The recipe of BEiT / MAE fine-tuning (Bao et al. 2022, arXiv 2106.08254, Sec. 2.6; He et al. 2022,
arXiv 2111.06377, App. A.2), as I-JEPA's fine-tuning evaluations use it: cross-entropy with label
smoothing, AdamW, warm-up and cosine schedule (``optim.*``), stochastic depth (``model.drop_path``)
and layer-wise learning-rate decay: with L transformer blocks, the patch and position embeddings
train at ``lr · d^(L+1)``, block i (0-based) at ``lr · d^(L-i)`` and the final norm and the head at
``lr``, with ``d = finetune.layer_decay``. The head is a LayerNorm + linear layer on the average-pooled
tokens or V-JEPA's attentive pooler (``finetune.head``). ``finetune.source`` names the pretrained
encoder; without one the same recipe trains from random init (the supervised baseline).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from openjepa.config.schema import Config
from openjepa.data.collate import LabelledCollator
from openjepa.data.registry import dataset_info
from openjepa.errors import ConfigError
from openjepa.methods.base import DataPipeline, SingleEncoderMethod, StepOutput, register_method
from openjepa.methods.ijepa import build_encoder
from openjepa.models.heads import AttentiveClassifier, LinearClassifier, heads_for


class Finetune(SingleEncoderMethod):
    evaluation: ClassVar[str] = "classification"

    def __init__(self, encoder: nn.Module, head: nn.Module, label_smoothing: float = 0.1, layer_decay: float = 1.0,
                 source: str | None = None):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.label_smoothing, self.layer_decay, self.source = label_smoothing, layer_decay, source

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, N, D) tokens -> (B, classes)

    def training_step(self, batch: dict[str, Any], step: int) -> StepOutput:
        x, y = batch["x"], batch["y"]
        tokens = self.encoder(x)  # (B, N, D)
        logits = self.head(tokens).float()
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        acc = (logits.argmax(1) == y).float().mean()
        return StepOutput(loss, {"loss": loss.detach(), "train_acc": acc.detach()},
                          features=tokens.detach().mean(dim=1).float())

    def data_pipeline(self, cfg: Config) -> DataPipeline:
        return DataPipeline(LabelledCollator())  # the dataset's own train transforms (data.train_transforms)

    def batch_size(self, batch: dict[str, Any]) -> int:
        return batch["x"].shape[0]

    @property
    def feature_dim(self) -> int:
        return self.encoder.embed_dim

    def pretrained_sources(self, cfg: Config) -> dict[str, tuple[str, str]]:
        return {"encoder": (self.source, "target")} if self.source else {}

    def lr_scales(self) -> dict[str, float]:
        """Layer-wise decay over the encoder's ``blocks.i`` (ViT); ResNet encoders train at one rate."""
        blocks = getattr(self.encoder, "blocks", None)
        if self.layer_decay >= 1 or blocks is None:
            return {}
        depth, d = len(blocks), self.layer_decay
        scales = {}
        for name, _ in self.named_parameters():
            if not name.startswith("encoder."):
                continue
            m = re.match(r"encoder\.blocks\.(\d+)\.", name)
            if m:
                scales[name] = d ** (depth - int(m.group(1)))
            elif not name.startswith("encoder.norm"):
                scales[name] = d ** (depth + 1)  # patch embedding, position embedding: below the first block
        return scales


def check_finetune(cfg: Config) -> None:
    if dataset_info(cfg.data).num_classes < 2:
        raise ConfigError(f"train.method=finetune trains a classifier and needs labelled data; data.name="
                          f"{cfg.data.name} has {dataset_info(cfg.data).num_classes} classes here")


@register_method("finetune", data=("image", "video"), check=check_finetune)
def build_finetune(cfg: Config, total_steps: int) -> Finetune:
    encoder = build_encoder(cfg)
    classes, dim = dataset_info(cfg.data).num_classes, encoder.embed_dim
    head = (LinearClassifier(dim, classes) if cfg.finetune.head == "linear"
            else AttentiveClassifier(dim, classes, heads_for(dim, cfg.eval.attentive_heads), cfg.eval.attentive_queries))
    return Finetune(encoder, head, cfg.finetune.label_smoothing, cfg.finetune.layer_decay, cfg.finetune.source)
