"""Every benchmark in one command: one JSON file and one Markdown table, device recorded.

Runs, in this order, on ``--device`` (the GPU when there is one):

- ``render``  (bench_render.py): batched sigalex rendering vs the per-window CPU loop;
- ``predict`` (bench_predict.py): ``Predictor`` end to end vs the AlexNet forward alone
  (also compiled with ``--compile``, the default on CUDA);
- ``train``   (bench_train.py): training with on-the-fly rendering vs the bare AlexNet step;
- ``scaling`` (bench_scaling.py): cost vs window length, channels, batch size (+ a PNG plot);
- ``peers``   (bench_peers.py): sigalex transforms vs torch.stft, torchaudio, nnAudio, ssqueezepy;
- ``stream_memory`` (bench_stream_memory.py, in a child process): peak RSS over a long EDF;
- ``export`` (bench_export.py, CPU, needs ``sigalex[export]``): ONNX fp32 and int8 exports of
  the full and compact AlexNet vs PyTorch fp32 eager (random weights: speed and size; trained
  checkpoints for accuracy are run with the script itself, see BENCHMARKS.md).

The first five and the last run in this process (their ``run(argv)``), so the device and threads are the same
for all. A stage that fails is reported (traceback in the JSON, exit status 1) and the others
still run. The table has the layout of BENCHMARKS.md: stage, sigalex, baseline or peer, ratio,
device, command. ``--quick`` runs everything at tiny sizes (a smoke test, well under a minute on
a CPU; its numbers mean nothing) with one torch thread unless ``--threads`` says otherwise.

    python benchmarks/run_all.py --out results.json                 # CPU, full sizes
    python benchmarks/run_all.py --device cuda --out results-h100.json
    python benchmarks/run_all.py --quick --out /tmp/quick.json      # does everything still run?
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
# Measure the sigalex beside this file, not whichever one is installed.
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from _common import MALLOC  # noqa: E402

STAGES = ("render", "predict", "train", "scaling", "peers", "stream_memory", "export")
TARGET_RSS_MB = 1024.0


# ---------------------------------------------------------------------------------------------
# The machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine(device: torch.device) -> dict:
    """What produced the numbers: versions, CPU and GPU models, threads, date."""
    import sigalex

    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    cuda = device.type == "cuda"
    gpu = torch.cuda.get_device_name(device) if cuda else None
    return dict(
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        device=str(device),
        device_name=gpu or f"{cpu_model()}, {torch.get_num_threads()} threads",
        cpu_model=cpu_model(), cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
        gpu_model=gpu, cuda=torch.version.cuda if cuda else None,
        torch=torch.__version__, sigalex=sigalex.__version__, sigalex_path=sigalex.__file__,
        git_commit=_git_commit(), python=platform.python_version(), platform=platform.platform(),
        peers={d: version(d) for d in ("torchaudio", "nnAudio", "ssqueezepy")},
        malloc=MALLOC,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Stages: each returns (result dict, command string)


def _script(name: str, argv: list[str]) -> str:
    return shlex.join(["python", f"benchmarks/{name}.py", *argv])


def stage_argv(stage: str, args) -> list[str]:
    dev = ["--device", args.device]
    quick = ["--quick"] if args.quick else []
    compile_ = ["--compile"] if args.compile else []
    if stage in ("render", "peers"):
        return dev + quick
    if stage in ("predict", "train"):
        return dev + quick + compile_
    if stage == "scaling":
        return dev + quick + ([] if args.quick else ["--model"]) + ["--plot", str(args.plot)]
    if stage == "stream_memory":
        # The npy path in --quick: a few seconds; the full run is the 24 h, 23-channel EDF.
        return ["--hours", "0.02", "--channels", "4", "--format", "npy"] if args.quick else []
    if stage == "export":
        return quick
    raise ValueError(stage)


def run_stage(stage: str, args) -> tuple[dict, str]:
    argv = stage_argv(stage, args)
    name = "bench_stream_memory" if stage == "stream_memory" else f"bench_{stage}"
    command = _script(name, argv)
    if stage == "stream_memory":
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))  # fmt: skip
        proc = subprocess.run(
            [sys.executable, str(HERE / f"{name}.py"), *argv],
            capture_output=True, text=True, env=env, cwd=REPO,
        )  # fmt: skip
        print(proc.stdout, end="", flush=True)
        text = proc.stdout
        start = text.find("\n{")
        if start < 0:
            raise RuntimeError(f"{name} printed no JSON (exit {proc.returncode}):\n{proc.stderr}")
        result = json.loads(text[start:])
        result["exit_status"] = proc.returncode  # 1: over the 1 GB target
        return result, command
    module = __import__(name)
    return module.run(argv), command


# ---------------------------------------------------------------------------------------------
# Rows of the table: stage, sigalex, baseline or peer, ratio, device, command


def _row(stage, sigalex, unit, baseline, baseline_label, ratio, device, command, **extra):
    return dict(
        stage=stage, sigalex=sigalex, unit=unit, baseline=baseline,
        baseline_label=baseline_label, ratio=ratio, device=device, command=command, **extra,
    )  # fmt: skip


def rows_for(stage: str, r: dict, device: str, command: str) -> list[dict]:
    out = []
    if stage == "render":
        for m in r["results"]:
            out.append(_row(
                f"render {m['method']} (uint8 227×227)", m["sigalex_uint8"], "windows/s",
                m["baseline"], "per-window scipy/librosa/pywt + colormap + PIL, 1 core",
                m["ratio_uint8"], device, command, sigalex_float=m["sigalex_float"],
            ))  # fmt: skip
    elif stage == "predict":
        a = r["alexnet_windows_per_s"]
        out.append(_row(
            "predict, in-memory recording (STFT)", r["predict_windows_per_s"], "windows/s", a,
            "AlexNet forward only", r["ratio_predict"], device, command,
        ))  # fmt: skip
        out.append(_row(
            "predict_files, .npy on disk (STFT)", r["predict_files_windows_per_s"], "windows/s",
            a, "AlexNet forward only", r["ratio_predict_files"], device, command,
        ))  # fmt: skip
        if "alexnet_compiled_windows_per_s" in r:
            out.append(_row(
                "predict, in-memory recording (STFT), compiled", r["predict_compiled_windows_per_s"],
                "windows/s", r["alexnet_compiled_windows_per_s"], "AlexNet forward only, compiled",
                r["ratio_predict_compiled"], device, command,
            ))  # fmt: skip
    elif stage == "train":
        out.append(_row(
            f"train, render on the fly ({r['method']}, batch {r['batch_size']}, "
            f"{r['precision']}{', compiled' if r['compiled'] else ''})",
            r["sigalex_images_per_s"], "images/s", r["baseline_images_per_s"],
            "bare AlexNet step on ready images", r["ratio"], device, command,
        ))  # fmt: skip
    elif stage == "scaling":
        names = {"n_times": "window length", "n_channels": "channels", "batch_size": "batch size"}
        for s in r["summary"]:
            out.append(_row(
                f"scaling {s['series']}: {names[s['factor']]} {s['low']} → {s['high']}",
                s["us_per_window_high"], "µs/window", s["us_per_window_low"],
                f"at {names[s['factor']]} {s['low']}", s["growth"], device, command,
            ))  # fmt: skip
    elif stage == "peers":
        ours = {
            x["family"]: x
            for x in r["results"]
            if x["implementation"].startswith("sigalex") and "render" not in x["implementation"]
        }
        for x in r["results"]:
            if x["implementation"].startswith("sigalex"):
                continue
            mine = ours[x["family"]]
            label = x["implementation"] + (f" {x['version']}" if x.get("version") else "")
            out.append(_row(
                f"transform {x['family']}: {mine['implementation']} vs peer",
                mine["windows_per_s"], "windows/s", x["windows_per_s"], label,
                x["sigalex_ratio"], device, command, status=x["status"],
            ))  # fmt: skip
    elif stage == "stream_memory":
        out.append(_row(
            f"stream {r['hours']:.2f} h × {r['n_channels']} ch {r['format']} (peak RSS)",
            r["peak_rss_mb"], "MB", TARGET_RSS_MB, "target", r["peak_rss_mb"] / TARGET_RSS_MB,
            "cpu (host memory)", command, windows_per_s=r["windows_per_s"],
        ))  # fmt: skip
    elif stage == "export":
        base = r["full"]["torch_windows_per_s"]
        for key, runner, label in (
            ("full", "onnx_fp32", "export: full AlexNet, ONNX fp32 (pipeline)"),
            ("full", "onnx_int8", "export: full AlexNet, ONNX int8"),
            ("compact", "torch", "export: compact AlexNet (width 0.25), PyTorch fp32"),
            ("compact", "onnx_int8", "export: compact AlexNet (width 0.25), ONNX int8"),
        ):  # fmt: skip
            m = r[key]
            out.append(_row(
                label, m[f"{runner}_windows_per_s"], "windows/s", base,
                "full AlexNet, PyTorch fp32 eager", m[f"{runner}_windows_per_s"] / base,
                "cpu (onnxruntime CPU)", command, file_mb=m.get(f"{runner}_mb"),
            ))  # fmt: skip
    return out


def _fmt(value, unit="") -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}" + (f" {unit}" if unit else "")


def markdown(rows: list[dict], errors: dict) -> str:
    lines = [
        "| stage | sigalex | baseline or peer | ratio | device | command |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = _fmt(r["baseline"], r["unit"]) if r["baseline"] is not None else r.get("status")
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] else "—"
        lines.append(
            f"| {r['stage']} | {_fmt(r['sigalex'], r['unit'])} | {base} ({r['baseline_label']}) "
            f"| {ratio} | {r['device']} | `{r['command']}` |"
        )
    for stage, err in errors.items():
        last = err.strip().splitlines()[-1] if err.strip() else "failed"
        lines.append(f"| {stage} | FAILED: {last} | — | — | — | — |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=Path("results.json"), help="JSON file to write")
    ap.add_argument("--plot", type=Path, help="scaling plot (PNG); default beside --out")
    ap.add_argument("--markdown", type=Path, help="also write the table here")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not numbers")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's; 1 with --quick)")
    compile_ = ap.add_mutually_exclusive_group()
    compile_.add_argument("--compile", dest="compile", action="store_true", default=None)
    compile_.add_argument(
        "--no-compile", dest="compile", action="store_false",
        help="torch.compile AlexNet in predict/train (default: on CUDA, not with --quick)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.compile is None:
        args.compile = args.device.startswith("cuda") and not args.quick
    if args.threads is None and args.quick:
        args.threads = 1  # a smoke test; 2 threads on a busy 2-core machine can run 30× slower
    args.plot = args.plot or args.out.with_name(args.out.stem + "-scaling.png")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    meta = machine(device)
    meta.update(quick=args.quick, compile=args.compile, command=shlex.join(["python", "benchmarks/run_all.py", *(sys.argv[1:] if argv is None else argv)]))  # fmt: skip
    print(f"# sigalex benchmarks on {meta['device']} ({meta['device_name']}), {meta['date']}")
    print(f"# torch {meta['torch']}, sigalex {meta['sigalex']}, CPU {meta['cpu_model']}")
    stages, rows, errors = {}, [], {}
    short = meta["gpu_model"] or f"cpu ({meta['cpu_count']} cores, {meta['torch_threads']} threads)"
    for stage in args.stages:
        print(f"\n## {stage}", flush=True)
        t = time.perf_counter()
        entry = dict(ok=False, seconds=None, result=None, error=None, command=None)
        try:
            result, command = run_stage(stage, args)
            entry.update(result=result, command=command)
            rows.extend(rows_for(stage, result, short, command))
            entry["ok"] = True
        except Exception:
            entry["error"] = errors[stage] = traceback.format_exc()
            print(entry["error"], file=sys.stderr, flush=True)
        finally:
            entry["seconds"] = round(time.perf_counter() - t, 2)
            if args.threads:
                torch.set_num_threads(args.threads)  # a stage's library may have changed it
            stages[stage] = entry
    table = markdown(rows, errors)
    print(f"\n## Summary ({'QUICK: tiny sizes, not measurements' if args.quick else 'full'})\n")
    print(table)
    print(f"\n{meta['device']} ({meta['device_name']}), torch {meta['torch']}, {meta['date']}")
    out = dict(meta=meta, stages=stages, rows=rows, errors=errors, markdown=table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(f"wrote {args.out}")
    if args.markdown:
        with contextlib.suppress(OSError):
            args.markdown.write_text(table + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
