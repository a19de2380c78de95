"""Train/validation/test splits that do not leak: stratified, grouped, k-fold, official.

Every function takes per-example ``labels`` (and ``groups`` where they matter), is
deterministic for a given ``seed``, and returns :class:`Split` objects: sorted ``int64`` index
arrays plus a one-line ``description`` for ``metrics.json``
(``"grouped by speaker, stratified, 20% test, 10% val, seed 0"``).

Grouped splits move whole groups (a patient, a speaker, a recording): no group is ever on two
sides. Windows cut from one recording are strongly correlated, so splitting them at random
inflates accuracy; group them by recording at least, and by patient or speaker when the task
must generalise to new people.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ParameterError


@dataclass(frozen=True)
class Split:
    """Index arrays into the examples, and what produced them.

    Attributes
    ----------
    train, val, test : numpy.ndarray, int64 [shape=(n,)]
        Sorted, disjoint indices (``val`` may be empty).
    description : str
        One line for ``metrics.json``.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    description: str
    fold: int | None = field(default=None, compare=False)


def _labels(labels) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ParameterError(f"labels must be a non-empty 1-D sequence; got shape {arr.shape}")
    return arr


def _groups(groups, n: int) -> np.ndarray:
    arr = np.asarray(groups)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ParameterError(
            f"groups must be 1-D with one entry per label ({n}); got shape {arr.shape}"
        )
    return arr


def _fractions(test_fraction: float, val_fraction: float) -> None:
    for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not isinstance(value, int | float) or not 0 <= value < 1:
            raise ParameterError(f"{name}={value!r} must be a fraction in [0, 1)")
    if test_fraction <= 0:
        raise ParameterError(f"{test_fraction=} must be > 0")
    if test_fraction + val_fraction >= 1:
        raise ParameterError(f"{test_fraction=} + {val_fraction=} must leave examples for training")


def _counts(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int]:
    """Items of ``n`` that go to test and val: rounded, at least one each when asked for."""
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    return n_test, n_val


def _py(value):
    """A NumPy scalar as the Python value (so messages read 'b', not np.str_('b'))."""
    return value.item() if isinstance(value, np.generic) else value


def _pct(x: float) -> str:
    return f"{100 * x:g}%"


def _describe(head: str, test_fraction: float, val_fraction: float, seed: int) -> str:
    parts = [head, f"{_pct(test_fraction)} test"]
    if val_fraction:
        parts.append(f"{_pct(val_fraction)} val")
    parts.append(f"seed {seed}")
    return ", ".join(parts)


def _make(train, val, test, description, fold=None) -> Split:
    def arr(x):
        return np.sort(np.asarray(x, dtype=np.int64))

    return Split(arr(train), arr(val), arr(test), description, fold)


def stratified_split(
    labels, *, test_fraction: float = 0.2, val_fraction: float = 0.0, seed: int = 0
) -> Split:
    """Random split with each class in the same proportion on every side (no groups).

    Use it only when examples are independent (one window per recording and one recording per
    subject); otherwise use :func:`grouped_split`.

    Parameters
    ----------
    labels : sequence [shape=(n_examples,)]
    test_fraction, val_fraction : float
        Fractions of each class; each non-empty side gets at least one example of every class.
    seed : int

    Raises
    ------
    ParameterError
        A class with too few examples to appear on every side.
    """
    y = _labels(labels)
    _fractions(test_fraction, val_fraction)
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        n_test, n_val = _counts(len(idx), test_fraction, val_fraction)
        need = 2 + (val_fraction > 0)
        if len(idx) - n_test - n_val < 1:
            raise ParameterError(
                f"class {_py(cls)!r} has {len(idx)} example(s); a split with {_pct(test_fraction)} test"
                f"{f' and {_pct(val_fraction)} val' if val_fraction else ''} needs at least {need}"
            )
        idx = rng.permutation(idx)
        test.extend(idx[:n_test])
        val.extend(idx[n_test : n_test + n_val])
        train.extend(idx[n_test + n_val :])
    return _make(
        train, val, test, _describe("stratified random", test_fraction, val_fraction, seed)
    )


