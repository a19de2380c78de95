"""What the benchmark scripts share: this checkout's sigalex first on the path, device sync and
names, median timing, JSON output."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Measure the sigalex beside these scripts, not whichever one is installed.
for _path in (str(HERE), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from sigalex.runtime import keep_freed_memory  # noqa: E402

#: As the ``sigalex`` command does: glibc's malloc keeps freed memory ("kept"), unless
#: ``SIGALEX_SYSTEM_MALLOC=1`` (or the environment's own malloc settings) leave it ("system").
MALLOC = "kept" if keep_freed_memory() else "system"


def sync(device: torch.device | str) -> None:
    """Wait for queued device work, so host clocks time it."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device | str) -> str:
    """The GPU's name, or the CPU's model and torch's thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def median_seconds(fn, device: torch.device | str, *, repeats: int, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def write_json(path: Path | None, data: dict) -> None:
    """Write ``data`` as indented JSON to ``path`` (parents created); nothing when ``None``."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
