"""sigalex.metrics: hand-computed cases, agreement with scikit-learn, edge cases, JSON output."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from sigalex.errors import ParameterError
from sigalex.metrics import (
    aggregate_by,
    classification_metrics,
    resolve_positive_class,
    roc_curves,
    summarise_folds,
)


def _plain_json(obj) -> None:
    """Every leaf is a builtin JSON type (no numpy scalars) and no float is NaN/inf."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            assert type(key) is str
            _plain_json(value)
    elif isinstance(obj, list):
        for value in obj:
            _plain_json(value)
    else:
        assert obj is None or type(obj) in (bool, int, float, str), (obj, type(obj))
        if type(obj) is float:
            assert math.isfinite(obj)
    json.dumps(obj, allow_nan=False)


def _random_case(seed: int, n: int, k: int, signal: float = 1.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)  # every class present
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += signal
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# hand-computed binary case

# true:        N  N  N  N  E  E
# P(E):       .1 .2 .6 .3 .8 .4   -> predicted N N E N E N
# TN = 3, FP = 1, TP = 1, FN = 1
Y_HAND = [0, 0, 0, 0, 1, 1]
P_E = np.array([0.1, 0.2, 0.6, 0.3, 0.8, 0.4])
P_HAND = np.stack([1 - P_E, P_E], axis=1)


def test_binary_hand_computed():
    m = classification_metrics(Y_HAND, P_HAND, ["ABCD", "E"])
    assert m["n"] == 6
    assert m["positive_class"] == "E"
    assert m["confusion_matrix"] == [[3, 1], [1, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["sensitivity"] == pytest.approx(1 / 2)  # TP / (TP + FN)
    assert m["specificity"] == pytest.approx(3 / 4)  # TN / (TN + FP)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert m["per_class"]["E"] == {
        "precision": pytest.approx(1 / 2),
        "recall": pytest.approx(1 / 2),
        "f1": pytest.approx(1 / 2),
        "support": 2,
        "n_predicted": 2,
    }
    assert m["per_class"]["ABCD"]["precision"] == pytest.approx(3 / 4)
    assert m["per_class"]["ABCD"]["recall"] == pytest.approx(3 / 4)
    assert m["f1_macro"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    # AUC = P(score of a positive > score of a negative): .8 beats 4 negatives, .4 beats 3
    assert m["auroc"] == pytest.approx(7 / 8)
    _plain_json(m)


def test_binary_positive_class_swaps_sensitivity_and_specificity():
    m = classification_metrics(Y_HAND, P_HAND, ["ABCD", "E"], positive_class="ABCD")
    assert m["positive_class"] == "ABCD"
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(1 / 2)
    assert m["auroc"] == pytest.approx(7 / 8)  # AUC of P(ABCD) for ABCD == AUC of P(E) for E
    by_index = classification_metrics(Y_HAND, P_HAND, ["ABCD", "E"], positive_class=0)
    assert by_index["sensitivity"] == m["sensitivity"]


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        (["background", "seizure"], 1),
        (["seizure", "background"], 0),
        (["ictal", "preictal"], 0),  # "preictal" must not count as ictal
        (["preictal", "ictal"], 1),
        (["E", "ABCD"], 0),
        (["non-seizure", "other"], 1),  # no exact match: classes[1]
        (["S", "N"], 0),
        (["cat", "dog"], 1),
    ],
)
def test_default_positive_class(classes, expected):
    assert resolve_positive_class(classes) == expected


def test_default_positive_class_used_for_sensitivity():
    # classes ["ictal", "preictal"]: the positive class is index 0
    y = [0, 0, 1, 1, 1]
    p = [[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.3, 0.7], [0.2, 0.8]]
    m = classification_metrics(y, p, ["ictal", "preictal"])
    assert m["positive_class"] == "ictal"
    assert m["sensitivity"] == pytest.approx(1 / 2)
    assert m["specificity"] == pytest.approx(1.0)


@pytest.mark.parametrize("bad", ["seizure", 2, -1, True])
def test_bad_positive_class(bad):
    with pytest.raises(ParameterError, match="positive_class"):
        classification_metrics(Y_HAND, P_HAND, ["ABCD", "E"], positive_class=bad)


# ---------------------------------------------------------------------------------------------
# agreement with scikit-learn


