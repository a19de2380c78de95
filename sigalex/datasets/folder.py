"""Folder per class: ``root/<class>/<file>``, any readable file; each file its own group.

The layout for your own data when the class is the folder. Recipes name the folder in
``data.root`` (it has no place of its own to be found in).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import DataError
from ..io import readable_extensions
from .base import DatasetIndex, Item, dataset_folder, report_bad_files, verify_items
from .registry import register_dataset


def _recipe_options(cfg) -> dict:
    return {"sample_rate": cfg.data.sample_rate} if cfg.data.sample_rate else {}


@register_dataset("folder", recipe_options=_recipe_options)
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
        Hz, for formats that carry none (:data:`sigalex.io.RATELESS_EXTENSIONS`). Recipes:
        ``data.sample_rate`` when not 0.
    extensions : iterable of str, optional
        Only these (``".wav"``); default: every readable extension.
    verify : bool
        Open every file; corrupt, empty or unreadable files are left out, listed in ``.errors``,
        and reported in one warning.
    """
    root = dataset_folder(root, "folder")
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
    report_bad_files(index, bad, stacklevel=3)
    return verify_items(index) if verify else index


__all__ = ["folder"]
