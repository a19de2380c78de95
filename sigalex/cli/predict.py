"""``sigalex predict``: classify recordings with a checkpoint, writing TSV results."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ParameterError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify recordings with a trained checkpoint, writing TSV results",
        description="Classify every input recording with a checkpoint from 'sigalex run' (or "
        "an ONNX file from 'sigalex export', run by ONNX Runtime): the model's window slides over the whole recording, cut as in training. Writes into --out: "
        "windows.tsv (recording, channel, start_s, end_s, predicted, prob_<class>...), recordings.tsv "
        "(recording, channel, status, duration_s, sample_rate, n_windows, label, confidence, "
        "n_events, events_file, notes), events/<stem>_events.tsv for models with a positive class "
        "(BIDS/SzCORE: onset, duration, eventType, confidence, channels, recordingDuration), "
        "errors.tsv (recording, reason) and summary.json. Every file is written atomically.",
        epilog="Exit status: 0 every input was classified; 3 some inputs failed (see "
        "errors.tsv); 4 none could be classified; 1 a usage or checkpoint error. "
        "Example: sigalex predict --checkpoint runs/eeg/checkpoint.pt night/*.edf --out preds",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="checkpoint.pt from sigalex run, or model.onnx from sigalex export (run by ONNX "
        "Runtime)",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="files, folders (searched recursively) or globs"
    )
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (64)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument(
        "--stride-s",
        type=float,
        help="seconds between window starts (default: the training stride, or the window); "
        "smaller strides time events more finely",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="positive-class probability of a positive window",
    )
    p.add_argument(
        "--min-duration-s", type=float, default=0.0, help="drop events shorter than this (s)"
    )
    p.add_argument(
        "--merge-gap-s",
        type=float,
        default=0.0,
        help="join positive windows at most this far apart into one event (s)",
    )
    p.add_argument(
        "--sample-rate", type=float, help="Hz of .txt/.csv/.npy inputs (default: the model's)"
    )
    p.add_argument(
        "--channels",
        choices=("mean", "each"),
        help="a single-channel model on multichannel recordings: average the channels (mean) or "
        "classify every channel on its own (each: rows and events per channel); without it, "
        "such a recording is an error naming both channel counts",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip recordings already classified in --out by the same checkpoint",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model: a wait for the compiler first, then faster batches "
        "(PyTorch checkpoints only)",
    )
    p.set_defaults(func=main)


def _check(args) -> None:
    """Values argparse accepts but no run can use: errors that name the flag."""
    for flag, value, low in (
        ("--sample-rate", args.sample_rate, 0.0),
        ("--stride-s", args.stride_s, 0.0),
    ):
        if value is not None and not low < value < float("inf"):
            raise ParameterError(f"{flag} {value:g}: must be a positive number")
    if args.batch_size < 1:
        raise ParameterError(f"--batch-size {args.batch_size}: must be a positive integer")
    if not 0 <= args.threshold <= 1:
        raise ParameterError(f"--threshold {args.threshold:g}: must be a probability in [0, 1]")
    for flag, value in (
        ("--min-duration-s", args.min_duration_s),
        ("--merge-gap-s", args.merge_gap_s),
    ):
        if not 0 <= value < float("inf"):
            raise ParameterError(f"{flag} {value:g}: must be a number of seconds >= 0")


def main(args) -> int:
    from ..inference import predict_to_dir

    _check(args)
    summary = predict_to_dir(
        args.checkpoint, args.inputs, args.out, batch_size=args.batch_size, device=args.device,
        threshold=args.threshold, min_duration_s=args.min_duration_s,
        merge_gap_s=args.merge_gap_s, stride_s=args.stride_s, resume=args.resume,
        sample_rate=args.sample_rate, compile=args.compile, channels=args.channels,
    )  # fmt: skip
    run = summary["this_run"]
    print(
        f"{run['classified']} classified, {run['failed']} failed, {run['skipped_complete']} "
        f"already done; {run['windows']} windows at {run['windows_per_s'] or 0:.1f} windows/s "
        f"on {summary['device']}; results in {args.out}"
    )
    if run["failed"]:
        print(f"see {args.out / 'errors.tsv'}", file=sys.stderr)
    if summary["outputs"].get("with_notes"):
        print(
            f"{summary['outputs']['with_notes']} recording(s) have notes (an assumed sample rate, "
            f"padding, flat windows): see the notes column of {args.out / 'recordings.tsv'}",
            file=sys.stderr,
        )
    return summary["exit_status"]
