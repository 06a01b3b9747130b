"""Frozen-feature evaluation: feature extraction and cache, linear and attentive probes, kNN, low-shot,
RankMe, and the probe table."""

from openjepa.eval.attentive import AttentiveClassifier, AttentiveResult, attentive_probe
from openjepa.objectives.diagnostics import feature_std, rankme
from openjepa.eval.features import Features, extract, extract_features
from openjepa.eval.knn import knn_accuracy, knn_classify
from openjepa.eval.linear import ProbeResult, linear_probe, probe_split, train_linear_heads
from openjepa.eval.lowshot import LowShotResult, lowshot_indices, lowshot_probe
from openjepa.eval.table import FeatureSplits, ProbeTable, evaluate_features, format_table

__all__ = [
    "AttentiveClassifier",
    "AttentiveResult",
    "FeatureSplits",
    "Features",
    "LowShotResult",
    "ProbeResult",
    "ProbeTable",
    "attentive_probe",
    "evaluate_features",
    "extract",
    "extract_features",
    "feature_std",
    "format_table",
    "knn_accuracy",
    "knn_classify",
    "linear_probe",
    "lowshot_indices",
    "lowshot_probe",
    "probe_split",
    "rankme",
    "train_linear_heads",
]
