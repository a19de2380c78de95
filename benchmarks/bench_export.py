"""ONNX exports (fp32, int8; full and compact AlexNet) against the PyTorch fp32 model, same run.

Windows → probabilities end to end on the CPU, 4097-sample windows at 173.61 Hz (Bonn's
shape; the Bonn segments themselves when ``$SIGALEX_DATA``/``../shared/data`` has them), STFT
images at 227×227 as ``pipelines/eeg-seizure.toml`` makes them:

- ``pytorch fp32``: the model unit in eager PyTorch (:meth:`SignalClassifier.probabilities`,
  the fast path :class:`sigalex.Predictor` runs: uint8 images, channels-last): the baseline;
- ``onnx fp32``: the whole-pipeline export (``sigalex export``) in ONNX Runtime;
- ``onnx int8``: that export statically quantised (``--quantize int8``: QDQ, per-channel
  weights; the front end float);
- the same three for the compact network (``model.width = 0.25``).

Prints, for each: windows/s (the median of ``--repeats`` interleaved rounds) and the ratio to
PyTorch fp32 eager (full width), the file size and its ratio to the fp32 export; and the
agreement of ONNX fp32 with PyTorch (largest probability difference, same class) and of int8
with fp32 (same class). Random networks by default (speed and size do not depend on the
weights; their probabilities sit near 1/2, so agreement is measured on trained models:
``--checkpoint`` / ``--compact-checkpoint``, calibrated then on the training side of their
split, as ``sigalex export`` does).

With trained checkpoints it also scores each on the **test side of its own split** (the recipe's
data rebuilt, the run's fold found by its description): test accuracy of PyTorch fp32, ONNX
fp32 and ONNX int8. ``--extra-checkpoint`` adds models scored that way only (not timed), e.g.
the 5-class one. ``--day-hours 24`` measures the peak memory (and time) of ``sigalex predict``
with an int8 export of a 23-channel model (STFT tiles, 10 s windows) over a day-long 23-channel
256 Hz EDF, in a child process.

    python benchmarks/bench_export.py                      # random networks, Bonn windows
    python benchmarks/bench_export.py --checkpoint runs/eeg-seizure-…/checkpoint.pt \\
        --compact-checkpoint runs/eeg-seizure-…-w025/checkpoint.pt \\
        --extra-checkpoint runs/eeg-bonn-5class-…/checkpoint.pt --day-hours 24
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MALLOC, REPO, device_name, write_json

RECIPE = {
    "transform": {"method": "stft", "n_fft": 256, "hop_length": 32, "fmax": 40.0},
    "render": {"size": 227, "normalize": "fixed", "vmin": 10.0, "vmax": 100.0},
    "model": {"weights": "none"},
}
SAMPLE_RATE, N_TIMES = 173.61, 4097


def bonn_windows(n: int, *, offset: int = 0) -> tuple[np.ndarray, str]:
    """``n`` Bonn segments ``(n, 1, 4097)`` (every set in turn), or noise when there is no data."""
    root = Path(os.environ.get("SIGALEX_DATA", REPO.parent / "shared" / "data")) / "bonn"
    files = sorted(root.glob("[ZONFS]/*.txt"), key=lambda p: (p.stem[1:], p.stem[0]))
    if len(files) >= offset + n:
        x = np.stack([np.loadtxt(f, dtype=np.float32) for f in files[offset : offset + n]])
        return x[:, None, :N_TIMES], f"Bonn segments {offset}..{offset + n - 1} (all sets)"
    rng = np.random.default_rng(offset)
    return (50 * rng.standard_normal((n, 1, N_TIMES))).astype(np.float32), "noise (no Bonn data)"


def random_checkpoint(path: Path, width: float) -> Path:
    """A checkpoint of a random AlexNet of ``width`` behind the recipe's STFT images."""
    from sigalex.checkpoint import new_checkpoint, save_checkpoint
    from sigalex.config import from_dict
    from sigalex.models import ModelSpec, SignalClassifier, build_frontend, build_network

    torch.manual_seed(0)
    cfg = from_dict({**RECIPE, "model": {"weights": "none", "width": width}})
    spec = ModelSpec(
        classes=("ABCD", "E"), sample_rate=SAMPLE_RATE, n_channels=1, n_times=N_TIMES,
        positive_class="E",
    )  # fmt: skip
    net = build_network("alexnet", num_classes=2, width=width)
    model = SignalClassifier(build_frontend(cfg, SAMPLE_RATE), net, spec)
    return save_checkpoint(path, new_checkpoint(model, cfg))


