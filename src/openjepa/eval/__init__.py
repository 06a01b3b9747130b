"""Frozen-feature evaluation: feature extraction, linear probe, kNN, RankMe, and the probe table."""

from openjepa.eval.diagnostics import feature_std, rankme
from openjepa.eval.features import extract_features
from openjepa.eval.knn import knn_accuracy, knn_classify
from openjepa.eval.linear import ProbeResult, linear_probe, stratified_split, train_linear_heads
from openjepa.eval.table import ProbeTable, evaluate_features, format_table

__all__ = [
    "ProbeResult",
    "ProbeTable",
    "evaluate_features",
    "extract_features",
    "feature_std",
    "format_table",
    "knn_accuracy",
    "knn_classify",
    "linear_probe",
    "rankme",
    "stratified_split",
    "train_linear_heads",
]
