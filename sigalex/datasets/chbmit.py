"""CHB-MIT Scalp EEG Database v1.0.0 (Shoeb 2009; PhysioNet).

Case folders ``chbNN/`` of EDF recordings at 256 Hz with a ``chbNN-summary.txt`` listing each
file's seizures, or (as in the test data) 10 s ``.npy`` excerpts under ``chbNN/ictal`` and
``chbNN/preictal_10s``. group = patient (case). A downloaded copy is verified against
PhysioNet's ``SHA256SUMS.txt`` (the registry's default check for checksummed datasets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .._checks import choice
from ..annotations import read_chbmit_summary
from ..errors import DataError
from ..recording import Annotation
from .base import DatasetIndex, Item, dataset_folder, report_bad_files, verify_items
from .registry import register_dataset

CHBMIT_RATE = 256.0
"""Hz, the rate of every recording (the ``.npy`` excerpts carry none)."""

_CASE = re.compile(r"chb\d+[a-z]?")


def _looks_present(path: Path) -> bool:
    return any(path.glob("chb[0-9]*"))


_CHB_NPY = re.compile(r"^(?P<rec>chb\d+[a-z]?_\d+)_(?:ictal|preictal\w*)$", re.IGNORECASE)


@register_dataset(
    "chbmit",
    recipe_options=lambda cfg: {"source": cfg.data.source},
    looks_present=_looks_present,
)
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
        Recipes: ``data.source``.
    patients : iterable of str, optional
        Only these cases (``"chb01"``).

    Notes
    -----
    group = patient (case). The ictal and pre-ictal excerpts of one EDF share ``recording``.
    """
    root = dataset_folder(root, "chbmit")
    source = choice("chbmit source", source, ("auto", "edf", "npy"))
    cases = sorted(d for d in root.iterdir() if d.is_dir() and _CASE.fullmatch(d.name))
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
    report_bad_files(index, bad, stacklevel=3)
    return verify_items(index) if verify else index


def _chbmit_seizures(case: Path) -> dict[str, list[Annotation]]:
    """Seizures per EDF file name from ``chbNN-summary.txt`` (via :mod:`sigalex.annotations`)."""
    summary = case / f"{case.name}-summary.txt"
    if not summary.is_file():
        raise DataError(f"{summary}: missing; CHB-MIT EDF labels come from the case summary file")
    parsed = read_chbmit_summary(summary)
    return {Path(name).name: list(entry.annotations) for name, entry in parsed.items()}


__all__ = ["CHBMIT_RATE", "chbmit"]
