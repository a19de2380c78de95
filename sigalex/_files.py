"""Writing files atomically, tables as TSV, and hashing files: one implementation for every
output sigalex writes."""

from __future__ import annotations

import hashlib
import math
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import DataError


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block ends.

    The temporary file is created exclusively in the same folder (so the rename is atomic) with
    mode 0o666 less the umask, like any file the user writes; parent folders are created. If
    the block raises (or is interrupted), the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (newlines as given)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def tsv_cell(value) -> str:
    """A TSV cell: ``n/a`` for missing and non-finite values, floats to 10 significant digits,
    tabs and newlines in text replaced by spaces (they would break the row)."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else format(value, ".10g")
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def write_tsv(path, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """A TSV with a header row, written atomically."""
    lines = ["\t".join(columns)]
    lines += ["\t".join(tsv_cell(v) for v in row) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_weights_file(path) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; ``DataError`` for a missing, empty or
    corrupt file, and for one that holds code (a pickle ``weights_only`` refuses: nothing in it
    runs)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise DataError(f"{path}: {_load_failure(exc)}") from None


def _load_failure(exc: Exception) -> str:
    """What went wrong in ``torch.load(weights_only=True)``, in one line, without PyTorch's
    advice to retry with ``weights_only=False`` (which would run the file's code)."""
    text = " ".join(str(exc).split())
    m = re.search(r"GLOBAL (\S+) was not an allowed global|Unsupported global: GLOBAL (\S+)", text)
    if m:
        return (
            f"the file holds code or Python objects ({m.group(1) or m.group(2)}), not only "
            "weights; refused, nothing in it was run"
        )
    m = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    detail = m.group(1).strip() if m else text[:200]
    return f"corrupt or unreadable checkpoint ({detail})"


class FolderLock:
    """An exclusive lock on an output folder: ``<folder>/.sigalex.lock``, created with
    ``O_EXCL`` and holding who took it (pid, host, time, command).

    A second holder is refused with a :class:`~sigalex.errors.DataError` naming the first, at
    once or, with ``wait_s``, once the lock has stayed taken that long (polled every 0.05 to
    1 s). A lock left by a process that is gone (same host, pid no longer running) is taken
    over. The lock file is removed on exit, also after an error or Ctrl-C.
    """

    def __init__(self, folder, what: str, *, name: str = ".sigalex.lock", wait_s: float = 0.0):
        self.folder, self.what = Path(folder), what
        self.path = self.folder / name
        self.wait_s = wait_s
        self.taken_over: dict | None = None

    def _holder(self) -> dict:
        import json

        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    @staticmethod
    def _gone(holder: dict) -> bool:
        import socket

        pid = holder.get("pid")
        if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __enter__(self) -> FolderLock:
        import json
        import random
        import socket
        import time

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(
                f"{self.folder}: cannot create the output folder ({exc.strerror})"
            ) from None
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "what": self.what,
        }
        deadline, pause, takeovers = time.monotonic() + self.wait_s, 0.05, 0
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if self._gone(holder) and takeovers < 2:
                    takeovers += 1
                    self.taken_over = holder
                    self.path.unlink(missing_ok=True)
                    continue
                if time.monotonic() < deadline:
                    time.sleep(pause * (0.5 + random.random()))  # jitter: waiters spread out
                    pause = min(pause * 2, 1.0)
                    continue
                raise DataError(
                    f"{self.folder} is in use by {holder.get('what', 'another sigalex run')} "
                    f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since "
                    f"{holder.get('started', '?')}); wait for it, choose another output folder, "
                    f"or delete {self.path} if that run is gone"
                ) from None
            except OSError as exc:
                raise DataError(f"{self.folder}: cannot write there ({exc.strerror})") from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            return self

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


def fold_dirs(run_dir: Path) -> list[Path]:
    """A run directory's fold folders (``fold-01``, …, in order), or ``[run_dir]`` for a run
    on one split."""
    return sorted(p for p in run_dir.glob("fold-*") if p.is_dir()) or [run_dir]


def remove_stale_temporaries(folder) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` leaves when a process is killed mid-write
    (``.<name>.<pid>.<id>.tmp``) under ``folder``; returns them."""
    stale = [p for p in Path(folder).rglob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
