"""``sigalex explain``: heat maps of a model's decisions on axes in seconds and Hz."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ParameterError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "explain",
        help="heat maps of what a model's decisions rest on, in seconds and Hz",
        description="Explain a checkpoint's decisions with Captum (the explain extra: pip "
        "install 'sigalex[explain]'). For recordings: the windows of each INPUT with the "
        "highest probability of the class (at most --max-windows each) are attributed (Grad-CAM "
        "on the network's last convolution, or Integrated Gradients on the image) and drawn as "
        "the time-frequency image with the heat map over it, x in seconds of the recording, y in "
        "the transform's frequencies (Hz); written into --out as <stem>_<start>s_<class>.png, "
        "with explanations.tsv (recording, start_s, end_s, class, probability, method, png, "
        "peak_hz, peak_s) and errors.tsv (recording, reason). For a run directory (RUN_DIR, no "
        "--checkpoint): the test side of its split is rebuilt, every window attributed to its "
        "true class, and bands.png/bands.tsv give the mean share of attribution per frequency, "
        "one line per class.",
        epilog="Exit status: 0 every input explained; 3 some failed (see errors.tsv); 4 none; "
        "1 a usage, checkpoint or data error. Examples: sigalex explain --checkpoint "
        "runs/eeg/checkpoint.pt night.edf --start-s 3600 --duration-s 600 --out why; "
        "sigalex explain runs/eeg --out why-bands",
    )
    p.add_argument("--checkpoint", type=Path, help="checkpoint.pt from sigalex run")
    p.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="files, folders (searched recursively) or globs; or one run directory",
    )  # fmt: skip
    p.add_argument("--out", "-o", type=Path, help="output folder (required)")
    p.add_argument(
        "--class", dest="target", metavar="NAME",
        help="the class to explain (default: the model's positive class, else each window's "
        "predicted class)",
    )  # fmt: skip
    p.add_argument("--start-s", type=float, help="only windows overlapping from this second on")
    p.add_argument("--duration-s", type=float, help="the span's length in seconds (with --start-s)")
    p.add_argument(
        "--sample-rate", type=float, help="Hz of .txt/.csv/.npy inputs (default: the model's)"
    )
    p.add_argument(
        "--method", choices=("gradcam", "integrated-gradients"), default="gradcam",
        help="Grad-CAM on the last convolution (default) or Integrated Gradients on the image",
    )  # fmt: skip
    p.add_argument(
        "--max-windows", type=int,
        help="windows explained per input (8; highest probability first), or test windows of a "
        "run directory (200)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=16, help="windows per pass (16)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.set_defaults(func=main)


def _check(args) -> None:
    if args.out is None:
        raise ParameterError("--out is required")
    if not args.inputs:
        raise ParameterError(
            "no INPUT given: name recordings (with --checkpoint) or a run directory"
        )
    for flag, value in (("--sample-rate", args.sample_rate), ("--duration-s", args.duration_s)):
        if value is not None and not 0 < value < float("inf"):
            raise ParameterError(f"{flag} {value:g}: must be a positive number")
    if args.start_s is not None and not 0 <= args.start_s < float("inf"):
        raise ParameterError(f"--start-s {args.start_s:g}: must be a number of seconds >= 0")
    if args.max_windows is not None and args.max_windows < 1:
        raise ParameterError(f"--max-windows {args.max_windows}: must be a positive integer")
    if args.batch_size < 1:
        raise ParameterError(f"--batch-size {args.batch_size}: must be a positive integer")


def main(args) -> int:
    from ..explain.run import explain_run_dir, explain_to_dir, is_run_dir

    _check(args)
    if args.checkpoint is None:
        if len(args.inputs) != 1 or not is_run_dir(args.inputs[0]):
            raise ParameterError(
                "--checkpoint is required for recordings (without it, INPUT must be one run "
                "directory with config.toml, checkpoint.pt and test_predictions.tsv)"
            )
        for flag in ("target", "start_s", "duration_s", "sample_rate"):
            if getattr(args, flag) is not None:
                name = "class" if flag == "target" else flag.replace("_", "-")
                raise ParameterError(f"--{name} does not apply to a run directory")
        done = explain_run_dir(
            args.inputs[0], args.out, method=args.method, max_windows=args.max_windows or 200,
            device=args.device, batch_size=args.batch_size,
        )  # fmt: skip
        per_class = ", ".join(f"{k} {v}" for k, v in done["classes"].items())
        none = f", {done['unattributed']} with no attribution" if done["unattributed"] else ""
        print(f"{done['n_windows']} test windows explained ({per_class}{none}); "
              f"{args.out / 'bands.png'}, {args.out / 'bands.tsv'}")  # fmt: skip
        return 0
    done = explain_to_dir(
        args.checkpoint, args.inputs, args.out, target=args.target, method=args.method,
        start_s=args.start_s, duration_s=args.duration_s, sample_rate=args.sample_rate,
        max_windows=args.max_windows or 8, device=args.device, batch_size=args.batch_size,
    )  # fmt: skip
    print(f"{done['explained']} of {done['inputs']} inputs explained, {done['windows']} windows; "
          f"results in {args.out}")  # fmt: skip
    if done["failed"]:
        print(f"see {args.out / 'errors.tsv'}", file=sys.stderr)
    return done["exit_status"]
