"""Encoders and predictors. Importing this package registers the named model factories."""

from openjepa.models.ac_predictor import ACPredictor
from openjepa.models.predictor import Predictor
from openjepa.models.resnet import ResNet
from openjepa.models.vit import VisionTransformer

__all__ = ["ACPredictor", "Predictor", "ResNet", "VisionTransformer"]
