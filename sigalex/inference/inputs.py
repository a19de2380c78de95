"""Inputs of ``sigalex predict``: files, folders (searched recursively) and glob patterns."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from ..io import readable_extensions


def find_inputs(inputs: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files, folders (recursively, readable extensions) and glob patterns.

    Returns
    -------
    files : list of Path
        In input order (folder contents and glob matches sorted), duplicates removed.
    problems : list of (input, reason)
        Inputs that name nothing: a missing path, a pattern that matches no file, a folder
        with no readable file; and, in folders, dangling links and files that are not regular
        files (pipes, sockets) with a readable extension.
    """
    exts = set(readable_extensions())

    def in_folder(folder: Path) -> list[Path]:
        found = []
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() not in exts or p.name.startswith("."):
                continue
            if p.is_file():
                found.append(p)
            elif p.is_symlink() and not p.exists():
                problems.append((str(p), "a dangling link: its target is missing"))
            elif not p.is_dir():
                problems.append((str(p), "not a regular file (a pipe, socket or device)"))
        return found

    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            found = in_folder(path)
            if not found:
                problems.append((text, f"no readable file ({', '.join(sorted(exts))}) in folder"))
            files += found
        elif path.is_file():
            files.append(path)
        elif path.exists():
            problems.append((text, "not a regular file (a pipe, socket or device)"))
        elif path.is_symlink():
            problems.append((text, "a dangling link: its target is missing"))
        elif glob.has_magic(text):
            found = []
            for match in sorted(glob.glob(text, recursive=True)):
                m = Path(match)
                found += in_folder(m) if m.is_dir() else [m] if m.is_file() else []
            if not found:
                problems.append((text, "no file matches the pattern"))
            files += found
        else:
            problems.append((text, "no such file or folder"))
    seen: set[str] = set()
    unique = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


__all__ = ["find_inputs"]
