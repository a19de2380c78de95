"""How the cost of transform + render grows with window length, channels and batch size.

Times :class:`sigalex.ImageFrontend` (float images in [0, 1], the training path; ``--image-dtype
uint8`` for the prediction/PNG path) on ``--device``, one factor at a time around a base point
(4096 samples, 1 channel, batch 32 on the CPU / 1024 on a GPU), for STFT and CWT with the same
parameters as ``bench_render.py`` (173.61 Hz, 0.5–40 Hz):

- window length: 1024 … 16384 samples;
- channels: 1 … 23, fused by ``channels="mean"`` (one averaged map) and ``"tile"`` (a grid of
  per-channel maps in one image);
- batch size: 1 … 256 (CPU) or 1 … 4096 (GPU).

The cost is the median time of one batch divided by its size (µs per window). ``--model`` adds
the AlexNet forward pass on ready 227×227 images (bf16 + channels-last on CUDA) as a reference:
where the curves lie below it, rendering is not the bottleneck. Writes JSON (``--json``) and a
log-log plot with one panel per factor (``--plot``, PNG).

    python benchmarks/bench_scaling.py --model                      # CPU
    python benchmarks/bench_scaling.py --device cuda --model --plot scaling-h100.png
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_name, median_seconds, write_json
from bench_render import METHODS, SAMPLE_RATE

import sigalex
from sigalex.frontend import ImageFrontend
from sigalex.models import build_model

FACTORS = {
    "n_times": "window length (samples)",
    "n_channels": "channels",
    "batch_size": "batch size (windows)",
}


def seconds_per_call(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` after one untimed call, without autograd."""
    with torch.inference_mode():
        return median_seconds(fn, device, repeats=repeats)


class Bench:
    """Front ends built once per (method, channel mode) and timed on random windows."""

    def __init__(self, device: torch.device, image_dtype: str, repeats: int):
        self.device, self.image_dtype, self.repeats = device, image_dtype, repeats
        self._frontends: dict[tuple, ImageFrontend] = {}
        self._gen = torch.Generator(device="cpu").manual_seed(0)

    def frontend(self, method: str, channels: str) -> ImageFrontend:
        key = (method, channels)
        if key not in self._frontends:
            self._frontends[key] = ImageFrontend(
                SAMPLE_RATE, method, channels=channels, image_dtype=self.image_dtype,
                **METHODS[method],
            ).to(self.device)  # fmt: skip
        return self._frontends[key]

    def point(self, method, channels, *, n_times, n_channels, batch_size, factor) -> dict:
        frontend = self.frontend(method, channels)
        x = torch.randn(batch_size, n_channels, n_times, generator=self._gen).to(self.device)
        s = seconds_per_call(lambda: frontend(x), self.device, self.repeats)
        return dict(
            factor=factor, series=f"{method} ({channels})" if factor == "n_channels" else method,
            method=method, channels=channels, n_times=n_times, n_channels=n_channels,
            batch_size=batch_size, seconds_per_batch=s, us_per_window=1e6 * s / batch_size,
            windows_per_s=batch_size / s,
        )  # fmt: skip


def model_cost(device: torch.device, batch_size: int, repeats: int, model) -> dict:
    """AlexNet forward alone on ready images, as :class:`sigalex.Predictor` runs it."""
    cuda = device.type == "cuda"
    images = torch.rand(batch_size, 3, 227, 227, device=device)
    if cuda:
        images = images.contiguous(memory_format=torch.channels_last)

    def fwd():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            return model(images)

    s = seconds_per_call(fwd, device, repeats)
    return dict(batch_size=batch_size, seconds_per_batch=s, us_per_window=1e6 * s / batch_size)


def summarise(points: list[dict]) -> list[dict]:
    """Growth of the per-window cost from the smallest to the largest value of each factor."""
    out = []
    for factor in FACTORS:
        series = dict.fromkeys(p["series"] for p in points if p["factor"] == factor)
        for name in series:
            pts = sorted(
                (p for p in points if p["factor"] == factor and p["series"] == name),
                key=lambda p: p[factor],
            )
            if len(pts) < 2:
                continue
            lo, hi = pts[0], pts[-1]
            out.append(
                dict(
                    factor=factor, series=name, low=lo[factor], high=hi[factor],
                    us_per_window_low=lo["us_per_window"], us_per_window_high=hi["us_per_window"],
                    growth=hi["us_per_window"] / lo["us_per_window"],
                )
            )  # fmt: skip
    return out


