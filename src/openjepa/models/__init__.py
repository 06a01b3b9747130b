"""Encoders and predictors. Importing this package registers the named model factories."""

from __future__ import annotations

from torch import nn

from openjepa.models.ac_predictor import ACPredictor
from openjepa.models.predictor import Predictor
from openjepa.models.released import RELEASED_IJEPA  # noqa: F401  (registers the released I-JEPA encoders)
from openjepa.models.resnet import ResNet
from openjepa.models.vit import VisionTransformer
from openjepa.models import vjepa, vjepa2_1  # noqa: F401  (registers the V-JEPA / 2 / 2.1 architectures)
from openjepa.registry import MODELS


def list_models(pattern: str = "*") -> list[str]:
    """Registered encoder names matching a shell-style ``pattern``, sorted."""
    return MODELS.names(pattern)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered encoder ``name`` (``openjepa models`` lists them); ``kwargs`` go to its factory.

    An unknown name raises :class:`~openjepa.errors.ConfigError` with a close match and the choices.
    """
    return MODELS.get(name)(**kwargs)


__all__ = ["ACPredictor", "Predictor", "ResNet", "VisionTransformer", "create_model", "list_models"]
