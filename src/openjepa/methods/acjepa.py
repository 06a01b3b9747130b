"""Action-conditioned JEPA world model: predict the next frame's embedding from past frames and actions.

An encoder embeds every frame of a sub-trajectory; the frame-block-causal predictor
(:class:`~openjepa.models.ACPredictor`) predicts frame t+1's latent from frames <= t and actions <= t.
Loss: teacher forcing (every next frame from the true past) plus a multi-step rollout (the first
frame's prediction fed back ``world.rollout_steps`` times), as in V-JEPA 2-AC (Assran et al. 2025,
arXiv 2506.09985, Sec. 4: teacher-forcing and rollout losses) and DINO-WM / PLDM.

What rules collapse out, by ``world.encoder``:

- ``train``: the encoder learns from scratch with no stop-gradient and no EMA; SIGReg (LeJEPA,
  Balestriero & LeCun 2025, arXiv 2511.08544) keeps the frame latents an isotropic Gaussian, the
  LeWorldModel recipe (Maes et al. 2026). ``L = combine(pred, SIGReg(z), λ)`` (``sigreg.combine``).
- ``frozen``: a pretrained encoder (``world.pretrained``, e.g. an I-JEPA run) stays fixed and only the
  predictor learns, V-JEPA 2-AC style; the latents are its layer-normed tokens, so nothing can collapse.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor, nn

from openjepa.config.schema import Config
from openjepa.layers.norm import GlobalBatchNorm1d
from openjepa.masks.base import unzip_step_batch
from openjepa.errors import ConfigError
from openjepa.methods.base import DataPipeline, SingleEncoderMethod, StepOutput, register_method
from openjepa.methods.ijepa import build_encoder
from openjepa.models import ACPredictor, VisionTransformer
from openjepa.objectives.combine import combine
from openjepa.objectives.sigreg import SIGReg


class ACJEPA(SingleEncoderMethod):
    evaluation: ClassVar[str] = "world_model"  # the position probe and planning episodes (openjepa.planning)

    def __init__(self, encoder: VisionTransformer, predictor: ACPredictor, frozen: bool = False, latent: str = "pooled",
                 latent_dim: int = 64, sigreg: SIGReg | None = None, weight: float = 0.1, combine_mode: str = "convex",
                 statistic: str = "per_view", rollout_steps: int = 2, rollout_weight: float = 1.0):
        super().__init__()
        if latent not in ("pooled", "patch"):
            raise ValueError(f"unknown world.latent {latent!r}; choose pooled or patch")
        if not frozen and sigreg is None:
            raise ValueError("an encoder trained from scratch needs SIGReg (world.encoder=train, sigreg.weight > 0)")
        self.encoder, self.predictor, self.frozen, self.latent = encoder, predictor, frozen, latent
        # frozen: the pretrained tokens, layer-normed (no parameters: a trainable head would collapse to a constant)
        self.head = (nn.LayerNorm(encoder.embed_dim, elementwise_affine=False) if frozen
                     else LatentHead(encoder.embed_dim, latent_dim))
        self.sigreg, self.weight, self.combine_mode, self.statistic = sigreg, weight, combine_mode, statistic
        self.rollout_steps, self.rollout_weight = rollout_steps, rollout_weight
        self._feature_dim = encoder.embed_dim if frozen else latent_dim  # StepOutput.features: pooled frame latents
        if frozen:
            self.encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> "ACJEPA":
        super().train(mode)
        if self.frozen:
            self.encoder.eval()  # a frozen encoder never drops paths
        return self

    def embed(self, frames: Tensor) -> Tensor:
        """frames (M, C, H, W) -> latents (M, n, L): n = 1 (pooled) or the patch tokens."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            tokens = self.encoder(frames)  # (M, N_patches, D)
        if self.latent == "pooled":
            tokens = tokens.mean(dim=1, keepdim=True)  # (M, 1, D)
        return self.head(tokens).float()  # (M, n, L)

    def training_step(self, batch: dict[str, Any], step: int) -> StepOutput:
        obs, actions = batch["obs"], batch["actions"]  # (B, F, C, H, W), (B, F-1, A)
        B, F = obs.shape[:2]
        z = self.embed(obs.flatten(0, 1)).unflatten(0, (B, F))  # (B, F, n, L)
        pred = self.predictor(z[:, :-1], actions)  # (B, F-1, n, L): frame t+1 from frames <= t
        tf = (pred - z[:, 1:]).square().mean()
        metrics: dict[str, Tensor | float] = {"teacher_forcing": tf.detach()}
        loss = tf
        if self.rollout_steps >= 2:
            R = self.rollout_steps
            imagined = self.predictor.rollout(z[:, :1], actions[:, :R])  # (B, R, n, L) from frame 0 alone
            ro = (imagined - z[:, 1:R + 1]).square().mean()
            loss = loss + self.rollout_weight * ro
            metrics["rollout"] = ro.detach()
        metrics["pred_loss"] = loss.detach()
        if self.sigreg is not None:  # None exactly when the encoder is frozen
            if self.statistic == "per_view":  # one statistic per frame index, averaged
                reg = torch.stack([self.sigreg(z[:, t].flatten(0, 1), step) for t in range(F)]).mean()
            else:
                reg = self.sigreg(z.flatten(0, 2), step)  # (B*F*n, L)
            loss = combine(loss, reg, self.weight, self.combine_mode)
            metrics["sigreg"] = reg.detach()
        metrics["loss"] = loss.detach()
        metrics["latent_std"] = z.detach().flatten(0, 2).std(dim=0).mean()
        return StepOutput(loss, metrics, features=z[:, 0].detach().mean(dim=1))

    def data_pipeline(self, cfg: Config) -> DataPipeline:
        return DataPipeline(TrajectoryCollator())

    def batch_size(self, batch: dict[str, Any]) -> int:
        return batch["obs"].shape[0]

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    def pretrained_sources(self, cfg: Config) -> dict[str, tuple[str, str]]:
        """``world.encoder=frozen``: the encoder comes from ``world.pretrained`` (loaded strictly)."""
        return {"encoder": (cfg.world.pretrained, "target")} if self.frozen else super().pretrained_sources(cfg)