@pytest.mark.parametrize(("seed", "k"), [(0, 2), (1, 2), (2, 3), (3, 5), (4, 10)])
def test_matches_sklearn(seed, k):
    y, p = _random_case(seed, 300, k)
    classes = [f"c{i}" for i in range(k)]
    m = classification_metrics(y, p, classes)
    pred = p.argmax(axis=1)
    labels = list(range(k))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
    assert m["f1_macro"] == pytest.approx(
        skm.f1_score(y, pred, average="macro", zero_division=0), abs=1e-12
    )
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p, labels=labels), rel=1e-9)
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=labels).tolist()
    prec, rec, f1, sup = skm.precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    for i, name in enumerate(classes):
        pc = m["per_class"][name]
        assert pc["precision"] == pytest.approx(prec[i], abs=1e-12)
        assert pc["recall"] == pytest.approx(rec[i], abs=1e-12)
        assert pc["f1"] == pytest.approx(f1[i], abs=1e-12)
        assert pc["support"] == sup[i]
    if k == 2:
        assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]), abs=1e-12)
        tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
        assert m["sensitivity"] == pytest.approx(tp / (tp + fn))
        assert m["specificity"] == pytest.approx(tn / (tn + fp))
    else:
        assert "sensitivity" not in m and "positive_class" not in m
        assert m["auroc"] == pytest.approx(
            skm.roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12
        )
        assert m["auroc_per_class"]["c0"] == pytest.approx(skm.roc_auc_score(y == 0, p[:, 0]))
    _plain_json(m)


def test_perfect_and_torch_inputs():
    y, p = _random_case(5, 50, 3, signal=50.0)
    m = classification_metrics(
        torch.as_tensor(y), torch.as_tensor(p, dtype=torch.float32), ("a", "b", "c")
    )
    assert m["classes"] == ["a", "b", "c"]
    assert m["accuracy"] == 1.0 and m["balanced_accuracy"] == 1.0 and m["f1_macro"] == 1.0
    assert m["auroc"] == pytest.approx(1.0)
    _plain_json(m)
    with pytest.raises(ParameterError, match="list of class names"):
        classification_metrics(y, p, "abc")  # a string is not a list of names


# ---------------------------------------------------------------------------------------------
# edge cases


def test_class_never_predicted_gives_zero_precision_without_warnings():
    y = [0, 1, 2, 2]
    p = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.7, 0.1]]  # never predicts 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["per_class"]["c"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 2,
        "n_predicted": 0,
    }
    assert m["balanced_accuracy"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["auroc"] is not None
    _plain_json(m)


def test_single_class_y_true():
    y = [0, 0, 0]
    p = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, p, ["background", "seizure"])
    assert m["auroc"] is None and "seizure" in m["auroc_reason"]
    assert m["sensitivity"] is None and "seizure" in m["sensitivity_reason"]
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)  # over the classes present
    assert m["per_class"]["seizure"]["precision"] == 0.0  # predicted once, never right
    _plain_json(m)
    assert roc_curves(y, p, ["background", "seizure"]) == {}


def test_multiclass_missing_class_auroc_none():
    y = [0, 1, 1, 0]
    p = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1]]
    m = classification_metrics(y, p, ["a", "b", "c"])
    assert m["auroc"] is None and "'c'" in m["auroc_reason"]
    assert m["accuracy"] == 1.0
    _plain_json(m)
    curves = roc_curves(y, p, ["a", "b", "c"])
    assert sorted(curves) == ["a", "b"]  # c has no positives: no curve


def test_rows_renormalised_within_tolerance():
    p = P_HAND * (1 + 5e-4)
    assert classification_metrics(Y_HAND, p, ["ABCD", "E"])["auroc"] == pytest.approx(7 / 8)


@pytest.mark.parametrize(
    ("y", "p", "classes", "match"),
    [
        ([0, 1], [[0.5, 0.5]], ["a", "b"], "must match"),
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], ["a", "b"], r"labels \[2\]"),
        ([0, 1], [[2.0, -1.0], [0.0, 1.0]], ["a", "b"], "softmax"),
        ([0, 1], [[0.3, 0.3], [0.5, 0.5]], ["a", "b"], "sum to 1"),
        ([0, 1], [[np.nan, 0.5], [0.5, 0.5]], ["a", "b"], "NaN"),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], ["a", "b", "c"], "len\\(classes\\)=3"),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], ["a", "a"], "repeated"),
        ([0.5, 1], [[0.5, 0.5], [0.5, 0.5]], ["a", "b"], "integer"),
        ([], np.zeros((0, 2)), ["a", "b"], "empty"),
        ([0, 1], [0.5, 0.5], ["a", "b"], "shape"),
    ],
)
def test_bad_input(y, p, classes, match):
    with pytest.raises(ParameterError, match=match):
        classification_metrics(y, p, classes)


# ---------------------------------------------------------------------------------------------
# roc_curves


def test_roc_curves_binary_positive_only_and_auc_agrees():
    curves = roc_curves(Y_HAND, P_HAND, ["ABCD", "E"])
    assert list(curves) == ["E"]
    fpr, tpr, auc = curves["E"]
    assert auc == pytest.approx(7 / 8)
    assert fpr[0] == 0 and tpr[-1] == 1 and fpr.shape == tpr.shape
    assert list(roc_curves(Y_HAND, P_HAND, ["ABCD", "E"], positive_class="ABCD")) == ["ABCD"]


