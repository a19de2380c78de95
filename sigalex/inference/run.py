"""``sigalex predict``: classify every input with a checkpoint and write the output folder.

The folder's files are described in :mod:`sigalex.inference.outputs`; ``summary.json`` adds
counts, timings (seconds, windows/s), the model, device, checkpoint (path and sha256), settings,
the sigalex version and the exit status. Exit status: :data:`EXIT_OK` (0) when every input was
classified, :data:`EXIT_SOME_FAILED` (3) when some were not, :data:`EXIT_ALL_FAILED` (4) when
none was. With ``shard=(K, N)`` a run classifies shard ``K`` of ``N`` into a folder it shares
with the other shards (:mod:`sigalex.inference.shards`).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._files import FolderLock, atomic_write_text, remove_stale_temporaries, sha256_file
from .._version import __version__
from ..errors import DataError
from ..runtime import device_name
from .events import check_event_options
from .inputs import find_inputs
from .outputs import (
    DEFAULT_SINKS,
    EXIT_ALL_FAILED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    RESULT_FILES,
    OutputContext,
    assemble,
    exit_status,
    part_key,
    part_of,
    read_parts,
)
from .predictor import Predictor
from .shards import (
    ASSEMBLY_WAIT_S,
    MANIFEST,
    assemble_shards,
    begin_shard,
    check_shard,
    done_shards,
    lock_name,
    marker_path,
    ranges,
    read_manifest,
    shard_label,
    shard_of,
)


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
    shard: tuple[int, int] | None = None,
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
        work starts. Sharded runs share it (see ``shard``).
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
    shard : (int, int), optional
        ``(K, N)``: classify only the inputs of shard ``K`` of ``N`` (0-based; an input's shard
        is a hash of its real path, :func:`~sigalex.inference.shards.shard_of`). Shards may run
        at once into one ``out``: each locks only itself (``.sigalex.shard-K-of-N.lock``),
        writes and (without ``resume``) removes only its own parts, and records its summary in
        ``shards/shard-K-of-N.json``; the shard that finds all ``N`` done assembles the tables
        (:func:`~sigalex.inference.shards.assemble_shards`). ``out`` must hold shards of the
        same ``N``, checkpoint and settings, or nothing.
    sinks : sequence of Sink
        The writers of the output files (:data:`~sigalex.inference.outputs.DEFAULT_SINKS`).

    Returns
    -------
    dict
        The summary written to ``summary.json`` (with ``shard``: the shard's, written to its
        marker; ``summary["assembled"]`` the assembled summary when this shard assembled the
        tables, else ``None``); ``summary["exit_status"]`` is 0, 3 or 4.

    Raises
    ------
    DataError
        Unreadable checkpoint; an output folder in use by another run, or not writable;
        ``resume`` into results of another checkpoint or channel mapping; no inputs; a shard
        into a folder of other shards' ``N``, checkpoint or settings, or of an unsharded run
        (and an unsharded run into a folder of shards).
    """
    check_event_options(threshold, min_duration_s, merge_gap_s)
    if shard is not None:
        shard = check_shard(shard)
    checkpoint = Path(checkpoint)
    predictor = Predictor.from_checkpoint(
        checkpoint, device=device, batch_size=batch_size, compile=compile, channels=channels
    )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a folder")
    if shard is not None:
        return _predict_shard(
            predictor, checkpoint, inputs, out, shard, batch_size=batch_size, threshold=threshold,
            min_duration_s=min_duration_s, merge_gap_s=merge_gap_s, stride_s=stride_s,
            resume=resume, sample_rate=sample_rate, progress=progress, sinks=sinks,
        )  # fmt: skip
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


def _check_resumable(out: Path, parts: dict, sha: str, checkpoint: Path, channels) -> None:
    """``--resume`` adds to results of the same checkpoint and channel mapping only."""
    foreign = [p for p in parts.values() if p.get("checkpoint") != sha]
    if foreign:
        raise DataError(
            f"{out} holds results of another checkpoint (sha256 "
            f"{str(foreign[0].get('checkpoint'))[:12]}…, not {sha[:12]}… of {checkpoint}); "
            "use another --out, or drop --resume to replace them"
        )
    other = [p for p in parts.values() if p.get("channels") != channels]
    if other:
        raise DataError(
            f"{out} holds results made with --channels {other[0].get('channels') or 'unset'}, "
            f"not {channels or 'unset'}; use another --out, or drop --resume"
        )


def _pending(files, parts: dict, parts_dir: Path, resume: bool) -> tuple[list, int]:
    """The files to classify, and how many are skipped as complete (``resume``); the parts of
    the files to redo are removed (from ``parts`` and the folder)."""
    complete = {p["path"] for p in parts.values() if p["status"] == "ok"}
    complete -= {p["path"] for p in parts.values() if p["status"] != "ok"}
    keys: dict[str, list[str]] = {}  # path → its parts (one per channel with --channels each)
    for key, p in parts.items():
        keys.setdefault(p["path"], []).append(key)
    todo, skipped = [], 0
    for f in files:
        path = os.path.realpath(f)
        if resume and path in complete:
            skipped += 1
            continue
        todo.append(f)
        for key in keys.pop(path, []):
            parts.pop(key)  # redone from scratch
            (parts_dir / f"{key}.json").unlink(missing_ok=True)
    return todo, skipped


