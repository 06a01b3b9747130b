"""Objectives of the joint embedding space: prediction losses and anti-collapse regularisers."""

from openjepa.objectives.regression import LOSSES, normalized_targets, regression_loss

__all__ = ["LOSSES", "normalized_targets", "regression_loss"]
