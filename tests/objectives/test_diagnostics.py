"""Edge cases of the label-free diagnostics (objectives/diagnostics.py); the formulas are in tests/eval."""

import numpy as np
import torch

from openjepa.objectives.diagnostics import feature_std


def test_feature_std_accepts_two_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    unit = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)
    assert abs(feature_std(x) - float(unit.std(axis=0, ddof=1).mean())) < 1e-6
