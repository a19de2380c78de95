"""Event scoring of seizure detections, SzCORE style: ``sigalex score``.

Scores come from the ``timescoring`` package (the SzCORE reference implementation), with
SzCORE's defaults:

- **event-based**: a reference event is detected when a hypothesis event overlaps it widened by
  ``onset_tolerance_s`` (30 s) before and ``offset_tolerance_s`` (60 s) after; hypothesis
  events that overlap no widened, detected reference event are false alarms. Events of either
  side closer than ``min_gap_s`` (90 s) are first merged and events longer than
  ``max_event_duration_s`` (300 s) split. Sensitivity = TP / reference events, precision =
  TP / (TP + FP), F1 = 2 TP / (2 TP + FP + FN), false alarms per 24 h = FP / days recorded.
- **window-based** (sample-based, at ``sample_rate`` = 1 Hz): every second is a sample;
  sensitivity = TP / (TP + FN), specificity = TN / (TN + FP), precision, F1.

Across recordings, counts are summed before dividing (as SzCORE does). Events whose
``eventType`` is ``bckg`` or ``background`` are not events (SzCORE marks seizure-free
recordings with one ``bckg`` row). A recording's duration comes from ``duration_s=``, else the
``recordingDuration`` column of either file, else the last event's end (a warning: false alarm
rates then mean little).
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from ._files import atomic_write_text
from .annotations import read_events_tsv, recording_key
from .errors import DataError, ParameterError
from .io import Annotation

SZCORE_DEFAULTS = {
    "onset_tolerance_s": 30.0,
    "offset_tolerance_s": 60.0,
    "max_event_duration_s": 300.0,
    "min_gap_s": 90.0,
}
BACKGROUND_TYPES = frozenset({"bckg", "background"})
SECONDS_PER_DAY = 86400.0

__all__ = [
    "BACKGROUND_TYPES",
    "SZCORE_DEFAULTS",
    "format_table",
    "pair_event_files",
    "score_events",
    "score_files",
]


def _intervals(
    events: Iterable[Annotation], duration_s: float, event_types: Iterable[str] | None
) -> list[tuple[float, float]]:
    """Sorted, non-overlapping ``(start_s, end_s)`` of the counted events, clipped to the file."""
    keep = None if event_types is None else {t.lower() for t in event_types}
    spans = []
    for a in events:
        label = (a.label or "").lower()
        if label in BACKGROUND_TYPES or (keep is not None and label not in keep):
            continue
        lo, hi = max(0.0, float(a.onset)), min(duration_s, float(a.onset + a.duration))
        if hi > lo:
            spans.append((lo, hi))
    merged: list[list[float]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _div(num: float, den: float) -> float | None:
    return num / den if den else None


def score_events(
    reference: Iterable[Annotation],
    hypothesis: Iterable[Annotation],
    *,
    duration_s: float,
    event_types: Iterable[str] | None = None,
    onset_tolerance_s: float = 30.0,
    offset_tolerance_s: float = 60.0,
    max_event_duration_s: float = 300.0,
    min_gap_s: float = 90.0,
    sample_rate: float = 1.0,
) -> dict:
    """Score one recording's detections against its reference events.

    Parameters
    ----------
    reference, hypothesis : iterable of Annotation
        Events in seconds from the recording start (``bckg`` rows are ignored).
    duration_s : float
        Length of the recording in seconds (> 0).
    event_types : iterable of str, optional
        Only count events of these ``eventType`` values (case-insensitive); default: all but
        background.
    onset_tolerance_s, offset_tolerance_s, max_event_duration_s, min_gap_s : float
        SzCORE's event-scoring parameters, seconds.
    sample_rate : float
        Hz of the window-based (sample) scoring.

    Returns
    -------
    dict
        ``duration_s``, ``event`` (``n_reference, tp, fp, fn, sensitivity, precision, f1,
        fp_per_24h``) and ``window`` (``tp_s, fp_s, fn_s, tn_s, sensitivity, specificity,
        precision, f1``; durations in seconds). Undefined ratios are ``None``.
    """
    from timescoring import scoring
    from timescoring.annotations import Annotation as TsAnnotation

    if not (isinstance(duration_s, int | float) and math.isfinite(duration_s) and duration_s > 0):
        raise ParameterError(f"{duration_s=} must be a positive number of seconds")
    for name, value in (
        ("onset_tolerance_s", onset_tolerance_s), ("offset_tolerance_s", offset_tolerance_s),
        ("max_event_duration_s", max_event_duration_s), ("min_gap_s", min_gap_s),
    ):  # fmt: skip
        if not (isinstance(value, int | float) and value >= 0):
            raise ParameterError(f"{name}={value!r} must be a number of seconds >= 0")
    if not max_event_duration_s > 0:
        raise ParameterError(f"{max_event_duration_s=} must be > 0")
    ref = _intervals(reference, duration_s, event_types)
    hyp = _intervals(hypothesis, duration_s, event_types)

    fs_event = 10  # timescoring's own event resolution (0.1 s)
    n_event = max(1, round(duration_s * fs_event))
    params = scoring.EventScoring.Parameters(
        toleranceStart=onset_tolerance_s,
        toleranceEnd=offset_tolerance_s,
        minOverlap=0,
        maxEventDuration=max_event_duration_s,
        minDurationBetweenEvents=min_gap_s,
    )
    ev = scoring.EventScoring(
        TsAnnotation(ref, fs_event, n_event), TsAnnotation(hyp, fs_event, n_event), params
    )
    n_sample = max(1, round(duration_s * sample_rate))
    fs = sample_rate
    # timescoring annotates fs as int, but its arithmetic (round(t * fs)) takes any rate in Hz.
    sa = scoring.SampleScoring(TsAnnotation(ref, fs, n_sample), TsAnnotation(hyp, fs, n_sample), fs)  # pyright: ignore[reportArgumentType]
    tp, fp, fn = int(sa.tp), int(sa.fp), int(sa.refTrue - sa.tp)
    tn = int(sa.numSamples) - tp - fp - fn
    days = duration_s / SECONDS_PER_DAY
    return {
        "duration_s": float(duration_s),
        "event": {
            "n_reference": int(ev.refTrue),
            "n_hypothesis": len(ev.hyp.events),
            "tp": int(ev.tp),
            "fp": int(ev.fp),
            "fn": int(ev.refTrue - ev.tp),
            "sensitivity": _div(ev.tp, ev.refTrue),
            "precision": _div(ev.tp, ev.tp + ev.fp),
            "f1": _div(2 * ev.tp, 2 * ev.tp + ev.fp + (ev.refTrue - ev.tp)),
            "fp_per_24h": ev.fp / days,
        },
        "window": {
            "tp_s": tp / fs,
            "fp_s": fp / fs,
            "fn_s": fn / fs,
            "tn_s": tn / fs,
            "sensitivity": _div(tp, tp + fn),
            "specificity": _div(tn, tn + fp),
            "precision": _div(tp, tp + fp),
            "f1": _div(2 * tp, 2 * tp + fp + fn),
        },
    }


def _total(per_recording: Sequence[dict]) -> dict:
    """Counts summed over recordings, then the ratios (SzCORE's aggregation)."""
    dur = sum(r["duration_s"] for r in per_recording)
    e = {k: sum(r["event"][k] for r in per_recording) for k in ("n_reference", "n_hypothesis", "tp", "fp", "fn")}  # fmt: skip
    w = {k: sum(r["window"][k] for r in per_recording) for k in ("tp_s", "fp_s", "fn_s", "tn_s")}
    return {
        "duration_s": dur,
        "event": {
            **e,
            "sensitivity": _div(e["tp"], e["n_reference"]),
            "precision": _div(e["tp"], e["tp"] + e["fp"]),
            "f1": _div(2 * e["tp"], 2 * e["tp"] + e["fp"] + e["fn"]),
            "fp_per_24h": e["fp"] / (dur / SECONDS_PER_DAY) if dur else None,
        },
        "window": {
            **w,
            "sensitivity": _div(w["tp_s"], w["tp_s"] + w["fn_s"]),
            "specificity": _div(w["tn_s"], w["tn_s"] + w["fp_s"]),
            "precision": _div(w["tp_s"], w["tp_s"] + w["fp_s"]),
            "f1": _div(2 * w["tp_s"], 2 * w["tp_s"] + w["fp_s"] + w["fn_s"]),
        },
    }


def _recording_duration(path: Path) -> float | None:
    """The ``recordingDuration`` column of an events TSV, if any."""
    with open(path, encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t")
        header = [h.strip() for h in next(rows, [])]
        if "recordingDuration" not in header:
            return None
        i = header.index("recordingDuration")
        for row in rows:
            if i < len(row) and row[i].strip() not in ("", "n/a"):
                try:
                    return float(row[i])
                except ValueError:
                    raise DataError(
                        f"{path}: recordingDuration {row[i]!r} is not a number"
                    ) from None
    return None


def _event_files(folder: Path) -> dict[str, Path]:
    files = sorted(folder.rglob("*_events.tsv")) or sorted(folder.rglob("*.tsv"))
    out: dict[str, Path] = {}
    for f in files:
        k = recording_key(f)
        if k in out:
            raise DataError(f"{folder}: two events files named {f.name} ({out[k]} and {f})")
        out[k] = f
    return out


def pair_event_files(reference, hypothesis) -> list[tuple[str, Path, Path | None]]:
    """Pairs ``(name, reference file, hypothesis file or None)``.

    Two files pair with each other; two folders pair their ``*_events.tsv`` files (searched
    recursively) by name. A reference without a hypothesis file pairs with ``None`` (no
    detections); a hypothesis without a reference is an error.
    """
    ref, hyp = Path(reference), Path(hypothesis)
    for p in (ref, hyp):
        if not p.exists():
            raise DataError(f"{p}: no such file or folder")
    if ref.is_file() and hyp.is_file():
        return [(recording_key(ref), ref, hyp)]
    if ref.is_dir() != hyp.is_dir():
        raise DataError(f"--reference {ref} and --hypothesis {hyp} must both be files or folders")
    refs, hyps = _event_files(ref), _event_files(hyp)
    if not refs:
        raise DataError(f"{ref}: no events TSV files")
    extra = sorted(set(hyps) - set(refs))
    if extra:
        raise DataError(
            f"{hyp}: {len(extra)} hypothesis file(s) have no reference in {ref}: "
            f"{', '.join(extra[:5])}"
        )
    return [(k, refs[k], hyps.get(k)) for k in sorted(refs)]


def score_files(reference, hypothesis, *, duration_s: float | None = None, **options) -> dict:
    """Score events TSV files (or folders of them, matched by name).

    Parameters
    ----------
    reference, hypothesis : path
        BIDS / SzCORE events TSV files, or folders of ``*_events.tsv``.
    duration_s : float, optional
        Length of every recording in seconds (default: the files' ``recordingDuration``).
    **options
        :func:`score_events` options (tolerances, ``event_types``).

    Returns
    -------
    dict
        ``recordings`` (name → :func:`score_events` result, plus ``reference`` and
        ``hypothesis`` paths), ``total`` (summed counts and their ratios), ``parameters``,
        ``missing_hypothesis`` (recordings scored as having no detections) and ``notes``
        (events that reach past a recording's end, never dropped without a word).
    """
    results, missing, notes = {}, [], []
    for name, ref, hyp in pair_event_files(reference, hypothesis):
        ref_events = read_events_tsv(ref)
        hyp_events = read_events_tsv(hyp) if hyp is not None else []
        if hyp is None:
            missing.append(name)
        dur = duration_s
        if dur is None:
            dur = _recording_duration(ref) or (_recording_duration(hyp) if hyp else None)
        if dur is None:
            ends = [a.offset for a in (*ref_events, *hyp_events)]
            dur = max(ends, default=0.0)
            warnings.warn(
                f"{name}: no recordingDuration column and no --duration-s; using the last "
                f"event's end, {dur:g} s",
                stacklevel=2,
            )
            if not dur > 0:
                raise DataError(f"{name}: cannot tell the recording's duration; pass duration_s")
        for side, events in (("reference", ref_events), ("hypothesis", hyp_events)):
            late = [
                a for a in events
                if (a.label or "").lower() not in BACKGROUND_TYPES and a.offset > dur + 1e-6
            ]  # fmt: skip
            if late:
                notes.append(
                    f"{name}: {len(late)} {side} event(s) reach past the recording's end "
                    f"({dur:g} s; the first at {late[0].onset:g}-{late[0].offset:g} s): scored "
                    "only up to the end; is the duration right?"
                )
        r = score_events(ref_events, hyp_events, duration_s=dur, **options)
        r["reference"] = str(ref)
        r["hypothesis"] = None if hyp is None else str(hyp)
        results[name] = r
    params = {**SZCORE_DEFAULTS, **{k: v for k, v in options.items() if k in SZCORE_DEFAULTS}}
    return {
        "recordings": results,
        "total": _total(list(results.values())),
        "parameters": params,
        "missing_hypothesis": missing,
        "notes": notes,
    }


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def format_table(result: dict) -> str:
    """A plain-text table: one row per recording and a total row."""
    head = ["recording", "ref", "hyp", "TP", "FP", "sens", "prec", "F1", "FA/24h", "w-sens", "w-spec"]  # fmt: skip
    rows = []
    items = [*result["recordings"].items(), ("TOTAL", result["total"])]
    for name, r in items:
        e, w = r["event"], r["window"]
        rows.append(
            [
                name, str(e["n_reference"]), str(e["n_hypothesis"]), str(e["tp"]), str(e["fp"]),
                _fmt(e["sensitivity"]), _fmt(e["precision"]), _fmt(e["f1"]),
                _fmt(e["fp_per_24h"], 2), _fmt(w["sensitivity"]), _fmt(w["specificity"]),
            ]
        )  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(h.ljust(wd) if i == 0 else h.rjust(wd) for i, (h, wd) in enumerate(zip(head, widths, strict=True)))]  # fmt: skip
    for k, row in enumerate(rows):
        if k == len(rows) - 1:
            lines.append("  ".join("-" * wd for wd in widths))
        lines.append(
            "  ".join(
                c.ljust(wd) if i == 0 else c.rjust(wd)
                for i, (c, wd) in enumerate(zip(row, widths, strict=True))
            )
        )
    p = result["parameters"]
    lines.append(
        f"event scoring: onset tolerance {p['onset_tolerance_s']:g} s, offset "
        f"{p['offset_tolerance_s']:g} s, max event {p['max_event_duration_s']:g} s, merge gap "
        f"{p['min_gap_s']:g} s; window scoring per second"
    )
    if result["missing_hypothesis"]:
        lines.append(
            f"no hypothesis file (scored as no detections): {', '.join(result['missing_hypothesis'])}"
        )
    lines += [f"note: {note}" for note in result.get("notes", [])]
    return "\n".join(lines)


def write_json(path, result: dict) -> Path:
    """Write a :func:`score_files` result as JSON, atomically."""
    path = Path(path)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path
