"""A CSV manifest: one row per recording or segment, with its label and optional group,
official split, onset/offset and sample rate.

The layout for your own data when labels live in a table. Recipes name the CSV in
``data.root``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import DataError
from .base import DatasetIndex, Item, report_bad_files, verify_items
from .registry import register_dataset


def _recipe_options(cfg) -> dict:
    return {"sample_rate": cfg.data.sample_rate} if cfg.data.sample_rate else {}


_ALIASES = {"onset": ("onset", "onset_s"), "offset": ("offset", "offset_s")}


@register_dataset("manifest", recipe_options=_recipe_options)
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
            for k in _ALIASES.get(key, (key,)):
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
    report_bad_files(index, bad, stacklevel=3)
    return verify_items(index) if verify else index


__all__ = ["manifest"]
