"""Splits: deterministic, disjoint, grouped splits never leak, clear errors when too small."""

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigalex.errors import ParameterError
from sigalex.splits import (
    group_kfold,
    grouped_split,
    leaked_groups,
    leave_one_group_out,
    official_split,
    stratified_split,
)

DATA = Path(os.environ.get("SIGALEX_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _partition(split, n):
    parts = [split.train, split.val, split.test]
    allidx = np.concatenate(parts)
    assert len(allidx) == len(set(allidx.tolist())) == n, "sides overlap or miss examples"
    for p in parts:
        assert p.dtype == np.int64 and np.all(np.diff(p) > 0)


def test_stratified_split_keeps_class_proportions_and_is_deterministic():
    y = np.repeat(["a", "b", "c"], [50, 30, 20])
    s = stratified_split(y, test_fraction=0.2, val_fraction=0.1, seed=3)
    _partition(s, 100)
    assert {c: int((y[s.test] == c).sum()) for c in "abc"} == {"a": 10, "b": 6, "c": 4}
    assert {c: int((y[s.val] == c).sum()) for c in "abc"} == {"a": 5, "b": 3, "c": 2}
    assert s.description == "stratified random, 20% test, 10% val, seed 3"
    again = stratified_split(y, test_fraction=0.2, val_fraction=0.1, seed=3)
    assert np.array_equal(s.test, again.test) and np.array_equal(s.val, again.val)
    other = stratified_split(y, test_fraction=0.2, val_fraction=0.1, seed=4)
    assert not np.array_equal(s.test, other.test)


def test_stratified_split_errors():
    with pytest.raises(ParameterError, match=r"class 'b' has 1 example.*at least 2"):
        stratified_split(["a", "a", "a", "b"])
    with pytest.raises(ParameterError, match=r"class 'b' has 2 example.*at least 3"):
        stratified_split(["a"] * 9 + ["b"] * 2, val_fraction=0.1)
    with pytest.raises(ParameterError, match=r"test_fraction=1.5"):
        stratified_split(["a"] * 4, test_fraction=1.5)
    with pytest.raises(ParameterError, match=r"leave examples for training"):
        stratified_split(["a"] * 4, test_fraction=0.5, val_fraction=0.5)
    with pytest.raises(ParameterError, match=r"non-empty 1-D"):
        stratified_split([])


@settings(max_examples=80, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 14)), min_size=12, max_size=200),
    test_fraction=st.sampled_from([0.1, 0.2, 0.3]),
    val_fraction=st.sampled_from([0.0, 0.1, 0.2]),
    seed=st.integers(0, 2**16),
    stratify=st.booleans(),
)
def test_grouped_split_never_leaks(data, test_fraction, val_fraction, seed, stratify):
    y = np.array([d[0] for d in data])
    g = np.array([f"p{d[1]}" for d in data])
    try:
        s = grouped_split(
            y,
            g,
            test_fraction=test_fraction,
            val_fraction=val_fraction,
            seed=seed,
            stratify=stratify,
        )
    except ParameterError as exc:
        assert "group" in str(exc)  # too few groups: said so
        return
    _partition(s, len(y))
    assert leaked_groups(s, g) == set()
    assert len(s.test) > 0 and len(s.train) > 0
    assert (len(s.val) > 0) == (val_fraction > 0)
    again = grouped_split(
        y, g, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed, stratify=stratify
    )
    assert np.array_equal(again.test, s.test) and np.array_equal(again.val, s.val)


def test_grouped_split_description_and_errors():
    y = ["a", "b"] * 10
    g = [f"s{i // 4}" for i in range(20)]  # 5 speakers
    s = grouped_split(y, g, test_fraction=0.2, seed=0, by="speaker")
    assert s.description == "grouped by speaker, stratified, 20% test, seed 0"
    assert len(set(np.asarray(g)[s.test])) == 1
    with pytest.raises(ParameterError, match=r"2 patient group.*cannot fill 3 sides"):
        grouped_split([0, 1, 0, 1], ["p1", "p1", "p2", "p2"], val_fraction=0.2, by="patient")
    # class "b" lives in one patient only: it cannot be on both sides
    with pytest.raises(ParameterError, match=r"class 'b' is in 1 patient group"):
        grouped_split(["a"] * 6 + ["b"], ["p1", "p1", "p2", "p2", "p3", "p3", "p3"], by="patient")
    with pytest.raises(ParameterError, match=r"one entry per label"):
        grouped_split([0, 1], ["p1"])


