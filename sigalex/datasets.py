"""Dataset layouts, a registry of public datasets, and verified downloads into a cache.

A **layout** turns a folder into a :class:`DatasetIndex`: one :class:`Item` per recording with
its path, label, and the identity that honest splits group by (patient, speaker, recording):

========== ================================================ ===================== ==========
layout     files                                            label                 group
========== ================================================ ===================== ==========
``bonn``   ``Z/ O/ N/ F/ S/`` ``*.txt``, 173.61 Hz           set, by ``task``      segment
``chbmit`` ``chbNN/*.edf`` + summary, or ``ictal/`` and      seizure annotations,  patient
           ``preictal_10s/`` ``.npy`` excerpts at 256 Hz     or the folder
``fsdd``   ``recordings/{digit}_{speaker}_{index}.wav``     digit                 speaker
``folder`` ``<class>/<any readable file>``                  folder name           file
``manifest`` a CSV: ``path,label[,group,split,onset,offset]`` the column          the column
========== ================================================ ===================== ==========

Bonn segments carry no patient identity (the publishers do not say which of the 5 healthy or 5
epileptic subjects a segment came from), so each segment is its own group; accuracies on Bonn
are therefore per segment, not per patient.

The **registry** (:data:`REGISTRY`, read from ``sigalex/registry/datasets.toml``) holds each
public dataset's URLs, checksums, citation and licence. :func:`fetch` downloads into
:func:`data_home` (``$SIGALEX_DATA``, else the user cache dir) and verifies: SHA-256 where the
publisher gives it (PhysioNet's ``SHA256SUMS.txt`` for CHB-MIT), else the content (file counts,
sample counts, and a SHA-256 of the parsed sample values). :func:`find_dataset` only looks.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import os
import re
import shutil
import tomllib
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from ._checks import choice
from ._files import sha256_file
from .errors import DataError, ParameterError
from .io import Annotation, load_recording, readable_extensions
from .splits import Split, official_split
from .windows import BONN_SETS, Window, bonn_set, fsdd_name, make_windows, whole_window

# ---------------------------------------------------------------------------------------------
# Items and indexes


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
        index = {c: i for i, c in enumerate(self.classes)}
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

    def load(self, i: int):
        """Item ``i`` read as a :class:`~sigalex.io.Recording` (EDF opened lazily if possible)."""
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
        _report(self, bad)
        return out


def _report(index: DatasetIndex, bad: list[str], *, stacklevel: int = 3) -> None:
    """Add bad files to ``index.errors`` and warn once."""
    if not bad:
        return
    index.errors.extend(bad)
    warnings.warn(
        f"{len(bad)} file(s) under {index.root} could not be used and were left out "
        f"(first: {bad[0]}); the full list is in .errors",
        stacklevel=stacklevel,
    )


_NEEDS_RATE = {".txt", ".csv", ".npy", ".npz"}


def open_item(item: Item):
    """Open an item's recording: EDF/BDF lazily (:func:`sigalex.io.open_recording`), other
    formats in memory; the item's annotations are attached when the file has none."""
    from . import io

    ext = item.path.suffix.lower()
    if ext in (".edf", ".bdf"):
        rec = io.open_recording(item.path)
    else:
        options = {"sample_rate": item.sample_rate} if ext in _NEEDS_RATE else {}
        rec = load_recording(item.path, **options)
    if item.annotations and not getattr(rec, "annotations", None):
        try:
            rec.annotations = list(item.annotations)
        except AttributeError:  # a read-only source: windows take item.annotations instead
            pass
    return rec


def _verify_items(index: DatasetIndex, *, stacklevel: int = 4) -> DatasetIndex:
    """Open every item; keep the good ones, report the bad ones."""
    good, bad = [], []
    for it in index.items:
        try:
            open_item(it)
        except DataError as exc:
            bad.append(str(exc))
        else:
            good.append(it)
    index.items = good
    _report(index, bad, stacklevel=stacklevel)
    return index


# ---------------------------------------------------------------------------------------------
# Layouts