def test_roc_curves_multiclass():
    y, p = _random_case(7, 200, 4)
    classes = ["a", "b", "c", "d"]
    curves = roc_curves(y, p, classes)
    m = classification_metrics(y, p, classes)
    assert list(curves) == classes
    for name in classes:
        assert curves[name][2] == pytest.approx(m["auroc_per_class"][name])
    assert np.mean([c[2] for c in curves.values()]) == pytest.approx(m["auroc"])


# ---------------------------------------------------------------------------------------------
# summarise_folds


def test_summarise_folds_numbers():
    folds = [
        {"n": 10, "accuracy": 0.8, "auroc": None, "classes": ["a", "b"], "tag": "x"},
        {"n": 20, "accuracy": 0.9, "auroc": 0.5, "classes": ["a", "b"], "tag": "y"},
        {"n": 30, "accuracy": 1.0, "auroc": 1.0, "classes": ["a", "b"], "tag": "z"},
    ]
    s = summarise_folds(folds)
    assert s["n_folds"] == 3 and s["n_total"] == 60
    assert s["accuracy"]["mean"] == pytest.approx(0.9)
    assert s["accuracy"]["std"] == pytest.approx(0.1)  # sample std (ddof=1)
    assert s["accuracy"]["min"] == pytest.approx(0.8) and s["accuracy"]["max"] == 1.0
    assert s["accuracy"]["values"] == pytest.approx([0.8, 0.9, 1.0])
    assert s["auroc"]["mean"] == pytest.approx(0.75) and s["auroc"]["n_folds"] == 2
    assert "tag" not in s and "n" not in s
    s0 = summarise_folds(folds, ddof=0)
    assert s0["accuracy"]["std"] == pytest.approx(0.1 * math.sqrt(2 / 3))
    _plain_json(s)


def test_summarise_folds_of_metrics():
    classes = ["ABCD", "E"]
    folds = [
        classification_metrics(Y_HAND, P_HAND, classes),
        classification_metrics([0, 0, 0], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], classes),
    ]
    s = summarise_folds(folds)
    assert s["sensitivity"]["n_folds"] == 1 and s["sensitivity"]["std"] == 0.0
    assert s["sensitivity"]["mean"] == pytest.approx(0.5)
    assert s["specificity"]["mean"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert s["confusion_matrix"] == [[5, 2], [1, 1]]
    assert s["classes"] == classes
    assert s["per_class"]["E"]["support"] == 2
    assert s["per_class"]["ABCD"]["recall"]["mean"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    _plain_json(s)


def test_summarise_folds_all_none_and_errors():
    s = summarise_folds([{"auroc": None}, {"auroc": None}])
    assert s["auroc"] is None
    with pytest.raises(ParameterError, match="empty"):
        summarise_folds([])
    with pytest.raises(ParameterError, match="folds"):
        summarise_folds({"accuracy": 1.0})
    with pytest.raises(ParameterError, match=r"folds\[1\]"):
        summarise_folds([{"accuracy": 1.0}, 3])
    with pytest.raises(ParameterError, match="ddof"):
        summarise_folds([{"accuracy": 1.0}], ddof=-1)


# ---------------------------------------------------------------------------------------------
# aggregate_by


def test_aggregate_by_means_in_first_appearance_order():
    groups = ["rec2", "rec1", "rec2", "rec1", "rec3"]
    p = [[0.2, 0.8], [0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.5, 0.5]]
    y = [1, 0, 1, 0, 0]
    y_g, p_g, names = aggregate_by(groups, p, y)
    assert names == ["rec2", "rec1", "rec3"]
    assert y_g.tolist() == [1, 0, 0] and y_g.dtype == np.int64
    np.testing.assert_allclose(p_g, [[0.3, 0.7], [0.8, 0.2], [0.5, 0.5]], atol=1e-12)
    np.testing.assert_allclose(p_g.sum(axis=1), 1.0)
    m = classification_metrics(y_g, p_g, ["background", "seizure"])
    assert m["n"] == 3 and m["accuracy"] == 1.0


def test_aggregate_by_integer_groups_are_plain():
    y_g, p_g, names = aggregate_by(np.array([7, 3, 7]), [[1, 0], [0, 1], [0, 1]], [0, 1, 0])
    assert names == [7, 3] and all(type(g) is int for g in names)
    assert y_g.tolist() == [0, 1]
    np.testing.assert_allclose(p_g, [[0.5, 0.5], [0.0, 1.0]])
    json.dumps(names)


def test_aggregate_by_errors():
    with pytest.raises(ParameterError, match=r"'rec1'.*\[0, 1\]"):
        aggregate_by(["rec1", "rec1"], [[0.5, 0.5], [0.5, 0.5]], [0, 1])
    with pytest.raises(ParameterError, match="groups"):
        aggregate_by(["rec1"], [[0.5, 0.5], [0.5, 0.5]], [0, 1])
    with pytest.raises(ParameterError, match="must match"):
        aggregate_by(["a", "b"], [[0.5, 0.5], [0.5, 0.5]], [0, 1, 1])
