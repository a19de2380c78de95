"""The Bonn University epilepsy EEG sets A–E (Andrzejak et al. 2001).

Folders ``Z O N F S`` (sets A–E) of 100 single-channel segments each, ``Z001.txt`` …
``S100.txt``: 4097 integer samples at 173.61 Hz, one per line. The label is the set, mapped
to classes by a task (:data:`BONN_TASKS`). Bonn segments carry no patient identity (the
publishers do not say which of the 5 healthy or 5 epileptic subjects a segment came from), so
each segment is its own group: accuracies on Bonn are per segment, not per patient.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypedDict, cast

import numpy as np

from .._checks import choice
from ..errors import DataError, ParameterError
from .base import DatasetIndex, Item, dataset_folder, report_bad_files, verify_items
from .registry import register_dataset
from .remote import DatasetInfo, values_hash

BONN_SETS = {"Z": "A", "O": "B", "N": "C", "F": "D", "S": "E"}
"""Bonn folder letter → set name in the paper (A–E)."""

BONN_TASKS: dict[str, dict[str, str]] = {
    "5class": {"Z": "A", "O": "B", "N": "C", "F": "D", "S": "E"},
    "A-E": {"Z": "A", "S": "E"},
    "ABCD-E": {"Z": "ABCD", "O": "ABCD", "N": "ABCD", "F": "ABCD", "S": "E"},
    "AB-CD-E": {"Z": "AB", "O": "AB", "N": "CD", "F": "CD", "S": "E"},
}
"""Bonn class maps by task name: folder letter → class. Sets: A=Z, B=O, C=N, D=F, E=S
(A, B healthy eyes open/closed; C, D interictal; E ictal). Sets left out of a map are dropped."""

BONN_RATE = 173.61
"""Hz, the rate of every segment (the text files carry none)."""

_SEGMENT = re.compile(r"^(?P<set>[ZONFS])(?P<num>\d{3})$", re.IGNORECASE)


def bonn_set(path) -> str:
    """The Bonn folder letter (``Z O N F S``) of a segment, from its file name (``Z001.txt``)
    or, failing that, its folder name.

    Raises
    ------
    DataError
        Neither names a Bonn set.
    """
    path = Path(path)
    m = _SEGMENT.match(path.stem)
    if m is not None:
        return m["set"].upper()
    folder = path.parent.name.upper()
    if folder in BONN_SETS:
        return folder
    raise DataError(
        f"{path}: not a Bonn segment (expected Z001.txt … S100.txt in folders Z O N F S)"
    )


def _looks_present(path: Path) -> bool:
    return any((path / s).is_dir() for s in BONN_SETS)


def read_bonn_ints(path: Path) -> np.ndarray:
    """A segment's values as little-endian int64 ``(n_times,)`` (the published integers)."""
    v = np.loadtxt(path, ndmin=1)
    if not np.array_equal(v, np.round(v)):
        raise DataError(f"{path}: Bonn values must be integers")
    return v.astype("<i8")


def _segment_key(path: Path) -> str:
    return path.stem.upper()


class _BonnMeta(TypedDict, total=False):
    """The values of the registry's ``[bonn]`` entry that :func:`verify_bonn` reads."""

    n_times: int
    files_per_set: int
    content: Mapping[str, Mapping[str, str]]  # values_sha256: set letter → hash


def verify_bonn(info: DatasetInfo, root: Path, *, files: Iterable[str] | None = None) -> list[str]:
    """100 segments per set of 4097 integer samples, and each set's values hash
    (:func:`~sigalex.datasets.remote.values_hash`, keys ``Z001``…). ``files`` is not used."""
    meta = cast(_BonnMeta, info.meta)  # registry values are typed object; datasets.toml's types
    n_times = int(meta.get("n_times", 4097))
    want = int(meta.get("files_per_set", 100))
    hashes = dict(meta.get("content", {}).get("values_sha256", {}))
    problems: list[str] = []
    for letter in BONN_SETS:
        folder = root / letter
        seg = (
            sorted((p for p in folder.glob("*") if p.suffix.lower() == ".txt"), key=_segment_key)
            if folder.is_dir()
            else []
        )
        if len(seg) != want:
            problems.append(f"{folder}: {len(seg)} segment files, expected {want}")
            continue
        try:
            lengths = {p: read_bonn_ints(p).size for p in seg}
        except (ValueError, DataError) as exc:
            problems.append(f"{folder}: {exc}")
            continue
        short = [f"{p.name} ({n})" for p, n in lengths.items() if n != n_times]
        if short:
            problems.append(
                f"{folder}: {len(short)} file(s) without {n_times} samples: {short[:3]}"
            )
        elif letter in hashes and (
            values_hash(seg, read_bonn_ints, key=_segment_key) != hashes[letter]
        ):
            problems.append(f"{folder}: sample values differ from the published set {letter}")
    return problems


def _class_map(task: str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(task, str):
        return BONN_TASKS[choice("bonn task", task, BONN_TASKS)]
    letters = {v: k for k, v in BONN_SETS.items()}
    cmap = {letters.get(str(k).upper(), str(k).upper()): str(v) for k, v in task.items()}
    unknown = sorted(set(cmap) - set(BONN_SETS))
    if unknown:
        raise ParameterError(f"bonn task keys {unknown} are not sets A–E or folders Z O N F S")
    return cmap


@register_dataset(
    "bonn",
    recipe_options=lambda cfg: {"task": cfg.data.task},
    looks_present=_looks_present,
    verify=verify_bonn,
)
def bonn(root, *, task: str | Mapping[str, str] = "5class", verify: bool = False) -> DatasetIndex:
    """The Bonn EEG sets: folders ``Z O N F S`` of 100 single-channel segments (4097 samples,
    173.61 Hz).

    Parameters
    ----------
    root : path
        Folder holding ``Z/ O/ N/ F/ S/`` (as :func:`~sigalex.datasets.fetch` unpacks the zips).
    task : str or mapping
        A name in :data:`BONN_TASKS` (``"5class"``, ``"A-E"``, ``"ABCD-E"``, ``"AB-CD-E"``) or
        a mapping from folder letter (Z O N F S) or set letter (A–E) to class name.
        Recipes: ``data.task``.
    verify : bool
        Open every file and leave out (and report) the unreadable ones.

    Notes
    -----
    Each segment is its own group: the data do not say which subject a segment came from.
    """
    root = dataset_folder(root, "bonn")
    cmap = _class_map(task)
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
                segment = _segment_key(p)
                items.append(
                    Item(p, cmap[letter], f"bonn-{segment}", segment, sample_rate=BONN_RATE)
                )
    order = list(dict.fromkeys(cmap[k] for k in "ZONFS" if k in cmap))
    index = DatasetIndex("bonn", root, items, order, group_by="segment")
    report_bad_files(index, bad, stacklevel=3)
    return verify_items(index) if verify else index


__all__ = ["BONN_RATE", "BONN_SETS", "BONN_TASKS", "bonn", "bonn_set", "read_bonn_ints"]
