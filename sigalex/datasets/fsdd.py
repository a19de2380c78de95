"""The Free Spoken Digit Dataset (FSDD) v1.0.9: 3000 recordings of the digits 0–9.

``recordings/{digit}_{speaker}_{index}.wav``, 8 kHz mono, six speakers, 50 of each digit per
speaker. Label = digit, group = speaker; the official split puts indexes 0–4 in the test set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypedDict, cast

import numpy as np

from ..errors import DataError
from .base import DatasetIndex, Item, dataset_folder, report_bad_files, verify_items
from .registry import register_dataset
from .remote import DatasetInfo, values_hash

FSDD_RATE = 8000.0
"""Hz, the rate of every recording (the wav files carry it too)."""

_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z0-9-]+)_(?P<index>\d+)$")


def fsdd_name(path) -> tuple[str, str, int]:
    """``(digit, speaker, index)`` from an FSDD file name ``{digit}_{speaker}_{index}.wav``.

    Raises
    ------
    DataError
        The name does not follow the pattern.
    """
    m = _NAME.match(Path(path).stem)
    if m is None:
        raise DataError(f"{path}: not an FSDD file name '{{digit}}_{{speaker}}_{{index}}.wav'")
    return m["digit"], m["speaker"], int(m["index"])


def _looks_present(path: Path) -> bool:
    return (path / "recordings").is_dir()


def read_pcm16(path: Path) -> np.ndarray:
    """A wav file's samples as little-endian int16 ``(n_samples,)``, as published."""
    import soundfile

    try:
        v, _ = soundfile.read(path, dtype="int16")
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise DataError(f"{path}: not a readable wav file ({exc})") from exc
    return v.astype("<i2").ravel()


class _FsddMeta(TypedDict, total=False):
    """The values of the registry's ``[fsdd]`` entry that :func:`verify_fsdd` reads."""

    n_files: int
    sample_rate: float
    files_per_digit: int
    speakers: list[str]
    content: Mapping[str, str]  # values_sha256: the hash of all files' values


def verify_fsdd(info: DatasetInfo, root: Path, *, files: Iterable[str] | None = None) -> list[str]:
    """3000 files, 300 per digit, the six speakers, 8 kHz mono, and the values hash of
    v1.0.9 (:func:`~sigalex.datasets.remote.values_hash`). ``files`` is not used."""
    import soundfile

    meta = cast(_FsddMeta, info.meta)  # registry values are typed object; datasets.toml's types
    folder = root / "recordings"
    wavs = sorted(folder.glob("*.wav"), key=lambda p: p.name)
    want = int(meta.get("n_files", 3000))
    if len(wavs) != want:
        return [f"{folder}: {len(wavs)} wav files, expected {want}"]
    rate = int(meta.get("sample_rate", FSDD_RATE))
    problems: list[str] = []
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
        if sf_info.samplerate != rate or sf_info.channels != 1:
            problems.append(
                f"{p}: {sf_info.samplerate} Hz, {sf_info.channels} channel(s); expected {rate} Hz mono"
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
            got = values_hash(wavs, read_pcm16)
        except DataError as exc:
            return [str(exc)]
        if got != want_hash:
            problems.append(f"{folder}: sample values differ from FSDD v1.0.9")
    return problems


@register_dataset("fsdd", looks_present=_looks_present, verify=verify_fsdd)
def fsdd(root, *, verify: bool = False) -> DatasetIndex:
    """The Free Spoken Digit Dataset: ``recordings/{digit}_{speaker}_{index}.wav`` (8 kHz).

    Label = digit (``"0"``–``"9"``), group = speaker; official split: index 0–4 test, 5–49 train.
    Files that do not follow the name pattern are reported in ``.errors`` and left out.
    """
    root = dataset_folder(root, "fsdd")
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
    report_bad_files(index, bad, stacklevel=3)
    return verify_items(index) if verify else index


__all__ = ["FSDD_RATE", "fsdd", "fsdd_name", "read_pcm16"]
