"""``sigalex predict``: classify recordings with a checkpoint, writing TSV results."""

from __future__ import annotations

import signal
import sys
import threading
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
        "errors.tsv (recording, reason) and summary.json. Every file is written atomically. "
        "With --shard K/N (or under torchrun: shard RANK/WORLD_SIZE on cuda:LOCAL_RANK), only "
        "shard K of N of the inputs is classified; shards may run at once into one --out, and "
        "the last to finish assembles the tables (or: sigalex predict --assemble OUT).",
        epilog="Exit status: 0 every input was classified; 3 some inputs failed (see "
        "errors.tsv); 4 none could be classified (a shard: of its inputs; --assemble: of all "
        "shards' inputs); 1 a usage or checkpoint error, or --assemble with shards missing. "
        "Example: sigalex predict --checkpoint runs/eeg/checkpoint.pt night/*.edf --out preds",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="checkpoint.pt from sigalex run, or model.onnx from sigalex export (run by ONNX "
        "Runtime); required, except with --assemble (which checks it against the shards' when "
        "given)",
    )
    p.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="files, folders (searched recursively) or globs"
    )
    p.add_argument("--out", "-o", type=Path, help="output folder (required)")
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="classify shard K of N (0 <= K < N) of the inputs: each input's shard is a hash of "
        "its real path, stable when files are added; shards may share --out and run at once "
        "(a job array: --shard $SLURM_ARRAY_TASK_ID/100); the last to finish assembles the tables",
    )
    p.add_argument(
        "--assemble",
        type=Path,
        metavar="OUT",
        help="build the tables of a folder of sharded runs from all shards' parts (no INPUT; no "
        "other flag but --checkpoint, checked against the shards'); refused, naming them, while "
        "shards are missing",
    )
    p.add_argument("--batch-size", type=int, help="windows per forward pass (64)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument(
        "--stride-s",
        type=float,
        help="seconds between window starts (default: the training stride, or the window); "
        "smaller strides time events more finely",
    )
    p.add_argument(
        "--threshold",
        type=float,
        help="positive-class probability of a positive window (0.5)",
    )
    p.add_argument("--min-duration-s", type=float, help="drop events shorter than this (s; 0)")
    p.add_argument(
        "--merge-gap-s",
        type=float,
        help="join positive windows at most this far apart into one event (s; 0)",
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
        help="skip recordings already classified in --out by the same checkpoint (with --shard: "
        "this shard's)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model: a wait for the compiler first, then faster batches "
        "(PyTorch checkpoints only)",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="also write report.html into --out once the tables are final (a sortable table "
        "of the recordings, each one's probability over time with its events, the errors); "
        "with --shard: by the shard that assembles the tables; with --assemble: after it",
    )
    p.add_argument(
        "--reference",
        type=Path,
        metavar="DIR",
        help="with --report: a folder of reference events TSVs (<recording>_events.tsv, as "
        "sigalex score reads them) drawn beside the detected events (default: an EDF+ "
        "recording's own annotations)",
    )
    p.set_defaults(func=main)


DEFAULTS = {"batch_size": 64, "device": "auto", "threshold": 0.5, "min_duration_s": 0.0,
            "merge_gap_s": 0.0}  # fmt: skip
"""Defaults of the flags that are ``None`` unless given (so that ``--assemble`` sees them)."""
FLAGS = ("out", "shard", "batch_size", "device", "stride_s", "threshold", "min_duration_s",
         "merge_gap_s", "sample_rate", "channels", "resume", "compile")  # fmt: skip


def _check_assemble(args) -> None:
    if args.inputs:
        raise ParameterError(
            f"--assemble takes no INPUT (got {args.inputs[0]}): it builds the tables from the "
            "shards' parts in the folder"
        )
    for name in FLAGS:
        if getattr(args, name, None) not in (None, False):
            raise ParameterError(
                f"--assemble: --{name.replace('_', '-')} does not apply (the shards' settings "
                "are in shards/manifest.json)"
            )