def _group_table(y: np.ndarray, g: np.ndarray):
    """Unique groups (sorted), each example's group index, and each group's majority label."""
    names, inverse = np.unique(g, return_inverse=True)
    classes, yi = np.unique(y, return_inverse=True)
    counts = np.zeros((len(names), len(classes)), dtype=np.int64)
    np.add.at(counts, (inverse, yi), 1)
    return names, inverse, classes, counts


def _check_classes(parts: dict[str, np.ndarray], y: np.ndarray, g: np.ndarray, by: str) -> None:
    for cls in np.unique(y):
        n_groups = len(np.unique(g[y == cls]))
        for side, idx in parts.items():
            if not np.any(y[idx] == cls):
                raise ParameterError(
                    f"class {_py(cls)!r} is in {n_groups} {by} group(s) and none landed in {side}: "
                    f"too few groups for this split (need one per side: {', '.join(parts)}); "
                    "lower the number of sides, or use more groups"
                )


def grouped_split(
    labels,
    groups,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    seed: int = 0,
    stratify: bool = True,
    by: str = "group",
) -> Split:
    """Train/val/test split that keeps every group on one side.

    With ``stratify=True`` groups are dealt out per majority class: of the ``k`` groups whose
    most common label is a class, ``max(1, round(k * test_fraction))`` go to test (likewise
    val), so every class is on every side when it can be. Fractions are of **groups**, not
    examples.

    Parameters
    ----------
    labels, groups : sequence [shape=(n_examples,)]
        Class and group (patient, speaker, recording id) of each example.
    test_fraction, val_fraction : float
    seed : int
    stratify : bool
    by : str
        What the groups are, for the description (``"speaker"``, ``"patient"``).

    Raises
    ------
    ParameterError
        Fewer groups than sides, or a class whose groups cannot reach every side.
    """
    y = _labels(labels)
    g = _groups(groups, len(y))
    _fractions(test_fraction, val_fraction)
    names, inverse, _, counts = _group_table(y, g)
    rng = np.random.default_rng(seed)
    n_sides = 2 + (val_fraction > 0)
    if len(names) < n_sides:
        raise ParameterError(f"{len(names)} {by} group(s) cannot fill {n_sides} sides of a split")
    strata = counts.argmax(axis=1) if stratify else np.zeros(len(names), dtype=np.int64)
    side = np.zeros(len(names), dtype=np.int64)  # 0 train, 1 val, 2 test
    for s in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == s))
        n_test, n_val = _counts(len(members), test_fraction, val_fraction)
        if len(members) - n_test - n_val < 1:
            if not stratify:
                raise ParameterError(f"{len(members)} {by} group(s) are too few for this split")
            # Too few groups of this majority class to deal out; they stay in training and the
            # class check below says so if that starves a side.
            continue
        side[members[:n_test]] = 2
        side[members[n_test : n_test + n_val]] = 1
    ex = side[inverse]
    split = _make(
        np.flatnonzero(ex == 0),
        np.flatnonzero(ex == 1),
        np.flatnonzero(ex == 2),
        _describe(
            f"grouped by {by}{', stratified' if stratify else ''}",
            test_fraction,
            val_fraction,
            seed,
        ),
    )
    parts = {"train": split.train, "test": split.test}
    if val_fraction:
        parts["val"] = split.val
    _check_classes(parts, y, g, by)
    return split


