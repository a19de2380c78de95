"""sigalex.runtime: glibc's malloc keeps freed memory for the next batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from sigalex import cli, runtime

# In a fresh interpreter: optionally apply the setting, then allocate and free a 200 MB block
# and report glibc's own accounting (mallinfo2: bytes in mmapped blocks, free bytes kept).
_PROBE = textwrap.dedent(
    """
    import ctypes, json, sys
    import numpy as np
    from sigalex.runtime import keep_freed_memory

    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    applied = keep_freed_memory() if sys.argv[1] == "apply" else None
    block = np.ones(200 << 20, dtype=np.uint8)
    mmapped_while_alive = libc.mallinfo2().hblkhd
    del block
    print(json.dumps({"applied": applied, "mmapped": mmapped_while_alive,
                      "kept_free": libc.mallinfo2().fordblks}))
    """
)


def _probe(mode: str, **env) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    environ.update(env)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, env=environ,
        check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


needs_glibc = pytest.mark.skipif(runtime._glibc() is None, reason="glibc only")


@needs_glibc
def test_freed_blocks_stay_in_the_heap_for_reuse():
    system = _probe("leave")
    assert system["mmapped"] >= 200 << 20  # glibc's default: a fresh mapping, unmapped on free
    assert system["kept_free"] < 200 << 20
    kept = _probe("apply")
    assert kept["applied"] is True
    assert kept["mmapped"] < 200 << 20  # from the heap instead...
    assert kept["kept_free"] >= 200 << 20  # ...and still there for the next batch


@needs_glibc
@pytest.mark.parametrize(
    "env",
    [{"SIGALEX_SYSTEM_MALLOC": "1"}, {"MALLOC_TRIM_THRESHOLD_": "1000"}, {"LD_PRELOAD": ""}],
)
def test_left_alone_when_switched_off_or_tuned_by_the_user(env):
    got = _probe("apply", **env)
    if env == {"LD_PRELOAD": ""}:  # an empty preload is no allocator: still applied
        assert got["applied"] is True
    else:
        assert got["applied"] is False
        assert got["mmapped"] >= 200 << 20


def test_the_command_applies_it_before_running(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("kept") or True)
    assert cli.main(["transforms"]) == 0
    assert calls == ["kept"]
