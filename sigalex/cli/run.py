"""``sigalex run`` and ``sigalex validate``: train and evaluate a recipe, or check it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="train and evaluate a recipe (TOML), leaving a run directory",
        description="Train AlexNet on the images a recipe describes and evaluate it; writes "
        "runs/<name>-<timestamp>/ with config.toml, checkpoint.pt, last.pt, history.csv, "
        "test_predictions.tsv, metrics.json and plots/.",
        epilog="Examples: sigalex run pipelines/eeg-seizure.toml --set train.epochs=3; "
        "sigalex run --resume runs/eeg-seizure-20261123-180003",
    )
    p.add_argument("config", type=Path, nargs="?", help="recipe (TOML); not needed with --resume")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe value, e.g. --set train.lr=0.001 (repeatable)",
    )
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the recipe's)")
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue an interrupted run from its last.pt (with the run's own config.toml)",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train with N processes on this machine (DistributedDataParallel; launches "
        "'torchrun --standalone --nproc-per-node N -m sigalex run ...'; GPUs: one each, "
        "CPUs: gloo). Several machines: call torchrun yourself",
    )
    p.set_defaults(func=main)


def main(args) -> int:
    from ..train import run_recipe

    if args.config is None and args.resume is None:
        raise ConfigError("sigalex run: give a recipe (TOML), or --resume RUN_DIR")
    if args.nproc < 1:
        raise ConfigError(f"--nproc {args.nproc}: must be a positive number of processes")
    if args.nproc > 1:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError(
                "--nproc inside a torchrun launch: torchrun already started the ranks"
            )
        return subprocess.call(torchrun_command(args))
    result = run_recipe(
        args.config, overrides=args.overrides, device=args.device, resume=args.resume
    )
    if os.environ.get("RANK", "0") == "0":
        explain_for_report(result, device=args.device)
    return 0


def explain_for_report(result, *, device=None, max_windows: int = 64) -> None:
    """With Captum installed, a single-split run's report shows what the model looked at:
    ``explanations/`` gets the Grad-CAM band view of up to ``max_windows`` test windows and
    heat maps of the first test windows of each class (``output.examples_per_class``), and
    ``report.html`` is written again with them. Without Captum, or for fold runs (``sigalex
    explain RUN_DIR/fold-NN``), nothing is done; a failure is a warning: the run stands."""
    import importlib.util
    import logging

    log = logging.getLogger("sigalex")
    run_dir = result.run_dir
    if importlib.util.find_spec("captum") is None or not (run_dir / "checkpoint.pt").is_file():
        return
    if "accuracy" not in result.metrics:  # the test set was left alone
        return
    try:
        from ..config import load_config
        from ..explain.figures import plot_explanation
        from ..explain.run import explain_run_dir
        from ..reports import run_report

        out = run_dir / "explanations"
        info = explain_run_dir(run_dir, out, max_windows=max_windows, device=device)
        exp = info["explanation"]
        per_class = max(1, load_config(run_dir / "config.toml").output.examples_per_class)
        for name in exp.classes:
            mine = [i for i, t in enumerate(exp.target) if t == name][:per_class]
            for k, i in enumerate(mine):
                plot_explanation(exp, i, out / f"example_{name}_{k + 1}.png")
        log.info(f"wrote {run_report(run_dir)} (with explanations in {out})")
    except Exception as exc:  # the explanations are a view of the run: it stands without them
        log.warning(f"WARNING: explanations not written: {type(exc).__name__}: {exc}")


def torchrun_command(args) -> list[str]:
    """``sigalex run --nproc N ...`` as the torchrun launch it stands for (one machine)."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={args.nproc}", "-m", "sigalex", "run",
    ]  # fmt: skip
    if args.config is not None:
        cmd.append(str(args.config))
    for override in args.overrides:
        cmd += ["--set", override]
    if args.device:
        cmd += ["--device", args.device]
    if args.resume is not None:
        cmd += ["--resume", str(args.resume)]
    return cmd


def add_validate_parser(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="check a recipe and its data without training",
        description="Load a recipe, find its dataset, cut and split the windows and build the "
        "front end, reporting any problem; trains nothing.",
    )
    p.add_argument("config", type=Path, help="recipe (TOML)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE"
    )
    p.add_argument(
        "--config-only",
        action="store_true",
        help="check the recipe's keys and values, not the data",
    )
    p.set_defaults(func=validate_main)


def validate_main(args) -> int:
    from ..config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.config_only:
        print(f"{args.config}: recipe OK")
        return 0
    from ..train import validate

    data = validate(cfg)
    counts = {c: int((data.targets == i).sum()) for i, c in enumerate(data.classes)}
    split = data.splits[0]
    spec = data.spec
    window = f"{spec.window_s:g} s windows" if spec.window_s else "whole recordings"
    folds = f" ({len(data.splits)} folds)" if len(data.splits) > 1 else ""
    print(
        f"{args.config}: OK\n"
        f"  dataset {cfg.data.dataset} at {data.dataset_root}\n"
        f"  {len(data.windows)} windows ({window}) of {data.n_times} samples at "
        f"{data.sample_rate:g} Hz, {data.n_channels} channel(s)\n"
        f"  classes {counts}, positive class {spec.positive_class or 'none'}\n"
        f"  split: {split.description}: train {len(split.train)}, val {len(split.val)}, "
        f"test {len(split.test)}{folds}"
    )
    for note in data.notes[:10]:
        print(f"  note: {note}")
    if data.errors:
        print(f"  {len(data.errors)} file(s) left out of the dataset:")
        for file, reason in data.errors:
            print(f"    {file}: {reason}")
    return 0
