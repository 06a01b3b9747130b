"""Encoders and predictors. Importing this package registers the named model factories."""

from openjepa.models.predictor import Predictor
from openjepa.models.vit import VisionTransformer

__all__ = ["Predictor", "VisionTransformer"]
