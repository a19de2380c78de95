"""Windows per second of ``sigalex predict`` end to end vs the AlexNet-only forward, same run.

On 4097-sample windows at 173.61 Hz (Bonn's shape), one channel or ``--channels N`` tiled, with
``--method`` (STFT by default, or mel, CWT, Hilbert) images at 227×227:

- ``alexnet``: the model's forward pass alone on ready images ``(batch, 3, 227, 227)`` (bf16
  autocast and channels-last on CUDA, as :class:`sigalex.Predictor` runs it);
- ``predict``: :meth:`Predictor.predict` on a recording in memory: windowing, the batched STFT
  → colormap → resize front end on the device, the model and the softmax back on the host;
- ``predict_files``: :meth:`Predictor.predict_files` over ``.npy`` clips on disk (reading in the
  background thread, windows of many files batched together).

Prints windows/s for each (the median of ``--repeats`` interleaved rounds) and the ratio to
AlexNet alone. ``--long-edf-hours H`` also writes an
H-hour, 23-channel, 256 Hz EDF and reports the peak memory (max RSS of a child process) of
classifying it with a 23-channel, 10 s-window model.

    python benchmarks/bench_predict.py                          # CPU
    python benchmarks/bench_predict.py --method cwt --channels 23  # the costliest front end
    python benchmarks/bench_predict.py --device cuda --n-windows 200000 --batch-size 512
    python benchmarks/bench_predict.py --long-edf-hours 24      # peak memory on a day of EEG
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MALLOC, median_seconds, write_json
from _common import sync as _sync

SAMPLE_RATE = 173.61
N_TIMES = 4097


#: The front ends measured (``--method``): the maps of bench_render.py.
METHODS = {
    "stft": dict(n_fft=256, hop_length=64, fmax=40.0),
    "mel": dict(n_fft=256, hop_length=32, n_mels=64, fmax=40.0),
    "cwt": dict(fmin=0.5, fmax=40.0, n_freqs=64),
    "hilbert": dict(fmin=0.5, fmax=40.0, n_bands=32),
}


def make_predictor(
    device, batch_size: int, *, n_channels=1, sample_rate=SAMPLE_RATE, n_times=N_TIMES, names=(),
    method="stft", compile=False,
):  # fmt: skip
    """A :class:`sigalex.Predictor` of a random AlexNet behind ``method`` images, windows of
    ``n_times`` samples (the model unit prediction runs, as a checkpoint would rebuild it)."""
    from sigalex.frontend import ImageFrontend
    from sigalex.inference import Predictor
    from sigalex.models import ModelSpec, SignalClassifier, build_model

    torch.manual_seed(0)
    network, _ = build_model("alexnet", num_classes=2, weights=None)
    channels = "tile" if n_channels > 1 else "mean"
    frontend = ImageFrontend(sample_rate, method, channels=channels, **METHODS[method])
    spec = ModelSpec(
        classes=("background", "seizure"), sample_rate=sample_rate, n_channels=n_channels,
        n_times=n_times, channel_names=tuple(names), positive_class="seizure",
        window_s=n_times / sample_rate,
    )  # fmt: skip
    model = SignalClassifier(frontend, network, spec)
    return Predictor(model, device=device, batch_size=batch_size, compile=compile)


def bench_alexnet(pred, n_windows: int, model=None) -> float:
    """Windows/s of the model alone (``pred.model``, or ``model``) on ready images."""
    model = pred.model.network if model is None else model
    size = pred.model.frontend.render.size
    images = torch.rand(pred.batch_size, 3, *size, device=pred.device)
    if pred.model.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def step():
        if pred.model.amp and pred.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = model(images)
        else:
            out = model(images)
        return torch.softmax(out.float(), 1).cpu()

    step()
    _sync(pred.device)
    n_batches = max(1, n_windows // pred.batch_size)
    t = time.perf_counter()
    for _ in range(n_batches):
        step()
    _sync(pred.device)
    return n_batches * pred.batch_size / (time.perf_counter() - t)


def bench_predict(pred, n_windows: int) -> float:
    """Windows/s of ``predict`` on one in-memory recording of ``n_windows`` windows."""
    from sigalex.io import Recording

    rng = np.random.default_rng(0)
    shape = (pred.spec.n_channels, n_windows * N_TIMES)
    rec = Recording(rng.standard_normal(shape, dtype=np.float32), SAMPLE_RATE, [])
    pred.predict(Recording(rec.data[:, : pred.batch_size * N_TIMES], SAMPLE_RATE, []))  # warm-up
    _sync(pred.device)
    t = time.perf_counter()
    out = pred.predict(rec)
    _sync(pred.device)
    assert out.n_windows == n_windows
    return n_windows / (time.perf_counter() - t)


def bench_files(pred, n_files: int, per_file: int) -> float:
    """Windows/s of ``predict_files`` over ``.npy`` recordings on disk."""
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(n_files):
            p = Path(tmp) / f"rec{i:04d}.npy"
            shape = (pred.spec.n_channels, per_file * N_TIMES)
            np.save(p, rng.standard_normal(shape).astype(np.float32))
            paths.append(p)
        list(pred.predict_files(paths[:1]))  # warm-up
        t = time.perf_counter()
        results = list(pred.predict_files(paths))
        _sync(pred.device)
        assert all(r.ok for r in results)
        return n_files * per_file / (time.perf_counter() - t)


def bench_parts(pred, repeats: int = 5) -> dict:
    """Milliseconds per batch of each stage, and of the slower way each was done before:

    the transform (for an STFT keeping few bins, also through ``torch.stft``), the render to
    float and to uint8 images, ImageNet normalisation of uint8 images (in place vs
    ``(x - mean) / std``), and AlexNet on channels-last vs NCHW images.
    """
    import copy

    fe, model, dev = pred.model.frontend, pred.model.network, pred.device
    x = torch.randn(pred.batch_size, pred.spec.n_channels, pred.spec.n_times, device=dev)

    def ms(fn) -> float:
        with torch.no_grad():
            return 1000 * median_seconds(fn, dev, repeats=repeats)

    maps = fe.transform(x)
    out = {"transform": ms(lambda: fe.transform(x))}
    if getattr(fe.transform, "_use_dft", False):
        fe.transform._use_dft = False
        try:
            out["transform_torch_stft"] = ms(lambda: fe.transform(x))
        finally:
            fe.transform._use_dft = True
    out["render_float"] = ms(lambda: fe.render(maps, image_dtype="float"))
    out["render_uint8"] = ms(lambda: fe.render(maps, image_dtype="uint8"))
    images = fe(x, image_dtype="uint8").contiguous(memory_format=torch.channels_last)
    norm = model.normalize
    out["normalize_uint8"] = ms(lambda: norm(images))
    out["normalize_uint8_plain"] = ms(lambda: (images.float() - norm.mean * 255) / (norm.std * 255))
    out["alexnet_channels_last"] = ms(lambda: model(images))
    nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    plain = images.contiguous()
    out["alexnet_nchw"] = ms(lambda: nchw(plain))
    return out


# Peak memory is read from /proc/self/status VmHWM: getrusage's ru_maxrss survives fork + exec,
# so a child would report the parent's peak (the parent built the whole EDF in memory).
_CHILD = """
import json, sys, time
sys.path.insert(0, {repo!r})
from benchmarks.bench_predict import make_predictor
names = {names!r}
pred = make_predictor({device!r}, {batch!r}, n_channels=23, sample_rate=256.0, n_times=2560, names=names)
t = time.perf_counter()
out = pred.predict({edf!r})
dt = time.perf_counter() - t
hwm_kb = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
print(json.dumps({{"windows": out.n_windows, "seconds": dt, "max_rss_mb": hwm_kb / 1024}}))
"""


def bench_long_edf(hours: float, device: str, batch_size: int) -> dict:
    """Peak memory (max RSS, MB) of classifying an ``hours``-long 23-channel EDF in a child."""
    import edfio

    n_ch, rate = 23, 256
    names = [f"EEG{i:02d}" for i in range(n_ch)]
    with tempfile.TemporaryDirectory() as tmp:
        edf = Path(tmp) / "long.edf"
        n_records = int(hours * 3600)
        rng = np.random.default_rng(0)
        signals = [
            edfio.EdfSignal(
                (30 * rng.standard_normal(n_records * rate)).astype(np.float64), rate,
                label=name, physical_dimension="uV", physical_range=(-500, 500),
            )
            for name in names
        ]  # fmt: skip
        edfio.Edf(signals, data_record_duration=1).write(edf)
        del signals
        code = _CHILD.format(
            repo=str(Path(__file__).resolve().parents[1]), names=names, device=device,
            batch=batch_size, edf=str(edf),
        )  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["file_mb"] = edf.stat().st_size / 2**20
        return result


def run(argv=None) -> dict:
    """Run the benchmark with command-line arguments ``argv``; return the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--n-windows", type=int, default=512)
    ap.add_argument("--n-files", type=int, default=32)
    ap.add_argument("--method", choices=sorted(METHODS), default="stft")
    ap.add_argument(
        "--channels", type=int, default=1, help="EEG channels a window (> 1: tiled images)"
    )
    ap.add_argument("--long-edf-hours", type=float, default=0.0)
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also time the torch.compile'd AlexNet forward and a compiled Predictor",
    )
    ap.add_argument(
        "--parts", action="store_true", help="also time each stage and its slower alternative"
    )
    ap.add_argument(
        "--repeats", type=int, default=3,
        help="rounds of AlexNet / predict / predict_files, interleaved; medians reported",
    )  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.quick:
        args.batch_size, args.n_windows, args.n_files, args.repeats = 4, 8, 2, 1

    pred = make_predictor(
        args.device, args.batch_size, n_channels=args.channels, method=args.method
    )
    dev = pred.device
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()
    print(
        f"device {dev} ({name or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, batch {args.batch_size}, {N_TIMES}-sample windows × "
        f"{args.channels} channel(s), {args.method} → 227×227, amp={pred.model.amp and dev.type == 'cuda'}, "
        f"channels_last={pred.model.channels_last}, malloc {MALLOC}"
    )
    results = {
        "device": str(dev), "device_name": name, "batch_size": args.batch_size,
        "method": args.method, "channels": args.channels, "malloc": MALLOC,
    }  # fmt: skip
    # Rounds interleave the three measurements, so a slow spell of a shared machine (CPU
    # clocks, neighbours) falls on all of them; each figure is the median of its rounds.
    per_file = max(1, args.n_windows // args.n_files)
    rounds = results["rounds"] = {"alexnet": [], "predict": [], "predict_files": []}
    for _ in range(max(1, args.repeats)):
        rounds["alexnet"].append(bench_alexnet(pred, args.n_windows))
        rounds["predict"].append(bench_predict(pred, args.n_windows))
        rounds["predict_files"].append(bench_files(pred, args.n_files, per_file))
    a, p, f = (float(np.median(rounds[k])) for k in ("alexnet", "predict", "predict_files"))
    results["alexnet_windows_per_s"] = a
    results["predict_windows_per_s"] = p
    results["predict_files_windows_per_s"] = f
    print(f"{'AlexNet forward only':34s} {a:10.1f} windows/s")
    print(f"{'predict (in-memory recording)':34s} {p:10.1f} windows/s   ratio {p / a:.2f}")
    print(f"{'predict_files (.npy on disk)':34s} {f:10.1f} windows/s   ratio {f / a:.2f}")
    results["ratio_predict"] = p / a
    results["ratio_predict_files"] = f / a
    if args.compile:
        try:
            c = bench_alexnet(pred, args.n_windows, torch.compile(pred.model.network))
        except Exception as exc:  # no compiler here: say so, keep the eager figures
            results["compile_error"] = f"{type(exc).__name__}: {exc}"
            print(f"torch.compile unavailable: {results['compile_error']}")
        else:
            results["alexnet_compiled_windows_per_s"] = c
            compiled = make_predictor(
                args.device, args.batch_size, n_channels=args.channels, method=args.method,
                compile=True,
            )  # fmt: skip
            pc = results["predict_compiled_windows_per_s"] = bench_predict(compiled, args.n_windows)
            results["ratio_predict_compiled"] = pc / c
            print(f"{'AlexNet forward only, compiled':34s} {c:10.1f} windows/s")
            print(
                f"{'predict, compiled (--compile)':34s} {pc:10.1f} windows/s   ratio {pc / c:.2f}"
            )
    if args.parts:
        parts = results["parts_ms_per_batch"] = bench_parts(pred, repeats=2 if args.quick else 5)
        print(f"ms per batch of {args.batch_size}:")
        for key, value in parts.items():
            print(f"  {key:28s} {value:9.2f}")
    if args.long_edf_hours:
        r = bench_long_edf(args.long_edf_hours, str(dev), args.batch_size)
        results["long_edf"] = r
        print(
            f"{args.long_edf_hours:g} h × 23 ch EDF ({r['file_mb']:.0f} MB): {r['windows']} "
            f"windows in {r['seconds']:.1f} s, peak RSS {r['max_rss_mb']:.0f} MB"
        )
    write_json(args.json, results)
    sys.stdout.flush()
    return results


def main() -> None:
    run()


if __name__ == "__main__":
    main()