BONN_TASKS: dict[str, dict[str, str]] = {
    "5class": {"Z": "A", "O": "B", "N": "C", "F": "D", "S": "E"},
    "A-E": {"Z": "A", "S": "E"},
    "ABCD-E": {"Z": "ABCD", "O": "ABCD", "N": "ABCD", "F": "ABCD", "S": "E"},
    "AB-CD-E": {"Z": "AB", "O": "AB", "N": "CD", "F": "CD", "S": "E"},
}
"""Bonn class maps by task name: folder letter → class. Sets: A=Z, B=O, C=N, D=F, E=S
(A, B healthy eyes open/closed; C, D interictal; E ictal). Sets left out of a map are dropped."""

BONN_RATE = 173.61
CHBMIT_RATE = 256.0
FSDD_RATE = 8000.0


def bonn(root, *, task: str | Mapping[str, str] = "5class", verify: bool = False) -> DatasetIndex:
    """The Bonn EEG sets: folders ``Z O N F S`` of 100 single-channel segments (4097 samples,
    173.61 Hz).

    Parameters
    ----------
    root : path
        Folder holding ``Z/ O/ N/ F/ S/`` (as :func:`fetch` unpacks the zips).
    task : str or mapping
        A name in :data:`BONN_TASKS` (``"5class"``, ``"A-E"``, ``"ABCD-E"``, ``"AB-CD-E"``) or
        a mapping from folder letter (Z O N F S) or set letter (A–E) to class name.
    verify : bool
        Open every file and leave out (and report) the unreadable ones.

    Notes
    -----
    Each segment is its own group: the data do not say which subject a segment came from.
    """
    root = _root(root, "bonn")
    if isinstance(task, str):
        cmap = BONN_TASKS[choice("bonn task", task, BONN_TASKS)]
    else:
        letters = {v: k for k, v in BONN_SETS.items()}
        cmap = {letters.get(str(k).upper(), str(k).upper()): str(v) for k, v in task.items()}
        unknown = sorted(set(cmap) - set(BONN_SETS))
        if unknown:
            raise ParameterError(f"bonn task keys {unknown} are not sets A–E or folders Z O N F S")
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name.upper() in BONN_SETS]
    if not folders:
        raise DataError(f"{root}: no Bonn set folders (Z O N F S) found")
    items, bad = [], []
    for folder in folders:
        for p in sorted(folder.iterdir(), key=lambda p: p.name.upper()):
            if not p.is_file() or p.name.startswith("."):
                continue
            if p.suffix.lower() != ".txt":
                bad.append(f"{p}: not a Bonn segment (.txt)")
                continue
            try:
                letter = bonn_set(p)
            except DataError as exc:
                bad.append(str(exc))
                continue
            if letter in cmap:
                items.append(
                    Item(
                        p,
                        cmap[letter],
                        f"bonn-{p.stem.upper()}",
                        p.stem.upper(),
                        sample_rate=BONN_RATE,
                    )
                )
    order = list(dict.fromkeys(cmap[k] for k in "ZONFS" if k in cmap))
    index = DatasetIndex("bonn", root, items, order, group_by="segment")
    _report(index, bad, stacklevel=3)
    return _verify_items(index) if verify else index


def fsdd(root, *, verify: bool = False) -> DatasetIndex:
    """The Free Spoken Digit Dataset: ``recordings/{digit}_{speaker}_{index}.wav`` (8 kHz).

    Label = digit (``"0"``–``"9"``), group = speaker; official split: index 0–4 test, 5–49 train.
    Files that do not follow the name pattern are reported in ``.errors`` and left out.
    """
    root = _root(root, "fsdd")
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    items, bad = [], []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.suffix.lower() != ".wav":
            continue
        try:
            digit, speaker, idx = fsdd_name(p)
        except DataError as exc:
            bad.append(str(exc))
            continue
        items.append(Item(p, digit, speaker, p.stem, split="test" if idx < 5 else "train"))
    if not items and not bad:
        raise DataError(f"{folder}: no FSDD .wav files found")
    index = DatasetIndex(
        "fsdd",
        root,
        items,
        [str(d) for d in range(10)],
        group_by="speaker",
        official_split_description="official FSDD split: recordings with index 0-4 test, 5-49 train",
    )
    _report(index, bad, stacklevel=3)
    return _verify_items(index) if verify else index


