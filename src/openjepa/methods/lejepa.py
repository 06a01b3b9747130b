"""LeJEPA: multi-view prediction of the global views' mean embedding, with SIGReg and no teacher.

Balestriero & LeCun 2025, "LeJEPA: Provable and Scalable Self-Supervised Learning Without the
Heuristics", arXiv 2511.08544. Every view (V_g global + V_l local crops of an image) goes through
the encoder (average-pooled tokens) and a projector; the prediction term pulls each view's
projection towards the mean projection of the image's global views, and SIGReg pushes the
projections towards an isotropic Gaussian, which is what rules collapse out: no EMA teacher, no
stop-gradient, no predictor network. Loss (the paper's convex form, ``sigreg.combine=convex``):

    L = (1 - λ) · mean_v ||z_v - mean_g z_g||² + λ · SIGReg(z)

with SIGReg computed per view and averaged (``sigreg.statistic=per_view``) or once over all views.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from openjepa.config.schema import Config
from openjepa.data.registry import dataset_info
from openjepa.data.views import ViewCollator, multiview_transform
from openjepa.errors import ConfigError
from openjepa.layers.norm import GlobalBatchNorm1d
from openjepa.methods.base import DataPipeline, SingleEncoderMethod, StepOutput, register_method
from openjepa.methods.ijepa import build_encoder
from openjepa.models import VisionTransformer
from openjepa.objectives.combine import combine
from openjepa.objectives.sigreg import SIGReg


def projector(dim: int, hidden: int, out: int) -> nn.Sequential:
    """The 3-layer MLP projector (Linear-BN-GELU twice, then Linear), as in the LeJEPA scripts.

    Its BatchNorms normalise over the global batch (:class:`GlobalBatchNorm1d`), the batch SIGReg
    sees, so the loss does not depend on the number of ranks.
    """
    return nn.Sequential(nn.Linear(dim, hidden), GlobalBatchNorm1d(hidden), nn.GELU(),
                         nn.Linear(hidden, hidden), GlobalBatchNorm1d(hidden), nn.GELU(), nn.Linear(hidden, out))


class LeJEPA(SingleEncoderMethod):
    def __init__(self, encoder: VisionTransformer, proj: nn.Module, sigreg: SIGReg, weight: float = 0.05,
                 combine_mode: str = "convex", statistic: str = "per_view", num_global: int = 2, seed: int = 0):
        super().__init__()
        self.encoder, self.projector, self.sigreg = encoder, proj, sigreg
        self.weight, self.combine_mode, self.statistic = weight, combine_mode, statistic
        self.num_global, self.seed = num_global, seed

    def embed_views(self, views: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Views of one size share a forward. -> pooled embeddings (V, B, D) and projections (V, B, P)."""
        V, B = len(views), views[0].shape[0]
        emb: list[Tensor] = [torch.empty(0)] * V
        sizes: dict[tuple, list[int]] = {}
        for i, v in enumerate(views):
            sizes.setdefault(tuple(v.shape[-2:]), []).append(i)
        for idx in sizes.values():
            pooled = self.encoder(torch.cat([views[i] for i in idx])).mean(dim=1)  # (len(idx)*B, D)
            for j, i in enumerate(idx):
                emb[i] = pooled[j * B:(j + 1) * B]
        e = torch.stack(emb)  # (V, B, D)
        z = self.projector(e.flatten(0, 1)).float().view(V, B, -1)  # (V, B, P)
        return e, z

    def training_step(self, batch: dict[str, Any], step: int) -> StepOutput:
        e, z = self.embed_views(batch["views"])
        centre = z[: self.num_global].mean(dim=0)  # (B, P): the global views' mean
        pred = (z - centre).square().mean()
        if self.statistic == "per_view":
            reg = torch.stack([self.sigreg(z[v], step) for v in range(z.shape[0])]).mean()
        else:
            reg = self.sigreg(z.flatten(0, 1), step)
        loss = combine(pred, reg, self.weight, self.combine_mode)
        metrics = {"loss": loss.detach(), "pred_loss": pred.detach(), "sigreg": reg.detach(),
                   "proj_std": z.detach().std(dim=1).mean()}
        return StepOutput(loss, metrics, features=e[0].detach().float())

    def data_pipeline(self, cfg: Config) -> DataPipeline:
        """V_g global and V_l local crops of every image, batched view by view."""
        info, v = dataset_info(cfg.data), cfg.views  # info.mean/std include the config's overrides
        views = multiview_transform(v.num_global, v.num_local, view_size(cfg, "global"), view_size(cfg, "local"),
                                    v.global_scale, v.local_scale, cfg.data.train_transforms, info.mean, info.std)
        return DataPipeline(ViewCollator(), views)

    def batch_size(self, batch: dict[str, Any]) -> int:
        return batch["views"][0].shape[0]

    @property
    def feature_dim(self) -> int:
        return self.encoder.embed_dim


def view_size(cfg: Config, kind: str) -> int:
    """Pixel side of global / local views (defaults: the model's size; 7/16 of it on the patch grid)."""
    m, v = cfg.model, cfg.views
    if kind == "global":
        return v.global_size or m.img_size
    return v.local_size or max(m.patch_size, round(m.img_size * 7 / 16 / m.patch_size) * m.patch_size)


def check_lejepa(cfg: Config) -> None:
    if cfg.views.num_global < 1:
        raise ConfigError(f"views.num_global={cfg.views.num_global} must be at least 1 for lejepa")


@register_method("lejepa", check=check_lejepa)
def build_lejepa(cfg: Config, total_steps: int) -> LeJEPA:
    encoder = build_encoder(cfg)
    m, s = cfg.model, cfg.sigreg
    return LeJEPA(encoder, projector(encoder.embed_dim, m.proj_hidden, m.proj_dim), SIGReg(s.slices, s.knots, s.t_max, cfg.seed),
                  s.weight, s.combine, s.statistic, cfg.views.num_global, cfg.seed)