class LatentHead(nn.Module):
    """Encoder tokens -> latents: Linear-BN-GELU-Linear-BN, the batch-normed projector of LeJEPA / LeWorldModel.

    Frames of one scene differ in a few pixels (the agent), so pooled encoder tokens start nearly
    identical; batch normalisation spreads them to unit variance per dimension from the first step,
    where SIGReg's gradient is strong (near collapse the Epps-Pulley statistic is flat and a plain
    linear head stays collapsed). The statistics are those of the global batch (:class:`GlobalBatchNorm1d`),
    the batch SIGReg sees, so training does not depend on the number of ranks.
    """

    def __init__(self, dim: int, out: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or 2 * out
        self.net = nn.Sequential(nn.Linear(dim, hidden), GlobalBatchNorm1d(hidden), nn.GELU(),
                                 nn.Linear(hidden, out), GlobalBatchNorm1d(out))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.net(tokens.flatten(0, -2)).unflatten(0, tokens.shape[:-1])  # (..., D) -> (..., L)


class TrajectoryCollator:
    """collate(list of (item dict, y, step, pos)) -> {"obs": (B, F, C, H, W), "actions": (B, F-1, A),
    "states": (B, F, S), "step": int}."""

    KEYS: Sequence[str] = ("obs", "actions", "states")

    def __call__(self, batch: Sequence[tuple[Any, Any, int, int]]) -> dict[str, Any]:
        items, _, step, _ = unzip_step_batch(batch)
        out: dict[str, Any] = {k: torch.stack([it[k] for it in items]) for k in self.KEYS}
        out["step"] = step
        return out


def build_predictor(cfg: Config, embed_dim: int, tokens_per_frame: int) -> ACPredictor:
    w = cfg.world
    if w.action_dim < 1:
        raise ConfigError("world.action_dim is unset: it comes from the trajectory data (data.root's meta.json)")
    return ACPredictor(embed_dim, w.action_dim, tokens_per_frame, dim=w.pred_dim, depth=w.pred_depth,
                       num_heads=w.pred_heads, max_frames=cfg.data.num_frames - 1, cond=w.cond)


def check_acjepa(cfg: Config) -> None:
    """Widths, frames and the encoder source of a world model, by key."""
    w, d = cfg.world, cfg.data
    if w.pred_dim % w.pred_heads:
        raise ConfigError(f"world.pred_dim={w.pred_dim} is not a multiple of world.pred_heads={w.pred_heads}")
    if d.num_frames < 2:
        raise ConfigError(f"data.num_frames={d.num_frames} must be at least 2: a world model predicts the next frame")
    if w.rollout_steps > d.num_frames - 1:
        raise ConfigError(f"world.rollout_steps={w.rollout_steps} exceeds the {d.num_frames - 1} future frames "
                          f"of a data.num_frames={d.num_frames} sub-trajectory")
    if w.encoder == "frozen" and not w.pretrained:
        raise ConfigError("world.encoder=frozen needs world.pretrained=PATH (an openjepa run, checkpoint or "
                          "encoder.safetensors)")
    if w.encoder == "train" and cfg.sigreg.weight <= 0:
        raise ConfigError("world.encoder=train learns the encoder from scratch and collapses without SIGReg: "
                          "set sigreg.weight > 0 (e.g. 0.1)")


@register_method("acjepa", data=("trajectory",), check=check_acjepa)
def build_acjepa(cfg: Config, total_steps: int) -> ACJEPA:
    w, s = cfg.world, cfg.sigreg
    encoder = build_encoder(cfg)
    frozen = w.encoder == "frozen"
    latent_dim = encoder.embed_dim if frozen else w.latent_dim
    tokens = 1 if w.latent == "pooled" else encoder.num_tokens
    reg = None if frozen else SIGReg(s.slices, s.knots, s.t_max, cfg.seed)
    return ACJEPA(encoder, build_predictor(cfg, latent_dim, tokens), frozen, w.latent, latent_dim, reg, s.weight,
                  s.combine, s.statistic, w.rollout_steps, w.rollout_weight)
