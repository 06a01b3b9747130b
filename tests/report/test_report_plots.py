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


def test_accuracy_axis_starts_at_zero_and_holds_the_chance_line():
    from matplotlib.figure import Figure

    noise = [0.096, 0.106, 0.101]  # an online probe wandering around chance on 10 classes
    lo, hi = plots.accuracy_ylim(noise, chance=0.1)
    assert lo == 0.0 and np.isclose(hi, 0.22)  # 1.1 x twice chance: the 1-point wobble is 5% of the axis
    assert np.isclose(plots.accuracy_ylim([0.2, 0.8, float("nan")], chance=0.1)[1], 0.88)
    assert plots.accuracy_ylim([0.95], chance=0.5) == (0.0, 1.0)
    assert plots.accuracy_ylim(noise, chance=None) is None
    ax = Figure().subplots()
    plots.chance_line(ax, 0.1)
    (line,) = ax.get_lines()
    assert line.get_linestyle() == "--" and list(line.get_ydata()) == [0.1, 0.1]
    assert plots.curves({"probe_acc": ([1, 2, 3], noise)}, chance=0.1).startswith(PNG)


def test_accuracy_bars_with_missing_cells():
    png = plots.accuracy_bars(["model", "raw pixels"], {"linear": [0.6, 0.4], "1-shot": [None, 0.2]},
                              {"linear": [0.1, 0.1], "1-shot": [None, 0.03]}, chance=0.1)
    assert png.startswith(PNG)
