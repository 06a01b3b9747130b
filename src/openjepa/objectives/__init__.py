"""Objectives of the joint embedding space: prediction losses and anti-collapse regularisers."""

from openjepa.objectives.regression import LOSSES, normalized_targets, regression_loss
from openjepa.objectives.sigreg import SIGReg, sigreg, slice_directions

__all__ = ["LOSSES", "SIGReg", "normalized_targets", "regression_loss", "sigreg", "slice_directions"]
