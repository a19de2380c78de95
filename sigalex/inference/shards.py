"""Sharded prediction: ``sigalex predict --shard K/N`` into one output folder, and ``--assemble``.

A job array (or ``torchrun``'s ranks) splits an archive into ``N`` shards; shard ``K`` classifies
the inputs whose real path hashes to ``K`` (:func:`shard_of`: sha256 of the path, modulo ``N``),
so the assignment depends on nothing but the path: adding files never moves the others. The
filesystem coordinates the shards; there is no process group and no scheduler:

``shards/manifest.json``
    ``N``, the checkpoint (path, sha256), the classes and the settings that shape the results
    (``--channels``, the stride, ``--sample-rate``, the event settings). The first shard writes
    it, atomically, under the folder lock; every later shard checks it and is refused when its
    ``N``, checkpoint or settings differ. A run without ``--shard`` refuses a folder that has
    one, and a sharded run refuses a folder holding the results of a run without ``--shard``.
``parts/shard-K-of-N/<key>.json``
    One per recording, written atomically by the shard that owns it, in that shard's folder.
    A shard removes only its own parts (without ``--resume``), never another shard's.
``shards/shard-K-of-N.json``
    The *done marker*: the shard's summary, with the keys of its parts, written atomically once
    it went through all its inputs (``shard-K-of-N.stopped.json`` when it was interrupted or
    failed instead). A shard removes both when it starts, and the assembled tables with them
    (they no longer hold its current results).
``.sigalex.shard-K-of-N.lock``
    Held while shard ``K`` runs: the same shard twice at once is refused.

The shard that finishes and finds all ``N`` done markers assembles the tables
(:func:`assemble_shards`) under the folder lock ``.sigalex.lock``; a second one finishing at the
same moment waits for the lock and finds the work done (the assembled ``summary.json`` names the
runs it was built from). ``sigalex predict --assemble OUT`` does the same by hand and refuses,
naming them, while shards are missing.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import time
from collections.abc import Mapping
from pathlib import Path

from .._files import FolderLock, atomic_write_text, remove_stale_temporaries
from .._version import __version__
from ..errors import DataError, ParameterError
from .outputs import DEFAULT_SINKS, RESULT_FILES, OutputContext, assemble, exit_status

MANIFEST = Path("shards") / "manifest.json"
SETUP_WAIT_S = 60.0
"""How long a starting shard waits for the folder lock (held by other shards' setup, briefly, or
by an assembly)."""
ASSEMBLY_WAIT_S = 120.0
"""How long a finishing shard waits for the folder lock to assemble the tables."""
SETTING_FLAGS = {
    "channels": "--channels",
    "stride_s": "--stride-s",
    "sample_rate": "--sample-rate",
    "threshold": "--threshold",
    "min_duration_s": "--min-duration-s",
    "merge_gap_s": "--merge-gap-s",
}
"""The settings every shard of a folder must share, and their flags."""


# ---------------------------------------------------------------------------------------------
# Which shard


def parse_shard(text: str, *, flag: str = "--shard") -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)``: shard ``K`` (0-based) of ``N``; a one-line error naming ``flag``."""
    k, sep, n = str(text).strip().partition("/")
    try:
        pair = (int(k), int(n)) if sep else None
    except ValueError:
        pair = None
    if pair is None:
        raise ParameterError(
            f"{flag} {text}: must be K/N, shard K of N counted from 0 (0 <= K < N), e.g. 3/100"
        )
    return check_shard(pair, flag=f"{flag} {text}")


def check_shard(shard, *, flag: str = "shard") -> tuple[int, int]:
    """``(K, N)`` checked: integers, ``N >= 1``, ``0 <= K < N``."""
    try:
        k, n = (operator.index(v) for v in shard)
    except (TypeError, ValueError):
        raise ParameterError(f"{flag}={shard!r}: must be a pair of integers (K, N)") from None
    if n < 1:
        raise ParameterError(f"{flag}: N={n} must be a positive number of shards")
    if not 0 <= k < n:
        raise ParameterError(f"{flag}: K={k} must be in 0..{n - 1} (shards count from 0)")
    return k, n