def exports(ckpt_path: Path, folder: Path, key: str, calibration: int, trained: bool) -> dict:
    """fp32 and int8 exports of a checkpoint: ``{"fp32": path, "int8": path, ...}``."""
    from sigalex.checkpoint import load_checkpoint
    from sigalex.export.onnx import export_onnx
    from sigalex.export.quantize import quantize_int8, quantize_static_int8

    ckpt = load_checkpoint(ckpt_path)
    fp32 = export_onnx(ckpt, folder / f"{key}-fp32.onnx").path  # by key: runs' files share names
    int8 = folder / f"{key}-int8.onnx"
    if trained:  # the training side of the model's own split, as sigalex export does
        quantize_int8(fp32, int8, ckpt, calibration=calibration)
        source = "training side of the checkpoint's split"
    else:
        cal, source = bonn_windows(calibration, offset=300)  # not the measured windows
        quantize_static_int8(fp32, int8, cal)
    return {"fp32": fp32, "int8": int8, "ckpt": ckpt, "calibration": source}


def test_side(ckpt) -> tuple[np.ndarray, np.ndarray, str]:
    """The test windows ``(n, n_channels, n_times)`` and targets of a checkpoint's own split
    (its recipe's data rebuilt, no download; the fold found by its description)."""
    from sigalex.train.data import split_side

    test = split_side(ckpt, "test")
    return test.windows, test.data.targets[test.indices], test.split.description


def accuracy(m: dict, batch: int) -> dict:
    """Test-side accuracy of PyTorch fp32, ONNX fp32 and ONNX int8 for one trained model."""
    x, y, split = test_side(m["ckpt"])
    out = {"split": split, "n_test": len(y)}
    for runner in ("torch", "onnx fp32", "onnx int8"):
        model = m[runner]
        with torch.no_grad():
            p = np.concatenate(
                [model.probabilities(torch.from_numpy(x[i : i + batch])).numpy()
                 for i in range(0, len(x), batch)]
            )  # fmt: skip
        out[f"{runner.replace(' ', '_')}_test_accuracy"] = float((p.argmax(1) == y).mean())
        out[f"_{runner}"] = p
    p_torch, p32, p8 = out.pop("_torch"), out.pop("_onnx fp32"), out.pop("_onnx int8")
    out["test_onnx_fp32_vs_torch_max_abs_diff"] = float(np.abs(p32 - p_torch).max())
    out["test_onnx_fp32_vs_torch_same_class"] = float((p32.argmax(1) == p_torch.argmax(1)).mean())
    out["test_int8_vs_fp32_same_class"] = float((p8.argmax(1) == p32.argmax(1)).mean())
    return out


def day_long_predict(folder: Path, hours: float) -> dict:
    """Peak RSS and wall time of ``sigalex predict`` (a child process) with an int8 export of
    a random 23-channel model over an ``hours``-long 23-channel 256 Hz EDF."""
    import subprocess

    from bench_stream_memory import make_edf

    from sigalex.checkpoint import new_checkpoint, save_checkpoint
    from sigalex.config import from_dict
    from sigalex.export.onnx import export_onnx
    from sigalex.export.quantize import quantize_static_int8
    from sigalex.models import ModelSpec, SignalClassifier, build_frontend, build_network

    rate, n_ch, window_s = 256.0, 23, 10.0
    cfg = from_dict({
        "transform": {"method": "stft", "n_fft": 256, "hop_length": 64, "fmax": 40.0},
        "render": {"size": 227, "channels": "tile", "normalize": "fixed", "vmin": 0.0, "vmax": 80.0},
        "model": {"weights": "none"},
    })  # fmt: skip
    spec = ModelSpec(
        classes=("background", "seizure"), sample_rate=rate, n_channels=n_ch,
        n_times=int(window_s * rate), positive_class="seizure", window_s=window_s,
        stride_s=window_s,
    )  # fmt: skip
    torch.manual_seed(0)
    net = build_network("alexnet", num_classes=2)
    model = SignalClassifier(build_frontend(cfg, rate), net, spec).eval()
    ckpt = save_checkpoint(folder / "day.pt", new_checkpoint(model, cfg))
    fp32 = export_onnx(ckpt, folder / "day-fp32.onnx").path
    int8 = folder / "day-int8.onnx"
    rng = np.random.default_rng(1)
    quantize_static_int8(
        fp32, int8, (20 * rng.standard_normal((32, n_ch, spec.n_times))).astype(np.float32)
    )
    edf = make_edf(folder / "day.edf", hours=hours, n_channels=n_ch, sample_rate=rate)
    # The child reports its own peak (VmHWM, reset by execve; ru_maxrss would count the pages
    # this process held when it forked).
    child = (
        "import sys; from sigalex.cli import main; rc = main(sys.argv[1:]); "
        "hwm = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]; "
        "print(f'VmHWM {hwm}', file=sys.stderr); sys.exit(rc)"
    )
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", child, "predict", "--checkpoint", str(int8), str(edf),
         "--out", str(folder / "day-out")],
        capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"sigalex predict failed: {proc.stderr.strip()[-500:]}")
    peak_kb = int(proc.stderr.rsplit("VmHWM ", 1)[1].split()[0])
    n_windows = round(hours * 3600 / window_s)
    return {
        "hours": hours, "n_channels": n_ch, "sample_rate": rate, "windows": n_windows,
        "edf_mb": edf.stat().st_size / 1e6, "int8_onnx_mb": int8.stat().st_size / 1e6,
        "peak_rss_mb": peak_kb / 1024,
        "seconds": seconds, "windows_per_s": n_windows / seconds,
    }  # fmt: skip


