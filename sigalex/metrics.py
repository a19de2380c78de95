"""Classification metrics for a run directory: accuracy, balanced accuracy, F1, per-class
precision/recall, the confusion matrix, ROC AUC, and sensitivity/specificity for binary tasks.

Every dict returned here is JSON-serialisable as it stands (plain ``int``/``float``/``str``/
``list``/``None``, never a numpy type or a NaN), so ``json.dumps(metrics)`` writes
``metrics.json`` directly.

Conventions
-----------
- ``y_true``: integer labels, shape ``(n,)``, label ``i`` is ``classes[i]``.
- ``probabilities``: shape ``(n, n_classes)``, rows summing to 1 (softmax output).
- Predictions are ``probabilities.argmax(axis=1)``.
- A metric that is undefined on the data (AUC with one class present, sensitivity with no
  positives) is ``None`` and a ``<metric>_reason`` key says why.

For clip-level tasks, :func:`aggregate_by` averages window probabilities per recording first;
for k-fold or leave-one-group-out evaluation, :func:`summarise_folds` gives mean ± std.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import ParameterError

#: Class names (case-insensitive, exact) taken as the positive class of a binary task, in order
#: of preference; when none is present the positive class is ``classes[1]``.
POSITIVE_NAMES = ("seizure", "ictal", "sz", "e", "s")

#: Per-fold keys that are counts or bookkeeping, not metrics: :func:`summarise_folds` skips them.
_NOT_METRICS = frozenset({"n", "n_classes"})


# --------------------------------------------------------------------------------------------
# input checks


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, possibly on a GPU
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_classes(classes, n_classes: int | None = None) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Sequence | np.ndarray):
        raise ParameterError(f"classes={classes!r} must be a list of class names")
    names = [str(c) for c in classes]
    if len(names) < 2:
        raise ParameterError(f"classes={names!r} must name at least 2 classes")
    if len(set(names)) != len(names):
        raise ParameterError(f"classes={names!r} has repeated names")
    if n_classes is not None and len(names) != n_classes:
        raise ParameterError(
            f"len(classes)={len(names)} does not match probabilities.shape[1]={n_classes}"
        )
    return names


def _check_labels(y_true, n: int | None = None, n_classes: int | None = None) -> np.ndarray:
    y = _as_numpy(y_true)
    if y.ndim != 1:
        raise ParameterError(f"y_true must have shape (n,), got shape {y.shape}")
    if y.size == 0:
        raise ParameterError("y_true is empty: there is nothing to score")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        if (
            np.issubdtype(y.dtype, np.floating)
            and np.all(np.isfinite(y))
            and np.all(y == np.round(y))
        ):
            y = y.astype(np.int64)
        else:
            raise ParameterError(f"y_true must hold integer labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if n is not None and y.shape[0] != n:
        raise ParameterError(
            f"y_true has {y.shape[0]} labels but probabilities has {n} rows; they must match"
        )
    if n_classes is not None and (y.min() < 0 or y.max() >= n_classes):
        bad = sorted({int(v) for v in y if v < 0 or v >= n_classes})
        raise ParameterError(
            f"y_true holds labels {bad} outside [0, {n_classes}) (n_classes={n_classes})"
        )
    return y


def _check_probabilities(probabilities) -> np.ndarray:
    p = _as_numpy(probabilities)
    if p.ndim != 2:
        raise ParameterError(f"probabilities must have shape (n, n_classes), got shape {p.shape}")
    if not np.issubdtype(p.dtype, np.number) or np.issubdtype(p.dtype, np.complexfloating):
        raise ParameterError(f"probabilities must be real numbers, got dtype {p.dtype}")
    p = p.astype(np.float64)
    if p.shape[0] == 0:
        raise ParameterError("probabilities is empty: there is nothing to score")
    if not np.all(np.isfinite(p)):
        raise ParameterError("probabilities holds NaN or infinite values")
    if p.min() < -1e-6 or p.max() > 1 + 1e-6:
        raise ParameterError(
            f"probabilities must lie in [0, 1] (min={p.min():.4g}, max={p.max():.4g}); "
            "pass softmax(logits), not logits"
        )
    sums = p.sum(axis=1)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > 1e-3:
        row = int(np.argmax(np.abs(sums - 1.0)))
        raise ParameterError(
            f"probabilities rows must sum to 1; row {row} sums to {sums[row]:.6g}; "
            "pass softmax(logits)"
        )
    p = np.clip(p, 0.0, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def positive_class_of(classes, positive_class=None) -> str | None:
    """The positive class of a task: the one rule that metrics, checkpoints and events share.

    ``positive_class`` (the recipe's ``eval.positive_class``) when given; else the first of
    :data:`POSITIVE_NAMES` (``seizure``, ``ictal``, ``sz``, ``E``, ``S``; case-insensitive)
    among ``classes``; else ``classes[1]`` for a binary task; else ``None`` (a multiclass task
    with no seizure-like class has no positive class).

    Raises
    ------
    ParameterError
        ``positive_class`` is not one of ``classes``.
    """
    names = [str(c) for c in classes]
    if positive_class is not None and positive_class != "":
        if str(positive_class) not in names:
            raise ParameterError(f"positive_class={positive_class!r} is not one of classes={names}")
        return str(positive_class)
    lowered = [c.lower() for c in names]
    for candidate in POSITIVE_NAMES:
        if candidate in lowered:
            return names[lowered.index(candidate)]
    return names[1] if len(names) == 2 else None


def resolve_positive_class(classes, positive_class=None) -> int:
    """Index of the positive class of a binary task.

    Parameters
    ----------
    classes : list of str, length 2
        Class names in label order.
    positive_class : str or int, optional
        A class name or index. By default the first class whose name is (case-insensitively)
        one of :data:`POSITIVE_NAMES` (``seizure``, ``ictal``, ``sz``, ``E``, ``S``), else
        ``classes[1]``.

    Returns
    -------
    int
        The index into ``classes``.
    """
    names = [str(c) for c in classes]
    if positive_class is None:
        return names.index(positive_class_of(names) or names[1])
    if isinstance(positive_class, bool):
        raise ParameterError(f"positive_class={positive_class!r} must be a class name or index")
    if isinstance(positive_class, int | np.integer):
        if not 0 <= int(positive_class) < len(names):
            raise ParameterError(
                f"positive_class={positive_class!r} is not a class index in [0, {len(names)})"
            )
        return int(positive_class)
    if str(positive_class) not in names:
        raise ParameterError(f"positive_class={positive_class!r} is not one of classes={names}")
    return names.index(str(positive_class))


# --------------------------------------------------------------------------------------------
# metrics


def _f(x) -> float | None:
    """A plain float, or None for NaN/inf (JSON has no NaN)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _safe_div(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def classification_metrics(y_true, probabilities, classes, *, positive_class=None) -> dict:
    """Scores of a classifier's probabilities against the true labels, ready for ``metrics.json``.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        True labels; label ``i`` is ``classes[i]``.
    probabilities : array-like of float, shape (n, n_classes)
        Class probabilities, rows summing to 1 (within 1e-3). Predictions are the row argmax.
    classes : list of str, length n_classes
        Class names in label order.
    positive_class : str or int, optional
        Binary tasks only: the class whose recall is the ``sensitivity``. By default the class
        named ``seizure``/``ictal``/``sz``/``E``/``S`` (case-insensitive) if present, else
        ``classes[1]``. Ignored (but still validated) for more than two classes.

    Returns
    -------
    dict
        JSON-serialisable, with keys

        - ``n``, ``n_classes``, ``classes``
        - ``accuracy``
        - ``balanced_accuracy``: mean recall over the classes present in ``y_true``
        - ``f1_macro``: mean F1 over the classes present in ``y_true`` or the predictions
          (scikit-learn's default label set; a class never seen nor predicted is not averaged in)
        - ``mcc``: Matthews correlation coefficient (0 when undefined)
        - ``per_class``: ``{name: {"precision", "recall", "f1", "support", "n_predicted"}}``;
          a class never predicted has precision 0, a class absent from ``y_true`` recall 0
        - ``confusion_matrix``: list of lists, rows = true class, columns = predicted class
        - ``auroc``: binary: ROC AUC of the positive class' probability; multiclass: macro
          one-vs-rest AUC. ``None`` with ``auroc_reason`` when a class is absent from ``y_true``
        - ``auroc_per_class`` (multiclass, when ``auroc`` is defined): one-vs-rest AUC per class
        - ``log_loss``: mean cross-entropy (probabilities clipped at 1e-15)
        - binary only: ``positive_class`` (name), ``sensitivity`` (recall of the positive
          class) and ``specificity`` (recall of the other class), each ``None`` with a
          ``*_reason`` key when ``y_true`` has no example of the class it needs

    Raises
    ------
    ParameterError
        When the shapes disagree, a label is outside ``[0, n_classes)``, or a row of
        ``probabilities`` is not a probability distribution.

    Examples
    --------
    >>> m = classification_metrics([0, 0, 1, 1], [[.9, .1], [.4, .6], [.2, .8], [.3, .7]],
    ...                            ["background", "seizure"])
    >>> m["sensitivity"], m["specificity"], m["balanced_accuracy"]
    (1.0, 0.5, 0.75)
    """
    from sklearn.metrics import log_loss, matthews_corrcoef, roc_auc_score

    p = _check_probabilities(probabilities)
    n, k = p.shape
    names = _check_classes(classes, k)
    y = _check_labels(y_true, n, k)
    pos = resolve_positive_class(names, positive_class)  # validated even when unused
    pred = p.argmax(axis=1)

    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    support = cm.sum(axis=1)
    n_predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    precision = np.array([_safe_div(tp[i], n_predicted[i]) for i in range(k)])
    recall = np.array([_safe_div(tp[i], support[i]) for i in range(k)])
    f1 = np.array(
        [_safe_div(2 * precision[i] * recall[i], precision[i] + recall[i]) for i in range(k)]
    )
    present = support > 0
    seen = present | (n_predicted > 0)

    out: dict = {
        "n": int(n),
        "n_classes": int(k),
        "classes": names,
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float(recall[present].mean()),
        "f1_macro": float(f1[seen].mean()),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["mcc"] = _f(matthews_corrcoef(y, pred)) or 0.0
        out["log_loss"] = _f(log_loss(y, np.clip(p, 1e-15, 1.0), labels=list(range(k))))
    out["per_class"] = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "n_predicted": int(n_predicted[i]),
        }
        for i, name in enumerate(names)
    }
    out["confusion_matrix"] = cm.tolist()

    absent = [names[i] for i in range(k) if not present[i]]
    if k == 2:
        neg = 1 - pos
        out["positive_class"] = names[pos]
        if absent:
            out["auroc"] = None
            out["auroc_reason"] = f"y_true has no examples of class {absent[0]!r}"
        else:
            out["auroc"] = _f(roc_auc_score(y == pos, p[:, pos]))
        for key, idx in (("sensitivity", pos), ("specificity", neg)):
            if present[idx]:
                out[key] = float(recall[idx])
            else:
                out[key] = None
                out[f"{key}_reason"] = f"y_true has no examples of class {names[idx]!r}"
    else:
        if absent:
            out["auroc"] = None
            out["auroc_reason"] = (
                f"y_true has no examples of class(es) {absent}; one-vs-rest AUC needs every class"
            )
        else:
            per = [_f(roc_auc_score(y == i, p[:, i])) for i in range(k)]
            out["auroc_per_class"] = dict(zip(names, per, strict=True))
            out["auroc"] = _f(
                roc_auc_score(y, p, multi_class="ovr", average="macro", labels=list(range(k)))
            )
    return out


def roc_curves(y_true, probabilities, classes, *, positive_class=None) -> dict:
    """ROC curves for plotting (:func:`sigalex.plots.plot_roc`).

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        True labels.
    probabilities : array-like of float, shape (n, n_classes)
        Class probabilities, rows summing to 1.
    classes : list of str, length n_classes
        Class names in label order.
    positive_class : str or int, optional
        Binary tasks: the class whose curve is drawn (default as in
        :func:`classification_metrics`).

    Returns
    -------
    dict of str to (ndarray, ndarray, float)
        ``{class name: (fpr, tpr, auc)}``, ``fpr`` and ``tpr`` of shape ``(n_thresholds,)``.
        Binary tasks: the positive class only. Multiclass: one-vs-rest, one entry per class.
        A class whose curve is undefined (no positive or no negative example in ``y_true``)
        is left out, so the dict may be empty.
    """
    from sklearn.metrics import auc, roc_curve

    p = _check_probabilities(probabilities)
    n, k = p.shape
    names = _check_classes(classes, k)
    y = _check_labels(y_true, n, k)
    indices = [resolve_positive_class(names, positive_class)] if k == 2 else range(k)
    curves = {}
    for i in indices:
        positives = y == i
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = roc_curve(positives, p[:, i])
        curves[names[i]] = (fpr, tpr, float(auc(fpr, tpr)))
    return curves


def summarise_folds(folds: Sequence[Mapping], *, ddof: int = 1) -> dict:
    """Mean and standard deviation of each scalar metric across folds.

    Parameters
    ----------
    folds : list of dict
        One :func:`classification_metrics` result per fold (or any dicts of scalars).
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation (1: sample std across folds;
        with a single fold the std is 0).

    Returns
    -------
    dict
        JSON-serialisable. ``n_folds``; ``n_total`` (sum of ``n`` when every fold has it);
        for every numeric top-level metric (``accuracy``, ``auroc``, ``sensitivity``, ...)
        ``{"mean", "std", "min", "max", "n_folds", "values"}`` over the folds where it is
        defined (``None`` values are skipped; a metric ``None`` in every fold is ``None``);
        ``per_class`` with the same summary of each class' precision/recall/f1; and
        ``confusion_matrix``, the sum over folds, when every fold has one over the same
        ``classes``.

    Examples
    --------
    >>> s = summarise_folds([{"accuracy": 0.8}, {"accuracy": 1.0}])
    >>> round(s["accuracy"]["mean"], 3), round(s["accuracy"]["std"], 3)
    (0.9, 0.141)
    """
    if isinstance(folds, Mapping) or not isinstance(folds, Sequence):
        raise ParameterError(f"folds must be a list of metric dicts, got {type(folds).__name__}")
    if len(folds) == 0:
        raise ParameterError("folds=[] is empty: there is nothing to summarise")
    for i, fold in enumerate(folds):
        if not isinstance(fold, Mapping):
            raise ParameterError(f"folds[{i}] must be a dict of metrics, got {type(fold).__name__}")
    if isinstance(ddof, bool) or not isinstance(ddof, int) or ddof < 0:
        raise ParameterError(f"ddof={ddof!r} must be a non-negative integer")

    def stats(values: list) -> dict | None:
        nums = [float(v) for v in values if _is_number(v) and math.isfinite(float(v))]
        if not nums:
            return None
        a = np.asarray(nums)
        std = float(a.std(ddof=ddof)) if a.size > ddof else 0.0
        return {
            "mean": float(a.mean()),
            "std": std,
            "min": float(a.min()),
            "max": float(a.max()),
            "n_folds": int(a.size),
            "values": [float(v) for v in a],
        }

    out: dict = {"n_folds": len(folds)}
    if all(_is_number(f.get("n")) for f in folds):
        out["n_total"] = int(sum(int(f["n"]) for f in folds))

    keys: list[str] = []
    for fold in folds:
        for key, value in fold.items():
            if key in _NOT_METRICS or key in keys:
                continue
            if _is_number(value) or value is None:
                keys.append(key)
    for key in keys:
        values = [fold.get(key) for fold in folds]
        if any(v is not None and not _is_number(v) for v in values):
            continue  # numeric in one fold, something else in another: not a scalar metric
        out[key] = stats(values)

    # Every fold's per-class metrics, when each fold has them.
    per_class_folds = [pc for f in folds if isinstance(pc := f.get("per_class"), Mapping)]
    if len(per_class_folds) == len(folds):
        names = list(dict.fromkeys(name for pc in per_class_folds for name in pc))
        per_class: dict[str, dict[str, object]] = {
            name: {
                metric: stats([pc.get(name, {}).get(metric) for pc in per_class_folds])
                for metric in ("precision", "recall", "f1")
            }
            for name in names
        }
        out["per_class"] = per_class
        for name in names:
            supports = [pc.get(name, {}).get("support") for pc in per_class_folds]
            per_class[name]["support"] = int(sum(s for s in supports if _is_number(s)))

    matrices = [f.get("confusion_matrix") for f in folds]
    class_lists = [list(f.get("classes", [])) for f in folds]
    if all(m is not None for m in matrices) and all(c == class_lists[0] for c in class_lists):
        shapes = {np.asarray(m).shape for m in matrices}
        if len(shapes) == 1:
            out["confusion_matrix"] = np.sum([np.asarray(m) for m in matrices], axis=0).tolist()
            if class_lists[0]:
                out["classes"] = class_lists[0]
    return out


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def aggregate_by(groups, probabilities, y_true) -> tuple[np.ndarray, np.ndarray, list]:
    """Window → recording: mean of the window probabilities of each group.

    Parameters
    ----------
    groups : array-like, shape (n,)
        Group (recording, segment, speaker ...) of each window: strings or integers.
    probabilities : array-like of float, shape (n, n_classes)
        Window class probabilities.
    y_true : array-like of int, shape (n,)
        Window labels; all windows of a group must share one label.

    Returns
    -------
    y_true_per_group : ndarray of int64, shape (n_groups,)
        The label of each group.
    mean_probs_per_group : ndarray of float64, shape (n_groups, n_classes)
        The mean of the group's window probabilities (rows still sum to 1).
    group_names : list, length n_groups
        The groups, in order of first appearance, as plain Python values.

    Raises
    ------
    ParameterError
        When the lengths disagree or a group's windows carry more than one label.

    Examples
    --------
    >>> y, p, g = aggregate_by(["a", "a", "b"], [[.9, .1], [.5, .5], [.2, .8]], [0, 0, 1])
    >>> y.tolist(), p.round(2).tolist(), g
    ([0, 1], [[0.7, 0.3], [0.2, 0.8]], ['a', 'b'])
    """
    p = _check_probabilities(probabilities)
    n, k = p.shape
    y = _check_labels(y_true, n)
    g = _as_numpy(groups)
    if g.ndim != 1 or g.shape[0] != n:
        raise ParameterError(
            f"groups must have shape (n,) = ({n},) like y_true, got shape {g.shape}"
        )
    names_raw, first, inverse = np.unique(g, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    idx = rank[inverse.reshape(-1)]
    n_groups = order.size

    counts = np.bincount(idx, minlength=n_groups).astype(np.float64)
    sums = np.zeros((n_groups, k), dtype=np.float64)
    np.add.at(sums, idx, p)
    mean = sums / counts[:, None]

    labels = y[first[order]]
    mismatch = y != labels[idx]
    if mismatch.any():
        bad = int(idx[np.argmax(mismatch)])
        found = sorted({int(v) for v in y[idx == bad]})
        raise ParameterError(
            f"group {_plain(names_raw[order[bad]])!r} has windows with labels {found}; "
            "a recording's true label must be unique"
        )
    return labels.astype(np.int64), mean, [_plain(names_raw[i]) for i in order]


def _plain(v: object):
    return v.item() if isinstance(v, np.generic) else v


__all__ = [
    "POSITIVE_NAMES",
    "aggregate_by",
    "classification_metrics",
    "positive_class_of",
    "resolve_positive_class",
    "roc_curves",
    "summarise_folds",
]
