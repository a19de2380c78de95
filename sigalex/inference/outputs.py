"""The output folder of ``sigalex predict``: parts per recording, and sinks that write the tables.

Each finished recording is first written as one JSON *part* (``parts/<key>.json``: its window
probabilities, or its error). The *sinks* then assemble the output files from all parts, at the
end of a run and on Ctrl-C, each file written atomically: a killed run never leaves a
half-written table, and ``--resume`` skips recordings whose part says ``ok``. A sink is any
object with ``write(context, parts, state) -> None``; :data:`DEFAULT_SINKS` writes

``windows.tsv``
    ``recording, start_s, end_s, predicted, prob_<class>...``: one row per window; the span of
    the recording the window's image shows, in seconds (end exclusive).
``events/<stem>_events.tsv``
    For models with a positive class: positive windows merged into events
    (:func:`~sigalex.inference.events.windows_to_events`), in the BIDS / SzCORE layout
    ``onset, duration, eventType, confidence, channels, recordingDuration``; a recording
    without events gets one ``bckg`` row spanning it, as SzCORE asks.
``recordings.tsv``
    ``recording, status, duration_s, sample_rate, n_windows, label, confidence, n_events,
    events_file, notes``: one row per input.
``errors.tsv``
    ``recording, reason`` for every input that could not be classified.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .._files import write_tsv
from ..annotations import events_file_name, recording_key, write_events_tsv
from ..recording import Annotation
from .predictor import FileResult, Prediction

WINDOW_COLUMNS = ("recording", "channel", "start_s", "end_s", "predicted")
"""First columns of ``windows.tsv``; ``prob_<class>`` follows for every class."""
RECORDING_COLUMNS = (
    "recording", "channel", "status", "duration_s", "sample_rate", "n_windows", "label",
    "confidence", "n_events", "events_file", "notes",
)  # fmt: skip
ERROR_COLUMNS = ("recording", "reason")
RESULT_FILES = ("windows.tsv", "recordings.tsv", "errors.tsv")
"""The tables :data:`DEFAULT_SINKS` write (``events/`` and ``summary.json`` besides)."""
BACKGROUND_EVENT = "bckg"
EXIT_OK = 0
EXIT_SOME_FAILED = 3
EXIT_ALL_FAILED = 4
"""Exit statuses of ``sigalex predict``: every input classified, some failed, none classified."""


def exit_status(failed: int, total: int) -> int:
    """:data:`EXIT_OK` without failures, :data:`EXIT_ALL_FAILED` when all ``total`` failed,
    else :data:`EXIT_SOME_FAILED`."""
    return EXIT_OK if failed == 0 else EXIT_ALL_FAILED if failed >= total else EXIT_SOME_FAILED


# ---------------------------------------------------------------------------------------------
# Parts


def part_key(recording: str, channel: str | None = None) -> str:
    """The file name of a recording's part: a hash of its real path (and channel)."""
    text = os.path.realpath(recording) + ("" if channel is None else f"\0{channel}")
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def unique_stems(stems: dict[str, str]) -> dict[str, str]:
    """Recording path → its file-name stem, made unique: a stem two paths share gets
    ``__<8 hex of its path's hash>`` (``a/rec.edf`` and ``b/rec.edf`` write apart)."""
    paths: dict[str, set[str]] = {}
    for path, stem in stems.items():
        paths.setdefault(stem, set()).add(path)
    return {
        path: stem if len(paths[stem]) == 1 else f"{stem}__{part_key(path)[:8]}"
        for path, stem in stems.items()
    }


def read_parts(parts_dir: Path) -> dict[str, dict]:
    """Every readable part in ``parts_dir`` by key (a damaged part is redone on resume)."""
    out = {}
    for p in sorted(parts_dir.glob("*.json")):
        try:
            part = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(part, dict) and "recording" in part and "status" in part:
            out[p.stem] = part
    return out


