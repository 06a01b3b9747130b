"""I-JEPA: masked latent prediction with an EMA target (Assran et al. 2023, arXiv 2301.08243).

The same method trains on video (V-JEPA, Bardes et al. 2024): the ViT and the mask sampler work
on a (T, H, W) token grid, so nothing here depends on the modality. With ``mask.groups`` (V-JEPA's
short- and long-range masks) each group gets its own context, one predictor pass with its own mask token,
and the loss is the mean over groups (V-JEPA Sec. 3: L1 on layer-normed targets, ``train.loss=l1``).

With ``data.images`` (V-JEPA 2, Assran et al. 2025, arXiv 2506.09985: images trained jointly with clips) every
step also draws a batch of images, one-frame clips on the encoder's (1, H, W) image grid with the same mask
settings, and the loss is ``(1 - w) * L_clips + w * L_images`` for ``w = data.image_weight``: the official code
trains a quarter of its ranks on images and averages gradients over ranks, which is this weighting with w = 1/4.

With ``train.target=online`` there is no EMA teacher and no stop-gradient: the encoder itself
encodes the full image for the targets, and SIGReg (LeJEPA, Balestriero & LeCun 2025, arXiv
2511.08544) is what prevents collapse (the masked JEPA the LeJEPA authors invite). It sees either
one pooled embedding per image (``sigreg.input=pooled``) or every target token (``sigreg.input=tokens``,
B·N samples): only the latter also rules out tokens that encode their position and little of the
image, which the prediction term alone favours (benchmarks/RESULTS.md, issue 5).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from openjepa.config.schema import Config
from openjepa.errors import ConfigError
from openjepa.layers.seed import mix_seed
from openjepa.masks.base import MaskBatch, MaskGroups, Masks
from openjepa.masks.ops import apply_masks, repeat_for_blocks
from openjepa.masks import MaskCollator, build_mask_sampler
from openjepa.methods.base import DataPipeline, JEPAMethod, StepOutput, check_encoder_choice, register_method
from openjepa.models import Predictor, VisionTransformer, create_model
from openjepa.objectives import normalized_targets, regression_loss
from openjepa.objectives.combine import combine
from openjepa.objectives.sigreg import SIGReg
from openjepa.target import EMATarget, momentum_at


class IJEPA(JEPAMethod):
    def __init__(self, encoder: VisionTransformer, predictor: Predictor, loss: str = "smooth_l1",
                 ema: tuple[float, float] = (0.996, 1.0), total_steps: int = 1, sigreg: SIGReg | None = None,
                 sigreg_weight: float = 0.0, combine_mode: str = "convex", seed: int = 0,
                 sigreg_input: str = "tokens", image_weight: float = 0.25):
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor
        self.target = EMATarget(encoder) if sigreg is None else None  # online targets: no teacher at all
        self.sigreg, self.sigreg_weight, self.combine_mode, self.seed = sigreg, sigreg_weight, combine_mode, seed
        self.sigreg_input, self.image_weight = sigreg_input, image_weight
        self.loss, self.ema, self.total_steps = loss, tuple(ema), total_steps

    def training_step(self, batch: dict[str, Any], step: int) -> StepOutput:
        loss, metrics, pooled = self._loss(batch["x"], batch["masks"], step)
        if "images" in batch:  # V-JEPA 2: a joint image batch (data.images), one-frame clips on a (1, H, W) grid
            w = self.image_weight
            img_loss, img_metrics, _ = self._loss(batch["images"]["x"], batch["images"]["masks"], step)
            loss = (1 - w) * loss + w * img_loss
            metrics.update({f"image_{k}": v for k, v in img_metrics.items()})
        metrics["loss"] = loss.detach()
        if self.target is not None:
            metrics["ema"] = self.momentum(step)  # the teacher's momentum after this step
        return StepOutput(loss, metrics, features=pooled.detach().float())

    def _loss(self, x: Tensor, masks: Masks | MaskGroups, step: int) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """The loss of one batch (prediction, plus SIGReg with online targets), its metrics, its pooled tokens (B, D)."""
        groups = masks if isinstance(masks, MaskGroups) else (masks,)  # V-JEPA: one pass per mask group
        with torch.set_grad_enabled(self.target is None):  # online targets carry gradients
            t = (self.encoder if self.target is None else self.target)(x)  # (B, N, D)
            targets = normalized_targets(t)
        out = [self._predict(x, m, targets, g) for g, m in enumerate(groups)]  # (pred, target, valid) per group
        loss = torch.stack([regression_loss(p, h, v, self.loss) for p, h, v in out]).mean()
        pred, h = (torch.cat([o[i].flatten(0, 1) for o in out]) for i in (0, 1))  # (all target tokens, D)
        metrics = {"pred_loss": loss.detach(), "pred_std": _std(pred), "target_std": _std(h)}
        pooled = t.mean(dim=1)  # (B, D), as the probes see it
        if self.sigreg is not None:
            emb = pooled if self.sigreg_input == "pooled" else t.flatten(0, 1)  # (B, D) | every token (B*N, D)
            reg = self.sigreg(emb, step)
            loss = combine(loss, reg, self.sigreg_weight, self.combine_mode)
            metrics["sigreg"] = reg.detach()
        return loss, metrics, pooled

    def _predict(self, x: Tensor, masks: Masks, targets: Tensor, group: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """One predictor pass: (predictions, their targets, validity), each (B*n, Kt, ...) for n target sets."""
        n = masks.targets.idx.shape[1]  # target sets per sample
        tgt = masks.targets.flatten_blocks()  # idx (B*n, Kt)
        h = apply_masks(repeat_for_blocks(targets, n), tgt.idx)  # (B*n, Kt, D)
        z = self.encoder(x, masks.context)  # (B, Kc, D)
        ctx = masks.context
        ctx = MaskBatch(repeat_for_blocks(ctx.idx, n), None if ctx.valid is None else repeat_for_blocks(ctx.valid, n))
        pred = self.predictor(repeat_for_blocks(z, n), ctx, tgt, mask_index=group)  # (B*n, Kt, D)
        return pred, h, tgt.valid

    def momentum(self, step: int) -> float:
        return momentum_at(step, self.total_steps, *self.ema)

    def after_optimizer_step(self, step: int) -> None:
        if self.target is not None:
            self.target.update(self.encoder, self.momentum(step))

    def data_pipeline(self, cfg: Config) -> DataPipeline:
        """Multi-block (or random) masks on the encoder's token grid, drawn in the loader workers; for a joint
        image stream (``data.images``) the same masks on an image's (1, H, W) grid, from a seed of their own."""
        collate = MaskCollator(build_mask_sampler(cfg.mask, self.encoder.grid, cfg.seed), cfg.seed)
        if not cfg.data.images:
            return DataPipeline(collate)
        m = cfg.model
        grid = self.encoder.token_grid(torch.empty(1, m.in_chans, m.img_size, m.img_size, device="meta"))
        seed = mix_seed("images", cfg.seed)
        return DataPipeline(collate, image_collate=MaskCollator(build_mask_sampler(cfg.mask, grid, seed), seed))

    def batch_size(self, batch: dict[str, Any]) -> int:
        return batch["x"].shape[0]

    @property
    def feature_dim(self) -> int:
        return self.encoder.embed_dim

    def pretrained_sources(self, cfg: Config) -> dict[str, tuple[str, str]]:
        """``model.pretrained``: the context encoder, the EMA teacher and the predictor from the source's own."""
        src = cfg.model.pretrained
        if not src:
            return {}
        parts = {"encoder": (src, "context"), "predictor": (src, "predictor")}
        return parts if self.target is None else {**parts, "target.encoder": (src, "target")}

    def eval_encoder(self, which: str = "target") -> nn.Module:
        if check_encoder_choice(which) == "context" or self.target is None:
            return self.encoder
        return self.target.encoder