_CHB_NPY = re.compile(r"^(?P<rec>chb\d+[a-z]?_\d+)_(?:ictal|preictal\w*)$", re.IGNORECASE)


def chbmit(
    root, *, source: str = "auto", patients: Iterable[str] | None = None, verify: bool = False
) -> DatasetIndex:
    """CHB-MIT: EDF recordings labelled by each case's summary, or the 10 s ``.npy`` excerpts.

    Parameters
    ----------
    root : path
        Folder holding ``chbNN/`` case folders (PhysioNet layout).
    source : {"auto", "edf", "npy"}
        ``"edf"``: ``chbNN/*.edf``; each item is a whole recording with ``annotations`` (label
        ``"seizure"``) from ``chbNN-summary.txt``; window labels come from the overlap rule,
        classes ``["background", "seizure"]``. ``"npy"``: ``chbNN/ictal/*.npy`` and
        ``chbNN/preictal_10s/*.npy`` (23 × 2561 at 256 Hz), classes ``["preictal", "ictal"]``.
        ``"auto"``: EDF when any case folder has EDF files, else the excerpts.
    patients : iterable of str, optional
        Only these cases (``"chb01"``).

    Notes
    -----
    group = patient (case). The ictal and pre-ictal excerpts of one EDF share ``recording``.
    """
    root = _root(root, "chbmit")
    source = choice("chbmit source", source, ("auto", "edf", "npy"))
    cases = sorted(
        d for d in root.iterdir() if d.is_dir() and re.fullmatch(r"chb\d+[a-z]?", d.name)
    )
    if patients is not None:
        wanted = set(patients)
        missing = sorted(wanted - {d.name for d in cases})
        if missing:
            raise DataError(f"{root}: no case folder for {missing}")
        cases = [d for d in cases if d.name in wanted]
    if not cases:
        raise DataError(f"{root}: no CHB-MIT case folders (chb01, chb02, …) found")
    if source == "auto":
        source = "edf" if any(any(d.glob("*.edf")) for d in cases) else "npy"
    items, bad = [], []
    if source == "npy":
        for case in cases:
            for folder, label in (("preictal_10s", "preictal"), ("ictal", "ictal")):
                for p in sorted((case / folder).glob("*.npy")):
                    m = _CHB_NPY.match(p.stem)
                    rec = m["rec"] if m else p.stem
                    items.append(Item(p, label, case.name, rec, sample_rate=CHBMIT_RATE))
        classes = ["preictal", "ictal"]
        if not items:
            raise DataError(f"{root}: no .npy excerpts under chbNN/ictal or chbNN/preictal_10s")
    else:
        for case in cases:
            edfs = sorted(case.glob("*.edf"))
            if not edfs:
                continue
            try:
                seizures = _chbmit_seizures(case)
            except DataError as exc:
                bad.extend(f"{p}: no seizure labels ({exc})" for p in edfs)
                continue
            for p in edfs:
                events = tuple(seizures.get(p.name, ()))
                if p.name not in seizures:
                    bad.append(f"{p}: not listed in {case.name}-summary.txt; no seizure labels")
                    continue
                items.append(
                    Item(p, None, case.name, p.stem, sample_rate=CHBMIT_RATE, annotations=events)
                )
        classes = ["background", "seizure"]
    index = DatasetIndex("chbmit", root, items, classes, group_by="patient")
    _report(index, bad, stacklevel=3)
    return _verify_items(index) if verify else index