@settings(max_examples=50, deadline=None)
@given(
    groups=st.lists(st.integers(0, 20), min_size=5, max_size=150),
    n_splits=st.integers(2, 5),
    seed=st.integers(0, 1000),
)
def test_group_kfold_each_group_tested_once(groups, n_splits, seed):
    g = np.array(groups)
    y = g % 2
    if len(set(groups)) < n_splits:
        with pytest.raises(ParameterError, match=r"at least as many"):
            group_kfold(y, g, n_splits=n_splits, seed=seed)
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folds = group_kfold(y, g, n_splits=n_splits, seed=seed)
    assert len(folds) == n_splits
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(g)))
    for f in folds:
        _partition(f, len(g))
        assert leaked_groups(f, g) == set() and len(f.test) > 0
    seen = [set(g[f.test].tolist()) for f in folds]
    assert sum(len(s) for s in seen) == len(set(groups))


def test_group_kfold_description_and_balance():
    g = np.repeat(np.arange(10), 10)
    folds = group_kfold(g % 2, g, n_splits=5, seed=7, by="patient")
    assert folds[1].description == "grouped 5-fold by patient, fold 2/5, seed 7"
    assert [len(f.test) for f in folds] == [20] * 5
    with pytest.raises(ParameterError, match=r"n_splits=1"):
        group_kfold(g % 2, g, n_splits=1)


def test_leave_one_group_out():
    y = ["ictal", "preictal"] * 6
    g = ["chb01"] * 4 + ["chb03"] * 4 + ["chb05"] * 4
    folds = leave_one_group_out(y, g, by="patient")
    assert [f.description for f in folds] == [
        "leave-one-patient-out, fold 1/3 (test patient chb01)",
        "leave-one-patient-out, fold 2/3 (test patient chb03)",
        "leave-one-patient-out, fold 3/3 (test patient chb05)",
    ]
    assert all(leaked_groups(f, g) == set() for f in folds)
    with pytest.raises(ParameterError, match=r"at least 2 groups"):
        leave_one_group_out([0, 1], ["p", "p"])
    with pytest.warns(UserWarning, match=r"never appear in training"):
        leave_one_group_out(["a", "b"], ["p1", "p2"])


def test_official_split():
    s = official_split(["train", "test", "train", "val"], description="official X split")
    assert s.train.tolist() == [0, 2] and s.val.tolist() == [3] and s.test.tolist() == [1]
    assert s.description == "official X split"
    with pytest.raises(ParameterError, match=r"\['', 'dev'\]"):
        official_split(["train", "dev", None, "test"])
    with pytest.raises(ParameterError, match=r"0 test"):
        official_split(["train", "train"])


@pytest.mark.needs_data
def test_fsdd_speaker_split_and_official_split():
    root = DATA / "fsdd"
    if not (root / "recordings").is_dir():
        pytest.skip(f"FSDD not found under {root} (set SIGALEX_DATA)")
    from sigalex.datasets import fsdd

    ds = fsdd(root)
    s = grouped_split(
        ds.labels, ds.groups, test_fraction=0.2, val_fraction=0.2, seed=0, by="speaker"
    )
    assert leaked_groups(s, ds.groups) == set()
    assert len(set(ds.groups[s.test])) == 1 and len(set(ds.groups[s.val])) == 1
    off = ds.official_split()
    assert (len(off.train), len(off.val), len(off.test)) == (2700, 0, 300)
    assert all(int(it.path.stem.rsplit("_", 1)[1]) < 5 for it in np.array(ds.items)[off.test])