def _check(args) -> None:
    """Values argparse accepts but no run can use: errors that name the flag."""
    for name in ("checkpoint", "out"):
        if getattr(args, name) is None:
            raise ParameterError(f"--{name} is required (or --assemble OUT)")
    if not args.inputs:
        raise ParameterError("no INPUT given: name files, folders or globs to classify")
    for name, value in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
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


def _write_report(args, out: Path) -> None:
    """``report.html`` in ``out`` (``--report``); a failure is said, the tables stand."""
    from ..reports import predict_report

    try:
        print(f"report: {predict_report(out, reference=args.reference)}")
    except Exception as exc:  # the results are written: a report is a view of them
        print(f"sigalex: warning: report.html not written: {exc}", file=sys.stderr)


def _check_report(args) -> None:
    if getattr(args, "reference", None) is not None and not getattr(args, "report", False):
        raise ParameterError("--reference applies to --report only")


def _assemble(args) -> int:
    from ..inference.shards import SETUP_WAIT_S, assemble_shards

    _check_assemble(args)
    summary = assemble_shards(args.assemble, checkpoint=args.checkpoint, wait_s=SETUP_WAIT_S)
    assert summary is not None  # only automatic assembly returns None
    counts = summary["outputs"]
    print(
        f"{summary['shards']['count']} shards assembled: {counts['classified']} classified, "
        f"{counts['failed']} failed; {counts['windows']} windows; results in {args.assemble}"
    )
    if counts["failed"]:
        print(f"see {args.assemble / 'errors.tsv'}", file=sys.stderr)
    if getattr(args, "report", False):
        _write_report(args, args.assemble)
    return summary["exit_status"]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(args) -> int:
    """Run the command; SIGTERM (a job's time limit, preemption) stops it as Ctrl-C does:
    finished recordings kept, summary or stopped marker written, locks released."""
    previous = signal.getsignal(signal.SIGTERM)
    here = threading.current_thread() is threading.main_thread()
    if here:
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(args)
    finally:
        if here:
            signal.signal(signal.SIGTERM, previous)


def _main(args) -> int:
    from ..inference import predict_to_dir
    from ..inference.run import shard_report
    from ..inference.shards import parse_shard, rank_device, torchrun_shard

    _check_report(args)
    if args.assemble is not None:
        return _assemble(args)
    _check(args)
    shard, device = parse_shard(args.shard) if args.shard is not None else None, args.device
    ranked = torchrun_shard() if shard is None else None
    if ranked is not None:  # torchrun: one shard per rank, each on its own device
        shard, device = ranked[:2], rank_device(device, ranked[2])
    summary = predict_to_dir(
        args.checkpoint, args.inputs, args.out, batch_size=args.batch_size, device=device,
        threshold=args.threshold, min_duration_s=args.min_duration_s,
        merge_gap_s=args.merge_gap_s, stride_s=args.stride_s, resume=args.resume,
        sample_rate=args.sample_rate, compile=args.compile, channels=args.channels, shard=shard,
    )  # fmt: skip
    run = summary["this_run"]
    print(
        f"{run['classified']} classified, {run['failed']} failed, {run['skipped_complete']} "
        f"already done; {run['windows']} windows at {run['windows_per_s'] or 0:.1f} windows/s "
        f"on {summary['device']}; results in {args.out}"
    )
    if shard is not None:
        print(shard_report(summary), file=sys.stderr if summary.get("assembly_error") else None)
    if run["failed"]:
        later = " once the shards are assembled" if shard is not None else ""
        print(f"see {args.out / 'errors.tsv'}{later}", file=sys.stderr)
    if summary["outputs"].get("with_notes"):
        print(
            f"{summary['outputs']['with_notes']} recording(s) have notes (an assumed sample rate, "
            f"padding, flat windows): see the notes column of {args.out / 'recordings.tsv'}",
            file=sys.stderr,
        )
    if getattr(args, "report", False) and summary.get("exit_status") is not None:
        if shard is None or summary.get("assembled"):  # the tables are final
            _write_report(args, args.out)
        elif shard is not None:
            print(
                "report.html waits for the tables: the shard that assembles them writes it "
                f"(or: sigalex predict --assemble {args.out} --report)",
                file=sys.stderr,
            )
    return summary["exit_status"]
