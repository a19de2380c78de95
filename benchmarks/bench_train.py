"""Training images per second: on-the-fly rendering vs the bare AlexNet training step, same run.

Same model, optimiser, batch, device and precision on both sides (bf16 autocast on CUDA, fp32 on
the CPU, channels-last on both unless ``--no-channels-last``, as :class:`sigalex.train.Trainer`
runs it with its default ``train.channels_last = true``):

- ``sigalex``: raw float32 windows ``(batch, 1, 4097)`` in (pinned) host memory → copied to the
  device → what ``Trainer.images(x, train=True)`` does (random time shift, the transform,
  SpecAugment masks, render to ``(batch, 3, 227, 227)`` in [0, 1], channels-last) → AlexNet
  forward + cross-entropy + backward + SGD step (momentum 0.9, weight decay 5e-4);
- ``baseline``: the same AlexNet step on images already rendered and waiting on the device —
  the upper bound rendering can approach.

Also reports the front end alone (images/s of the ``Trainer.images`` path without the model),
to show which side is the bottleneck. Prints the ratio and writes JSON with ``--json``.

    python benchmarks/bench_train.py                                # CPU, STFT images
    python benchmarks/bench_train.py --device cuda --batch-size 256 --steps 50 --compile
    python benchmarks/bench_train.py --method cwt --no-augment
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_name, median_seconds, write_json
from bench_render import METHODS, N_TIMES, SAMPLE_RATE, load_windows

import sigalex
from sigalex.frontend import ImageFrontend
from sigalex.models import build_model
from sigalex.transforms import spec_augment, time_shift


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=None, help="default 16 CPU, 256 GPU")
    ap.add_argument("--steps", type=int, default=None, help="timed steps; default 5 CPU, 50 GPU")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps; default 1 CPU, 10 GPU")
    ap.add_argument("--method", default="stft", choices=list(METHODS))
    ap.add_argument("--size", type=int, default=227, help="image size in pixels")
    ap.add_argument(
        "--no-augment",
        action="store_true",
        help="skip the time shift and SpecAugment masks (on by default: 0.5 s shift, 2+2 masks)",
    )
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument(
        "--no-channels-last", action="store_true", help="NCHW images (train.channels_last = false)"
    )
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    ap.add_argument("--json", type=Path, help="write results here")
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if args.quick:
        args.batch_size = args.batch_size or 4
        args.steps = args.steps or 1
        args.warmup = args.warmup if args.warmup is not None else 0
    args.batch_size = args.batch_size or (256 if cuda else 16)
    args.steps = args.steps or (50 if cuda else 5)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    return args


def run(argv=None) -> dict:
    """Run the benchmark with command-line arguments ``argv``; return the results."""
    args = parse_args(argv)
    device = torch.device(args.device)
    amp = device.type == "cuda"  # bf16 autocast on CUDA, fp32 on the CPU (as Trainer)
    channels_last = not args.no_channels_last  # Trainer's default on every device
    batch = args.batch_size
    torch.manual_seed(0)

    frontend = ImageFrontend(SAMPLE_RATE, args.method, size=args.size, **METHODS[args.method])
    frontend = frontend.to(device)
    model, _ = build_model("alexnet", num_classes=2, weights=None)
    model = model.to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    compiled, compile_error = False, None
    net = model
    if args.compile:
        try:
            net = torch.compile(model)
            compiled = True
        except Exception as exc:  # compile unavailable: measure eager and say so
            compile_error = f"{type(exc).__name__}: {exc}"

    windows_np, source = load_windows(batch)
    windows = torch.from_numpy(windows_np[:batch, None].copy())
    if device.type == "cuda":
        windows = windows.pin_memory()
    labels = torch.randint(0, 2, (batch,), device=device)
    max_shift = 0 if args.no_augment else round(0.5 * SAMPLE_RATE)
    masks = 0 if args.no_augment else 2

    def autocast():
        if amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    @torch.no_grad()
    def images_from_windows() -> torch.Tensor:  # what Trainer.images(x, train=True) does
        x = windows.to(device, non_blocking=True)
        x = time_shift(x, max_shift)
        maps = frontend.transform(x)
        maps = spec_augment(maps, time_masks=masks, freq_masks=masks, fraction=0.1)
        images = frontend.render(maps)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def train_step(images: torch.Tensor) -> None:
        with autocast():
            logits = net(images)
            loss = loss_fn(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    ready = images_from_windows().clone()  # pre-rendered images, same size and layout

    def step_sigalex() -> None:
        train_step(images_from_windows())

    def step_baseline() -> None:
        train_step(ready)

    try:
        t_base = median_seconds(step_baseline, device, repeats=args.steps, warmup=args.warmup)
    except Exception as exc:  # a compiled model that fails at its first call: fall back
        if not compiled:
            raise
        compile_error, compiled, net = f"{type(exc).__name__}: {exc}", False, model
        t_base = median_seconds(step_baseline, device, repeats=args.steps, warmup=args.warmup)
    t_ours = median_seconds(step_sigalex, device, repeats=args.steps, warmup=args.warmup)
    t_front = median_seconds(images_from_windows, device, repeats=args.steps, warmup=args.warmup)

    ours, base, front = batch / t_ours, batch / t_base, batch / t_front
    result = dict(
        benchmark="train",
        device=str(device),
        device_name=device_name(device),
        method=args.method,
        batch_size=batch,
        steps=args.steps,
        n_times=N_TIMES,
        size=args.size,
        windows=source,
        augment=not args.no_augment,
        precision="bf16 autocast" if amp else "fp32",
        channels_last=channels_last,
        compiled=compiled,
        compile_error=compile_error,
        sigalex_images_per_s=ours,
        baseline_images_per_s=base,
        frontend_images_per_s=front,
        ratio=ours / base,
        torch=torch.__version__,
        sigalex=sigalex.__version__,
        command=shlex.join(["python", "benchmarks/bench_train.py", *args.argv]),
    )
    print(
        f"train ({args.method}, batch {batch}, {result['precision']}, "
        f"channels_last={channels_last}, compiled={compiled}) on {device} "
        f"({result['device_name']}):\n"
        f"  sigalex (render on the fly + step) {ours:10.1f} images/s\n"
        f"  bare AlexNet step (ready images)   {base:10.1f} images/s\n"
        f"  front end alone                    {front:10.1f} images/s\n"
        f"  ratio {ours / base:.2f}",
        flush=True,
    )
    if compile_error:
        print(f"  torch.compile unavailable, measured eager: {compile_error}", flush=True)
    write_json(args.json, result)
    return result


def main() -> None:
    run()


if __name__ == "__main__":
    main()