def _std(t: Tensor) -> Tensor:
    """Mean per-dimension std over tokens: near zero when representations collapse."""
    return t.detach().float().reshape(-1, t.shape[-1]).std(dim=0).mean()


def build_encoder(cfg: Config) -> nn.Module:
    m = cfg.model
    return create_model(m.encoder, img_size=m.img_size, patch_size=m.patch_size, in_chans=m.in_chans,
                        num_frames=m.num_frames, tubelet_size=m.tubelet_size, drop_path=m.drop_path,
                        **dict(m.encoder_kwargs))


def check_ijepa(cfg: Config) -> None:
    if cfg.train.target == "online" and cfg.sigreg.weight <= 0:
        raise ConfigError("train.target=online (no EMA, no stop-gradient) collapses without a regulariser: "
                          "set sigreg.weight > 0 (e.g. 0.05)")


@register_method("ijepa", data=("image", "video"), check=check_ijepa)
def build_ijepa(cfg: Config, total_steps: int) -> IJEPA:
    encoder = build_encoder(cfg)
    if not isinstance(encoder, VisionTransformer):
        raise ConfigError(f"model.encoder={cfg.model.encoder}: train.method=ijepa encodes a masked subset of "
                          f"tokens and needs a ViT encoder (vit_*); whole-image encoders suit train.method=lejepa")
    m = cfg.model
    predictor = Predictor(encoder.grid, encoder.embed_dim, m.predictor_embed_dim, m.predictor_depth,
                          m.predictor_heads, video=encoder.video, pos=encoder.pos,
                          num_mask_tokens=max(len(cfg.mask.groups), 1))  # V-JEPA: one mask token per group
    sig = cfg.sigreg
    reg = SIGReg(sig.slices, sig.knots, sig.t_max, cfg.seed) if cfg.train.target == "online" else None
    return IJEPA(encoder, predictor, cfg.train.loss, tuple(cfg.optim.ema), total_steps, reg, sig.weight, sig.combine,
                 cfg.seed, sig.input, cfg.data.image_weight)
