"""Windows per second: batched sigalex rendering vs the per-window loop a user would write.

For each method, on 4097-sample single-channel windows (Bonn segments at 173.61 Hz when the data
is found, otherwise noise of the same shape), in the same run:

- sigalex: ``ImageFrontend(...)(windows)`` on ``--device``, batched: uint8 images (batch, 3, 227,
  227), the same output as the baseline, and float images in [0, 1] (the training path)
- baseline: per window, scipy / librosa / PyWavelets for the map, a matplotlib colormap and a PIL
  bilinear resize to 227×227 — one window at a time on one core, as in most published code.

Prints a table with the ratio and writes JSON with ``--json``.

    python benchmarks/bench_render.py                   # CPU
    python benchmarks/bench_render.py --device cuda     # GPU (baseline still on the CPU)
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json

import sigalex

SAMPLE_RATE = 173.61
N_TIMES = 4097
SIZE = 227
FMIN, FMAX = 0.5, 40.0

# Same maps on both sides: parameters for sigalex, and the baseline that computes that map.
METHODS = {
    "stft": dict(n_fft=256, hop_length=64, fmax=FMAX),
    "mel": dict(n_fft=256, hop_length=32, n_mels=64, fmax=FMAX),
    "cwt": dict(fmin=FMIN, fmax=FMAX, n_freqs=64),
    "hilbert": dict(fmin=FMIN, fmax=FMAX, n_bands=32),
}


def load_windows(n: int) -> np.ndarray:
    root = Path(
        os.environ.get("SIGALEX_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    files = sorted((root / "bonn").glob("*/*.[tT][xX][tT]"))
    if files:
        data = np.stack([np.loadtxt(f) for f in files[: min(n, 100)]])
        reps = -(-n // len(data))
        return np.tile(data, (reps, 1))[:n].astype(np.float32), "Bonn segments"
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, N_TIMES)).astype(np.float32), "noise"


def _to_image(db: np.ndarray, cmap, top_db: float = 80.0) -> np.ndarray:
    from PIL import Image

    db = np.maximum(db, db.max() - top_db)
    unit = (db - db.min()) / max(db.max() - db.min(), 1e-12)
    rgb = (cmap(unit[::-1])[..., :3] * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(rgb).resize((SIZE, SIZE), Image.BILINEAR))


def baseline(method: str):
    """A per-window function ``x (n_times,) -> uint8 (227, 227, 3)``."""
    import librosa
    import matplotlib
    import pywt
    import scipy.signal

    cmap = matplotlib.colormaps["viridis"]
    p = METHODS[method]
    if method == "stft":

        def run(x):
            f, _, z = scipy.signal.stft(
                x, fs=SAMPLE_RATE, nperseg=p["n_fft"], noverlap=p["n_fft"] - p["hop_length"]
            )
            return _to_image(20 * np.log10(np.maximum(np.abs(z[f <= FMAX]), 1e-10)), cmap)

    elif method == "mel":

        def run(x):
            m = librosa.feature.melspectrogram(
                y=x,
                sr=SAMPLE_RATE,
                n_fft=p["n_fft"],
                hop_length=p["hop_length"],
                n_mels=p["n_mels"],
                fmax=FMAX,
            )
            return _to_image(10 * np.log10(np.maximum(m, 1e-10)), cmap)

    elif method == "cwt":
        freqs = np.geomspace(FMIN, FMAX, p["n_freqs"])
        scales = SAMPLE_RATE / freqs

        def run(x):
            c, _ = pywt.cwt(x, scales, "cmor1.5-1.0", sampling_period=1 / SAMPLE_RATE, method="fft")
            return _to_image(20 * np.log10(np.maximum(np.abs(c[::-1]), 1e-10)), cmap)

    else:
        edges = np.geomspace(FMIN, FMAX, p["n_bands"] + 1)
        sos = [
            scipy.signal.butter(4, [lo, hi], btype="bandpass", fs=SAMPLE_RATE, output="sos")
            for lo, hi in itertools.pairwise(edges)
        ]

        def run(x):
            env = np.stack(
                [np.abs(scipy.signal.hilbert(scipy.signal.sosfiltfilt(s, x))) for s in sos]
            )
            return _to_image(20 * np.log10(np.maximum(env, 1e-10)), cmap)

    return run


def time_baseline(method: str, windows: np.ndarray, seconds: float) -> float:
    run = baseline(method)
    run(windows[0])
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run(windows[n % len(windows)].astype(np.float64))
        n += 1
    return n / (time.perf_counter() - start)


def time_sigalex(
    method: str, windows: np.ndarray, device: str, batch_size: int, repeats: int, image_dtype: str
) -> float:
    frontend = sigalex.ImageFrontend(
        SAMPLE_RATE, method, image_dtype=image_dtype, **METHODS[method]
    ).to(device)
    x = torch.from_numpy(windows[:batch_size]).to(device)[:, None]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        frontend(x)  # warm-up: caches filter banks, selects kernels
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            frontend(x)
            sync()
            times.append(time.perf_counter() - start)
    return batch_size / float(np.median(times))


def run(argv=None) -> dict:
    """Run the benchmark with command-line arguments ``argv``; return the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 CPU, 4096 GPU")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (batch 8, 2 repeats, 0.3 s baseline)"
    )
    parser.add_argument("--json", type=Path, help="write results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size = args.batch_size or 8
        args.repeats, args.baseline_seconds = 2, 0.3
    batch = args.batch_size or (4096 if args.device.startswith("cuda") else 32)
    windows, source = load_windows(max(batch, 100))
    device_name = (
        torch.cuda.get_device_name(0)
        if args.device.startswith("cuda")
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    rows = []
    for method in args.methods:
        ours8 = time_sigalex(method, windows, args.device, batch, args.repeats, "uint8")
        ours = time_sigalex(method, windows, args.device, batch, args.repeats, "float")
        base = time_baseline(method, windows, args.baseline_seconds)
        rows.append(
            dict(
                method=method, sigalex_uint8=ours8, sigalex_float=ours, baseline=base,
                ratio_uint8=ours8 / base, ratio_float=ours / base,
            )
        )  # fmt: skip
        print(
            f"{method:8s} sigalex uint8 {ours8:9.0f}/s  float {ours:9.0f}/s  baseline {base:7.0f}/s"
            f"  ratio {ours8 / base:6.1f}x / {ours / base:6.1f}x",
            flush=True,
        )
    result = dict(
        benchmark="render",
        device=args.device,
        device_name=device_name,
        batch_size=batch,
        n_times=N_TIMES,
        size=SIZE,
        windows=source,
        torch=torch.__version__,
        sigalex=sigalex.__version__,
        results=rows,
    )
    print(
        "\n| method | sigalex uint8 windows/s | sigalex float windows/s | baseline windows/s "
        "(1 core) | ratio uint8 | ratio float |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['sigalex_uint8']:.0f} | {r['sigalex_float']:.0f} | "
            f"{r['baseline']:.0f} | {r['ratio_uint8']:.1f}× | {r['ratio_float']:.1f}× |"
        )
    print(f"\ndevice: {args.device} ({device_name}), batch {batch}, {source}")
    write_json(args.json, result)
    return result


def main() -> None:
    run()


if __name__ == "__main__":
    main()