def part_of(result: FileResult, name: str, checkpoint_sha: str, channels: str | None) -> dict:
    """A result as a part (plain JSON values); ``channels`` is the run's channel mapping."""
    part: dict[str, object] = {
        "recording": name,
        "channel": result.prediction.channel if result.prediction is not None else None,
        "path": os.path.realpath(result.path),
        "checkpoint": checkpoint_sha,
        "channels": channels,
    }
    if result.ok:
        pred = result.prediction
        assert pred is not None  # a result without an error has its prediction
        part.update(
            status="ok",
            duration_s=pred.duration_s,
            sample_rate=pred.sample_rate,
            start_s=pred.start_s.tolist(),
            end_s=pred.end_s.tolist(),
            probabilities=np.round(pred.probabilities.astype(np.float64), 7).tolist(),
            notes=list(pred.notes),
            seconds=result.seconds,
        )
    else:
        part.update(status="error", reason=result.error, seconds=result.seconds)
    return part


def prediction_of(part: dict, classes: Sequence[str], positive_class: str | None) -> Prediction:
    """A part with ``status == "ok"`` back as a :class:`Prediction`."""
    return Prediction(
        part["recording"], list(classes), np.asarray(part["start_s"], dtype=np.float64),
        np.asarray(part["end_s"], dtype=np.float64),
        np.asarray(part["probabilities"], dtype=np.float32).reshape(-1, len(classes)),
        float(part["duration_s"]), positive_class, part.get("sample_rate"),
        list(part.get("notes") or []), part.get("channel"),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Tables


def _safe(name: str) -> str:
    """A name fit for a file name: Unicode kept (NFC), path separators and control
    characters replaced (``patient_Müller`` stays ``patient_Müller``)."""
    return re.sub(r"[\x00-\x1f\x7f/\\]+", "_", unicodedata.normalize("NFC", name)).strip() or "_"


def events_stem(recording: str) -> str:
    """The name an events file is matched by (:func:`sigalex.annotations.recording_key`:
    ``sub-01_run-01_eeg.edf`` → ``sub-01_run-01``), as ``sigalex score`` pairs references and
    hypotheses; Unicode kept, path separators and control characters replaced."""
    return _safe(recording_key(recording))


@dataclass
class OutputContext:
    """What the sinks share: the folder, the model's classes, the event settings."""

    out: Path
    classes: list[str]
    positive_class: str | None
    threshold: float = 0.5
    min_duration_s: float = 0.0
    merge_gap_s: float = 0.0
    extra_errors: list[tuple[str, str]] = field(default_factory=list)


class Sink(Protocol):
    """Writes one kind of output from all parts; ``state`` carries results between sinks."""

    def write(self, context: OutputContext, parts: list[dict], state: dict) -> None: ...


class WindowsTable:
    """``windows.tsv``: one row per window."""

    def write(self, context: OutputContext, parts: list[dict], state: dict) -> None:
        classes = context.classes

        def rows():
            for p in parts:
                if p["status"] != "ok":
                    continue
                probs = np.asarray(p["probabilities"], dtype=np.float64).reshape(-1, len(classes))
                best = probs.argmax(1) if len(probs) else []
                name, channel = p["recording"], p.get("channel")
                for s, e, k, row in zip(p["start_s"], p["end_s"], best, probs, strict=True):
                    yield [name, channel, float(s), float(e), classes[k], *map(float, row)]

        columns = [*WINDOW_COLUMNS, *(f"prob_{c}" for c in classes)]
        write_tsv(context.out / "windows.tsv", columns, rows())
        state["windows"] = sum(len(p["start_s"]) for p in parts if p["status"] == "ok")


class EventsFiles:
    """``events/<stem>_events.tsv`` per classified recording, for models with a positive class;
    files of recordings no longer in the results are removed."""

    def write(self, context: OutputContext, parts: list[dict], state: dict) -> None:
        state["events"] = {}
        if context.positive_class is None:
            return
        ok = [p for p in parts if p["status"] == "ok"]
        files = unique_stems({p["path"]: events_stem(p["recording"]) for p in ok})
        events_dir = context.out / "events"
        written = set()
        for p in ok:
            pred = prediction_of(p, context.classes, context.positive_class)
            events = pred.events(
                threshold=context.threshold, min_duration_s=context.min_duration_s,
                merge_gap_s=context.merge_gap_s,
            )  # fmt: skip
            stem = files[p["path"]]
            if pred.channel is not None:
                stem = f"{stem}_ch-{_safe(pred.channel)}"
            name = events_file_name(stem)
            channels = () if pred.channel is None else (pred.channel,)
            rows = events or [Annotation(0.0, pred.duration_s, BACKGROUND_EVENT, channels, None)]
            write_events_tsv(events_dir / name, rows, recording_duration_s=pred.duration_s)
            written.add(name)
            state["events"][(p["recording"], pred.channel)] = (len(events), f"events/{name}")
        if events_dir.is_dir():
            for stale in events_dir.glob("*_events.tsv"):
                if stale.name not in written:
                    stale.unlink(missing_ok=True)


class RecordingsTable:
    """``recordings.tsv``: one row per input, with the clip-level answer and its events."""

    def write(self, context: OutputContext, parts: list[dict], state: dict) -> None:
        events = state.get("events", {})
        failed = [None] * 7
        rows = []
        for p in parts:
            if p["status"] != "ok":
                rows.append([p["recording"], None, "error", *failed, p.get("reason")])
                continue
            pred = prediction_of(p, context.classes, context.positive_class)
            n_events, events_file = events.get((p["recording"], pred.channel), (None, None))
            rows.append(
                [
                    p["recording"], pred.channel, "ok", float(pred.duration_s), pred.sample_rate,
                    pred.n_windows, pred.label, pred.confidence, n_events, events_file,
                    "; ".join(pred.notes) or None,
                ]
            )  # fmt: skip
        rows += [[name, None, "error", *failed, reason] for name, reason in context.extra_errors]
        write_tsv(context.out / "recordings.tsv", RECORDING_COLUMNS, rows)


class ErrorsTable:
    """``errors.tsv``: every input that could not be classified, and why."""

    def write(self, context: OutputContext, parts: list[dict], state: dict) -> None:
        errors = [(p["recording"], p.get("reason", "")) for p in parts if p["status"] != "ok"]
        errors += list(context.extra_errors)
        write_tsv(context.out / "errors.tsv", ERROR_COLUMNS, errors)
        state["failed"] = len(errors)


DEFAULT_SINKS: tuple[Sink, ...] = (WindowsTable(), EventsFiles(), RecordingsTable(), ErrorsTable())
"""The sinks ``sigalex predict`` writes with, in order (events before the recordings table,
which names the events files)."""


def assemble(context: OutputContext, parts: dict[str, dict], sinks=DEFAULT_SINKS) -> dict:
    """Write every sink's output from ``parts``; returns the counts for ``summary.json``."""
    order = sorted(parts.values(), key=lambda p: p["recording"])
    state: dict = {}
    for sink in sinks:
        sink.write(context, order, state)
    events = state.get("events", {})
    noted = sum(bool(p.get("notes")) for p in order if p["status"] == "ok")
    return {
        "recordings": len(order) + len(context.extra_errors),
        "with_notes": noted,
        "classified": sum(p["status"] == "ok" for p in order),
        "failed": state.get("failed", sum(p["status"] != "ok" for p in order)),
        "windows": state.get("windows"),
        "events": sum(n for n, _ in events.values()) if context.positive_class else None,
    }


__all__ = [
    "BACKGROUND_EVENT",
    "DEFAULT_SINKS",
    "ERROR_COLUMNS",
    "EXIT_ALL_FAILED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "RECORDING_COLUMNS",
    "RESULT_FILES",
    "WINDOW_COLUMNS",
    "ErrorsTable",
    "EventsFiles",
    "OutputContext",
    "RecordingsTable",
    "Sink",
    "WindowsTable",
    "assemble",
    "events_stem",
    "exit_status",
    "part_key",
    "part_of",
    "prediction_of",
    "read_parts",
]