def group_kfold(
    labels, groups, *, n_splits: int = 5, seed: int = 0, by: str = "group"
) -> list[Split]:
    """K folds over groups: each group is in exactly one test fold.

    Groups are shuffled by ``seed``, then dealt largest first to the fold with the fewest
    examples so far (folds of about equal size). ``val`` is empty; take a validation set from a
    fold's ``train`` with :func:`grouped_split` if needed.

    Raises
    ------
    ParameterError
        ``n_splits < 2`` or fewer groups than folds.
    """
    y = _labels(labels)
    g = _groups(groups, len(y))
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise ParameterError(f"{n_splits=} must be an integer >= 2")
    names, inverse, _, counts = _group_table(y, g)
    if len(names) < n_splits:
        raise ParameterError(
            f"{n_splits=} folds need at least as many {by} groups; got {len(names)}"
        )
    sizes = counts.sum(axis=1)
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of = np.empty(len(names), dtype=np.int64)
    load = np.zeros(n_splits, dtype=np.int64)
    for gi in order:
        f = int(np.argmin(load))
        fold_of[gi] = f
        load[f] += sizes[gi]
    ex = fold_of[inverse]
    splits = [
        _make(
            np.flatnonzero(ex != f),
            [],
            np.flatnonzero(ex == f),
            f"grouped {n_splits}-fold by {by}, fold {f + 1}/{n_splits}, seed {seed}",
            f,
        )
        for f in range(n_splits)
    ]
    _warn_unseen(splits, y)
    return splits


def leave_one_group_out(labels, groups, *, by: str = "group") -> list[Split]:
    """One fold per group: that group is the test set, all others train (sorted group order).

    Raises
    ------
    ParameterError
        Fewer than two groups.
    """
    y = _labels(labels)
    g = _groups(groups, len(y))
    names, inverse = np.unique(g, return_inverse=True)
    if len(names) < 2:
        raise ParameterError(f"leave-one-{by}-out needs at least 2 groups; got {len(names)}")
    splits = [
        _make(
            np.flatnonzero(inverse != i),
            [],
            np.flatnonzero(inverse == i),
            f"leave-one-{by}-out, fold {i + 1}/{len(names)} (test {by} {name})",
            i,
        )
        for i, name in enumerate(names)
    ]
    _warn_unseen(splits, y)
    return splits


def _warn_unseen(splits: list[Split], y: np.ndarray) -> None:
    for s in splits:
        unseen = sorted(set(y[s.test].tolist()) - set(y[s.train].tolist()))
        if unseen:
            warnings.warn(
                f"{s.description}: test classes {unseen} never appear in training",
                stacklevel=3,
            )
            return


def official_split(splits: Sequence[str | None], *, description: str = "official split") -> Split:
    """The split a dataset publishes: each example tagged ``"train"``, ``"val"`` or ``"test"``.

    Raises
    ------
    ParameterError
        An unknown tag, an untagged example, or an empty train or test side.
    """
    tags = np.asarray([s if s is not None else "" for s in splits], dtype=object)
    if tags.ndim != 1 or tags.size == 0:
        raise ParameterError("splits must be a non-empty 1-D sequence of 'train'/'val'/'test'")
    bad = sorted({str(t) for t in tags} - {"train", "val", "test"})
    if bad:
        raise ParameterError(
            f"split tags {bad} are not 'train', 'val' or 'test' (this dataset has no official split "
            "for some examples)"
        )
    split = _make(
        np.flatnonzero(tags == "train"),
        np.flatnonzero(tags == "val"),
        np.flatnonzero(tags == "test"),
        description,
    )
    if not len(split.train) or not len(split.test):
        raise ParameterError(
            f"official split has {len(split.train)} train and {len(split.test)} test examples"
        )
    return split


def leaked_groups(split: Split, groups) -> set:
    """Groups found on more than one side of ``split`` (empty for an honest split)."""
    g = np.asarray(groups)
    sides = [set(g[idx].tolist()) for idx in (split.train, split.val, split.test)]
    return (sides[0] & sides[1]) | (sides[0] & sides[2]) | (sides[1] & sides[2])


__all__ = [
    "Split",
    "group_kfold",
    "grouped_split",
    "leaked_groups",
    "leave_one_group_out",
    "official_split",
    "stratified_split",
]
