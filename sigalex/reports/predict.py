"""``report.html`` of a ``sigalex predict`` output folder: a sortable table of the recordings,
per recording the positive-class probability over time with the detected events shaded and
reference events beside them, and the errors.

Built from the final tables (``recordings.tsv``, ``windows.tsv``, ``events/``,
``errors.tsv``, ``summary.json``): after a run, or after the shards are assembled.
Reference events come from ``reference`` (a folder of events TSVs, matched by name as
``sigalex score`` matches them) or, without it, from an EDF+ recording's own annotations.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..annotations import read_events_tsv, recording_key
from ..errors import DataError
from .common import (
    MISSING,
    figure_uri,
    fmt_number,
    new_figure,
    number,
    read_tsv,
    render,
    write_report,
)

MAX_PLOTTED = 50
"""Recordings plotted at most (the first in the table's order); the table lists them all."""
BACKGROUND = "bckg"
_EDF = (".edf", ".bdf")


def _reference_files(folder: Path) -> dict[str, Path]:
    files = sorted(folder.rglob("*_events.tsv")) or sorted(folder.rglob("*.tsv"))
    return {recording_key(f): f for f in files}


def _spans(annotations) -> list[tuple[float, float, str]]:
    """(onset, offset, label) of events, background rows left out."""
    out = []
    for a in annotations:
        if a.label.lower() == BACKGROUND or not a.duration > 0:
            continue
        out.append((float(a.onset), float(a.onset + a.duration), a.label))
    return out


def _edf_annotations(recording: str) -> list:
    path = Path(recording)
    if path.suffix.lower() not in _EDF or not path.is_file():
        return []
    from ..sources import open_source

    return list(getattr(open_source(path), "annotations", []) or [])


def _reference(recording: str, references: dict[str, Path] | None) -> tuple[list, str | None]:
    """A recording's reference events and where they came from (``None``: none found)."""
    try:
        if references is not None:
            found = references.get(recording_key(recording))
            return (_spans(read_events_tsv(found)), found.name) if found else ([], None)
        spans = _spans(_edf_annotations(recording))
        return spans, ("EDF+ annotations" if spans else None)
    except Exception as exc:  # a reference that cannot be read is said, not fatal
        return [], f"not readable: {exc}"


def _read_windows(path: Path, wanted: set[tuple[str, str]], columns: list[str]) -> dict:
    """``windows.tsv`` rows of the ``wanted`` (recording, channel) pairs, streamed: start,
    end and the probability columns ``columns`` as arrays."""
    rows: dict[tuple[str, str], list] = {k: [] for k in wanted}
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, [])
        at = {name: i for i, name in enumerate(header)}
        idx = [at[c] for c in columns if c in at]
        for r in reader:
            channel = r[at["channel"]] if "channel" in at else ""
            key = (r[at["recording"]], "" if channel == MISSING else channel)
            if key in rows:
                rows[key].append(
                    [float(r[at["start_s"]]), float(r[at["end_s"]])] + [float(r[i]) for i in idx]
                )
    return {k: np.asarray(v, dtype=np.float64).reshape(-1, 2 + len(idx)) for k, v in rows.items()}


def _events(out: Path, events_file: str) -> list[tuple[float, float, str]]:
    if not events_file:
        return []
    path = out / events_file
    return _spans(read_events_tsv(path)) if path.is_file() else []


def _plot(name, windows, columns, positive, threshold, events, reference, duration) -> str:
    fig = new_figure(11.0, 2.1)
    ax = fig.add_subplot()
    mid = (windows[:, 0] + windows[:, 1]) / 2
    for j, column in enumerate(columns):
        label = column.removeprefix("prob_")
        ax.plot(mid, windows[:, 2 + j], lw=1.4, marker="." if len(mid) < 60 else None,
                label=f"P({label})")  # fmt: skip
    for k, (a, b, _) in enumerate(events):
        ax.axvspan(a, b, ymin=0.12, ymax=1.0, color="#cf222e", alpha=0.18, lw=0,
                   label="detected event" if k == 0 else None)  # fmt: skip
    for k, (a, b, _) in enumerate(reference):
        ax.axvspan(a, b, ymin=0.0, ymax=0.09, color="#0969da", alpha=0.85, lw=0,
                   label="reference event" if k == 0 else None)  # fmt: skip
    if positive is not None and threshold is not None:
        ax.axhline(threshold, color="#59636e", ls="--", lw=0.8, label=f"threshold {threshold:g}")
    ax.set_xlim(0, max(duration or 0.0, float(windows[:, 1].max()) if len(windows) else 1.0))
    ax.set_ylim(-0.14, 1.04)
    ax.set_yticks([0, 0.5, 1])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_title(name, fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, ncols=4, framealpha=0.85)
    return figure_uri(fig)


