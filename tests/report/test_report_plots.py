"""The report's figures on their own: PNG bytes from plain arrays, awkward inputs included."""

import subprocess
import sys

import numpy as np

from openjepa.report import plots

PNG = b"\x89PNG\r\n\x1a\n"


def test_curves_with_gaps_and_nan():
    png = plots.curves({"loss": ([1, 2, 3], [1.0, float("nan"), 0.5]), "probe_acc": ([2], [0.3])})
    assert png.startswith(PNG)


def test_embedding_map_many_classes_and_unlabelled():
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.arange(25), -np.ones(5, dtype=int)])
    png = plots.embedding_map({"PCA": rng.normal(size=(30, 2))}, labels)
    assert png.startswith(PNG)


def test_masks_and_retrieval_grey_images():
    img = np.linspace(0, 1, 64).reshape(8, 8)
    tok = np.array([[0, 1], [2, 3]])
    assert plots.masks([img, img], [tok, tok]).startswith(PNG)
    assert plots.retrieval([img], [[img, img]], np.array([[0.9, 0.8]])).startswith(PNG)


def test_import_leaves_pyplot_backend_alone():
    code = ("import matplotlib; matplotlib.use('svg'); import openjepa.report; "
            "import matplotlib.pyplot as plt; print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "svg"