@dataclass
class _Tally:
    """What a run did so far (filled while it runs, read when it stops)."""

    ok: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    windows: int = 0
    seconds: float = 0.0
    interrupted: bool = False


def _classify(
    predictor: Predictor, todo: list, parts: dict, parts_dir: Path, sha: str, tally: _Tally, *,
    sample_rate, stride_s, progress,
) -> None:  # fmt: skip
    """Classify ``todo``, writing each recording's part atomically as it finishes."""
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(todo), unit="file", desc="predict", disable=not _show_progress(progress),
        dynamic_ncols=True,
    )  # fmt: skip
    t0 = time.perf_counter()

    def on_batch(n: int) -> None:
        tally.windows += n
        rate = tally.windows / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(windows=tally.windows, win_per_s=f"{rate:.0f}", refresh=False)
        bar.refresh()

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
            if name not in tally.ok | tally.failed:
                bar.update(1)  # a file's first result (with --channels each, one per channel)
            (tally.ok if result.ok else tally.failed).add(name)
    except KeyboardInterrupt:
        tally.interrupted = True
        raise
    finally:
        bar.close()
        tally.seconds = time.perf_counter() - t0


def _summary(
    predictor: Predictor, checkpoint: Path, sha: str, *, batch_size, stride_s, threshold,
    min_duration_s, merge_gap_s,
) -> dict:  # fmt: skip
    """What ``summary.json`` says about the model and the settings."""
    return {
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
    }


def _this_run(tally: _Tally, n_inputs: int, n_problems: int, skipped: int, started, resume):
    """``summary["this_run"]`` and the exit status (``None`` when interrupted)."""
    failed = len(tally.failed) + n_problems
    elapsed = tally.seconds
    run = {
        "inputs": n_inputs,
        "classified": len(tally.ok - tally.failed),
        "failed": failed,
        "skipped_complete": skipped,
        "windows": tally.windows,
        "seconds": round(elapsed, 3),
        "windows_per_s": round(tally.windows / elapsed, 2) if elapsed > 0 else None,
        "total_seconds": round(time.perf_counter() - started, 3),
        "interrupted": tally.interrupted,
        "resume": resume,
    }
    return run, None if tally.interrupted else exit_status(failed, n_inputs)


