"""Peak memory while streaming windows over a long recording (target: < 1 GB for 24 h).

Builds a long synthetic 23-channel 256 Hz recording on disk, then walks it window by window in
a fresh process and reports that process's peak resident memory (``ru_maxrss``), so the number
includes Python, NumPy, torch and MNE as imported by ``sigalex``.

- With :func:`sigalex.io.write_edf` (EDF support present): one hour of synthetic EEG is written
  as EDF+ and its data records are repeated to the requested length (the header's record count
  is patched), so a day-long EDF is made without holding a day in memory. It is opened with
  :func:`sigalex.io.open_recording` (lazy, MNE ``preload=False``).
- Without it: a raw float32 ``.npy`` is written chunk by chunk and read through a small source
  whose ``read(start, stop)`` seeks per channel (a memory map would count every touched page
  in RSS).

Usage::

    python benchmarks/bench_stream_memory.py                 # 24 h x 23 ch x 256 Hz, 4 s windows
    python benchmarks/bench_stream_memory.py --hours 2 --window-s 2 --stride-s 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_peak_mb() -> float:
    """Peak RSS of this process image. ``VmHWM`` is reset by ``execve``; ``ru_maxrss`` is not
    (a child would report the parent's peak), so it is only the fallback off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1024 if sys.platform != "darwin" else 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _rss_now_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def make_edf(path: Path, *, hours: float, n_channels: int, sample_rate: float) -> Path:
    """A long EDF: one synthetic hour, its data records repeated ``hours`` times."""
    from sigalex.io import write_edf
    from sigalex.synthetic import make_synthetic_recording

    chunk_s = min(3600.0, hours * 3600)
    rec = make_synthetic_recording(
        chunk_s, sample_rate=sample_rate, n_channels=n_channels, seizures=[(chunk_s / 2, 40.0)]
    )
    rec.annotations = []  # repeated records would repeat the events; keep a plain signal
    one = path.with_suffix(".1h.edf")
    write_edf(one, rec)
    del rec
    raw = one.read_bytes()
    header_bytes = int(raw[184:192])
    n_records = int(raw[236:244])
    body = raw[header_bytes:]
    repeat = round(hours * 3600 / chunk_s)
    header = bytearray(raw[:header_bytes])
    header[236:244] = f"{n_records * repeat:<8d}".encode()
    with open(path, "wb") as fh:
        fh.write(header)
        for _ in range(repeat):
            fh.write(body)
    one.unlink()
    return path


def make_npy(path: Path, *, hours: float, n_channels: int, sample_rate: float) -> Path:
    """A long float32 ``(n_channels, n_times)`` .npy written in one-hour blocks."""
    n_times = round(hours * 3600 * sample_rate)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_channels, n_times))
    rng = np.random.default_rng(0)
    block = round(3600 * sample_rate)
    for s in range(0, n_times, block):
        e = min(n_times, s + block)
        out[:, s:e] = rng.standard_normal((n_channels, e - s), dtype=np.float32) * 20
        out.flush()
    del out
    return path


class NpySource:
    """A ``.npy`` ``(n_channels, n_times)`` read by spans with ``seek`` (no memory map)."""

    def __init__(self, path: Path, sample_rate: float):
        with open(path, "rb") as fh:
            major, _ = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(fh)
            if fortran or len(shape) != 2:
                raise ValueError(f"{path}: expected a C-order (n_channels, n_times) array")
            self._offset = fh.tell()
        self.n_channels, self.n_times = shape
        self._dtype = np.dtype(dtype)
        self.path, self.sample_rate, self.annotations = path, sample_rate, []

    def read(self, start, stop):
        out = np.empty((self.n_channels, stop - start), np.float32)
        item = self._dtype.itemsize
        with open(self.path, "rb") as fh:
            for c in range(self.n_channels):
                fh.seek(self._offset + (c * self.n_times + start) * item)
                out[c] = np.fromfile(fh, self._dtype, stop - start)
        return out


def child(path: str, kind: str, sample_rate: float, window_s: float, stride_s: float) -> dict:
    """Stream every window of ``path``; report peak RSS (runs in a fresh process)."""
    import sigalex.io as io
    from sigalex.windows import iter_windows, make_windows

    rss_import = _rss_now_mb()
    source = io.open_recording(path) if kind == "edf" else NpySource(Path(path), sample_rate)
    rss_open = _rss_now_mb()
    windows = make_windows(source, window_s=window_s, stride_s=stride_s, label="x")
    t0 = time.perf_counter()
    total = 0.0
    for x, _ in iter_windows(source, windows):
        total += float(x[:, ::97].sum())  # touch the data
    elapsed = time.perf_counter() - t0
    return {
        "format": kind,
        "n_channels": int(source.n_channels),
        "n_times": int(source.n_times),
        "hours": source.n_times / source.sample_rate / 3600,
        "n_windows": len(windows),
        "window_s": window_s,
        "stride_s": stride_s,
        "rss_after_import_mb": round(rss_import, 1),
        "rss_after_open_mb": round(rss_open, 1),
        "peak_rss_mb": round(_rss_peak_mb(), 1),
        "stream_s": round(elapsed, 2),
        "windows_per_s": round(len(windows) / elapsed, 1),
        "checksum": total,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--channels", type=int, default=23)
    ap.add_argument("--sample-rate", type=float, default=256.0)
    ap.add_argument("--window-s", type=float, default=4.0)
    ap.add_argument("--stride-s", type=float, default=None)
    ap.add_argument("--format", choices=["auto", "edf", "npy"], default="auto")
    ap.add_argument(
        "--dir", default=None, help="where to write the long file (default: a temp dir)"
    )
    ap.add_argument("--child", nargs=2, metavar=("PATH", "FORMAT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    stride_s = args.stride_s or args.window_s
    if args.child:
        res = child(args.child[0], args.child[1], args.sample_rate, args.window_s, stride_s)
        print(json.dumps(res))
        return 0

    import sigalex.io as io

    kind = args.format
    if kind == "auto":
        kind = "edf" if hasattr(io, "write_edf") and hasattr(io, "open_recording") else "npy"
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / f"long.{kind}"
        t0 = time.perf_counter()
        make = make_edf if kind == "edf" else make_npy
        make(path, hours=args.hours, n_channels=args.channels, sample_rate=args.sample_rate)
        build_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
        cmd = [sys.executable, __file__, "--child", str(path), kind]
        cmd += ["--sample-rate", str(args.sample_rate), "--window-s", str(args.window_s)]
        cmd += ["--stride-s", str(stride_s)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            return proc.returncode
        out = proc.stdout
    res = json.loads(out.strip().splitlines()[-1])
    res.pop("checksum")
    res.update(file_mb=round(size_mb, 1), build_s=round(build_s, 1))
    res.update(
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(), cpus=os.cpu_count()
    )
    verdict = "PASS" if res["peak_rss_mb"] < 1024 else "FAIL"
    print(
        f"streamed {res['n_windows']} windows of {res['window_s']} s over {res['hours']:.1f} h x "
        f"{res['n_channels']} ch ({res['format']}, {res['file_mb']:.0f} MB on disk): peak RSS "
        f"{res['peak_rss_mb']:.0f} MB (after import {res['rss_after_import_mb']:.0f} MB, after "
        f"open {res['rss_after_open_mb']:.0f} MB), {res['windows_per_s']:.0f} windows/s "
        f"-> {verdict} (target < 1024 MB)"
    )
    print(json.dumps(res, indent=2))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
