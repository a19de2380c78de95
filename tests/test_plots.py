"""sigalex.plots: every figure is a valid PNG of plausible size, written atomically, for 2 and 10
classes, without pyplot or a display."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from sigalex import plots
from sigalex.errors import ParameterError
from sigalex.metrics import classification_metrics, roc_curves


def _case(k: int, n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 2.0
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True), [f"class_{i}" for i in range(k)]


def _check_png(path, folder, *, min_width=300, min_height=200):
    """A PNG of plausible size, alone in its folder (no temporary file left behind)."""
    assert path.is_file()
    assert path.stat().st_size > 5_000
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.verify()
    with Image.open(path) as im:
        width, height = im.size
        pixels = np.asarray(im.convert("RGB"))
    assert min_width <= width <= 5000 and min_height <= height <= 5000, (width, height)
    assert pixels.std() > 5  # not a blank canvas
    assert sorted(os.listdir(folder)) == [path.name]
    return width, height


HISTORY = [
    {
        "epoch": e,
        "train_loss": 1 / e,
        "val_loss": 1 / e + 0.1,
        "train_accuracy": 1 - 0.5 / e,
        "val_accuracy": 0.9 - 0.4 / e,
        "val_balanced_accuracy": 0.85 - 0.4 / e - 0.02 * (e == 5),
        "lr": 0.01 * 0.5 ** (e // 3),
    }
    for e in range(1, 7)
]


def test_plot_history(tmp_path):
    out = tmp_path / "nested" / "plots" / "history.png"  # parents created
    path = plots.plot_history(HISTORY, out)
    assert path == out
    width, height = _check_png(path, out.parent)
    assert width > 2 * height  # three panels side by side


def test_plot_history_missing_keys_and_none(tmp_path):
    history = [
        {"train_loss": 0.9, "val_loss": None},
        {"train_loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.7},
        {"train_loss": 0.3, "val_loss": 0.4, "val_accuracy": float("nan")},
    ]
    path = plots.plot_history(history, tmp_path / "h.png", monitor="val_loss")
    width, height = _check_png(path, tmp_path)
    assert width < 2.6 * height  # no lr: two panels


def test_best_epoch_rule():
    epochs = [h["epoch"] for h in HISTORY]
    assert plots._best_epoch(HISTORY, epochs, None) == (6, "val_balanced_accuracy")
    assert plots._best_epoch(HISTORY, epochs, "val_loss") == (6, "val_loss")
    losses = [{"val_loss": v} for v in (0.5, 0.3, 0.3, 0.4)]
    assert plots._best_epoch(losses, [1, 2, 3, 4], None) == (2, "val_loss")  # first best, minimised
    accs = [{"val_accuracy": v, "val_loss": 9} for v in (0.5, 0.8, 0.7)]
    assert plots._best_epoch(accs, [1, 2, 3], None) == (2, "val_accuracy")
    assert plots._best_epoch([{"lr": 1}], [1], None) == (None, None)


@pytest.mark.parametrize(
    ("history", "match"),
    [([], "empty"), ({"epoch": 1}, "list"), ([{"foo": 1}], "none of the keys"), ([3], r"\[0\]")],
)
def test_plot_history_bad_input(tmp_path, history, match):
    with pytest.raises(ParameterError, match=match):
        plots.plot_history(history, tmp_path / "h.png")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("k", "normalize"), [(2, True), (2, False), (10, True)])
def test_plot_confusion(tmp_path, k, normalize):
    y, p, classes = _case(k)
    cm = classification_metrics(y, p, classes)["confusion_matrix"]
    path = plots.plot_confusion(cm, classes, tmp_path / "cm.png", normalize=normalize)
    width, height = _check_png(path, tmp_path)
    if k == 10:
        assert width >= 900 and height >= 900  # the figure grows with the class count


def test_plot_confusion_empty_row(tmp_path):
    path = plots.plot_confusion([[5, 1], [0, 0]], ["background", "seizure"], tmp_path / "cm.png")
    _check_png(path, tmp_path)


@pytest.mark.parametrize(
    ("cm", "match"),
    [([[1, 2, 3], [4, 5, 6]], "shape"), ([[1, -2], [3, 4]], "non-negative"), ([[1, 2]], "shape")],
)
def test_plot_confusion_bad_input(tmp_path, cm, match):
    with pytest.raises(ParameterError, match=match):
        plots.plot_confusion(cm, ["a", "b"], tmp_path / "cm.png")


@pytest.mark.parametrize("k", [2, 10])
def test_plot_roc(tmp_path, k):
    y, p, classes = _case(k)
    curves = roc_curves(y, p, classes)
    assert len(curves) == (1 if k == 2 else k)
    path = plots.plot_roc(curves, tmp_path / "roc.png")
    _check_png(path, tmp_path)


def test_plot_roc_empty_and_bad(tmp_path):
    path = plots.plot_roc({}, tmp_path / "roc.png")  # ROC undefined: a figure that says so
    _check_png(path, tmp_path)
    with pytest.raises(ParameterError, match="fpr, tpr, auc"):
        plots.plot_roc({"a": ([0, 1], [0, 1])}, tmp_path / "x.png")
    with pytest.raises(ParameterError, match="equal length"):
        plots.plot_roc({"a": ([0, 1], [0, 0.5, 1], 0.5)}, tmp_path / "x.png")


@pytest.mark.parametrize("k", [2, 10])
def test_plot_examples(tmp_path, k):
    rng = np.random.default_rng(k)
    n = 5 * k
    images = rng.integers(0, 256, size=(n, 24, 32, 3), dtype=np.uint8)
    labels = np.arange(n) % k
    predictions = np.where(rng.random(n) < 0.7, labels, (labels + 1) % k)
    path = plots.plot_examples(
        images, labels, [f"c{i}" for i in range(k)], tmp_path / "ex.png", per_class=3,
        predictions=predictions,
    )  # fmt: skip
    width, height = _check_png(path, tmp_path)
    if k == 10:
        assert height > width  # ten rows of three


def test_plot_examples_float_chw_and_missing_class(tmp_path):
    images = np.random.default_rng(0).random((4, 3, 20, 20)).astype(np.float32)  # as Render gives
    path = plots.plot_examples(images, [0, 0, 0, 0], ["background", "seizure"], tmp_path / "e.png")
    _check_png(path, tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": [0, 1]}, "labels has 2"),
        ({"labels": [0, 1, 2]}, r"\[0, 2\)"),
        ({"predictions": [0, 1]}, "predictions has 2"),
        ({"predictions": [0, 1, 5]}, "predictions must be integers"),
        ({"per_class": 0}, "per_class"),
        ({"images": np.zeros((3, 8, 8, 5), np.uint8)}, "shape"),
        ({"images": np.full((3, 8, 8, 3), 2.0)}, r"\[0, 1\]"),
    ],
)
def test_plot_examples_bad_input(tmp_path, kwargs, match):
    args = {"images": np.zeros((3, 8, 8, 3), np.uint8), "labels": [0, 1, 1]} | kwargs
    with pytest.raises(ParameterError, match=match):
        plots.plot_examples(
            args.pop("images"), args.pop("labels"), ["a", "b"], tmp_path / "e.png", **args
        )
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "roc.png"
    target.write_bytes(b"old")

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.plot_roc({}, target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["roc.png"]


def test_overwrite_replaces_file(tmp_path):
    target = tmp_path / "cm.png"
    target.write_bytes(b"old")
    plots.plot_confusion([[3, 1], [1, 3]], ["a", "b"], target)
    _check_png(target, tmp_path)


def test_no_pyplot_no_display_backend_untouched(tmp_path):
    """In a fresh interpreter without a display: pyplot never imported, the backend untouched.

    Only ``sigalex.errors`` and ``sigalex.plots`` are loaded (a bare package stands in for
    ``sigalex/__init__``, whose torch import would take seconds). The backend is read with
    ``dict.__getitem__``: ``rcParams["backend"]`` itself would import pyplot to resolve it.
    """
    code = textwrap.dedent(
        f"""
        import sys, types, matplotlib
        pkg = types.ModuleType("sigalex")
        pkg.__path__ = [{str(Path(plots.__file__).parent)!r}]
        sys.modules["sigalex"] = pkg
        before = dict.__getitem__(matplotlib.rcParams, "backend")
        from sigalex import plots
        plots.plot_confusion([[3, 1], [1, 3]], ["a", "b"], {str(tmp_path / "cm.png")!r})
        plots.plot_roc({{}}, {str(tmp_path / "roc.png")!r})
        plots.plot_history([{{"train_loss": 1.0}}], {str(tmp_path / "h.png")!r})
        plots.plot_examples([[[[0, 0, 0]]]], [0], ["a"], {str(tmp_path / "e.png")!r})
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        assert dict.__getitem__(matplotlib.rcParams, "backend") == before
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ["cm.png", "e.png", "h.png", "roc.png"]
