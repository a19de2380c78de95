"""Transform throughput: sigalex vs the GPU libraries a user would pick instead, same input.

On one batch of 4097-sample single-channel windows at 173.61 Hz (Bonn's shape; Bonn segments
when the data is found, otherwise noise) on ``--device``, windows per second of the
time-frequency transform alone (no dB scaling, colormap or resize), each family with the
parameters of ``bench_render.py``:

- STFT (n_fft 256, hop 64, magnitude): sigalex ``STFT`` (keeps the 0–40 Hz rows only, by
  design) vs bare ``torch.stft(...).abs()``, ``torchaudio.transforms.Spectrogram`` and nnAudio
  ``features.STFT`` (all 129 rows);
- mel (n_fft 256, hop 32, 64 bands to 40 Hz, power): sigalex ``Mel`` vs
  ``torchaudio.transforms.MelSpectrogram`` and nnAudio ``features.MelSpectrogram``;
- CWT (64 log-spaced rows 0.5–40 Hz): sigalex ``CWT`` (Morlet, 410 of the 4097 columns: twice
  the image width) vs ssqueezepy ``cwt`` (Morlet, every column; ``SSQ_GPU=1`` on CUDA) and
  nnAudio ``features.CQT`` (64 bins from 0.5 Hz, 10 per octave, hop 16: 257 columns), the
  nearest thing nnAudio has.

sigalex's full transform + render to float 227×227 images is listed too, for context. Every peer
is optional: a failed import is reported as "not installed", any other failure as "error: …".
Install them for a benchmark run with ``pip install nnAudio ssqueezepy`` (and torchaudio from
the same index and version line as torch; see benchmarks/README.md).

    python benchmarks/bench_peers.py                        # CPU
    python benchmarks/bench_peers.py --device cuda          # GPU, batch 1024
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_name, write_json
from _common import sync as _sync
from bench_render import FMAX, FMIN, METHODS, N_TIMES, SAMPLE_RATE, load_windows

import sigalex
from sigalex.frontend import ImageFrontend

FAMILIES = ("stft", "mel", "cwt")


class NotInstalled(Exception):
    """A peer library that cannot be imported."""


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise NotInstalled(f"{name}: {exc}") from exc


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# Each factory takes the device and returns ``fn(x) -> output`` for x ``(batch, n_times)`` float32
# on that device; raising NotInstalled marks the peer missing.


def sigalex_transform(method):
    def make(device):
        frontend = ImageFrontend(SAMPLE_RATE, method, **METHODS[method]).to(device)
        return lambda x: frontend.transform(x[:, None])

    return make


def sigalex_render(method):
    def make(device):
        frontend = ImageFrontend(SAMPLE_RATE, method, **METHODS[method]).to(device)
        return lambda x: frontend(x[:, None])

    return make


def torch_stft(device):
    p = METHODS["stft"]
    window = torch.hann_window(p["n_fft"], device=device)
    return lambda x: torch.stft(
        x, p["n_fft"], p["hop_length"], window=window, return_complex=True
    ).abs()


def torchaudio_spectrogram(device):
    ta = _import("torchaudio")
    p = METHODS["stft"]
    return ta.transforms.Spectrogram(n_fft=p["n_fft"], hop_length=p["hop_length"], power=1).to(
        device
    )


def torchaudio_mel(device):
    ta = _import("torchaudio")
    p = METHODS["mel"]
    return ta.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=p["n_fft"], hop_length=p["hop_length"],
        n_mels=p["n_mels"], f_max=FMAX, power=2.0,
    ).to(device)  # fmt: skip


def nnaudio_stft(device):
    features = _import("nnAudio.features")
    p = METHODS["stft"]
    return features.STFT(
        n_fft=p["n_fft"], hop_length=p["hop_length"], sr=SAMPLE_RATE,
        output_format="Magnitude", pad_mode="constant", verbose=False,
    ).to(device)  # fmt: skip


def nnaudio_mel(device):
    features = _import("nnAudio.features")
    p = METHODS["mel"]
    return features.MelSpectrogram(
        sr=SAMPLE_RATE, n_fft=p["n_fft"], hop_length=p["hop_length"], n_mels=p["n_mels"],
        fmax=FMAX, pad_mode="constant", verbose=False,
    ).to(device)  # fmt: skip


def nnaudio_cqt(device):
    features = _import("nnAudio.features")
    return features.CQT(
        sr=SAMPLE_RATE, hop_length=16, fmin=FMIN, n_bins=METHODS["cwt"]["n_freqs"],
        bins_per_octave=10, pad_mode="constant", verbose=False,
    ).to(device)  # fmt: skip


def ssqueezepy_cwt(device):
    if device.type == "cuda":
        os.environ["SSQ_GPU"] = "1"  # read by ssqueezepy at call time
    ssq = _import("ssqueezepy")
    from ssqueezepy.experimental import freq_to_scale

    wavelet = ssq.Wavelet(("morlet", {"mu": 6}))
    freqs = np.geomspace(FMIN, FMAX, METHODS["cwt"]["n_freqs"])
    scales = freq_to_scale(freqs, wavelet, N_TIMES, fs=SAMPLE_RATE)[::-1].astype(np.float32)
    scales = np.ascontiguousarray(scales)

    def fn(x):
        x = x if device.type == "cuda" else x.cpu().numpy()
        return ssq.cwt(x, wavelet, scales=scales, fs=SAMPLE_RATE, astensor=True)[0]

    return fn


#: (family, implementation, library distribution name or None, factory)
PEERS = [
    ("stft", "sigalex STFT", None, sigalex_transform("stft")),
    ("stft", "torch.stft + abs", None, torch_stft),
    ("stft", "torchaudio Spectrogram", "torchaudio", torchaudio_spectrogram),
    ("stft", "nnAudio STFT", "nnAudio", nnaudio_stft),
    ("stft", "sigalex STFT + render (context)", None, sigalex_render("stft")),
    ("mel", "sigalex Mel", None, sigalex_transform("mel")),
    ("mel", "torchaudio MelSpectrogram", "torchaudio", torchaudio_mel),
    ("mel", "nnAudio MelSpectrogram", "nnAudio", nnaudio_mel),
    ("mel", "sigalex Mel + render (context)", None, sigalex_render("mel")),
    ("cwt", "sigalex CWT", None, sigalex_transform("cwt")),
    ("cwt", "ssqueezepy cwt", "ssqueezepy", ssqueezepy_cwt),
    ("cwt", "nnAudio CQT", "nnAudio", nnaudio_cqt),
    ("cwt", "sigalex CWT + render (context)", None, sigalex_render("cwt")),
]


def _shape(out) -> list[int]:
    return list(getattr(out, "shape", ()))


def time_peer(fn, x, device: torch.device, repeats: int) -> tuple[float, list[int]]:
    """Windows/s (median of ``repeats`` calls after a warm-up call) and the output shape."""
    with torch.inference_mode():
        out = fn(x)  # warm-up: JIT, kernel caches, filter banks
        _sync(device)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(x)
            _sync(device)
            times.append(time.perf_counter() - t)
    return len(x) / float(np.median(times)), _shape(out)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, help="default 32 CPU, 1024 GPU")
    ap.add_argument("--repeats", type=int, help="timed calls; default 5 CPU, 20 GPU")
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    ap.add_argument("--json", type=Path, help="write results here")
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if args.quick:
        args.batch_size = args.batch_size or 4
        args.repeats = args.repeats or 1
    args.batch_size = args.batch_size or (1024 if cuda else 32)
    args.repeats = args.repeats or (20 if cuda else 5)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    return args


def run(argv=None) -> dict:
    """Run the benchmark with command-line arguments ``argv``; return the results."""
    args = parse_args(argv)
    device = torch.device(args.device)
    windows, source = load_windows(args.batch_size)
    x = torch.from_numpy(windows[: args.batch_size].copy()).to(device)
    rows, threads, name_of_device = [], torch.get_num_threads(), device_name(device)
    for family, name, dist, factory in PEERS:
        if family not in args.families:
            continue
        row = dict(family=family, implementation=name, library=dist, version=None)
        if dist:
            row["version"] = _version(dist)
        try:
            fn = factory(device)
            rate, shape = time_peer(fn, x, device, args.repeats)
        except NotInstalled as exc:
            row.update(status="not installed", windows_per_s=None, detail=str(exc))
        except Exception as exc:  # a peer that breaks must not stop the others
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            row.update(status=f"error: {msg}", windows_per_s=None)
        else:
            row.update(status="ok", windows_per_s=rate, output_shape=shape)
        rows.append(row)
        torch.set_num_threads(threads)  # a peer (numba's thread pool) may change it
    for row in rows:  # sigalex's transform over each peer, within a family
        ours = next(
            r["windows_per_s"]
            for r in rows
            if r["family"] == row["family"] and r["implementation"].startswith("sigalex")
        )
        peer = row["windows_per_s"] and not row["implementation"].startswith("sigalex")
        row["sigalex_ratio"] = ours / row["windows_per_s"] if peer else None

    print(f"\ndevice: {device} ({name_of_device}), batch {args.batch_size}, {source}")
    print("| family | implementation | windows/s | output shape | sigalex transform ÷ this |")
    print("|---|---|---|---|---|")
    for r in rows:
        rate = f"{r['windows_per_s']:.0f}" if r["windows_per_s"] else r["status"]
        ratio = f"{r['sigalex_ratio']:.2f}×" if r["sigalex_ratio"] else "—"
        shape = "×".join(map(str, r.get("output_shape", []))) or "—"
        print(f"| {r['family']} | {r['implementation']} | {rate} | {shape} | {ratio} |")
    result = dict(
        benchmark="peers", device=str(device), device_name=name_of_device,
        batch_size=args.batch_size, n_times=N_TIMES, sample_rate=SAMPLE_RATE, windows=source,
        results=rows, torch=torch.__version__, sigalex=sigalex.__version__,
        command=shlex.join(["python", "benchmarks/bench_peers.py", *args.argv]),
    )  # fmt: skip
    write_json(args.json, result)
    return result


def main() -> None:
    run()


if __name__ == "__main__":
    main()
