"""``sigalex predict``: classify every input with a checkpoint and write the output folder.

The folder's files are described in :mod:`sigalex.inference.outputs`; ``summary.json`` adds
counts, timings (seconds, windows/s), the model, device, checkpoint (path and sha256), settings,
the sigalex version and the exit status. Exit status: :data:`EXIT_OK` (0) when every input was
classified, :data:`EXIT_SOME_FAILED` (3) when some were not, :data:`EXIT_ALL_FAILED` (4) when
none was.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .._files import FolderLock, atomic_write_text, remove_stale_temporaries, sha256_file
from .._version import __version__
from ..errors import DataError
from ..runtime import device_name
from .events import check_event_options
from .inputs import find_inputs
from .outputs import (
    DEFAULT_SINKS,
    RESULT_FILES,
    OutputContext,
    assemble,
    part_key,
    part_of,
    read_parts,
)
from .predictor import Predictor

EXIT_OK = 0
EXIT_SOME_FAILED = 3
EXIT_ALL_FAILED = 4


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return sys.stderr.isatty() or os.environ.get("SIGALEX_PROGRESS") == "1"


def predict_to_dir(
    checkpoint,
    inputs: Sequence,
    out,
    *,
    batch_size: int = 64,
    device=None,
    threshold: float = 0.5,
    min_duration_s: float = 0.0,
    merge_gap_s: float = 0.0,
    stride_s: float | None = None,
    resume: bool = False,
    sample_rate: float | None = None,
    progress: bool | None = None,
    compile: bool = False,
    channels: str | None = None,
    sinks=DEFAULT_SINKS,
) -> dict:
    """``sigalex predict``: classify every input and write the output folder (module docs).

    Parameters
    ----------
    checkpoint : path
        ``checkpoint.pt`` from ``sigalex run``.
    inputs : sequence of str or path
        Files, folders (searched recursively for readable extensions) and glob patterns.
    out : path
        Output folder (created), locked while the run lasts (a second run into it is refused,
        naming the first). Without ``resume``, earlier results in it are removed before any new
        work starts.
    batch_size : int
        Windows per forward pass.
    device : str, optional
        ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N``.
    threshold, min_duration_s, merge_gap_s : float
        Event settings (see :func:`~sigalex.inference.events.windows_to_events`); models with
        a positive class only.
    stride_s : float, optional
        Seconds between window starts (default: the checkpoint's training stride, or its
        window); finer strides time events more finely.
    resume : bool
        Skip inputs whose results in ``out`` are complete (same checkpoint); the outputs hold
        the union of old and new results, one row set per recording.
    sample_rate : float, optional
        Hz of rate-less files (``.txt``, ``.csv``, ``.npy``); default: the model's, noted in
        ``recordings.tsv``.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal, or ``SIGALEX_PROGRESS=1``).
    compile : bool
        ``torch.compile`` the network (see :class:`Predictor`).
    channels : {None, "mean", "each"}
        How a single-channel model meets multichannel recordings (see :class:`Predictor`);
        with ``"each"`` every channel gets its rows and its events file.
    sinks : sequence of Sink
        The writers of the output files (:data:`~sigalex.inference.outputs.DEFAULT_SINKS`).

    Returns
    -------
    dict
        The summary written to ``summary.json``; ``summary["exit_status"]`` is 0, 3 or 4.

    Raises
    ------
    DataError
        Unreadable checkpoint; an output folder in use by another run, or not writable;
        ``resume`` into results of another checkpoint or channel mapping; no inputs.
    """
    check_event_options(threshold, min_duration_s, merge_gap_s)
    checkpoint = Path(checkpoint)
    predictor = Predictor.from_checkpoint(
        checkpoint, device=device, batch_size=batch_size, compile=compile, channels=channels
    )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a folder")
    with FolderLock(out, f"sigalex predict --checkpoint {checkpoint}"):
        return _predict_locked(
            predictor, checkpoint, inputs, out, batch_size=batch_size, threshold=threshold,
            min_duration_s=min_duration_s, merge_gap_s=merge_gap_s, stride_s=stride_s,
            resume=resume, sample_rate=sample_rate, progress=progress, sinks=sinks,
        )  # fmt: skip


def _clear_results(out: Path) -> None:
    """Remove the tables of an earlier run (before new work starts, so that a run killed midway
    never leaves old tables that look complete and current)."""
    for name in (*RESULT_FILES, "summary.json"):
        (out / name).unlink(missing_ok=True)
    for folder, pattern in (("events", "*_events.tsv"), ("parts", "*.json")):
        for old in (out / folder).glob(pattern):
            old.unlink()


def _predict_locked(
    predictor: Predictor, checkpoint: Path, inputs, out: Path, *, batch_size, threshold,
    min_duration_s, merge_gap_s, stride_s, resume, sample_rate, progress, sinks,
) -> dict:  # fmt: skip
    started = time.perf_counter()
    sha = sha256_file(checkpoint)
    parts_dir = out / "parts"
    files, problems = find_inputs(inputs)
    if not files and not problems:
        raise DataError("no inputs given")  # before anything in the folder is touched
    remove_stale_temporaries(out)
    if resume:
        parts = read_parts(parts_dir)
        foreign = [p for p in parts.values() if p.get("checkpoint") != sha]
        if foreign:
            raise DataError(
                f"{out} holds results of another checkpoint (sha256 "
                f"{str(foreign[0].get('checkpoint'))[:12]}…, not {sha[:12]}… of {checkpoint}); "
                "use another --out, or drop --resume to replace them"
            )
        other = [p for p in parts.values() if p.get("channels") != predictor.channels]
        if other:
            raise DataError(
                f"{out} holds results made with --channels {other[0].get('channels') or 'unset'}, "
                f"not {predictor.channels or 'unset'}; use another --out, or drop --resume"
            )
    else:
        _clear_results(out)
        parts = {}
    parts_dir.mkdir(parents=True, exist_ok=True)
    complete = {p["path"] for p in parts.values() if p["status"] == "ok"}
    complete -= {p["path"] for p in parts.values() if p["status"] != "ok"}
    todo, skipped = [], 0
    for f in files:
        if resume and os.path.realpath(f) in complete:
            skipped += 1
            continue
        todo.append(f)
        for key in [k for k, p in parts.items() if p["path"] == os.path.realpath(f)]:
            parts.pop(key)  # redone from scratch
            (parts_dir / f"{key}.json").unlink(missing_ok=True)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(todo), unit="file", desc="predict", disable=not _show_progress(progress),
        dynamic_ncols=True,
    )  # fmt: skip
    counted = {"windows": 0}
    t0 = time.perf_counter()

    def on_batch(n: int) -> None:
        counted["windows"] += n
        rate = counted["windows"] / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(windows=counted["windows"], win_per_s=f"{rate:.0f}", refresh=False)
        bar.refresh()

    context = OutputContext(
        out, predictor.classes, predictor.positive_class, threshold, min_duration_s,
        merge_gap_s, list(problems),
    )  # fmt: skip
    ok_paths: set[str] = set()
    failed_paths: set[str] = set()
    interrupted = False
    try:
        for result in predictor.predict_files(
            todo, sample_rate=sample_rate, names=[str(f) for f in todo], stride_s=stride_s,
            on_batch=on_batch,
        ):  # fmt: skip
            name = str(result.path)
            part = part_of(result, name, sha, predictor.channels)
            key = part_key(name, part["channel"])
            atomic_write_text(parts_dir / f"{key}.json", json.dumps(part))
            parts[key] = part
            if name not in ok_paths | failed_paths:
                bar.update(1)  # a file's first result (with --channels each, one per channel)
            (ok_paths if result.ok else failed_paths).add(name)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        elapsed = time.perf_counter() - t0
        counts = assemble(context, parts, sinks)
        inputs_total = len(files) + len(problems)
        failed_now = len(failed_paths) + len(problems)
        new_ok = len(ok_paths - failed_paths)
        if interrupted:
            status = None
        elif failed_now == 0:
            status = EXIT_OK
        elif failed_now == inputs_total:
            status = EXIT_ALL_FAILED
        else:
            status = EXIT_SOME_FAILED
        summary = {
            "sigalex_version": __version__,
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha,
            "model": predictor.describe(),
            "classes": predictor.classes,
            "device": device_name(predictor.device),
            "batch_size": batch_size,
            "compiled": predictor.compiled,
            "channels": predictor.channels,
            "stride_s": stride_s if stride_s is not None else predictor.spec.default_stride_s,
            "events": {
                "threshold": threshold,
                "min_duration_s": min_duration_s,
                "merge_gap_s": merge_gap_s,
                "positive_class": predictor.positive_class,
            },
            "this_run": {
                "inputs": inputs_total,
                "classified": new_ok,
                "failed": failed_now,
                "skipped_complete": skipped,
                "windows": counted["windows"],
                "seconds": round(elapsed, 3),
                "windows_per_s": round(counted["windows"] / elapsed, 2) if elapsed > 0 else None,
                "total_seconds": round(time.perf_counter() - started, 3),
                "interrupted": interrupted,
                "resume": resume,
            },
            "outputs": counts,
            "exit_status": status,
        }
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


__all__ = ["EXIT_ALL_FAILED", "EXIT_OK", "EXIT_SOME_FAILED", "predict_to_dir"]