def plot(result: dict, path: Path) -> None:
    """One log-log panel per factor: µs per window against the factor's value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, NullLocator

    points, base = result["points"], result["base"]
    fig = Figure(figsize=(15, 5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharey=True)
    styles = {"stft": dict(color="tab:blue"), "cwt": dict(color="tab:orange")}
    styles.update(mel=dict(color="tab:green"), hilbert=dict(color="tab:red"))
    others = {
        "n_times": f"1 channel, batch {base['batch_size']}",
        "n_channels": f"{base['n_times']} samples, batch {base['batch_size']}",
        "batch_size": f"{base['n_times']} samples, 1 channel",
    }
    for ax, factor in zip(axes, FACTORS, strict=True):
        mine = [p for p in points if p["factor"] == factor]
        xs_all = {p[factor] for p in mine}
        if factor == "batch_size":
            xs_all |= {m["batch_size"] for m in result.get("model") or []}
        xs_all = sorted(xs_all)
        for name in dict.fromkeys(p["series"] for p in mine):
            pts = sorted((p for p in mine if p["series"] == name), key=lambda p: p[factor])
            style = dict(styles.get(pts[0]["method"], {}))
            tile = pts[0]["channels"] == "tile" and factor == "n_channels"
            ax.plot(
                [p[factor] for p in pts], [p["us_per_window"] for p in pts],
                marker="s" if tile else "o", linestyle="--" if tile else "-", label=name, **style,
            )  # fmt: skip
        model = result.get("model")
        if model:
            if factor == "batch_size" and len(model) > 1:
                pts = sorted(model, key=lambda m: m["batch_size"])
                ax.plot(
                    [m["batch_size"] for m in pts], [m["us_per_window"] for m in pts],
                    color="black", marker="^", linestyle=":", label="AlexNet forward",
                )  # fmt: skip
            else:
                ref = next((m for m in model if m["batch_size"] == base["batch_size"]), model[0])
                ax.axhline(
                    ref["us_per_window"], color="black", linestyle=":",
                    label=f"AlexNet forward (batch {ref['batch_size']})",
                )  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs_all, [str(v) for v in xs_all])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(FACTORS[factor])
        ax.set_title(f"{FACTORS[factor].split(' (')[0]} ({others[factor]})", fontsize=10)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", axis="y", alpha=0.15)
        ax.legend(fontsize=8, loc="best")
    axes[0].set_ylabel("µs per window (lower is better)")
    fig.suptitle(
        f"sigalex transform + render to {result['image_dtype']} 227×227 images on "
        f"{result['device']} ({result['device_name']}), torch {result['torch']}",
        fontsize=11,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--methods", nargs="+", default=["stft", "cwt"], choices=list(METHODS))
    ap.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    ap.add_argument("--channels", type=int, nargs="+", default=[1, 2, 4, 8, 16, 23])
    ap.add_argument("--batch-sizes", type=int, nargs="+", help="default 1…256 CPU, 1…4096 GPU")
    ap.add_argument("--base-length", type=int, default=4096)
    ap.add_argument("--base-batch", type=int, help="default 32 CPU, 1024 GPU")
    ap.add_argument("--repeats", type=int, help="timed calls per point; default 5 CPU, 20 GPU")
    ap.add_argument("--image-dtype", default="float", choices=["float", "uint8"])
    ap.add_argument("--model", action="store_true", help="add the AlexNet forward as reference")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    ap.add_argument("--json", type=Path, help="write results here")
    ap.add_argument("--plot", type=Path, help="write the plot here (PNG)")
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if args.quick:
        args.lengths, args.channels = [1024, 4096], [1, 4]
        args.batch_sizes = args.batch_sizes or [1, 8]
        args.base_batch = args.base_batch or 4
        args.repeats = args.repeats or 1
    args.batch_sizes = args.batch_sizes or (
        [1, 16, 256, 1024, 4096] if cuda else [1, 4, 16, 64, 256]
    )
    args.base_batch = args.base_batch or (1024 if cuda else 32)
    args.repeats = args.repeats or (20 if cuda else 5)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    return args


def run(argv=None) -> dict:
    """Run the benchmark with command-line arguments ``argv``; return the results."""
    args = parse_args(argv)
    device = torch.device(args.device)
    bench = Bench(device, args.image_dtype, args.repeats)
    base = dict(n_times=args.base_length, n_channels=1, batch_size=args.base_batch)
    points = []

    def add(method, channels, factor, **changes):
        p = bench.point(method, channels, factor=factor, **{**base, **changes})
        points.append(p)
        print(
            f"{factor:10s} {p['series']:12s} {p['n_times']:6d} samples {p['n_channels']:3d} ch "
            f"batch {p['batch_size']:5d}: {p['us_per_window']:10.1f} µs/window "
            f"({p['windows_per_s']:9.0f} windows/s)",
            flush=True,
        )

    for method in args.methods:
        for n in args.lengths:
            add(method, "mean", "n_times", n_times=n)
        for mode in ("mean", "tile"):
            for c in args.channels:
                add(method, mode, "n_channels", n_channels=c)
        for b in args.batch_sizes:
            add(method, "mean", "batch_size", batch_size=b)

    model_points = []
    if args.model:
        net, _ = build_model("alexnet", num_classes=2, weights=None)
        net = net.to(device).eval()
        if device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        for b in sorted({*args.batch_sizes, args.base_batch}):
            m = model_cost(device, b, args.repeats, net)
            model_points.append(m)
            print(f"AlexNet forward batch {b:5d}: {m['us_per_window']:10.1f} µs/window")

    result = dict(
        benchmark="scaling", device=str(device), device_name=device_name(device),
        sample_rate=SAMPLE_RATE, image_dtype=args.image_dtype, base=base,
        parameters={m: METHODS[m] for m in args.methods}, points=points, model=model_points,
        summary=summarise(points), torch=torch.__version__, sigalex=sigalex.__version__,
        command=shlex.join(["python", "benchmarks/bench_scaling.py", *args.argv]),
    )  # fmt: skip
    print("\n| factor | series | from | to | µs/window from | µs/window to | growth |")
    print("|---|---|---|---|---|---|---|")
    for s in result["summary"]:
        print(
            f"| {FACTORS[s['factor']]} | {s['series']} | {s['low']} | {s['high']} | "
            f"{s['us_per_window_low']:.1f} | {s['us_per_window_high']:.1f} | {s['growth']:.2f}× |"
        )
    if args.plot:
        plot(result, args.plot)
        result["plot"] = str(args.plot)
        print(f"plot: {args.plot}")
    write_json(args.json, result)
    return result


def main() -> None:
    run()


if __name__ == "__main__":
    main()