def _chbmit_seizures(case: Path) -> dict[str, list[Annotation]]:
    """Seizures per EDF file name from ``chbNN-summary.txt`` (via :mod:`sigalex.annotations`)."""
    summary = case / f"{case.name}-summary.txt"
    if not summary.is_file():
        raise DataError(f"{summary}: missing; CHB-MIT EDF labels come from the case summary file")
    from . import annotations as ann

    parsed = ann.read_chbmit_summary(summary)
    return {Path(name).name: list(entry.annotations) for name, entry in parsed.items()}


def folder(
    root,
    *,
    sample_rate: float | None = None,
    extensions: Iterable[str] | None = None,
    verify: bool = True,
) -> DatasetIndex:
    """Folder per class: ``root/<class>/<file>``, any file :func:`~sigalex.io.load_recording`
    reads. Each file is its own group.

    Parameters
    ----------
    sample_rate : float, optional
        Hz, for formats that carry none (txt, csv, npy, npz).
    extensions : iterable of str, optional
        Only these (``".wav"``); default: every readable extension.
    verify : bool
        Open every file; corrupt, empty or unreadable files are left out, listed in ``.errors``,
        and reported in one warning.
    """
    root = _root(root, "folder")
    exts = {("." + e.lstrip(".")).lower() for e in (extensions or readable_extensions())}
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class folders (expected root/<class>/<files>)")
    items, bad = [], []
    for cls in classes:
        for p in sorted((root / cls).rglob("*")):
            if not p.is_file() or p.name.startswith("."):
                continue
            if p.suffix.lower() not in exts:
                bad.append(
                    f"{p}: extension {p.suffix or '(none)'!r} is not read (readable: {', '.join(sorted(exts))})"
                )
                continue
            rel = p.relative_to(root).as_posix()
            items.append(Item(p, cls, rel, rel, sample_rate=sample_rate))
    index = DatasetIndex("folder", root, items, classes, group_by="recording")
    _report(index, bad, stacklevel=3)
    return _verify_items(index) if verify else index


_MANIFEST_ALIASES = {"onset": ("onset", "onset_s"), "offset": ("offset", "offset_s")}