def _predict_locked(
    predictor: Predictor, checkpoint: Path, inputs, out: Path, *, batch_size, threshold,
    min_duration_s, merge_gap_s, stride_s, resume, sample_rate, progress, sinks,
) -> dict:  # fmt: skip
    started = time.perf_counter()
    manifest = read_manifest(out)
    if manifest is not None:  # before anything is touched: shards may be writing
        n = manifest["n_shards"]
        raise DataError(
            f"{out} holds the results of sharded runs ({n} shards, {MANIFEST}); run with "
            f"--shard K/{n}, assemble them with --assemble {out}, or use another --out"
        )
    sha = sha256_file(checkpoint)
    parts_dir = out / "parts"
    files, problems = find_inputs(inputs)
    if not files and not problems:
        raise DataError("no inputs given")  # before anything in the folder is touched
    remove_stale_temporaries(out)
    if resume:
        parts = read_parts(parts_dir)
        _check_resumable(out, parts, sha, checkpoint, predictor.channels)
    else:
        _clear_results(out)
        parts = {}
    parts_dir.mkdir(parents=True, exist_ok=True)
    todo, skipped = _pending(files, parts, parts_dir, resume)
    context = OutputContext(
        out, predictor.classes, predictor.positive_class, threshold, min_duration_s,
        merge_gap_s, list(problems),
    )  # fmt: skip
    tally = _Tally()
    try:
        _classify(
            predictor, todo, parts, parts_dir, sha, tally, sample_rate=sample_rate,
            stride_s=stride_s, progress=progress,
        )  # fmt: skip
    finally:
        counts = assemble(context, parts, sinks)
        run, status = _this_run(
            tally, len(files) + len(problems), len(problems), skipped, started, resume
        )
        summary = _summary(
            predictor, checkpoint, sha, batch_size=batch_size, stride_s=stride_s,
            threshold=threshold, min_duration_s=min_duration_s, merge_gap_s=merge_gap_s,
        )  # fmt: skip
        summary.update(this_run=run, outputs=counts, exit_status=status)
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _predict_shard(
    predictor: Predictor, checkpoint: Path, inputs, out: Path, shard: tuple[int, int], *,
    batch_size, threshold, min_duration_s, merge_gap_s, stride_s, resume, sample_rate, progress,
    sinks,
) -> dict:  # fmt: skip
    """Shard ``K`` of ``N`` into ``out`` (see :mod:`sigalex.inference.shards`)."""
    started = time.perf_counter()
    k, n = shard
    sha = sha256_file(checkpoint)
    files, problems = find_inputs(inputs)
    if not files and not problems:
        raise DataError("no inputs given")  # before anything in the folder is touched
    files = [f for f in files if shard_of(f, n) == k]
    n_problems = len(problems)  # the same list in every shard: its order is kept (``problem``)
    problems = [(i, t, why) for i, (t, why) in enumerate(problems) if shard_of(t, n) == k]
    summary = _summary(
        predictor, checkpoint, sha, batch_size=batch_size, stride_s=stride_s,
        threshold=threshold, min_duration_s=min_duration_s, merge_gap_s=merge_gap_s,
    )  # fmt: skip
    manifest = {
        "n_shards": n,
        "checkpoint": summary["checkpoint"],
        "checkpoint_sha256": sha,
        "classes": summary["classes"],
        "positive_class": predictor.positive_class,
        "model": summary["model"],
        "settings": {
            "channels": predictor.channels,
            "stride_s": summary["stride_s"],
            "sample_rate": sample_rate if sample_rate is not None else predictor.sample_rate,
            "threshold": threshold,
            "min_duration_s": min_duration_s,
            "merge_gap_s": merge_gap_s,
        },
        "sigalex_version": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    parts_dir = out / "parts" / shard_label(k, n)  # this shard's alone
    with FolderLock(out, f"sigalex predict --shard {k}/{n}", name=lock_name(k, n)):
        begin_shard(out, k, n, manifest, checkpoint)
        parts = read_parts(parts_dir)
        if resume:
            _check_resumable(out, parts, sha, checkpoint, predictor.channels)
        else:
            for key in parts:
                (parts_dir / f"{key}.json").unlink(missing_ok=True)
            parts = {}
        parts_dir.mkdir(parents=True, exist_ok=True)
        todo, skipped = _pending(files, parts, parts_dir, resume)
        for i, text, reason in problems:  # an input naming nothing: an error part of its shard
            key = part_key(text)
            parts[key] = {
                "recording": text, "channel": None, "path": os.path.realpath(text),
                "checkpoint": sha, "channels": predictor.channels, "status": "error",
                "reason": reason, "seconds": 0.0, "problem": [i, n_problems],
            }  # fmt: skip
            atomic_write_text(parts_dir / f"{key}.json", json.dumps(parts[key]))
        tally, done = _Tally(), False
        try:
            _classify(
                predictor, todo, parts, parts_dir, sha, tally, sample_rate=sample_rate,
                stride_s=stride_s, progress=progress,
            )  # fmt: skip
            done = True
        finally:
            run, status = _this_run(
                tally, len(files) + len(problems), len(problems), skipped, started, resume
            )
            mine = [p for p in parts.values() if p["status"] == "ok"]
            summary.update(
                shard={
                    "index": k, "count": n, "done": done, "run_id": uuid.uuid4().hex,
                    "host": socket.gethostname(), "pid": os.getpid(), "parts": sorted(parts),
                },
                this_run=run,
                outputs={
                    "recordings": len(parts),
                    "with_notes": sum(bool(p.get("notes")) for p in mine),
                    "classified": len(mine),
                    "failed": len(parts) - len(mine),
                    "windows": sum(len(p["start_s"]) for p in mine),
                },
                exit_status=status if done else None,
            )  # fmt: skip
            text = json.dumps(summary, indent=2) + "\n"
            atomic_write_text(marker_path(out, k, n, done=done), text)
    # the shard's lock is free: the last shard to finish assembles the tables for all
    try:
        summary["assembled"] = assemble_shards(
            out, sinks=sinks, wait_s=ASSEMBLY_WAIT_S, automatic=True
        )
    except DataError as exc:  # this shard's results are whole; only the tables wait
        summary["assembled"], summary["assembly_error"] = None, str(exc)
    have = done_shards(out, n)
    summary["waiting_for"] = [i for i in range(n) if i not in have]
    return summary


def shard_report(summary: dict) -> str:
    """A shard's last line: what the folder still waits for, or the assembled tables."""
    k, n = summary["shard"]["index"], summary["shard"]["count"]
    if summary.get("assembly_error"):
        return f"shard {k}/{n} done; tables not assembled: {summary['assembly_error']}"
    if summary.get("assembled"):
        return f"shard {k}/{n} was the last: tables of all {n} shards assembled"
    if summary.get("waiting_for"):
        waiting = summary["waiting_for"]
        return (
            f"shard {k}/{n} done; shard{'s' if len(waiting) > 1 else ''} {ranges(waiting)} not "
            "done yet (the last to finish assembles the tables, or run sigalex predict --assemble)"
        )
    return f"shard {k}/{n} done; all {n} shards done, the tables assembled by another"


__all__ = [
    "EXIT_ALL_FAILED", "EXIT_OK", "EXIT_SOME_FAILED", "assemble_shards", "predict_to_dir",
    "shard_report",
]  # fmt: skip
