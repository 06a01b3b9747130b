"""The method contract the engine trains: a module that owns its encoder, predictor, target and loss."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from openjepa.config.schema import Config


@dataclass
class StepOutput:
    loss: Tensor  # scalar, requires grad
    metrics: dict[str, Tensor | float] = field(default_factory=dict)  # detached scalars to log
    features: Tensor | None = None  # (B, D) detached pooled target features, for online monitoring


class JEPAMethod(nn.Module, metaclass=ABCMeta):
    """Subclasses implement ``training_step`` and ``encode``; the engine knows nothing else about them."""

    @abstractmethod
    def training_step(self, batch: dict[str, Any], step: int) -> StepOutput:
        """One step's loss (and detached metrics) for ``batch``; ``step`` is the global step."""

    def forward(self, batch: dict[str, Any], step: int) -> StepOutput:
        """The training step, so that DDP and FSDP2 wrappers (which hook ``forward``) see it."""
        return self.training_step(batch, step)

    def make_collator(self, cfg: Config) -> Callable:
        """The DataLoader collate function for training (default: multi-block masks on the encoder's grid)."""
        from openjepa.masks import MaskCollator, build_mask_sampler

        return MaskCollator(build_mask_sampler(cfg.mask, self.encoder.grid, cfg.seed), cfg.seed)

    def train_transform(self, cfg: Config) -> Callable | None:
        """A per-image training transform replacing the dataset's own (e.g. multi-view crops), or None."""
        return None

    def setup_training(self, cfg: Config) -> None:
        """Called once at the start of a fresh (not resumed) run, e.g. to load pretrained weights."""

    def evaluate(self, cfg: Config, device: torch.device, run_dir: Any, step: int) -> Any:
        """The evaluation when training ends (default: the frozen-feature probe table, ``eval.protocols``)."""
        from openjepa.eval.frozen import evaluate_method

        return evaluate_method(self, cfg, device, run_dir, step=step)

    def after_optimizer_step(self, step: int) -> None:
        """Called after each optimizer step (e.g. the EMA update)."""

    @abstractmethod
    def encode(self, x: Tensor, which: str = "target") -> Tensor:
        """Frozen features for evaluation: (B, N, D) tokens of the chosen encoder (under no_grad)."""

    def no_weight_decay(self) -> set[str]:
        """Full parameter names excluded from weight decay (beyond biases and norms)."""
        names = set()
        for prefix, mod in self.named_modules():
            if mod is not self and hasattr(mod, "no_weight_decay"):
                names |= {f"{prefix}.{n}" for n in mod.no_weight_decay()}
        return names


class SingleEncoderMethod(JEPAMethod):
    """A method with one encoder and no teacher (LeJEPA, world models): ``target`` and ``context`` are it."""

    encoder: nn.Module

    @torch.no_grad()
    def encode(self, x: Tensor, which: str = "target") -> Tensor:
        """Encoder tokens (B, N, D) of the one encoder."""
        if which not in ("target", "context"):
            raise ValueError(f"unknown encoder {which!r}; choose target or context")
        return self.encoder(x)


_METHODS: dict[str, Callable[[Config, int], JEPAMethod]] = {}


def register_method(name: str) -> Callable:
    def deco(builder: Callable[[Config, int], JEPAMethod]) -> Callable[[Config, int], JEPAMethod]:
        _METHODS[name] = builder
        return builder
    return deco


def build_method(cfg: Config, total_steps: int) -> JEPAMethod:
    """Build the method named by ``cfg.train.method`` for a run of ``total_steps`` steps."""
    import openjepa.methods  # noqa: F401  (registers the methods)

    if cfg.train.method not in _METHODS:
        raise ValueError(f"unknown method {cfg.train.method!r}; choose one of: {', '.join(sorted(_METHODS))}")
    return _METHODS[cfg.train.method](cfg, total_steps)


def method_names() -> list[str]:
    import openjepa.methods  # noqa: F401

    return sorted(_METHODS)