def throughput(fn, x: np.ndarray, batch: int) -> float:
    """Windows/s of ``fn`` over ``x`` in batches (after one warm-up batch)."""
    fn(x[:batch])
    t = time.perf_counter()
    for i in range(0, len(x), batch):
        fn(x[i : i + batch])
    return len(x) / (time.perf_counter() - t)


def run(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, help="a trained full-width checkpoint")
    ap.add_argument("--compact-checkpoint", type=Path, help="a trained model.width < 1 one")
    ap.add_argument(
        "--extra-checkpoint", type=Path, action="append", default=[],
        help="a trained model scored on its test side only (not timed); repeatable",
    )  # fmt: skip
    ap.add_argument(
        "--day-hours", type=float, default=0.0,
        help="peak memory of sigalex predict (int8) over an EDF this long (0: skip)",
    )  # fmt: skip
    ap.add_argument("--n-windows", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--calibration", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.quick:
        args.n_windows, args.batch_size, args.calibration, args.repeats = 8, 4, 8, 1
    import onnxruntime as ort

    from sigalex.checkpoint import load_model
    from sigalex.export.runtime import OnnxClassifier

    x, source = bonn_windows(args.n_windows)
    print(
        f"cpu ({device_name('cpu')}), torch {torch.__version__}, onnxruntime {ort.__version__} "
        f"(default threads), batch {args.batch_size}, {args.n_windows} windows: {source}; "
        f"malloc {MALLOC}"
    )
    results: dict = {"windows": source, "batch_size": args.batch_size, "malloc": MALLOC}
    models: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        folder = Path(tmp)
        extras = [(f"extra{i + 1}", c, None) for i, c in enumerate(args.extra_checkpoint)]
        for key, given, width in (
            ("full", args.checkpoint, 1.0),
            ("compact", args.compact_checkpoint, 0.25),
            *extras,
        ):
            path = given or random_checkpoint(folder / f"{key}.pt", float(width or 1.0))
            t = time.perf_counter()
            made = exports(Path(path), folder, key, args.calibration, trained=given is not None)
            made["export_s"] = time.perf_counter() - t
            made["torch"] = load_model(made["ckpt"], device="cpu")
            made["onnx fp32"] = OnnxClassifier(made["fp32"])
            made["onnx int8"] = OnnxClassifier(made["int8"])
            made["trained"] = given is not None
            models[key] = made
        xt = torch.from_numpy(x)
        probs = {}
        for key, m in models.items():
            if key.startswith("extra"):
                results[key] = {"checkpoint": str(m["ckpt"].path), "trained": True}
                continue
            p_torch = m["torch"].probabilities(xt).numpy()
            p32 = m["onnx fp32"].probabilities(xt).numpy()
            p8 = m["onnx int8"].probabilities(xt).numpy()
            probs[key] = (p_torch, p32, p8)
            sizes = {
                "state_dict_mb": sum(t.numel() * 4 for t in m["ckpt"].state_dict.values()) / 1e6,
                "onnx_fp32_mb": m["fp32"].stat().st_size / 1e6,
                "onnx_int8_mb": m["int8"].stat().st_size / 1e6,
            }
            results[key] = {
                "trained": m["trained"],
                "calibration": m["calibration"],
                "export_s": round(m["export_s"], 1),
                **sizes,
                "onnx_fp32_vs_torch_max_abs_diff": float(np.abs(p32 - p_torch).max()),
                "onnx_fp32_vs_torch_same_class": float((p32.argmax(1) == p_torch.argmax(1)).mean()),
                "int8_vs_fp32_same_class": float((p8.argmax(1) == p32.argmax(1)).mean()),
                "int8_vs_fp32_max_abs_diff": float(np.abs(p8 - p32).max()),
            }
        for key, m in models.items():
            if m["trained"]:
                results[key].update(accuracy(m, args.batch_size))
                results[key]["onnx_int8_mb"] = m["int8"].stat().st_size / 1e6
                results[key]["onnx_fp32_mb"] = m["fp32"].stat().st_size / 1e6
        timed = {k: m for k, m in models.items() if not k.startswith("extra")}
        rounds: dict[str, list[float]] = {f"{k} {r}": [] for k in timed for r in ("torch", "onnx fp32", "onnx int8")}  # fmt: skip
        with torch.no_grad():
            for _ in range(max(1, args.repeats)):
                for key, m in timed.items():
                    for runner in ("torch", "onnx fp32", "onnx int8"):
                        model = m[runner]
                        rounds[f"{key} {runner}"].append(
                            throughput(lambda b, model=model: model.probabilities(torch.from_numpy(b)), x, args.batch_size)
                        )  # fmt: skip
    base = float(np.median(rounds["full torch"]))
    base_size = results["full"]["onnx_fp32_mb"]
    print(
        f"{'':24s} {'windows/s':>10s} {'vs torch fp32':>14s} {'file MB':>9s} {'vs fp32 file':>13s}"
    )
    for name, values in rounds.items():
        rate = float(np.median(values))
        key, runner = name.split(" ", 1)
        size = {"torch": results[key]["state_dict_mb"], "onnx fp32": results[key]["onnx_fp32_mb"],
                "onnx int8": results[key]["onnx_int8_mb"]}[runner]  # fmt: skip
        results[key][f"{runner.replace(' ', '_')}_windows_per_s"] = rate
        results[key][f"{runner.replace(' ', '_')}_ratio_vs_torch_fp32"] = rate / base
        results[key][f"{runner.replace(' ', '_')}_size_ratio_vs_fp32_onnx"] = size / base_size
        label = f"{key} {'pytorch fp32 eager' if runner == 'torch' else runner}"
        print(
            f"{label:24s} {rate:10.1f} {rate / base:13.2f}x {size:9.1f} {size / base_size:12.3f}x"
        )
        if args.day_hours > 0:
            results["day_long_predict"] = day_long_predict(folder, args.day_hours)
    for key in models:
        r = results[key]
        if "test_accuracy" in " ".join(r):
            print(
                f"{key} ({r['checkpoint'] if 'checkpoint' in r else 'trained'}): test side of its "
                f"split ({r['split']}; {r['n_test']} windows): accuracy pytorch fp32 "
                f"{r['torch_test_accuracy']:.4f}, onnx fp32 {r['onnx_fp32_test_accuracy']:.4f}, "
                f"onnx int8 {r['onnx_int8_test_accuracy']:.4f} (int8 - fp32: "
                f"{100 * (r['onnx_int8_test_accuracy'] - r['torch_test_accuracy']):+.2f} points); "
                f"onnx fp32 vs pytorch max |Δp| {r['test_onnx_fp32_vs_torch_max_abs_diff']:.2g}; "
                f"files fp32 {r['onnx_fp32_mb']:.1f} MB, int8 {r['onnx_int8_mb']:.1f} MB"
            )
        if key.startswith("extra"):
            continue
        print(
            f"{key}: onnx fp32 vs pytorch: max |Δp| {r['onnx_fp32_vs_torch_max_abs_diff']:.2g}, "
            f"same class {r['onnx_fp32_vs_torch_same_class']:.1%}; int8 vs fp32: same class "
            f"{r['int8_vs_fp32_same_class']:.1%}, max |Δp| {r['int8_vs_fp32_max_abs_diff']:.3g} "
            f"({'trained' if r['trained'] else 'random weights'}; calibrated on {r['calibration']})"
        )
    if "day_long_predict" in results:
        d = results["day_long_predict"]
        print(
            f"sigalex predict, int8 ONNX, {d['hours']:g} h x {d['n_channels']} ch x "
            f"{d['sample_rate']:g} Hz EDF ({d['edf_mb']:.0f} MB, {d['windows']} windows): peak RSS "
            f"{d['peak_rss_mb']:.0f} MB, {d['seconds']:.0f} s ({d['windows_per_s']:.1f} windows/s)"
        )
    write_json(args.json, results)
    return results


def main() -> None:
    run()


if __name__ == "__main__":
    main()
