"""Data preparation for training: the dataset index → labelled windows → splits → the model spec.

Nothing here computes an FFT or builds a model: :func:`prepare_data` indexes the recipe's
dataset, cuts and labels its windows, splits them honestly (by patient, speaker, segment or
recording) and fixes the model's input contract (:class:`~sigalex.models.ModelSpec`);
:func:`window_dataset` gives the raw windows of a split, read, resampled and fitted by the same
functions prediction uses.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from .. import datasets
from .. import splits as S
from ..config import Config
from ..errors import ConfigError, DataError, ParameterError
from ..metrics import positive_class_of
from ..models.spec import ModelSpec
from ..resample import resampled_length
from ..windows import RecordingOpener, Window, WindowDataset


@dataclass
class PreparedData:
    """Everything the loop needs about the examples.

    Attributes
    ----------
    windows : list of Window
    targets, groups, recordings : numpy.ndarray [shape=(n_windows,)]
        Class index, split group and recording of each window.
    group_by : str
        What groups are (patient, speaker, segment, recording).
    spec : ModelSpec
        The model's contract: classes, positive class, rate, window, channels.
    splits : list of sigalex.splits.Split
        One per fold.
    opener : RecordingOpener
        Opens a window's recording (channels as the recipe picks them).
    dataset_root : pathlib.Path
    notes : list of str
        Files left out and other warnings, for the run's log and metrics.
    errors : list of (str, str)
        The files left out of the dataset and why (``data_errors.tsv`` in a run directory).
    """

    windows: list[Window]
    targets: np.ndarray
    groups: np.ndarray
    recordings: np.ndarray
    group_by: str
    spec: ModelSpec
    splits: list
    opener: RecordingOpener
    dataset_root: Path
    notes: list[str]
    errors: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    @property
    def sample_rate(self) -> float:
        return self.spec.sample_rate

    @property
    def n_times(self) -> int:
        return self.spec.n_times

    @property
    def n_channels(self) -> int:
        return self.spec.n_channels

    @property
    def channel_names(self) -> list[str]:
        return list(self.spec.channel_names)


def _index(cfg: Config):
    return datasets.from_config(cfg)


def _make_splits(
    cfg: Config,
    index,
    targets: np.ndarray,
    groups: np.ndarray,
    recordings: np.ndarray,
):
    e = cfg.eval
    by = index.group_by
    try:
        if e.split == "grouped":
            return [
                S.grouped_split(
                    targets, groups, test_fraction=e.test_fraction, val_fraction=e.val_fraction,
                    seed=e.seed, by=by,
                )
            ]  # fmt: skip
        if e.split == "stratified":
            return [
                S.stratified_split(
                    targets, test_fraction=e.test_fraction, val_fraction=e.val_fraction, seed=e.seed
                )
            ]
        if e.split == "official":
            item_split = index.official_split()
            side = np.full(len(index.items), "train", dtype=object)
            side[item_split.test] = "test"
            side[item_split.val] = "val"
            item_by_recording = {str(it.path): i for i, it in enumerate(index.items)}
            lost = sorted({r for r in recordings if r not in item_by_recording})
            if lost:
                raise DataError(
                    f"{len(lost)} window recording(s) are not items of the dataset (first: "
                    f"{lost[0]}); cannot place them in the official split"
                )
            item_of = np.array([item_by_recording[r] for r in recordings])
            base = S.official_split(list(side[item_of]), description=item_split.description)
            return [_carve_val(base, targets, groups, recordings, e, by)]
        folds = (
            S.group_kfold(targets, groups, n_splits=e.folds, seed=e.seed, by=by)
            if e.split == "kfold"
            else S.leave_one_group_out(targets, groups, by=by)
        )
        return [_carve_val(f, targets, groups, recordings, e, by) for f in folds]
    except ParameterError as exc:
        raise ConfigError(f"eval.split = {e.split!r}: {exc}") from exc


def _carve_val(split, targets, groups, recordings, e, by):
    """A validation set taken from ``split.train`` if it has none, drawn the way the test was.

    When the test set holds out whole groups (k-fold, leave-one-out), so does validation: it
    then estimates accuracy on unseen patients or speakers. When the test set shares groups with
    training (FSDD's official split tests every speaker), validation is carved by recording
    instead: holding out a whole speaker there would drop one the test set still scores.
    """
    if len(split.val) or e.val_fraction == 0:
        return split
    train = split.train
    test_shares_groups = bool(set(groups[train].tolist()) & set(groups[split.test].tolist()))
    unit, unit_name = (recordings, "recording") if test_shares_groups else (groups, by)
    try:
        inner = S.grouped_split(
            targets[train], unit[train], test_fraction=e.val_fraction, seed=e.seed, by=unit_name
        )
        how = f"val = {e.val_fraction:.0%} of training {unit_name}s"
    except ParameterError:
        inner = S.stratified_split(targets[train], test_fraction=e.val_fraction, seed=e.seed)
        how = f"val = {e.val_fraction:.0%} of training examples, stratified"
    return dataclasses.replace(
        split,
        train=np.sort(train[inner.train]),
        val=np.sort(train[inner.test]),
        description=f"{split.description}; {how}",
    )


def _spec(cfg: Config, classes: list[str], windows: list[Window], rate: float, first) -> ModelSpec:
    """The model's contract from the recipe and the windows it will be trained on."""
    w = cfg.windows
    if w.window_s:
        n_times = round(w.window_s * rate)
    elif w.length_s:
        n_times = round(w.length_s * rate)
    else:
        n_times = max(resampled_length(win.n_times, win.sample_rate, rate) for win in windows)
    try:
        positive = positive_class_of(classes, cfg.eval.positive_class or None)
    except ParameterError as exc:
        raise ConfigError(f"eval.positive_class = {cfg.eval.positive_class!r}: {exc}") from None
    return ModelSpec(
        classes=tuple(classes),
        sample_rate=float(rate),
        n_channels=int(first.n_channels),
        n_times=int(n_times),
        channel_names=tuple(getattr(first, "channel_names", ())),
        positive_class=positive,
        window_s=w.window_s,
        stride_s=(w.stride_s or w.window_s) if w.window_s else 0.0,
        fit=w.fit,
        max_clip_s=0.0 if w.window_s else max(win.n_times / win.sample_rate for win in windows),
        architecture=cfg.model.architecture,
    )


def prepare_data(cfg: Config) -> PreparedData:
    """Index the dataset, cut windows, label them, split them, fix the model spec.

    Raises ``DataError`` (missing or unreadable data) or ``ConfigError`` (a recipe the data
    cannot satisfy: too few examples of a class for the split, windows longer than recordings…).
    """
    index = _index(cfg)
    notes = list(index.errors)
    w = cfg.windows
    label_options = {"min_overlap": w.min_overlap, "default_label": w.default_label}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        windows = index.windows(
            window_s=w.window_s or None,
            stride_s=(w.stride_s or None) if w.window_s else None,
            **(label_options if any(it.label is None for it in index.items) else {}),
        )
    notes += [str(c.message) for c in caught]
    if not windows:
        raise DataError(
            f"no usable windows in {index.root} (dataset {cfg.data.dataset!r}); "
            + ("; ".join(notes[:5]) or "no files found")
        )
    classes = list(index.classes)
    # Window.label is optional; these windows are labelled (unlabelled items take
    # windows.default_label), and a None would still be reported as unknown below.
    labels = cast("list[str]", [win.label for win in windows])
    unknown = sorted({lab for lab in labels if lab not in classes})
    if unknown:
        raise DataError(f"windows carry labels {unknown} outside the classes {classes}")
    targets = np.array([classes.index(lab) for lab in labels], dtype=np.int64)
    present = np.bincount(targets, minlength=len(classes))
    if (present == 0).any():
        missing = [c for c, n in zip(classes, present, strict=True) if n == 0]
        raise ConfigError(f"no examples of class(es) {missing} in {index.root}")
    groups = np.array([win.group or win.recording for win in windows], dtype=object)
    rates = {float(win.sample_rate) for win in windows}
    target_rate = cfg.data.sample_rate or (rates.pop() if len(rates) == 1 else 0.0)
    if not target_rate:
        raise ConfigError(
            f"recordings have different sample rates {sorted(rates)} Hz; set data.sample_rate"
        )
    opener = RecordingOpener(cfg.data.channels)
    spec = _spec(cfg, classes, windows, target_rate, opener(windows[0]))
    recordings = np.array([win.recording for win in windows], dtype=object)
    return PreparedData(
        windows=windows,
        targets=targets,
        groups=groups,
        recordings=recordings,
        group_by=index.group_by,
        spec=spec,
        splits=_make_splits(cfg, index, targets, groups, recordings),
        opener=opener,
        dataset_root=Path(index.root),
        notes=notes,
        errors=[_file_and_reason(line) for line in index.errors],
    )


def _file_and_reason(line: str) -> tuple[str, str]:
    """``"path: problem"`` (a dataset's error line) → ``(path, problem)``."""
    file, sep, reason = line.partition(": ")
    return (file, reason) if sep else ("", line)


def window_dataset(data: PreparedData, indices: np.ndarray) -> WindowDataset:
    """Raw windows ``(n_channels, n_times)`` float32 and labels for ``indices``.

    Each window is read at its recording's rate, resampled to the model's, and fitted to
    ``n_times`` (:func:`sigalex.windows.conform`, as prediction does).
    """
    spec = data.spec
    return WindowDataset(
        [data.windows[i] for i in indices],
        classes=data.classes,
        n_times=spec.n_times,
        fit=spec.fit,
        sample_rate=spec.sample_rate,
        opener=data.opener,
        cache_size=8,
    )


def fold_of(ckpt, splits) -> int:
    """The index of a checkpoint's fold among ``splits`` (matched by the split description it
    recorded in training), or ``DataError``."""
    described = ckpt.training.get("split")
    matches = [i for i, s in enumerate(splits) if s.description == described]
    if matches:
        return matches[0]
    if described is None and len(splits) == 1:
        return 0
    raise DataError(
        f"{ckpt.path}: its split ({described!r}) is not among the recipe's splits on this data "
        f"({'; '.join(s.description for s in splits)[:300]}); another split could read its "
        "test set where it must not, so it is refused: use the data the model was trained on"
    )


@dataclass
class SplitSide:
    """Windows of one side (``train``, ``val`` or ``test``) of a checkpoint's own split."""

    data: PreparedData
    fold: int  # index into data.splits
    indices: np.ndarray  # the windows taken (into data.windows), in index order
    n_side: int  # windows on that side
    windows: np.ndarray  # (len(indices), n_channels, n_times) float32, as the model takes them

    @property
    def split(self):
        return self.data.splits[self.fold]


def split_side(ckpt, side: str, n: int | None = None, *, seed: int = 0) -> SplitSide:
    """Windows of ``side`` of the split ``ckpt`` (a :class:`~sigalex.checkpoint.Checkpoint`)
    was trained on: its recipe's data and split rebuilt (no download), its fold found by
    :func:`fold_of`; all of them, or ``n`` at random (``seed``). The other sides are never
    read.

    Raises
    ------
    DataError
        The data is missing, or is not what the model was trained on (another contract or
        split).
    """
    cfg = ckpt.recipe
    data = prepare_data(
        dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, download=False))
    )
    fields = ("classes", "sample_rate", "n_channels", "n_times")
    if any(getattr(ckpt.spec, f) != getattr(data.spec, f) for f in fields):
        raise DataError(
            f"{ckpt.path}: the recipe's data gives another model contract "
            f"({', '.join(f'{f}={getattr(data.spec, f)!r}' for f in fields)}) than the "
            "checkpoint's"
        )
    k = fold_of(ckpt, data.splits)
    pool = np.asarray(getattr(data.splits[k], side))
    take = pool
    if n is not None:
        rng = np.random.default_rng(seed)
        take = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
    dataset = window_dataset(data, take)
    windows = np.stack([dataset[i][0].numpy() for i in range(len(take))]) if len(take) else None
    shape = (0, data.spec.n_channels, data.spec.n_times)
    windows = np.zeros(shape, np.float32) if windows is None else windows.astype(np.float32)
    return SplitSide(data, k, take, len(pool), windows)


__all__ = ["PreparedData", "SplitSide", "fold_of", "prepare_data", "split_side", "window_dataset"]