def manifest(path, *, sample_rate: float | None = None, verify: bool = False) -> DatasetIndex:
    """A CSV manifest: columns ``path``, ``label``, and optional ``group``, ``split``,
    ``onset``/``offset`` (seconds, or ``onset_s``/``offset_s``) and ``sample_rate`` (Hz).

    Relative paths are relative to the CSV's folder. Rows whose file is missing are left out
    and reported; ``group`` defaults to the path (one group per recording), so several segments
    of one file stay together.

    Raises
    ------
    DataError
        The CSV is missing, or lacks a ``path`` or ``label`` column, or a cell is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such manifest file")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    missing = [c for c in ("path", "label") if c not in cols]
    if missing:
        raise DataError(f"{path}: manifest lacks column(s) {missing}; it has {cols}")
    items, bad = [], []
    for n, row in enumerate(rows, start=2):
        where = f"{path}:{n}"
        if not row["path"]:
            bad.append(f"{where}: empty path")
            continue
        p = Path(row["path"])
        p = p if p.is_absolute() else path.parent / p
        if not p.is_file():
            bad.append(f"{p}: no such file (manifest row {where})")
            continue
        split = row.get("split") or None
        if split is not None and split not in ("train", "val", "test"):
            raise DataError(f"{where}: split={split!r} must be train, val or test")

        def num(key, where=where, row=row):
            for k in _MANIFEST_ALIASES.get(key, (key,)):
                if row.get(k):
                    try:
                        return float(row[k])
                    except ValueError:
                        raise DataError(f"{where}: {k}={row[k]!r} is not a number") from None
            return None

        onset, offset = num("onset"), num("offset")
        if onset is not None and offset is not None and offset <= onset:
            raise DataError(f"{where}: offset={offset} s must be after onset={onset} s")
        rate = num("sample_rate") or sample_rate
        rec = p.as_posix() if onset is None else f"{p.as_posix()}@{onset:g}"
        items.append(
            Item(p, row["label"], row.get("group") or p.as_posix(), rec, split, rate, onset, offset)
        )
    classes = sorted({it.label for it in items})
    has_split = any(it.split for it in items)
    index = DatasetIndex(
        "manifest",
        path.parent,
        items,
        classes,
        group_by="group" if "group" in cols else "recording",
        official_split_description=f"split column of {path.name}" if has_split else None,
    )
    _report(index, bad, stacklevel=3)
    return _verify_items(index) if verify else index


LAYOUTS: dict[str, Callable[..., DatasetIndex]] = {
    "bonn": bonn,
    "chbmit": chbmit,
    "folder": folder,
    "fsdd": fsdd,
    "manifest": manifest,
}


def available_layouts() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(LAYOUTS)


def load_dataset(layout: str, root=None, **options) -> DatasetIndex:
    """Index a dataset folder with a named layout.

    Parameters
    ----------
    layout : str
        One of :func:`available_layouts`.
    root : path, optional
        The folder (or CSV for ``manifest``). For registered datasets (bonn, chbmit, fsdd) it
        defaults to :func:`find_dataset` (no download).
    **options
        Passed to the layout (``task=`` for bonn, ``source=`` for chbmit, ``sample_rate=``…).
    """
    fn = LAYOUTS[choice("dataset layout", layout, LAYOUTS)]
    if root is None:
        if layout not in REGISTRY:
            raise ParameterError(f"layout {layout!r} needs root= (a folder or CSV)")
        root = find_dataset(layout)
    return fn(root, **options)


def _root(root, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder ({what} dataset root)")
    return root


# ---------------------------------------------------------------------------------------------
# Registry, cache, fetch


@dataclass(frozen=True)
class Remote:
    """One file to download: ``url``, saved as ``name``; ``sha256`` when the publisher gives
    it; ``extract`` unpacks a zip's ``members`` (glob) by base name into that folder."""

    url: str
    name: str
    sha256: str = ""
    extract: str | None = None
    members: str = "*"


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: where a dataset comes from, its terms, and how a copy is checked."""

    name: str
    title: str
    homepage: str
    licence: str
    citation: str
    layout: str
    files: tuple[Remote, ...] = ()
    base_url: str | None = None
    sha256sums: Mapping[str, str] = field(default_factory=dict)
    default_files: tuple[str, ...] = ()
    meta: Mapping[str, object] = field(default_factory=dict)


def _read_sums(text: str) -> dict[str, str]:
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


@cache
def _registry() -> dict[str, DatasetInfo]:
    pkg = resources.files("sigalex") / "registry"
    raw = tomllib.loads((pkg / "datasets.toml").read_text(encoding="utf-8"))
    out = {}
    for name, entry in raw.items():
        entry = dict(entry)
        files = tuple(Remote(**f) for f in entry.pop("files", []))
        sums_file = entry.pop("sha256sums", None)
        sums = _read_sums((pkg / sums_file).read_text(encoding="utf-8")) if sums_file else {}
        keys = ("title", "homepage", "licence", "citation", "layout")
        info = {k: entry.pop(k) for k in keys}
        out[name] = DatasetInfo(
            name,
            **info,
            files=files,
            base_url=entry.pop("base_url", None),
            sha256sums=sums,
            default_files=tuple(entry.pop("default_files", ())),
            meta=entry,
        )
    return out


class _Registry(Mapping):
    def __getitem__(self, name):
        reg = _registry()
        if name not in reg:
            choice("dataset", name, reg)
        return reg[name]

    def __iter__(self):
        return iter(_registry())

    def __len__(self):
        return len(_registry())


REGISTRY: Mapping[str, DatasetInfo] = _Registry()
"""Registered public datasets by name (``bonn``, ``chbmit``, ``fsdd``)."""


def data_home() -> Path:
    """Where datasets are cached: ``$SIGALEX_DATA``, else the user cache dir
    (``platformdirs.user_cache_dir("sigalex")``, or ``~/.cache/sigalex``)."""
    env = os.environ.get("SIGALEX_DATA")
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".cache" / "sigalex"
    return Path(platformdirs.user_cache_dir("sigalex"))


def _candidates(name: str, root=None) -> list[Path]:
    places = []
    if root is not None:
        places.append(Path(root) / name)
    env = os.environ.get("SIGALEX_DATA")
    if env:
        places.append(Path(env).expanduser() / name)
    home = data_home()
    if home / name not in places:
        places.append(home / name)
    return places


def _looks_present(name: str, path: Path) -> bool:
    if not path.is_dir():
        return False
    if name == "bonn":
        return any((path / s).is_dir() for s in BONN_SETS)
    if name == "fsdd":
        return (path / "recordings").is_dir()
    if name == "chbmit":
        return any(path.glob("chb[0-9]*"))
    return any(path.iterdir())


def _how_to(info: DatasetInfo, places: Sequence[Path]) -> str:
    urls = [f.url for f in info.files] or [info.base_url or info.homepage]
    return (
        f"looked in {', '.join(str(p) for p in places)}. To provide it, download "
        f"{' '.join(urls)} (see datasets/{info.name}.md), unpack it there in the "
        f"{info.layout!r} layout, or set SIGALEX_DATA to a folder holding {info.name}/"
    )


def find_dataset(name: str, *, root=None) -> Path:
    """The local folder of a registered dataset, without downloading.

    Looks in ``root/<name>`` (if given), ``$SIGALEX_DATA/<name>``, then the cache.

    Raises
    ------
    DataError
        Not found; the message lists where it looked and how to provide the data.
    """
    info = REGISTRY[name]
    places = _candidates(name, root)
    for p in places:
        if _looks_present(name, p):
            return p
    raise DataError(f"dataset {name!r} not found locally; {_how_to(info, places)}")


def _download(url: str, dest: Path, *, timeout_s: float) -> str:
    """Stream ``url`` to ``dest``; return the SHA-256 of the bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    req = urllib.request.Request(url, headers={"User-Agent": "sigalex"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp, open(tmp, "wb") as out:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
    return h.hexdigest()


def _extract(archive: Path, remote: Remote, root: Path) -> int:
    """Unpack members matching ``remote.members`` by base name into ``root/remote.extract``."""
    target = root / remote.extract
    target.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        with zipfile.ZipFile(archive) as z:
            for member in z.infolist():
                base = Path(member.filename).name
                if (
                    member.is_dir()
                    or not base
                    or not fnmatch.fnmatch(member.filename, remote.members)
                ):
                    continue
                with z.open(member) as src, open(target / base, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                n += 1
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(
            f"{archive}: not a readable zip archive ({exc}); delete it and fetch again"
        ) from exc
    if n == 0:
        raise DataError(f"{archive}: no member matches {remote.members!r}")
    return n


def _values_hash(files: Sequence[Path], read: Callable[[Path], np.ndarray]) -> str:
    h = hashlib.sha256()
    for p in files:
        v = read(p)
        h.update(f"{p.stem.upper() if p.suffix.lower() == '.txt' else p.stem}:{v.size}\n".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def _read_bonn_ints(p: Path) -> np.ndarray:
    v = np.loadtxt(p, ndmin=1)
    if not np.array_equal(v, np.round(v)):
        raise DataError(f"{p}: Bonn values must be integers")
    return v.astype("<i8")


def _read_pcm16(p: Path) -> np.ndarray:
    import soundfile

    try:
        v, _ = soundfile.read(p, dtype="int16")
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise DataError(f"{p}: not a readable wav file ({exc})") from exc
    return v.astype("<i2").ravel()


def verify(name: str | DatasetInfo, root, *, files: Iterable[str] | None = None) -> list[str]:
    """Check a local copy of a registered dataset; return the problems (empty: verified).

    bonn: 100 segments per set of 4097 integer samples, and each set's values hash. fsdd: 3000
    files, 300 per digit, the six speakers, 8 kHz mono, and the values hash. chbmit: SHA-256 of
    each present file (or of ``files``, patterns relative to the root) against PhysioNet's list.
    """
    info = REGISTRY[name] if isinstance(name, str) else name
    root = Path(root)
    problems: list[str] = []
    meta = info.meta
    if info.layout == "bonn":
        n_times = int(meta.get("n_times", 4097))
        hashes = dict(meta.get("content", {}).get("values_sha256", {}))
        for letter in BONN_SETS:
            folder = root / letter
            seg = (
                sorted(
                    (p for p in folder.glob("*") if p.suffix.lower() == ".txt"),
                    key=lambda p: p.stem.upper(),
                )
                if folder.is_dir()
                else []
            )
            want = int(meta.get("files_per_set", 100))
            if len(seg) != want:
                problems.append(f"{folder}: {len(seg)} segment files, expected {want}")
                continue
            try:
                lengths = {p: _read_bonn_ints(p).size for p in seg}
            except (ValueError, DataError) as exc:
                problems.append(f"{folder}: {exc}")
                continue
            short = [f"{p.name} ({n})" for p, n in lengths.items() if n != n_times]
            if short:
                problems.append(
                    f"{folder}: {len(short)} file(s) without {n_times} samples: {short[:3]}"
                )
            elif letter in hashes and _values_hash(seg, _read_bonn_ints) != hashes[letter]:
                problems.append(f"{folder}: sample values differ from the published set {letter}")
    elif info.layout == "fsdd":
        import soundfile

        wavs = sorted((root / "recordings").glob("*.wav"), key=lambda p: p.name)
        want = int(meta.get("n_files", 3000))
        if len(wavs) != want:
            return [f"{root / 'recordings'}: {len(wavs)} wav files, expected {want}"]
        digits: dict[str, int] = {}
        speakers: set[str] = set()
        for p in wavs:
            try:
                digit, speaker, _ = fsdd_name(p)
                sf_info = soundfile.info(p)
            except (DataError, RuntimeError) as exc:
                problems.append(str(exc))
                continue
            digits[digit] = digits.get(digit, 0) + 1
            speakers.add(speaker)
            if sf_info.samplerate != int(meta.get("sample_rate", 8000)) or sf_info.channels != 1:
                problems.append(
                    f"{p}: {sf_info.samplerate} Hz, {sf_info.channels} channel(s); expected 8000 Hz mono"
                )
        per = int(meta.get("files_per_digit", 300))
        uneven = {d: n for d, n in sorted(digits.items()) if n != per}
        if uneven:
            problems.append(f"{root}: files per digit {uneven}, expected {per} each")
        if sorted(speakers) != sorted(meta.get("speakers", sorted(speakers))):
            problems.append(f"{root}: speakers {sorted(speakers)}, expected {meta.get('speakers')}")
        want_hash = meta.get("content", {}).get("values_sha256")
        if not problems and want_hash:
            try:
                got = _values_hash(wavs, _read_pcm16)
            except DataError as exc:
                return [str(exc)]
            if got != want_hash:
                problems.append(f"{root / 'recordings'}: sample values differ from FSDD v1.0.9")
    else:
        sums = info.sha256sums
        if files is None:
            names = [n for n in sums if (root / n).is_file()]
        else:
            names = _select(info, files)
        for n in names:
            p = root / n
            if not p.is_file():
                problems.append(f"{p}: missing")
            elif sha256_file(p) != sums[n]:
                problems.append(f"{p}: SHA-256 differs from PhysioNet's SHA256SUMS.txt")
    return problems


def _select(info: DatasetInfo, patterns: Iterable[str]) -> list[str]:
    """Files of a checksummed dataset matching glob patterns (each must match something)."""
    names = sorted(info.sha256sums)
    out: list[str] = []
    for pat in patterns:
        hit = [n for n in names if fnmatch.fnmatch(n, pat)]
        if not hit:
            raise ParameterError(f"{pat!r} matches no file of {info.name} (e.g. {names[:3]})")
        out.extend(h for h in hit if h not in out)
    return out


def fetch(
    name: str | DatasetInfo,
    *,
    root=None,
    files: Iterable[str] | None = None,
    force: bool = False,
    timeout_s: float = 60.0,
) -> Path:
    """Download a registered dataset into the cache (if not already there) and verify it.

    Parameters
    ----------
    name : str or DatasetInfo
        ``"bonn"``, ``"fsdd"``, ``"chbmit"`` (or an entry with other URLs, e.g. a mirror).
    root : path, optional
        Cache root (default :func:`data_home`); the data go to ``root/<name>``.
    files : iterable of str, optional
        chbmit only: glob patterns of files to take (``["chb01/*.edf", "chb01/*summary.txt"]``;
        default: the index files and case chb01, about 1 GB).
    force : bool
        Download again even when a verified copy is present.
    timeout_s : float
        Network timeout per request, seconds.

    Returns
    -------
    pathlib.Path
        ``root/<name>``, verified.

    Raises
    ------
    DataError
        Offline or unreachable (says what is missing, where it looked, how to provide it), a
        checksum or content mismatch (the bad file is removed), or a corrupt archive.
    """
    info = REGISTRY[name] if isinstance(name, str) else name
    dest = Path(root if root is not None else data_home()) / info.name
    places = _candidates(info.name, root)
    if info.sha256sums:
        wanted = _select(info, files if files is not None else info.default_files)
        remotes = [
            Remote(info.base_url.rstrip("/") + "/" + n, n, info.sha256sums[n]) for n in wanted
        ]
    else:
        if files is not None:
            raise ParameterError(f"files= only applies to checksummed datasets, not {info.name!r}")
        wanted, remotes = None, list(info.files)
    if not force and dest.is_dir() and not verify(info, dest, files=wanted):
        return dest
    for remote in remotes:
        target = dest / remote.name if remote.extract is None else dest / ".download" / remote.name
        if (
            not force
            and remote.sha256
            and target.is_file()
            and sha256_file(target) == remote.sha256
        ):
            continue
        try:
            digest = _download(remote.url, target, timeout_s=timeout_s)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DataError(
                f"could not download {remote.name} of dataset {info.name!r} from {remote.url} "
                f"({reason}); {_how_to(info, places)}"
            ) from exc
        if remote.sha256 and digest != remote.sha256.lower():
            target.unlink(missing_ok=True)
            raise DataError(
                f"{remote.url}: SHA-256 {digest} does not match the published {remote.sha256}; "
                f"the download was deleted. Try again, or {_how_to(info, places)}"
            )
        if remote.extract is not None:
            _extract(target, remote, dest)
            target.unlink()
    shutil.rmtree(dest / ".download", ignore_errors=True)
    problems = verify(info, dest, files=wanted)
    if problems:
        raise DataError(
            f"dataset {info.name!r} in {dest} failed verification: {'; '.join(problems[:5])}"
            f"{f' (and {len(problems) - 5} more)' if len(problems) > 5 else ''}. "
            f"Delete it and fetch again, or {_how_to(info, places)}"
        )
    return dest


def with_urls(
    name: str, urls: Mapping[str, str] | None = None, *, base_url: str | None = None
) -> DatasetInfo:
    """A registry entry with other download URLs (a mirror, a local copy): ``urls`` maps a
    file name (``"Z.zip"``) to its URL; ``base_url`` replaces a checksummed dataset's base."""
    info = REGISTRY[name]
    urls = dict(urls or {})
    unknown = sorted(set(urls) - {f.name for f in info.files})
    if unknown:
        raise ParameterError(
            f"{info.name} has no files {unknown}; it has {[f.name for f in info.files]}"
        )
    files = tuple(replace(f, url=urls.get(f.name, f.url)) for f in info.files)
    return replace(info, files=files, base_url=base_url or info.base_url)


__all__ = [
    "BONN_TASKS",
    "LAYOUTS",
    "REGISTRY",
    "DatasetIndex",
    "DatasetInfo",
    "Item",
    "Remote",
    "available_layouts",
    "bonn",
    "chbmit",
    "data_home",
    "fetch",
    "find_dataset",
    "folder",
    "fsdd",
    "load_dataset",
    "manifest",
    "open_item",
    "verify",
    "with_urls",
]
