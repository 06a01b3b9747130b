"""The method contract: everything the engine and the evaluation need from a method, declared here.

A method is an ``nn.Module`` that owns its encoder, predictor, target and loss (open_clip's
``TrainingTask`` idea). The engine calls only what :class:`JEPAMethod` declares and never probes a
method with ``getattr``:

- ``training_step(batch, step) -> StepOutput``: the loss, detached metrics (schedule values such
  as the EMA momentum included) and the pooled features the online monitor watches;
- ``after_optimizer_step(step)``: e.g. the EMA update;
- ``data_pipeline(cfg) -> DataPipeline``: the collate function and per-item train transform, as one pair;
- ``batch_size(batch)``: how many samples a collated batch holds (for throughput);
- ``feature_dim``: the width of ``StepOutput.features``;
- ``eval_encoder(which)``: the encoder that is evaluated and exported (``target`` or ``context``);
- ``has_teacher``: whether ``target`` and ``context`` are different networks;
- ``pretrained_sources(cfg)``: submodules to initialise from saved encoders on a fresh run;
- ``lr_scales()``: learning-rate multipliers by parameter name (layer-wise decay when fine-tuning);
- ``evaluation``: the name of the end-of-training evaluation (``probes``; world models: ``world_model``).

A new method is one new file: a subclass and a builder decorated with :func:`register_method`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, Sequence

import torch
from torch import Tensor, nn

from openjepa.config.schema import Config
from openjepa.errors import ConfigError
from openjepa.registry import MODELS, Registry


@dataclass
class StepOutput:
    loss: Tensor  # scalar, requires grad
    metrics: dict[str, Tensor | float] = field(default_factory=dict)  # detached scalars to log
    features: Tensor | None = None  # (B, feature_dim) detached pooled features, for online monitoring


@dataclass(frozen=True)
class DataPipeline:
    """What a method asks of the data loader: ``collate`` turns a list of ``(item, label, step, pos)``
    into a batch dict; ``transform``, when set, replaces the dataset's per-item train transform
    (e.g. LeJEPA's multi-view crops); ``image_collate``, when set, collates the joint image stream of a
    video run (``data.images``; a method builds it only when that is set), whose batch reaches
    ``training_step`` as ``batch["images"]``. A method without it refuses ``data.images``."""

    collate: Callable[[Sequence[Any]], dict[str, Any]]
    transform: Optional[Callable[[Any], Any]] = None
    image_collate: Optional[Callable[[Sequence[Any]], dict[str, Any]]] = None  # the joint image stream's (data.images), for methods that train on it


class JEPAMethod(nn.Module, metaclass=ABCMeta):
    """The contract the engine trains and the evaluation reads (see the module docstring)."""

    evaluation: ClassVar[str] = "probes"

    @abstractmethod
    def training_step(self, batch: dict[str, Any], step: int) -> StepOutput:
        """One step's loss (and detached metrics) for ``batch``; ``step`` is the global step."""

    def forward(self, batch: dict[str, Any], step: int) -> StepOutput:
        """The training step, so that DDP and FSDP2 wrappers (which hook ``forward``) see it."""
        return self.training_step(batch, step)

    def after_optimizer_step(self, step: int) -> None:
        """Called after each optimizer step (e.g. the EMA update); nothing by default."""

    @abstractmethod
    def data_pipeline(self, cfg: Config) -> DataPipeline:
        """The collate function and train transform this method's ``training_step`` expects."""

    @abstractmethod
    def batch_size(self, batch: dict[str, Any]) -> int:
        """Samples in a collated ``batch`` (images, clips, sub-trajectories) on this rank."""

    @property
    @abstractmethod
    def feature_dim(self) -> int:
        """Width of ``StepOutput.features`` (what the online monitor's probe reads)."""

    @abstractmethod
    def eval_encoder(self, which: str = "target") -> nn.Module:
        """The encoder whose tokens are evaluated and exported: ``target`` or ``context``."""

    @property
    def has_teacher(self) -> bool:
        """Whether the target encoder is a separate network (an EMA teacher) from the context encoder."""
        return self.eval_encoder("target") is not self.eval_encoder("context")

    def pretrained_sources(self, cfg: Config) -> dict[str, tuple[str, str]]:
        """``{submodule name: (source, part)}`` loaded strictly at the start of a fresh run; ``part`` is
        ``target`` or ``context`` (an encoder of the source) or ``predictor``. Default: the encoder from
        ``model.pretrained``'s target encoder, when set."""
        return {"encoder": (cfg.model.pretrained, "target")} if cfg.model.pretrained else {}

    @torch.no_grad()
    def encode(self, x: Tensor, which: str = "target") -> Tensor:
        """Frozen features for evaluation: (B, N, D) tokens of the chosen encoder."""
        return self.eval_encoder(which)(x)

    def lr_scales(self) -> dict[str, float]:
        """Learning-rate multipliers by full parameter name (e.g. layer-wise decay); default none (all 1)."""
        return {}

    def no_weight_decay(self) -> set[str]:
        """Full parameter names excluded from weight decay (beyond biases and norms)."""
        names = set()
        for prefix, mod in self.named_modules():
            if mod is not self and hasattr(mod, "no_weight_decay"):
                names |= {f"{prefix}.{n}" for n in mod.no_weight_decay()}
        return names


def check_encoder_choice(which: str) -> str:
    if which not in ("target", "context"):
        raise ConfigError(f"eval.encoder={which!r} is not valid; choose one of: target, context")
    return which


class SingleEncoderMethod(JEPAMethod):
    """A method with one encoder and no teacher (LeJEPA, world models): ``target`` and ``context`` are it."""

    encoder: nn.Module

    def eval_encoder(self, which: str = "target") -> nn.Module:
        check_encoder_choice(which)
        return self.encoder


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: ``build(cfg, total_steps)``, the dataset kinds it trains on, and ``check(cfg)``,
    which raises :class:`~openjepa.errors.ConfigError` for settings this method cannot use."""

    build: Callable[[Config, int], JEPAMethod]
    data_kinds: tuple[str, ...] = ("image",)
    check: Optional[Callable[[Config], None]] = None


METHODS: Registry[MethodSpec] = Registry("method", "train.method")


def register_method(name: str, *, data: Sequence[str] = ("image",),
                    check: Optional[Callable[[Config], None]] = None) -> Callable:
    """Decorator registering a builder ``(cfg, total_steps) -> JEPAMethod`` under ``train.method=name``."""
    def deco(builder: Callable[[Config, int], JEPAMethod]) -> Callable[[Config, int], JEPAMethod]:
        METHODS.add(name, MethodSpec(builder, tuple(data), check))
        return builder
    return deco


def method_names() -> list[str]:
    return METHODS.names()


def check_config(cfg: Config) -> None:
    """Everything a run's config must satisfy beyond types and ranges, before any data or model is built:
    the method, encoder and dataset are registered, the method trains on that kind of data, and the
    method's and dataset's own checks pass. Raises :class:`~openjepa.errors.ConfigError` by key."""
    from openjepa.data.registry import DATASETS, dataset_spec, image_stream  # importing openjepa.data registers the datasets
    from openjepa.models import create_model  # noqa: F401  (importing openjepa.models registers the encoders)

    spec = METHODS.get(cfg.train.method)
    MODELS.get(cfg.model.encoder)
    data = dataset_spec(cfg.data.name)
    if data.info.kind not in spec.data_kinds:
        fits = [n for n in DATASETS if DATASETS.get(n).info.kind in spec.data_kinds]
        raise ConfigError(f"train.method={cfg.train.method} trains on {' or '.join(spec.data_kinds)} data, but "
                          f"data.name={cfg.data.name} holds {data.info.kind} data; choose data.name from: "
                          f"{', '.join(fits)}")
    check_encoder_choice(cfg.eval.encoder)
    for check in (spec.check, data.check):
        if check is not None:
            check(cfg)
    image_stream(cfg)  # data.images: valid keys, a stream of images beside video


def build_method(cfg: Config, total_steps: int) -> JEPAMethod:
    """Build the method named by ``cfg.train.method`` for a run of ``total_steps`` steps."""
    return METHODS.get(cfg.train.method).build(cfg, total_steps)
