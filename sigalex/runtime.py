"""Process-wide settings and facts: glibc's malloc keeps freed memory (steady CPU batches), and
:func:`device_name` (what a run ran on, for summaries and metrics).

A CPU batch of images or multichannel maps allocates and frees tensors of 10–100 MB per
operator. glibc's malloc serves blocks above its mmap threshold (dynamic, at most 32 MB) with
fresh ``mmap`` calls and unmaps them on free, and returns the top of its heap to the kernel
once more than its trim threshold is free there; the next batch then page-faults every page in
again, which can cost as much as the arithmetic. Measured on a 2-core VM (BENCHMARKS.md, "Batch
prediction"): 23-channel CWT tiles render in 57–60 ms a batch of 32 with memory kept and
140–150 ms without, and single-channel timings swing by up to 2× from batch to batch.

:func:`keep_freed_memory` raises both thresholds to 512 MB, so freed blocks are reused. Each
malloc arena then keeps up to that much free memory between batches: classifying a 24-hour,
23-channel EDF peaked at 1014 MB resident with it and 985 MB without (a 1 GB trim threshold
was faster still on tiled CWT but peaked at 1.3–1.4 GB). The ``sigalex`` command calls it at
start; Python users can call it once. It is a no-op off glibc (macOS, Windows, musl) and when
the environment already tunes malloc (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
``GLIBC_TUNABLES``, or another allocator in ``LD_PRELOAD``); ``SIGALEX_SYSTEM_MALLOC=1``
turns it off.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: Blocks up to this size come from (and go back to) the heap instead of ``mmap``.
MMAP_THRESHOLD = 512 << 20
#: The heap's top is returned to the kernel only when more than this is free there.
TRIM_THRESHOLD = 512 << 20

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3

_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def _glibc():
    """The process's C library when it is glibc, as a ctypes library; else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The symbols already loaded into this process: its own C library, found without the
        # subprocess that ctypes.util.find_library starts (this runs at every command's start).
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (present in glibc only)
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep and reuse freed blocks of up to :data:`MMAP_THRESHOLD`.

    Returns ``True`` when the setting was applied, ``False`` when it was left alone (not
    glibc, turned off by ``SIGALEX_SYSTEM_MALLOC=1``, or malloc already tuned by the
    environment). Safe to call more than once.
    """
    if os.environ.get("SIGALEX_SYSTEM_MALLOC", "") not in ("", "0"):
        return False
    if any(os.environ.get(name) for name in _USER_SETTINGS):
        return False
    preload = os.environ.get("LD_PRELOAD", "")
    if "jemalloc" in preload or "tcmalloc" in preload or "mimalloc" in preload:
        return False
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def device_name(device) -> str:
    """A readable name of a torch device: the GPU's name, or the CPU and its thread count."""
    import platform

    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
