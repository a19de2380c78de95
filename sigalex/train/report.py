"""Testing a fold's best model and reporting it: metrics, per-recording metrics, plots, and the
test set's window probabilities (``test_predictions.tsv``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import plots
from .._files import write_tsv
from ..checkpoint import load_checkpoint
from ..errors import ParameterError
from ..metrics import aggregate_by, classification_metrics, roc_curves
from ..models.spec import ModelSpec
from ..render import to_uint8
from ..windows import Window
from .data import window_dataset
from .trainer import Trainer

PREDICTION_COLUMNS = ("recording", "start_s", "end_s", "label", "predicted")
"""First columns of ``test_predictions.tsv``; ``prob_<class>`` follows for every class."""


def window_span(spec: ModelSpec, window: Window) -> tuple[float, float]:
    """The span of its recording a window's image shows, in seconds, as prediction reports it
    (a clip cropped to the model's window shows its centre)."""
    if spec.window_s:
        return window.start_s, window.end_s
    plan = spec.plan(window.n_times, window.sample_rate)
    return float(plan.start_s[0]), float(plan.end_s[0])


def write_test_predictions(path: Path, trainer: Trainer, y: np.ndarray, p: np.ndarray) -> None:
    """``test_predictions.tsv``: each test window's recording, span, true and predicted class,
    and probabilities (what ``sigalex predict`` gives for the same windows)."""
    data = trainer.data
    classes = data.classes
    rows = []
    for k, i in enumerate(trainer.split.test):
        w = data.windows[i]
        start, end = window_span(data.spec, w)
        best = int(p[k].argmax())
        rows.append([w.recording, start, end, classes[y[k]], classes[best], *map(float, p[k])])
    columns = [*PREDICTION_COLUMNS, *(f"prob_{c}" for c in classes)]
    write_tsv(path, columns, rows)


def finish_fold(trainer: Trainer, fold_dir: Path) -> dict:
    """Test the fold's best checkpoint; write its predictions, metrics' plots; return metrics.

    In a distributed run every rank tests its share (the predictions are gathered) and rank 0
    alone writes; the best weights are those every rank kept in memory, or ``checkpoint.pt``
    (a resumed run whose best epoch came before the resume: the run directory must then be
    visible to every rank)."""
    if trainer.best_state is not None:
        state = trainer.best_state
    else:
        state = load_checkpoint(fold_dir / "checkpoint.pt").state_dict
    trainer.model.network.load_state_dict(state)
    y, p, loss = trainer.predict(trainer.test_loader)
    data = trainer.data
    metrics = classification_metrics(y, p, data.classes, positive_class=data.spec.positive_class)
    metrics["loss"] = loss
    per_recording = recording_metrics(trainer, y, p)
    if per_recording is not None:
        metrics["per_recording"] = per_recording
    if not trainer.dist.is_main:
        return metrics
    write_test_predictions(fold_dir / "test_predictions.tsv", trainer, y, p)
    plot_dir = fold_dir / "plots"
    plots.plot_history(trainer.history, plot_dir / "training.png", best_epoch=trainer.best_epoch)
    plots.plot_confusion(metrics["confusion_matrix"], data.classes, plot_dir / "confusion.png")
    if per_recording is not None:
        plots.plot_confusion(
            per_recording["confusion_matrix"], data.classes,
            plot_dir / "confusion_per_recording.png", title="Confusion matrix per recording",
        )  # fmt: skip
    if metrics.get("auroc") is not None:
        plots.plot_roc(roc_curves(y, p, data.classes), plot_dir / "roc.png")
    plot_examples(trainer, y, p, plot_dir / "examples.png")
    return metrics


def recording_metrics(trainer: Trainer, y: np.ndarray, p: np.ndarray) -> dict | None:
    """Test metrics per recording (the mean of its windows' probabilities), or ``None``.

    Only for clip-labelled data cut into several windows a recording (Bonn segments cut into
    sub-windows, say): there each recording has one true label and a clip-level answer. Data
    whose windows carry different labels within a recording (seizure onsets in an EDF) is
    scored per window and per event instead (``sigalex predict`` / ``sigalex score``).
    """
    recordings = trainer.data.recordings[trainer.split.test]
    _, counts = np.unique(recordings, return_counts=True)
    if counts.max() < 2:
        return None
    try:
        y_rec, p_rec, _ = aggregate_by(recordings, p, y)
    except ParameterError:  # a recording with windows of several labels
        return None
    out = classification_metrics(
        y_rec, p_rec, trainer.data.classes, positive_class=trainer.data.spec.positive_class
    )
    out["n_recordings"] = len(y_rec)
    out["aggregation"] = "mean of window probabilities per recording"
    return out


def plot_examples(trainer: Trainer, y: np.ndarray, p: np.ndarray, path: Path) -> None:
    """A grid of test images per class, as the network saw them, with its predictions."""
    per_class = trainer.cfg.output.examples_per_class
    chosen = []
    for c in range(len(trainer.data.classes)):
        chosen += list(np.flatnonzero(y == c)[:per_class])
    if not chosen:
        return
    ds = window_dataset(trainer.data, trainer.split.test[chosen])
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    images = to_uint8(trainer.model.images(x))
    plots.plot_examples(
        images, y[chosen], trainer.data.classes, path, per_class=per_class,
        predictions=p[chosen].argmax(1),
    )  # fmt: skip


def split_counts(data, split) -> dict:
    """Windows per class and groups in each part of a split (``metrics.json``'s
    ``split_counts``, shown by the run's ``report.html``)."""
    out: dict = {"group_by": data.group_by, "classes": data.classes}
    for part in ("train", "val", "test"):
        idx = np.asarray(getattr(split, part), dtype=np.int64)
        counts = np.bincount(data.targets[idx], minlength=len(data.classes))
        out[part] = {
            "windows": {c: int(n) for c, n in zip(data.classes, counts, strict=True)},
            "n_windows": len(idx),
            "n_groups": len(np.unique(data.groups[idx])) if len(idx) else 0,
        }
    return out


def summary_line(metrics: dict) -> str:
    """Accuracy, balanced accuracy, F1, AUROC and sensitivity/specificity on one line."""
    parts = [
        f"test accuracy {metrics['accuracy']:.4f}",
        f"balanced {metrics['balanced_accuracy']:.4f}",
        f"F1 {metrics['f1_macro']:.4f}",
    ]
    if metrics.get("auroc") is not None:
        parts.append(f"AUROC {metrics['auroc']:.4f}")
    if metrics.get("sensitivity") is not None and metrics.get("specificity") is not None:
        parts.append(
            f"sensitivity {metrics['sensitivity']:.4f} specificity {metrics['specificity']:.4f}"
        )
    return "  ".join(parts)


__all__ = [
    "PREDICTION_COLUMNS",
    "finish_fold",
    "plot_examples",
    "recording_metrics",
    "split_counts",
    "summary_line",
    "window_span",
    "write_test_predictions",
]
