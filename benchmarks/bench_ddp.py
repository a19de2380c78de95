"""Data-parallel training throughput: 1 process against N under torchrun, same run.

Each launch trains the model unit (STFT front end rendering 227×227 images on the fly, AlexNet,
SGD) on random single-channel windows for ``--steps`` steps of ``--batch-size`` windows a rank,
after ``--warmup`` steps, under ``torch.distributed.run`` (DistributedDataParallel; NCCL on
GPUs, one each; gloo on CPUs), exactly as ``sigalex run --nproc N`` trains. Prints images/s for
1 and N processes, the speed-up and the scaling efficiency (speed-up / N).

On a CPU the N processes share the machine's cores (torchrun gives each one thread), so the
speed-up measures DDP's overhead there, not a gain; the targets (≥ 1.8× on 2 GPUs, ≥ 3.4× on 4)
are for GPUs:

    python benchmarks/bench_ddp.py --nproc 2                       # CPU
    python benchmarks/bench_ddp.py --nproc 4 --device cuda         # 4 GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))


def worker(args) -> None:
    """One rank: time ``args.steps`` DDP training steps; rank 0 writes images/s."""
    import torch
    from torch import nn

    from sigalex.config import from_dict
    from sigalex.models import ModelSpec, SignalClassifier, build_frontend, build_network
    from sigalex.train import distributed

    device = torch.device(args.device)
    dist = distributed.from_environment(device)
    device = distributed.rank_device(dist, device)
    torch.manual_seed(dist.rank)
    rate, n_times = 256.0, 1024
    cfg = from_dict({"transform": {"method": "stft", "n_fft": 128, "hop_length": 16, "fmax": 40.0},
                     "model": {"weights": "none"}})  # fmt: skip
    spec = ModelSpec(classes=("a", "b"), sample_rate=rate, n_channels=1, n_times=n_times)
    model = SignalClassifier(build_frontend(cfg, rate), build_network(num_classes=2), spec)
    model = model.to(device).train()
    module: nn.Module = model
    if dist.active:
        ids = [device.index] if device.type == "cuda" else None
        module = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    opt = torch.optim.SGD(model.network.parameters(), lr=1e-3, momentum=0.9)
    x = 30 * torch.randn(args.batch_size, 1, n_times)
    y = torch.randint(0, 2, (args.batch_size,))

    def step() -> None:
        loss = nn.functional.cross_entropy(module(x), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    distributed.barrier(dist)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    distributed.barrier(dist)
    seconds = time.perf_counter() - t
    if dist.is_main:
        images = args.steps * args.batch_size * dist.world_size
        Path(args.out).write_text(json.dumps({"images_per_s": images / seconds,
                                              "threads": torch.get_num_threads()}))  # fmt: skip


def launch(n: int, args, out: Path) -> dict:
    """Run :func:`worker` under torchrun with ``n`` processes; its result."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
        str(Path(__file__).resolve()), "--worker", "--out", str(out), "--device", args.device,
        "--batch-size", str(args.batch_size), "--steps", str(args.steps),
        "--warmup", str(args.warmup),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"torchrun with {n} process(es) failed:\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def run(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=16, help="windows a rank takes a step")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    if args.quick:
        args.batch_size, args.steps, args.warmup = 2, 2, 1
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        one = launch(1, args, Path(tmp) / "one.json")
        many = launch(args.nproc, args, Path(tmp) / "many.json")
    speedup = many["images_per_s"] / one["images_per_s"]
    result = {
        "device": args.device, "nproc": args.nproc, "batch_size_per_rank": args.batch_size,
        "steps": args.steps, "images_per_s_1": one["images_per_s"],
        f"images_per_s_{args.nproc}": many["images_per_s"], "speedup": speedup,
        "efficiency": speedup / args.nproc, "threads_1": one["threads"],
        "threads_per_rank": many["threads"],
    }  # fmt: skip
    print(
        f"{args.device}, batch {args.batch_size} a rank, {args.steps} steps: 1 process "
        f"{one['images_per_s']:.1f} images/s ({one['threads']} threads); {args.nproc} processes "
        f"{many['images_per_s']:.1f} images/s ({many['threads']} thread(s) each): "
        f"{speedup:.2f}x, efficiency {speedup / args.nproc:.0%}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    run()
