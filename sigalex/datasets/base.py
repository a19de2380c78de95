"""What every layout returns: :class:`Item` per recording, :class:`DatasetIndex` per folder.

Items are opened through the one source layer (:func:`sigalex.sources.open_source`): EDF/BDF
lazily, other formats in memory, rate-less formats (:data:`sigalex.io.RATELESS_EXTENSIONS`)
at the item's ``sample_rate``. Files that cannot be used are left out, listed in
:attr:`DatasetIndex.errors` and reported in one warning per pass, never one per file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._checks import choice
from ..errors import DataError, ParameterError
from ..recording import Annotation
from ..sources import Source, open_source
from ..splits import Split, official_split
from ..windows import Window, make_windows, whole_window


@dataclass(frozen=True)
class Item:
    """One recording of a dataset.

    Attributes
    ----------
    path : pathlib.Path
    label : str or None
        Class name; ``None`` when windows are labelled from ``annotations``.
    group : str
        Split identity: patient, speaker, or the recording itself.
    recording : str
        Recording id (e.g. ``chb01_03``; the ictal and pre-ictal excerpts of one EDF share it).
    split : str or None
        ``"train"``, ``"val"`` or ``"test"`` in the dataset's official split, if it has one.
    sample_rate : float or None
        Hz, for formats that do not store it (txt, npy).
    onset_s, offset_s : float or None
        Only this segment of the file counts (manifests).
    annotations : tuple of Annotation
        Events (seizures) in the recording.
    """

    path: Path
    label: str | None
    group: str
    recording: str
    split: str | None = None
    sample_rate: float | None = None
    onset_s: float | None = None
    offset_s: float | None = None
    annotations: tuple[Annotation, ...] = ()


@dataclass
class DatasetIndex:
    """The items of a dataset folder, its classes, and the files that could not be used.

    Attributes
    ----------
    name : str
        Layout name.
    root : pathlib.Path
    items : list of Item
    classes : list of str
        Class names in label order (label ``i`` is ``classes[i]``).
    group_by : str
        What groups are (``"patient"``, ``"speaker"``, ``"segment"``, ``"recording"``).
    errors : list of str
        One line per bad file that was left out (``"path: problem"``); print them.
    official_split_description : str or None
        Set when the dataset publishes a split (FSDD).
    """

    name: str
    root: Path
    items: list[Item]
    classes: list[str]
    group_by: str = "recording"
    errors: list[str] = field(default_factory=list)
    official_split_description: str | None = None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> np.ndarray:
        """Class name per item, ``(n_items,)`` object array."""
        return np.array([it.label for it in self.items], dtype=object)

    @property
    def targets(self) -> np.ndarray:
        """Integer label per item (``-1`` for unlabelled items), ``(n_items,)`` int64."""
        index: dict[str | None, int] = {c: i for i, c in enumerate(self.classes)}
        return np.array([index.get(it.label, -1) for it in self.items], dtype=np.int64)

    @property
    def groups(self) -> np.ndarray:
        """Group per item, ``(n_items,)`` object array."""
        return np.array([it.group for it in self.items], dtype=object)

    def official_split(self) -> Split:
        """The dataset's own split, over items.

        Raises
        ------
        ParameterError
            The dataset publishes none.
        """
        if self.official_split_description is None:
            raise ParameterError(
                f"dataset {self.name!r} has no official split; use grouped_split or group_kfold"
            )
        return official_split(
            [it.split for it in self.items], description=self.official_split_description
        )

    def load(self, i: int) -> Source:
        """Item ``i`` opened as a source (:func:`open_item`; EDF lazily)."""
        return open_item(self.items[i])

    def windows(
        self,
        *,
        window_s: float | None = None,
        stride_s: float | None = None,
        on_error: str = "skip",
        **label_options,
    ) -> list[Window]:
        """Windows of every item.

        Parameters
        ----------
        window_s, stride_s : float, optional
            Fixed-length windows in seconds (see :func:`sigalex.windows.make_windows`).
            ``window_s=None``: one window per item spanning the whole file (short clips, fitted
            to a length later by :class:`~sigalex.windows.WindowDataset`).
        on_error : {"skip", "raise"}
            ``"skip"`` leaves out files that cannot be read or are shorter than one window,
            appends them to :attr:`errors` and warns once.
        **label_options
            ``min_overlap``, ``default_label``, ``annotation_labels`` for annotated items.

        Returns
        -------
        list of Window
            Each carries its item's label (or annotation label), group and path.
        """
        choice("on_error", on_error, ("raise", "skip"))
        out: list[Window] = []
        bad: list[str] = []
        for it in self.items:
            try:
                src = open_item(it)
                if window_s is None:
                    out.append(
                        whole_window(src, label=it.label, group=it.group, recording=str(it.path))
                    )
                    continue
                out.extend(
                    make_windows(
                        src,
                        window_s=window_s,
                        stride_s=stride_s,
                        label=it.label,
                        annotations=None if it.label is not None else list(it.annotations),
                        group=it.group,
                        recording=str(it.path),
                        onset_s=it.onset_s,
                        offset_s=it.offset_s,
                        **label_options,
                    )
                )
            except DataError as exc:
                if on_error == "raise":
                    raise
                bad.append(str(exc))
        report_bad_files(self, bad)
        return out


def report_bad_files(index: DatasetIndex, bad: list[str], *, stacklevel: int = 3) -> None:
    """Add bad files (``"path: problem"`` lines) to ``index.errors`` and warn once."""
    if not bad:
        return
    index.errors.extend(bad)
    warnings.warn(
        f"{len(bad)} file(s) under {index.root} could not be used and were left out "
        f"(first: {bad[0]}); all of them are in the index's .errors, and sigalex run writes "
        "them to data_errors.tsv",
        stacklevel=stacklevel,
    )


def open_item(item: Item) -> Source:
    """Open an item's recording through :func:`sigalex.sources.open_source`.

    EDF/BDF are opened lazily, other formats read into memory; formats that carry no sample
    rate take the item's ``sample_rate``. The item's annotations are attached when the file
    has none.

    Raises
    ------
    DataError
        A missing, unreadable or corrupt file, or a rate-less file without a rate.
    """
    rec = open_source(item.path, sample_rate=item.sample_rate)
    if item.annotations and not getattr(rec, "annotations", None):
        try:
            rec.annotations = list(item.annotations)
        except AttributeError:  # a read-only source: windows take item.annotations instead
            pass
    return rec


def verify_items(index: DatasetIndex, *, stacklevel: int = 4) -> DatasetIndex:
    """Open every item; keep the good ones, report the bad ones (``index`` is updated)."""
    good, bad = [], []
    for it in index.items:
        try:
            open_item(it)
        except DataError as exc:
            bad.append(str(exc))
        else:
            good.append(it)
    index.items = good
    report_bad_files(index, bad, stacklevel=stacklevel)
    return index


def dataset_folder(root, what: str) -> Path:
    """``root`` as a Path; a :class:`DataError` naming the layout when it is no folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder ({what} dataset root)")
    return root


__all__ = [
    "DatasetIndex",
    "Item",
    "dataset_folder",
    "open_item",
    "report_bad_files",
    "verify_items",
]