def shard_of(path, n_shards: int) -> int:
    """The shard of an input: sha256 of its real path (symlinks resolved) modulo ``n_shards``.

    Stable across listings and machines that see the files at the same path; an input's shard
    never depends on the other inputs.
    """
    text = os.path.realpath(path).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") % n_shards


def torchrun_shard(environ: Mapping[str, str] = os.environ) -> tuple[int, int, int] | None:
    """``(RANK, WORLD_SIZE, LOCAL_RANK)`` under ``torchrun`` with more than one process, else
    ``None``; a one-line error for values torchrun would never set."""
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    values = {}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        text = environ.get(name, "0")
        try:
            values[name] = int(text)
        except ValueError:
            raise ParameterError(f"{name}={text!r} (set by torchrun): not an integer") from None
    world, rank, local = values["WORLD_SIZE"], values["RANK"], values["LOCAL_RANK"]
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ParameterError(
            f"RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local} (set by torchrun): "
            "need 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0"
        )
    return (rank, world, local) if world > 1 else None


def rank_device(device: str | None, local_rank: int) -> str | None:
    """A rank's device: ``cuda:LOCAL_RANK`` (modulo the GPUs there are) for ``auto`` or
    ``cuda`` when CUDA is available; ``cpu`` for ``auto`` without it; others as given."""
    import torch

    if device in (None, "auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{local_rank % torch.cuda.device_count()}"
    return "cpu" if device in (None, "auto") else device


def shard_label(k: int, n: int) -> str:
    return f"shard-{k}-of-{n}"


def marker_path(out: Path, k: int, n: int, *, done: bool = True) -> Path:
    """Shard ``k``'s done marker, or (``done=False``) the summary of a run of it that stopped."""
    return Path(out) / "shards" / f"{shard_label(k, n)}{'' if done else '.stopped'}.json"


def lock_name(k: int, n: int) -> str:
    return f".sigalex.{shard_label(k, n)}.lock"


def ranges(numbers) -> str:
    """``[0, 1, 2, 5, 7, 8]`` → ``"0-2, 5, 7-8"``."""
    spans: list[list[int]] = []
    for x in sorted(numbers):
        if spans and x == spans[-1][1] + 1:
            spans[-1][1] = x
        else:
            spans.append([x, x])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


# ---------------------------------------------------------------------------------------------
# The manifest and the markers


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_manifest(out) -> dict | None:
    """``shards/manifest.json`` of ``out``, or ``None`` when there is none (a damaged one is an
    error: it is written atomically, so something else wrote it)."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    manifest = _read_json(path)
    if manifest is None or not isinstance(manifest.get("n_shards"), int):
        raise DataError(f"{path}: not a sigalex shard manifest (damaged?); use another --out")
    return manifest


def _has_unsharded_results(out: Path) -> bool:
    names = (*RESULT_FILES, "summary.json")
    return any((out / name).exists() for name in names) or any((out / "parts").glob("*.json"))


def begin_shard(out: Path, k: int, n: int, manifest: dict, checkpoint) -> None:
    """Join ``out`` as shard ``k`` of ``n`` (under the folder lock, briefly): write the manifest
    if this is the first shard, else check it; remove this shard's done marker and the assembled
    tables (they no longer hold this shard's current results)."""
    with FolderLock(out, f"sigalex predict --shard {k}/{n} (starting)", wait_s=SETUP_WAIT_S):
        theirs = read_manifest(out)
        if theirs is None:
            if _has_unsharded_results(out):
                raise DataError(
                    f"{out} holds the results of a run without --shard; sharded runs never "
                    "remove others' results: use another --out, or remove them first"
                )
            atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        else:
            check_manifest(out, theirs, manifest, k, n, checkpoint)
        marker_path(out, k, n).unlink(missing_ok=True)
        marker_path(out, k, n, done=False).unlink(missing_ok=True)
        for name in (*RESULT_FILES, "summary.json"):
            (out / name).unlink(missing_ok=True)
        for old in (out / "events").glob("*_events.tsv"):
            old.unlink(missing_ok=True)


def check_manifest(out: Path, theirs: dict, mine: dict, k: int, n: int, checkpoint) -> None:
    """Refuse to join shards of another ``N``, another checkpoint or other settings."""
    m = theirs["n_shards"]
    if m != n:
        raise DataError(
            f"--shard {k}/{n}: {out} holds shards of N={m} ({MANIFEST}); use --shard K/{m} "
            "(every shard of a folder has the same N), or another --out"
        )
    a, b = str(theirs.get("checkpoint_sha256")), str(mine["checkpoint_sha256"])
    if a != b:
        raise DataError(
            f"{out} holds shards made with another checkpoint (sha256 {a[:12]}…, not "
            f"{b[:12]}… of {checkpoint}); use another --out"
        )
    old, new = theirs.get("settings") or {}, mine["settings"]
    for key, flag in SETTING_FLAGS.items():
        if old.get(key) != new.get(key):
            raise DataError(
                f"{out} holds shards made with {flag} {_shown(old.get(key))}, not "
                f"{_shown(new.get(key))}; every shard of a folder needs the same settings"
            )


def _shown(value) -> str:
    if value is None:
        return "unset"
    return format(value, "g") if isinstance(value, float) else str(value)


def done_shards(out, n: int) -> set[int]:
    """The shards of ``n`` whose done marker is in ``out`` (one listing of ``shards/``)."""
    try:
        names = set(os.listdir(Path(out) / "shards"))
    except FileNotFoundError:
        return set()
    return {k for k in range(n) if f"{shard_label(k, n)}.json" in names}


def _markers(out: Path, n: int) -> dict[int, dict]:
    """The done markers of ``out``'s shards, read, by shard."""
    done = {}
    for k in sorted(done_shards(out, n)):
        marker = _read_json(marker_path(out, k, n))
        if marker is not None and (marker.get("shard") or {}).get("done") is True:
            done[k] = marker
    return done


def _missing(out: Path, n: int, done) -> DataError:
    missing = [k for k in range(n) if k not in done]
    return DataError(
        f"{out}: shard{'s' if len(missing) > 1 else ''} {ranges(missing)} of {n} not done "
        f"(no done marker in {out / 'shards'}); run {'them' if len(missing) > 1 else 'it'} "
        "(--resume completes a killed shard), then --assemble again"
    )


# ---------------------------------------------------------------------------------------------
# Assembly


def _read_part(path: Path, shard: int) -> dict:
    part = _read_json(path)
    if part is None or "recording" not in part or "status" not in part:
        raise DataError(
            f"{path}: part of shard {shard} missing or damaged; run that shard again with --resume"
        )
    return part


def assemble_shards(
    out, *, checkpoint=None, sinks=DEFAULT_SINKS, wait_s: float = 0.0, automatic: bool = False
) -> dict | None:
    """Build ``windows.tsv``, ``recordings.tsv``, ``errors.tsv``, ``events/`` and
    ``summary.json`` from the parts of all ``N`` shards of ``out`` (``sigalex predict
    --assemble``), under the folder lock, every file atomically.

    Parameters
    ----------
    out : path
        A folder written by ``sigalex predict --shard K/N``.
    checkpoint : path, optional
        Checked against the manifest's sha256 when given; the manifest holds all assembly needs.
    sinks : sequence of Sink
        The writers of the output files.
    wait_s : float
        Seconds to wait for the folder lock.
    automatic : bool
        A finishing shard's call: returns ``None`` instead of raising while shards are missing,
        and when the tables were already assembled from the same shard runs.

    Returns
    -------
    dict or None
        The summary written to ``summary.json``: counts over all shards, each shard's last run,
        ``exit_status`` 0, 3 or 4 over all inputs.

    Raises
    ------
    DataError
        Not a folder of sharded runs; shards missing (named); a part missing or damaged;
        another checkpoint.
    """
    out = Path(out)
    if not out.is_dir():
        raise DataError(f"--assemble {out}: no such folder")
    manifest = read_manifest(out)
    if manifest is None:
        raise DataError(
            f"--assemble {out}: no {MANIFEST}: not the output folder of sharded runs "
            "(sigalex predict --shard K/N)"
        )
    sha, n = manifest.get("checkpoint_sha256"), manifest["n_shards"]
    if checkpoint is not None:
        from .._files import sha256_file

        if sha256_file(checkpoint) != sha:
            raise DataError(
                f"{out} holds shards of another checkpoint (sha256 {str(sha)[:12]}…, not that "
                f"of {checkpoint}); assemble without --checkpoint, or use that checkpoint's folder"
            )
    if len(done := done_shards(out, n)) < n:  # before waiting for any lock
        if automatic:
            return None
        raise _missing(out, n, done)
    with FolderLock(out, f"sigalex predict --assemble {out}", wait_s=wait_s):
        done = _markers(out, n)  # again, under the lock: a shard may have started since
        if len(done) < n:
            if automatic:
                return None
            raise _missing(out, n, done)
        run_ids = {str(k): done[k]["shard"].get("run_id") for k in sorted(done)}
        before = (_read_json(out / "summary.json") or {}).get("shards") or {}
        if automatic and before.get("run_ids") == run_ids:
            return None  # a shard finishing at the same moment assembled these runs
        if not any(out.glob(".sigalex.shard-*.lock")):
            remove_stale_temporaries(out)  # no shard writes now: leftovers of killed writers
        parts, problems = {}, []
        for k in sorted(done):
            folder = out / "parts" / shard_label(k, n)
            for key in done[k]["shard"].get("parts") or []:
                part = _read_part(folder / f"{key}.json", k)
                if part.get("checkpoint") != sha:
                    raise DataError(f"{folder / key}.json: a part of another checkpoint")
                if part.get("problem"):  # an input naming nothing: listed last, in input order
                    problems.append((part["problem"], part["recording"], part.get("reason", "")))
                else:
                    parts[key] = part
        settings = manifest.get("settings") or {}
        context = OutputContext(
            out, list(manifest["classes"]), manifest.get("positive_class"),
            settings.get("threshold", 0.5), settings.get("min_duration_s", 0.0),
            settings.get("merge_gap_s", 0.0), [(name, why) for _, name, why in sorted(problems)],
        )  # fmt: skip
        counts = assemble(context, parts, sinks)
        summary = _assembled_summary(manifest, done, run_ids, counts)
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _assembled_summary(manifest: dict, done: dict[int, dict], run_ids: dict, counts: dict) -> dict:
    runs = {str(k): done[k].get("this_run") or {} for k in sorted(done)}
    totals = {
        key: sum(r.get(key) or 0 for r in runs.values())
        for key in ("inputs", "classified", "failed", "skipped_complete", "windows", "seconds")
    }
    totals["seconds"] = round(totals["seconds"], 3)
    settings = manifest.get("settings") or {}
    failed = counts.get("failed") or 0
    return {
        "sigalex_version": __version__,
        "checkpoint": manifest.get("checkpoint"),
        "checkpoint_sha256": manifest.get("checkpoint_sha256"),
        "model": manifest.get("model"),
        "classes": manifest.get("classes"),
        "devices": sorted({str(done[k].get("device")) for k in done}),
        "channels": settings.get("channels"),
        "stride_s": settings.get("stride_s"),
        "sample_rate": settings.get("sample_rate"),
        "events": {
            "threshold": settings.get("threshold"),
            "min_duration_s": settings.get("min_duration_s"),
            "merge_gap_s": settings.get("merge_gap_s"),
            "positive_class": manifest.get("positive_class"),
        },
        "shards": {
            "count": manifest["n_shards"],
            "run_ids": run_ids,
            "runs": runs,
            "assembled": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "totals": totals,
        "outputs": counts,
        "exit_status": exit_status(failed, (counts.get("classified") or 0) + failed),
    }


__all__ = [
    "MANIFEST",
    "assemble_shards",
    "begin_shard",
    "check_shard",
    "done_shards",
    "marker_path",
    "parse_shard",
    "rank_device",
    "read_manifest",
    "shard_of",
    "torchrun_shard",
]
