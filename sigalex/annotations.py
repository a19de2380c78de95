"""Annotation files: CHB-MIT summaries, WFDB ``.seizures`` files, BIDS/SzCORE events TSV.

Every reader returns :class:`~sigalex.io.Annotation` objects (onset and duration in seconds
from the recording start) and raises :class:`~sigalex.errors.DataError` naming the file for
a missing or malformed file.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ._files import atomic_write_text
from .errors import DataError, ParameterError
from .io import Annotation, readable_extensions

__all__ = [
    "ChbmitFile",
    "WfdbAnnotation",
    "events_file_name",
    "read_chbmit_seizures",
    "read_chbmit_summary",
    "read_events_tsv",
    "read_wfdb_annotations",
    "recording_key",
    "write_events_tsv",
]

SEIZURE = "seizure"


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    return path


# --- CHB-MIT summary ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChbmitFile:
    """One ``File Name:`` block of a CHB-MIT ``chbNN-summary.txt``.

    Attributes
    ----------
    file_name : str
        ``"chb01_03.edf"``.
    seizures : tuple of (float, float)
        (start, end) of each seizure, seconds from the start of the file.
    channels : tuple of str
        The montage in force for this file (the last ``Channels in EDF Files`` /
        ``Channels changed`` list before it), in EDF order.
    start_time, end_time : str
        Wall-clock times as written (``"13:43:04"``); may be empty.
    sample_rate : float or None
        Hz, from ``Data Sampling Rate``.
    """

    file_name: str
    seizures: tuple[tuple[float, float], ...]
    channels: tuple[str, ...]
    start_time: str = ""
    end_time: str = ""
    sample_rate: float | None = None

    @property
    def annotations(self) -> list[Annotation]:
        """The seizures as ``Annotation(start, end - start, "seizure")``."""
        return [Annotation(start, end - start, SEIZURE) for start, end in self.seizures]


_RATE = re.compile(r"Data Sampling Rate:\s*([\d.]+)\s*Hz", re.IGNORECASE)
_CHANNEL = re.compile(r"Channel\s+(\d+)\s*:\s*(.*)", re.IGNORECASE)
_FILE = re.compile(r"File Name:\s*(\S+)", re.IGNORECASE)
_START = re.compile(r"File Start Time:\s*(\S+)", re.IGNORECASE)
_END = re.compile(r"File End Time:\s*(\S+)", re.IGNORECASE)
_COUNT = re.compile(r"Number of Seizures in File:\s*(\d+)", re.IGNORECASE)
_SZ = re.compile(
    r"Seizure(?:\s+\d+)?\s+(Start|End)\s+Time\s*:\s*([\d.]+)\s*(?:seconds?|s)?\s*$", re.IGNORECASE
)


def read_chbmit_summary(path) -> dict[str, ChbmitFile]:
    """Parse a CHB-MIT ``chbNN-summary.txt``.

    Handles both seizure-line spellings (``Seizure Start Time:`` and ``Seizure 2 Start
    Time:``) and montage changes part-way through (``Channels changed:``).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict of str to ChbmitFile
        Keyed by EDF file name (``"chb01_03.edf"``), in file order.

    Raises
    ------
    DataError
        Missing file; a seizure start without an end (or the reverse); a seizure count that
        disagrees with the seizures listed; an end before its start.
    """
    path = _existing(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    rate: float | None = None
    channels: dict[int, str] = {}
    in_channels = False
    files: dict[str, ChbmitFile] = {}
    current: dict | None = None

    def close(lineno: int) -> None:
        if current is None:
            return
        name = current["file_name"]
        if current["pending"] is not None:
            raise DataError(f"{path}: {name}: seizure start {current['pending']} s has no end")
        count = current["count"]
        if count is not None and count != len(current["seizures"]):
            raise DataError(
                f"{path}: {name}: 'Number of Seizures in File: {count}' but "
                f"{len(current['seizures'])} seizure(s) listed (before line {lineno})"
            )
        files[name] = ChbmitFile(
            name,
            tuple(current["seizures"]),
            current["channels"],
            current["start"],
            current["end"],
            rate,
        )

    lines = text.splitlines()
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line or set(line) <= {"*"}:
            continue
        if m := _RATE.match(line):
            rate = float(m.group(1))
        elif line.lower().startswith(("channels in edf files", "channels changed")):
            in_channels, channels = True, {}
        elif (m := _CHANNEL.match(line)) and in_channels:
            channels[int(m.group(1))] = m.group(2).strip()
        elif m := _FILE.match(line):
            close(lineno)
            in_channels = False
            current = {
                "file_name": m.group(1),
                "seizures": [],
                "pending": None,
                "count": None,
                "start": "",
                "end": "",
                "channels": tuple(channels[k] for k in sorted(channels)),
            }
        elif current is None:
            continue
        elif m := _START.match(line):
            current["start"] = m.group(1)
        elif m := _END.match(line):
            current["end"] = m.group(1)
        elif m := _COUNT.match(line):
            current["count"] = int(m.group(1))
        elif m := _SZ.match(line):
            value = float(m.group(2))
            if m.group(1).lower() == "start":
                if current["pending"] is not None:
                    raise DataError(f"{path}:{lineno}: seizure start without an end before it")
                current["pending"] = value
            else:
                start = current["pending"]
                if start is None:
                    raise DataError(f"{path}:{lineno}: seizure end without a start")
                if value < start:
                    raise DataError(
                        f"{path}:{lineno}: seizure end {value} s before start {start} s"
                    )
                current["seizures"].append((start, value))
                current["pending"] = None
    close(len(lines) + 1)
    if not files:
        raise DataError(f"{path}: no 'File Name:' entries; not a CHB-MIT summary file")
    return files


# --- WFDB annotation files ---------------------------------------------------------------

# WFDB annotation codes (ecgcodes.h) that carry no time of their own, and the symbols of
# the codes that CHB-MIT and PhysioNet use most.
_SKIP, _NUM, _SUB, _CHN, _AUX = 59, 60, 61, 62, 63
_SYMBOLS = {
    1: "N",
    5: "V",
    14: "~",
    16: "|",
    22: '"',
    28: "+",
    32: "[",
    33: "]",
    36: "@",
    37: "x",
    38: "f",
    39: "(",
    40: ")",
}


@dataclass(frozen=True)
class WfdbAnnotation:
    """One decoded WFDB annotation.

    Attributes
    ----------
    sample : int
        Sample number (time in units of the annotation's sample rate).
    code : int
        WFDB annotation type code (``32`` = ``[`` onset, ``33`` = ``]`` offset, ``22`` note).
    symbol : str
        The code's mnemonic where known, else ``str(code)``.
    aux : str
        Auxiliary text (``""`` when none).
    subtype, channel, number : int
    """

    sample: int
    code: int
    symbol: str
    aux: str = ""
    subtype: int = 0
    channel: int = 0
    number: int = 0


def read_wfdb_annotations(path) -> list[WfdbAnnotation]:
    """Decode a binary WFDB annotation file (MIT format, as CHB-MIT's ``.edf.seizures``).

    The file is a sequence of 16-bit little-endian words: a 6-bit type code over a 10-bit
    interval (samples since the previous annotation). Pseudo-codes modify the stream:
    ``SKIP`` (59) is followed by a 32-bit interval in PDP-11 order (high word first),
    ``NUM`` (60), ``SUB`` (61) and ``CHN`` (62) set fields of the previous annotation from
    their 10 bits, ``AUX`` (63) attaches the next ``interval`` bytes (padded to even) as
    text. A zero word ends the file. Code-0 words with an interval (NOTQRS placeholders
    that move the clock, as after the time-resolution note) are not returned.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of WfdbAnnotation
        In file order.

    Raises
    ------
    DataError
        Missing file, odd length, or a record cut off in the middle.
    """
    path = _existing(path)
    raw = path.read_bytes()
    out: list[dict] = []
    time, pos, n = 0, 0, len(raw)
    number = channel = 0
    while True:
        if pos + 2 > n:
            if pos == n:
                break  # no terminating zero word: tolerated
            raise DataError(f"{path}: WFDB annotation file cut off at byte {pos} of {n}")
        word = raw[pos] | (raw[pos + 1] << 8)
        pos += 2
        if word == 0:
            break
        code, interval = word >> 10, word & 0x3FF
        if code == _SKIP:
            if pos + 4 > n:
                raise DataError(f"{path}: SKIP at byte {pos - 2} cut off")
            high = raw[pos] | (raw[pos + 1] << 8)
            low = raw[pos + 2] | (raw[pos + 3] << 8)
            skip = (high << 16) | low
            if skip >= 1 << 31:
                skip -= 1 << 32
            time += skip
            pos += 4
        elif code == _AUX:
            if pos + interval > n:
                raise DataError(f"{path}: AUX text at byte {pos - 2} cut off")
            text = raw[pos : pos + interval].split(b"\0", 1)[0].decode("latin-1")
            pos += interval + (interval & 1)
            if out:
                out[-1]["aux"] = text
        elif code == _NUM:
            number = interval if interval < 512 else interval - 1024
            if out:
                out[-1]["number"] = number
        elif code == _SUB:
            if out:
                out[-1]["subtype"] = interval
        elif code == _CHN:
            channel = interval
            if out:
                out[-1]["channel"] = channel
        else:
            time += interval
            if code == 0:  # NOTQRS: a time-keeping placeholder (after SKIP), no event
                continue
            out.append(
                {
                    "sample": time,
                    "code": code,
                    "symbol": _SYMBOLS.get(code, str(code)),
                    "number": number,
                    "channel": channel,
                }
            )
    return [WfdbAnnotation(**a) for a in out]


_RESOLUTION = re.compile(r"time resolution:\s*([\d.]+)", re.IGNORECASE)


def read_chbmit_seizures(path, *, sample_rate: float | None = None) -> list[Annotation]:
    """Seizures from a CHB-MIT ``.edf.seizures`` WFDB file, as ``"seizure"`` annotations.

    Onsets are ``[`` (code 32) and offsets ``]`` (code 33) annotations.

    Parameters
    ----------
    path : str or Path
    sample_rate : float, optional
        Hz of the sample numbers. Default: the file's ``## time resolution: N`` note, else
        256 (CHB-MIT's rate).

    Returns
    -------
    list of Annotation
        ``Annotation(onset_s, duration_s, "seizure")`` in time order.

    Raises
    ------
    DataError
        Missing file, a corrupt stream, or unpaired onset/offset markers.
    """
    events = read_wfdb_annotations(path)
    if sample_rate is None:
        sample_rate = 256.0
        for a in events:
            if m := _RESOLUTION.search(a.aux):
                sample_rate = float(m.group(1))
                break
    if not math.isfinite(sample_rate) or sample_rate <= 0:
        raise ParameterError(f"{sample_rate=} must be a positive number of Hz")
    out: list[Annotation] = []
    onset: int | None = None
    for a in events:
        if a.code == 32:
            if onset is not None:
                raise DataError(f"{path}: seizure onset at sample {a.sample} inside another")
            onset = a.sample
        elif a.code == 33:
            if onset is None:
                raise DataError(f"{path}: seizure offset at sample {a.sample} without an onset")
            out.append(Annotation(onset / sample_rate, (a.sample - onset) / sample_rate, SEIZURE))
            onset = None
    if onset is not None:
        raise DataError(f"{path}: seizure onset at sample {onset} has no offset")
    return out


# --- BIDS / SzCORE events TSV -------------------------------------------------------------

_TSV_COLUMNS = ["onset", "duration", "eventType", "confidence", "channels"]
_MISSING = {"", "n/a", "na", "nan"}
_EVENTS_SUFFIX = "_events.tsv"
_EEG_SUFFIX = "_eeg"


def recording_key(path) -> str:
    """The name a recording and its events file share (BIDS / SzCORE naming).

    A recording loses its extension (one :func:`~sigalex.io.load_recording` reads) and a
    trailing BIDS ``_eeg``; an events file loses ``_events.tsv`` (or ``.tsv``)::

        sub-01_run-01_eeg.edf     -> sub-01_run-01
        sub-01_run-01_events.tsv  -> sub-01_run-01
        chb01_03.edf              -> chb01_03

    So ``recording_key(events_file_name(r)) == recording_key(r)``: the key pairs a recording
    with its events, and reference events with detected ones.

    Parameters
    ----------
    path : str or Path
        A file path or name (only the name counts), or a recording id.
    """
    name = Path(path).name
    lower = name.lower()
    for suffix in (_EVENTS_SUFFIX, ".tsv"):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    ext = Path(name).suffix.lower()
    if ext in readable_extensions():
        name = name[: -len(ext)]
    return name.removesuffix(_EEG_SUFFIX)


def events_file_name(recording) -> str:
    """The name of a recording's events TSV: ``<key>_events.tsv`` (:func:`recording_key`).

    ``sub-01_run-01_eeg.edf`` → ``sub-01_run-01_events.tsv``, ``chb01_03.edf`` →
    ``chb01_03_events.tsv``. The file lies beside the recording:
    ``path.with_name(events_file_name(path))``.
    """
    return recording_key(recording) + _EVENTS_SUFFIX


def read_events_tsv(path) -> list[Annotation]:
    """Read a BIDS / SzCORE events file (tab-separated, with a header row).

    Columns ``onset`` and ``duration`` (seconds) are required; ``eventType`` becomes the
    label, ``confidence`` a float (``n/a`` → None), ``channels`` a comma-separated list
    (``n/a`` or empty → all). Other columns (``dateTime``, ``recordingDuration``…) are
    ignored.

    Raises
    ------
    DataError
        Missing file, a file that is not UTF-8 text (an EDF given for its events), a missing
        column, a row with fewer cells than the header (a file cut short), or a value that is
        not a number (naming the line).
    """
    path = _existing(path)
    try:
        return _read_events_rows(path)
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: not a UTF-8 text events file (a recording? give its _events.tsv)"
        ) from None


def _read_events_rows(path: Path) -> list[Annotation]:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        header = next(rows, None)
        if header is None:
            raise DataError(f"{path}: empty events file (expected a header row)")
        header = [h.strip() for h in header]
        missing = [c for c in ("onset", "duration") if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; header is {header}")
        col = {name: i for i, name in enumerate(header)}
        out = []
        for lineno, row in enumerate(rows, 2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                raise DataError(
                    f"{path}:{lineno}: {len(row)} of {len(header)} columns (the file is cut "
                    "short, or a cell holds a tab)"
                )

            def cell(name: str, row=row) -> str:
                i = col.get(name)
                return row[i].strip() if i is not None and i < len(row) else ""

            try:
                onset = float(cell("onset"))
                duration = cell("duration")
                duration = 0.0 if duration.lower() in _MISSING else float(duration)
                confidence = cell("confidence")
                confidence = None if confidence.lower() in _MISSING else float(confidence)
            except ValueError as exc:
                raise DataError(f"{path}:{lineno}: {exc}") from None
            if not math.isfinite(onset) or not math.isfinite(duration) or duration < 0:
                raise DataError(f"{path}:{lineno}: bad {onset=} / {duration=}")
            label = cell("eventType")
            label = "" if label.lower() == "n/a" else label
            channels = cell("channels")
            names = (
                ()
                if channels.lower() in _MISSING
                else tuple(c.strip() for c in channels.split(",") if c.strip())
            )
            out.append(Annotation(onset, duration, label, names, confidence))
    return out


def _fmt(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else f"{float(value):.1f}"


def write_events_tsv(
    path,
    annotations: Iterable[Annotation],
    *,
    recording_duration_s: float | None = None,
    date_time: str | None = None,
) -> Path:
    """Write annotations as a BIDS / SzCORE events TSV, atomically (temp file + rename).

    Columns ``onset``, ``duration``, ``eventType``, ``confidence``, ``channels``; plus
    ``dateTime`` and ``recordingDuration`` when given (SzCORE asks for both). Missing values
    are written ``n/a``. Floats are written in full (``repr``), so reading back is exact.

    Parameters
    ----------
    path : str or Path
    annotations : iterable of Annotation
    recording_duration_s : float, optional
        Seconds; written in every row as ``recordingDuration``.
    date_time : str, optional
        The recording's start (``"2024-01-31 13:43:04"``), written as ``dateTime``.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    columns = list(_TSV_COLUMNS)
    if date_time is not None:
        columns.append("dateTime")
    if recording_duration_s is not None:
        columns.append("recordingDuration")
    lines = ["\t".join(columns)]
    for a in annotations:
        for name in a.channels:
            if "," in name or "\t" in name:
                raise ParameterError(f"channel name {name!r} cannot contain ',' or a tab")
        if "\t" in a.label or "\n" in a.label:
            raise ParameterError(f"label {a.label!r} cannot contain a tab or newline")
        cells = [
            _fmt(a.onset),
            _fmt(a.duration),
            a.label or "n/a",
            "n/a" if a.confidence is None else _fmt(a.confidence),
            ",".join(a.channels) or "n/a",
        ]
        if date_time is not None:
            cells.append(date_time)
        if recording_duration_s is not None:
            cells.append(_fmt(recording_duration_s))
        lines.append("\t".join(cells))
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
