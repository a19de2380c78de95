"""Figures for a run directory: training curves, confusion matrix, ROC curves, example images.

Every function renders with :class:`matplotlib.figure.Figure` and the Agg canvas directly, not
``pyplot``: no display is needed, no figure is registered with pyplot, and the backend of an
interactive session is left alone. Each writes a PNG atomically (a temporary file in the target
folder, then :func:`os.replace`), creates missing parent folders and returns the path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ._files import atomic_path
from .errors import ParameterError

#: Resolution of every PNG written here.
DPI = 110

_GOOD = "#1a7f37"  # green: correct prediction
_BAD = "#cf222e"  # red: wrong prediction


# --------------------------------------------------------------------------------------------
# helpers


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically; always releases the figure."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    finally:
        fig.clear()
    return path


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, possibly on a GPU
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _class_names(classes) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Sequence | np.ndarray):
        raise ParameterError(f"classes={classes!r} must be a list of class names")
    names = [str(c) for c in classes]
    if not names:
        raise ParameterError("classes=[] must name at least one class")
    return names


def _number(v) -> float | None:
    if v is None or isinstance(v, bool | str):
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------------------------
# training history


_HIGHER_IS_BETTER = ("accuracy", "f1", "auroc", "auc", "sensitivity", "specificity", "mcc")


def _best_epoch(history: list[dict], epochs: list[float], monitor: str | None):
    """(epoch, monitored key) of the best validation result, or (None, None)."""
    candidates = [monitor] if monitor else ["val_balanced_accuracy", "val_accuracy", "val_loss"]
    for key in candidates:
        values = [_number(h.get(key)) for h in history]
        if not any(v is not None for v in values):
            continue
        higher = any(word in key for word in _HIGHER_IS_BETTER) and "loss" not in key
        best_i, best_v = None, None
        for i, v in enumerate(values):  # the first epoch reaching the best value
            if v is not None and (best_v is None or (v > best_v if higher else v < best_v)):
                best_i, best_v = i, v
        assert best_i is not None  # some value is a number
        return epochs[best_i], key
    return None, None


def plot_history(history, path, *, monitor: str | None = None, best_epoch=None, title=None) -> Path:
    """Training curves: loss, accuracy and learning rate per epoch.

    Parameters
    ----------
    history : list of dict
        One dict per epoch with any of ``epoch``, ``train_loss``, ``val_loss``,
        ``train_accuracy``, ``val_accuracy``, ``val_balanced_accuracy``, ``lr`` (missing keys
        and ``None`` values are skipped; without ``epoch`` the epochs count from 1).
    path : str or Path
        The PNG to write.
    monitor : str, optional
        The key whose best value marks the best epoch (maximised unless its name contains
        ``loss``). Default: ``val_balanced_accuracy``, else ``val_accuracy``, else ``val_loss``.
    best_epoch : int, optional
        Mark this epoch instead (e.g. the epoch of the saved best checkpoint).
    title : str, optional
        Figure title (default ``"Training history"``).

    Returns
    -------
    Path
        ``path``. Panels: loss (train/val), accuracy (train/val/val balanced) and, when
        ``lr`` is recorded, the learning rate (log scale); the best epoch is a dashed
        vertical line on every panel with its value marked.
    """
    if isinstance(history, Mapping) or not isinstance(history, Sequence):
        raise ParameterError(
            f"history must be a list of per-epoch dicts, got {type(history).__name__}"
        )
    history = list(history)
    if not history:
        raise ParameterError("history=[] is empty: there is no epoch to plot")
    for i, h in enumerate(history):
        if not isinstance(h, Mapping):
            raise ParameterError(f"history[{i}] must be a dict, got {type(h).__name__}")
    epochs = [
        e if (e := _number(h.get("epoch"))) is not None else i + 1 for i, h in enumerate(history)
    ]

    def series(key):
        pts = [(e, _number(h.get(key))) for e, h in zip(epochs, history, strict=True)]
        pts = [(e, v) for e, v in pts if v is not None]
        return ([e for e, _ in pts], [v for _, v in pts]) if pts else None

    panels = [
        ("Loss", "loss", [("train_loss", "train"), ("val_loss", "validation")]),
        (
            "Accuracy",
            "accuracy",
            [
                ("train_accuracy", "train"),
                ("val_accuracy", "validation"),
                ("val_balanced_accuracy", "validation (balanced)"),
            ],
        ),
        ("Learning rate", "learning rate", [("lr", "lr")]),
    ]
    if monitor is not None and not any(monitor == k for _, _, keys in panels for k, _ in keys):
        panels[1][2].append((monitor, monitor))  # show a custom monitored metric too
    drawn = [
        (t, yl, [(k, lbl, s) for k, lbl in keys if (s := series(k))]) for t, yl, keys in panels
    ]
    drawn = [d for d in drawn if d[2]]
    if not drawn:
        known = sorted({k for _, _, keys in panels for k, _ in keys})
        raise ParameterError(f"history has none of the keys {known}: nothing to plot")

    if best_epoch is not None:
        best, best_key = _number(best_epoch), monitor
    else:
        best, best_key = _best_epoch(history, epochs, monitor)

    styles = {
        "train": dict(color="#1f77b4", linestyle="-"),
        "validation": dict(color="#d62728", linestyle="-"),
        "validation (balanced)": dict(color="#ff7f0e", linestyle="--"),
        "lr": dict(color="#2ca02c", linestyle="-"),
    }
    few = len(epochs) <= 30
    fig = _new_figure(4.4 * len(drawn), 3.8)
    axes = fig.subplots(1, len(drawn), squeeze=False)[0]
    for ax, (panel_title, ylabel, lines) in zip(axes, drawn, strict=True):
        for key, label, (xs, ys) in lines:
            style = styles.get(label, {})
            ax.plot(xs, ys, label=label, marker="o" if few else None, markersize=3, **style)
            if best is not None and key == best_key and best in xs:
                ax.plot(
                    [best],
                    [ys[xs.index(best)]],
                    marker="*",
                    markersize=13,
                    color="gold",
                    markeredgecolor="black",
                    zorder=5,
                    linestyle="none",
                )
        if best is not None:
            ax.axvline(
                best, color="0.35", linestyle=":", linewidth=1.2, label=f"best (epoch {best:g})"
            )
        if ylabel == "learning rate":
            lrs = [v for _, _, (_, ys) in lines for v in ys]
            if lrs and min(lrs) > 0 and max(lrs) / min(lrs) > 20:
                ax.set_yscale("log")
            else:
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        elif ylabel == "accuracy":
            ys_all = [v for _, _, (_, ys) in lines for v in ys]
            if ys_all and min(ys_all) >= 0 and max(ys_all) <= 1:
                ax.set_ylim(max(0.0, min(ys_all) - 0.05), 1.01)
        ax.set_title(panel_title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if len(epochs) <= 15 and all(float(e).is_integer() for e in epochs):
            ax.set_xticks(sorted(set(epochs)))
        ax.legend(fontsize="small", loc="best")
    fig.suptitle(title or "Training history")
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# confusion matrix


def plot_confusion(confusion_matrix, classes, path, *, normalize: bool = True, title=None) -> Path:
    """Confusion matrix heatmap, each cell annotated with its count and row percentage.

    Parameters
    ----------
    confusion_matrix : array-like of int, shape (n_classes, n_classes)
        Rows = true class, columns = predicted class (as in ``metrics["confusion_matrix"]``).
    classes : list of str, length n_classes
        Class names.
    path : str or Path
        The PNG to write.
    normalize : bool, default True
        Colour by row fraction (recall on the diagonal) rather than by count; the annotations
        show both either way.
    title : str, optional
        Figure title (default ``"Confusion matrix"``).

    Returns
    -------
    Path
        ``path``.
    """
    cm = _as_numpy(confusion_matrix)
    names = _class_names(classes)
    k = len(names)
    if cm.ndim != 2 or cm.shape != (k, k):
        raise ParameterError(
            f"confusion_matrix must have shape (n_classes, n_classes) = ({k}, {k}), got {cm.shape}"
        )
    if not np.issubdtype(cm.dtype, np.number) or not np.all(np.isfinite(cm)) or cm.min() < 0:
        raise ParameterError("confusion_matrix must hold non-negative finite counts")
    counts = cm.astype(np.float64)
    row = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, row, out=np.zeros_like(counts), where=row > 0)
    values = frac if normalize else counts
    vmax = 1.0 if normalize else max(float(counts.max()), 1.0)

    side = min(max(4.6, 0.75 * k + 2.6), 11.0)
    fig = _new_figure(side + 0.9, side)
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, shrink=0.8)
    cbar.set_label("fraction of true class" if normalize else "count")

    integer = np.allclose(counts, np.round(counts))
    fontsize = 11 if k <= 4 else 9 if k <= 7 else 8
    for i in range(k):
        for j in range(k):
            c = counts[i, j]
            count = f"{c:.0f}" if integer else f"{c:.3g}"
            if c == 0:  # keep empty cells quiet so the errors stand out
                text, color = "0", "0.6"
            else:
                text = f"{count}\n{100 * frac[i, j]:.1f}%" if row[i, 0] > 0 else count
                color = "white" if values[i, j] / vmax > 0.55 else "black"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=fontsize,
                color=color,
                fontweight="bold" if i == j else "normal",
            )
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    longest = max(len(n) for n in names)
    if (longest > 4 and k > 3) or longest > 10:
        ax.set_xticklabels(names, rotation=45, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticklabels(names)
    ax.set_yticklabels([f"{name}\n(n={row[i, 0]:.0f})" for i, name in enumerate(names)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = f"{counts.sum():.0f}" if integer else f"{counts.sum():.4g}"
    acc = float(np.trace(counts) / counts.sum()) if counts.sum() else 0.0
    ax.set_title(
        f"{title or 'Confusion matrix'}\n"
        f"n = {total}, accuracy = {100 * acc:.1f}%"
        + (" (colour: row-normalised)" if normalize else ""),
        fontsize=11,
    )
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# ROC


def plot_roc(curves, path, *, title=None) -> Path:
    """ROC curves with a chance diagonal and each curve's AUC in the legend.

    Parameters
    ----------
    curves : dict of str to (fpr, tpr, auc)
        As returned by :func:`sigalex.metrics.roc_curves`; ``fpr`` and ``tpr`` of shape
        ``(n_thresholds,)``. An empty dict (ROC undefined, e.g. one class in the test set)
        gives a figure that says so.
    path : str or Path
        The PNG to write.
    title : str, optional
        Figure title (default ``"ROC curve"`` / ``"ROC curves (one-vs-rest)"``).

    Returns
    -------
    Path
        ``path``.
    """
    if not isinstance(curves, Mapping):
        raise ParameterError(
            f"curves must be a dict {{class: (fpr, tpr, auc)}}, got {type(curves).__name__}"
        )
    checked = []
    for name, value in curves.items():
        if not isinstance(value, Sequence | np.ndarray) or len(value) != 3:
            raise ParameterError(f"curves[{name!r}] must be (fpr, tpr, auc), got {value!r}")
        fpr, tpr, auc = (
            _as_numpy(value[0]).astype(float),
            _as_numpy(value[1]).astype(float),
            value[2],
        )
        if fpr.ndim != 1 or fpr.shape != tpr.shape:
            raise ParameterError(
                f"curves[{name!r}]: fpr and tpr must be 1-D of equal length, "
                f"got shapes {fpr.shape} and {tpr.shape}"
            )
        checked.append((str(name), fpr, tpr, _number(auc)))

    fig = _new_figure(5.6, 5.2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="chance (AUC = 0.5)")
    colors = [f"C{i % 10}" for i in range(len(checked))]
    if len(checked) > 10:
        import matplotlib

        cmap = matplotlib.colormaps["tab20"]
        colors = [cmap(i % 20) for i in range(len(checked))]
    for (name, fpr, tpr, auc), color in zip(checked, colors, strict=True):
        label = f"{name} (AUC = {auc:.3f})" if auc is not None else name
        ax.plot(fpr, tpr, color=color, linewidth=1.8, label=label, drawstyle="default")
    if not checked:
        ax.text(
            0.5,
            0.55,
            "ROC undefined:\nthe evaluated labels hold a single class",
            ha="center",
            va="center",
            fontsize=11,
            color="0.3",
            transform=ax.transAxes,
            bbox={"facecolor": "white", "edgecolor": "0.7", "boxstyle": "round,pad=0.5"},
        )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (1 − specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.grid(True, alpha=0.3)
    if len(checked) == 1:
        default = f"ROC curve (positive class: {checked[0][0]})"
    else:
        default = "ROC curves (one-vs-rest)" if checked else "ROC curve"
    ax.set_title(title or default)
    ax.legend(loc="lower right", fontsize="small" if len(checked) <= 6 else "x-small")
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# example images


def _images_hwc_uint8(images) -> np.ndarray:
    """``(n, H, W, 3)`` uint8 from uint8 HWC, float [0, 1] HWC, CHW, or grayscale batches."""
    x = _as_numpy(images)
    if x.ndim == 3:  # (n, H, W) grayscale
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.ndim != 4:
        raise ParameterError(f"images must have shape (n, H, W, 3), got shape {x.shape}")
    if x.shape[-1] not in (1, 3) and x.shape[1] in (1, 3):  # (n, C, H, W) as sigalex renders
        x = np.moveaxis(x, 1, -1)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.shape[-1] != 3:
        raise ParameterError(f"images must have shape (n, H, W, 3), got shape {x.shape}")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            raise ParameterError("images hold NaN or infinite values")
        if x.size and (x.min() < -1e-3 or x.max() > 1 + 1e-3):
            raise ParameterError(
                f"float images must lie in [0, 1] (min={x.min():.4g}, max={x.max():.4g})"
            )
        return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer) and (x.size == 0 or (x.min() >= 0 and x.max() <= 255)):
        return x.astype(np.uint8)
    raise ParameterError(f"images must be uint8 or float in [0, 1], got dtype {x.dtype}")


def plot_examples(
    images,
    labels,
    classes,
    path,
    *,
    per_class: int = 6,
    predictions=None,
    title=None,
) -> Path:
    """A grid of example images: one row per class, up to ``per_class`` images each.

    Parameters
    ----------
    images : array-like, shape (n, H, W, 3)
        uint8 RGB images. Also accepted: float in [0, 1], channels-first ``(n, 3, H, W)`` as
        :class:`sigalex.render.Render` produces, and grayscale ``(n, H, W)``.
    labels : array-like of int, shape (n,)
        True label of each image.
    classes : list of str
        Class names in label order; a class with no image gets an empty row that says so.
    path : str or Path
        The PNG to write.
    per_class : int, default 6
        Most images shown per class (the first ones of the class, in input order).
    predictions : array-like of int, shape (n,), optional
        Predicted labels; each title then shows ``true → predicted``, green when right and
        red when wrong.
    title : str, optional
        Figure title (default ``"Examples per class"``).

    Returns
    -------
    Path
        ``path``.
    """
    imgs = _images_hwc_uint8(images)
    names = _class_names(classes)
    n = imgs.shape[0]
    y = _as_numpy(labels).reshape(-1) if n else np.zeros(0, dtype=np.int64)
    if y.shape[0] != n:
        raise ParameterError(f"labels has {y.shape[0]} entries but images has {n}; they must match")
    if n and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= len(names)):
        raise ParameterError(
            f"labels must be integers in [0, {len(names)}) (len(classes)={len(names)})"
        )
    pred = None
    if predictions is not None:
        pred = _as_numpy(predictions).reshape(-1)
        if pred.shape[0] != n:
            raise ParameterError(
                f"predictions has {pred.shape[0]} entries but images has {n}; they must match"
            )
        if n and (
            not np.issubdtype(pred.dtype, np.integer) or pred.min() < 0 or pred.max() >= len(names)
        ):
            raise ParameterError(f"predictions must be integers in [0, {len(names)})")
    if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ParameterError(f"per_class={per_class!r} must be a positive integer")

    chosen = [np.flatnonzero(y == c)[:per_class] for c in range(len(names))]
    n_cols = max(1, max((len(c) for c in chosen), default=0))
    n_rows = len(names)
    h, w = imgs.shape[1:3] if n else (1, 1)
    cell_w = 1.75 if n_rows <= 6 else 1.45
    cell_h = cell_w * h / w + (0.55 if pred is not None else 0.35)
    fig = _new_figure(max(cell_w * n_cols + 0.9, 4.0), cell_h * n_rows + 0.6)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, (name, idx) in enumerate(zip(names, chosen, strict=True)):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{name}\n(n={int((y == r).sum())})", fontsize=10, fontweight="bold")
            if c >= len(idx):
                for spine in ax.spines.values():
                    spine.set_visible(False)
                if c == 0:
                    ax.text(
                        0.5,
                        0.5,
                        "no examples",
                        ha="center",
                        va="center",
                        color="0.5",
                        transform=ax.transAxes,
                    )
                continue
            i = int(idx[c])
            ax.imshow(imgs[i], interpolation="antialiased", aspect="equal")
            if pred is None:
                ax.set_title(f"true: {name}", fontsize=8)
            else:
                ok = int(pred[i]) == int(y[i])
                ax.set_title(
                    f"true: {name}\npred: {names[int(pred[i])]}",
                    fontsize=8,
                    color=_GOOD if ok else _BAD,
                    fontweight="normal" if ok else "bold",
                )
                for spine in ax.spines.values():
                    spine.set_edgecolor(_GOOD if ok else _BAD)
                    spine.set_linewidth(2.0)
    fig.suptitle(title or "Examples per class")
    return _save(fig, path)


__all__ = ["DPI", "plot_confusion", "plot_examples", "plot_history", "plot_roc"]