def predict_report(out_dir, *, reference=None, max_plotted: int = MAX_PLOTTED) -> Path:
    """Write ``report.html`` into a ``sigalex predict`` output folder; returns its path.

    Parameters
    ----------
    out_dir : path
        The folder, its tables final (after the run, or after ``--assemble``).
    reference : path, optional
        A folder of reference events TSVs (``<recording>_events.tsv``, as ``sigalex score``
        reads them), drawn beside the detected events; without it, an EDF+ recording's own
        annotations are drawn when the recording is still at its path.
    max_plotted : int
        Recordings plotted at most (the first in the table's order; the report says so).

    Raises
    ------
    DataError
        No ``recordings.tsv`` (not an output folder, or shards not yet assembled); a
        ``reference`` that is not a folder.
    """
    out = Path(out_dir)
    if not (out / "recordings.tsv").is_file():
        raise DataError(
            f"{out}: no recordings.tsv (not a sigalex predict folder, or its shards are not "
            "assembled yet: sigalex predict --assemble)"
        )
    references = None
    if reference is not None:
        if not Path(reference).is_dir():
            raise DataError(f"--reference {reference}: not a folder of events TSVs")
        references = _reference_files(Path(reference))
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    events_cfg = summary.get("events") or {}
    positive = events_cfg.get("positive_class")
    threshold = number(events_cfg.get("threshold"))
    recordings = read_tsv(out / "recordings.tsv")
    has_channels = any(r.get("channel") for r in recordings)
    ok = [r for r in recordings if r.get("status") == "ok"]
    plotted = ok[: max(0, int(max_plotted))]
    classes = list(summary.get("classes") or [])
    columns = [f"prob_{positive}"] if positive else [f"prob_{c}" for c in classes[:10]]
    keys = {(r["recording"], r.get("channel") or "") for r in plotted}
    windows = _read_windows(out / "windows.tsv", keys, columns)
    plots = []
    for i, r in enumerate(plotted):
        key = (r["recording"], r.get("channel") or "")
        w = windows.get(key)
        if w is None or len(w) == 0:
            continue
        ref, ref_source = _reference(r["recording"], references)
        events = _events(out, r.get("events_file") or "")
        name = r["recording"] + (f" [{r['channel']}]" if r.get("channel") else "")
        plots.append(
            {
                "anchor": f"rec-{i}",
                "name": name,
                "uri": _plot(
                    name, w, columns, positive, threshold, events, ref, number(r.get("duration_s"))
                ),
                "n_events": len(events),
                "n_reference": len(ref),
                "reference_source": ref_source,
            }
        )
    anchors = {p["name"]: p["anchor"] for p in plots}
    rows = []
    for r in recordings:
        name = r["recording"] + (f" [{r['channel']}]" if r.get("channel") else "")
        rows.append(
            {
                "recording": r["recording"],
                "channel": r.get("channel") or "",
                "status": r.get("status", ""),
                "label": r.get("label") or "",
                "confidence": fmt_number(r.get("confidence") or None),
                "confidence_sort": r.get("confidence") or "-1",
                "n_events": r.get("n_events") or "",
                "duration": fmt_number(r.get("duration_s") or None, 1),
                "duration_sort": r.get("duration_s") or "-1",
                "notes": r.get("notes") or "",
                "anchor": anchors.get(name),
            }
        )
    outputs = summary.get("outputs") or {}
    shards = summary.get("shards") or {}
    device = summary.get("device") or ", ".join(summary.get("devices") or [])
    facts = [
        ("checkpoint", summary.get("checkpoint")),
        ("checkpoint sha256", (summary.get("checkpoint_sha256") or "")[:16]),
        ("classes", ", ".join(classes)),
        ("positive class", positive),
        ("event threshold", threshold),
        ("stride (s)", summary.get("stride_s")),
        ("device", device),
        ("shards", shards.get("count")),
        ("recordings", outputs.get("recordings", len(recordings))),
        ("classified", outputs.get("classified", len(ok))),
        ("failed", outputs.get("failed")),
        ("windows", outputs.get("windows")),
        ("events", outputs.get("events")),
        ("exit status", summary.get("exit_status")),
        ("reference events", str(reference) if reference is not None else "EDF+ annotations"),
    ]
    html = render(
        "predict.html.j2",
        title=f"sigalex predict {out.resolve().name}",
        out_dir=str(out),
        facts=[(k, v) for k, v in facts if v not in (None, "")],
        rows=rows,
        has_channels=has_channels,
        plots=plots,
        n_ok=len(ok),
        max_plotted=max_plotted,
        positive=positive,
        errors=read_tsv(out / "errors.tsv"),
    )
    return write_report(out, html)


__all__ = ["MAX_PLOTTED", "predict_report"]
