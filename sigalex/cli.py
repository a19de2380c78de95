"""The ``sigalex`` command line."""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path

from . import __version__
from .errors import SigalexError
from .runtime import keep_freed_memory


def _literal(text: str):
    """``"256"`` → 256, ``"0.5"`` → 0.5, ``"true"`` → True, ``"(1, 99)"`` → (1, 99), else the text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _key_value(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip().replace("-", "_"), _literal(value)


def _add_render(sub) -> None:
    p = sub.add_parser(
        "render",
        help="render a signal file as a time-frequency image (PNG)",
        description="Render a signal file (.txt, .csv, .npy, .npz, .wav, .flac, .ogg, …) as an "
        "RGB time-frequency image.",
        epilog="Example: sigalex render S001.txt --sample-rate 173.61 --method cwt --fmin 0.5 "
        "--fmax 40 --out s001.png",
    )
    p.add_argument("input", type=Path, help="signal file")
    p.add_argument("--out", "-o", type=Path, required=True, help="output PNG path")
    p.add_argument(
        "--method", "-m", default="stft", help="stft, mel, cwt or hilbert (default stft)"
    )
    p.add_argument("--sample-rate", type=float, help="Hz; required for files that do not carry it")
    p.add_argument("--size", type=int, default=227, help="image size in pixels (default 227)")
    p.add_argument("--colormap", default="viridis", help="matplotlib colormap (default viridis)")
    p.add_argument(
        "--channels", default="mean", help="multichannel input: mean, tile or each (default mean)"
    )
    p.add_argument("--scale", default="db", help="db, log or linear (default db)")
    p.add_argument("--top-db", type=float, default=80.0, help="dB range kept below the peak")
    p.add_argument("--normalize", default="minmax", help="minmax, percentile or fixed")
    p.add_argument("--vmin", type=float, help="lower end for --normalize fixed")
    p.add_argument("--vmax", type=float, help="upper end for --normalize fixed")
    p.add_argument("--fmin", type=float, help="lowest frequency, Hz")
    p.add_argument("--fmax", type=float, help="highest frequency, Hz")
    p.add_argument("--n-fft", type=int, help="FFT length (stft, mel)")
    p.add_argument("--hop-length", type=int, help="samples between frames")
    p.add_argument("--start-s", type=float, default=0.0, help="start of the excerpt, seconds")
    p.add_argument("--duration-s", type=float, help="length of the excerpt, seconds (default: all)")
    p.add_argument(
        "--param",
        "-p",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="any other transform parameter, e.g. -p n_mels=64 -p spacing=linear (repeatable)",
    )
    p.set_defaults(func=_cmd_render)


def _cmd_render(args) -> int:
    from .frontend import spectrogram
    from .io import load_recording
    from .render import save_png

    options = {} if args.sample_rate is None else {"sample_rate": args.sample_rate}
    rec = load_recording(args.input, **options)
    start = round(args.start_s * rec.sample_rate)
    stop = None if args.duration_s is None else start + round(args.duration_s * rec.sample_rate)
    data = rec.data[:, start:stop]
    params = {
        k: v
        for k, v in {
            "fmin": args.fmin,
            "fmax": args.fmax,
            "n_fft": args.n_fft,
            "hop_length": args.hop_length,
            "vmin": args.vmin,
            "vmax": args.vmax,
        }.items()
        if v is not None
    }
    params.update(dict(args.param))
    signal = data[0] if data.shape[0] == 1 else data
    images = spectrogram(
        signal,
        rec.sample_rate,
        method=args.method,
        size=args.size,
        colormap=args.colormap,
        channels=args.channels,
        scale=args.scale,
        top_db=args.top_db,
        normalize=args.normalize,
        **params,
    )
    what = f"{args.method}, {data.shape[0]} channel(s), {data.shape[1] / rec.sample_rate:.2f} s"
    if images.ndim == 4:
        for name, image in zip(rec.channel_names, images, strict=True):
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
            out = save_png(image, args.out.with_name(f"{args.out.stem}_{safe}{args.out.suffix}"))
            print(f"wrote {out}")
        print(f"{len(images)} images ({what})")
    else:
        save_png(images, args.out)
        print(f"wrote {args.out} ({images.shape[1]}x{images.shape[0]}, {what})")
    return 0


def _add_transforms(sub) -> None:
    p = sub.add_parser("transforms", help="list the transforms and their parameters")
    p.set_defaults(func=_cmd_transforms)


def _cmd_transforms(args) -> int:
    from .transforms import available_transforms, get_transform, transform_parameters

    for name in available_transforms():
        doc = (get_transform(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:8s} {doc}")
        print(f"{'':8s} parameters: {', '.join(transform_parameters(name))}")
    return 0


def _add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        help="train and evaluate a recipe (TOML), leaving a run directory",
        description="Train AlexNet on the images a recipe describes and evaluate it; writes "
        "runs/<name>-<timestamp>/ with config.toml, checkpoint.pt, history.csv, metrics.json "
        "and plots/.",
        epilog="Example: sigalex run pipelines/eeg-seizure.toml --set train.epochs=3",
    )
    p.add_argument("config", type=Path, help="recipe (TOML)")
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
        help="continue an interrupted run from its last.pt (uses the run's own config.toml)",
    )
    p.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    from .train import run_recipe

    run_recipe(args.config, overrides=args.overrides, device=args.device, resume=args.resume)
    return 0


def _add_validate(sub) -> None:
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
    p.set_defaults(func=_cmd_validate)


def _cmd_validate(args) -> int:
    from .config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.config_only:
        print(f"{args.config}: recipe OK")
        return 0
    from .train import validate

    data = validate(cfg)
    counts = {c: int((data.targets == i).sum()) for i, c in enumerate(data.classes)}
    split = data.splits[0]
    print(
        f"{args.config}: OK\n"
        f"  dataset {cfg.data.dataset} at {data.dataset_root}\n"
        f"  {len(data.windows)} windows of {data.n_times} samples at {data.sample_rate:g} Hz, "
        f"{data.n_channels} channel(s)\n"
        f"  classes {counts}\n"
        f"  split: {split.description}: train {len(split.train)}, val {len(split.val)}, "
        f"test {len(split.test)}" + (f" ({len(data.splits)} folds)" if len(data.splits) > 1 else "")
    )
    for note in data.notes[:10]:
        print(f"  note: {note}")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify recordings with a trained checkpoint, writing TSV results",
        description="Classify every window of every input recording with a checkpoint from "
        "'sigalex run'. Writes into --out: windows.tsv (recording, start_s, end_s, predicted, "
        "prob_<class>...), recordings.tsv (recording, status, duration_s, n_windows, label, "
        "confidence, n_events, events_file), events/<stem>_events.tsv for seizure models "
        "(BIDS/SzCORE: onset, duration, eventType, confidence, channels, recordingDuration), "
        "errors.tsv (recording, reason) and summary.json. Every file is written atomically.",
        epilog="Exit status: 0 every input was classified; 3 some inputs failed (see "
        "errors.tsv); 4 none could be classified; 1 a usage or checkpoint error. "
        "Example: sigalex predict --checkpoint runs/eeg/checkpoint.pt night/*.edf --out preds",
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint.pt from sigalex run")
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="files, folders (searched recursively) or globs"
    )
    p.add_argument("--out", "-o", type=Path, required=True, help="output folder")
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (64)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument(
        "--threshold", type=float, default=0.5, help="seizure probability of a positive window"
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
        "--resume",
        action="store_true",
        help="skip recordings already classified in --out by the same checkpoint",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model: a wait for the compiler first, then faster batches",
    )
    p.set_defaults(func=_cmd_predict)


def _cmd_predict(args) -> int:
    from .predict import predict_to_dir

    summary = predict_to_dir(
        args.checkpoint, args.inputs, args.out, batch_size=args.batch_size, device=args.device,
        threshold=args.threshold, min_duration_s=args.min_duration_s,
        merge_gap_s=args.merge_gap_s, resume=args.resume, sample_rate=args.sample_rate,
        compile=args.compile,
    )  # fmt: skip
    run = summary["this_run"]
    print(
        f"{run['classified']} classified, {run['failed']} failed, {run['skipped_complete']} "
        f"already done; {run['windows']} windows at {run['windows_per_s'] or 0:.1f} windows/s "
        f"on {summary['device']}; results in {args.out}"
    )
    if run["failed"]:
        print(f"see {args.out / 'errors.tsv'}", file=sys.stderr)
    return summary["exit_status"]


def _add_score(sub) -> None:
    p = sub.add_parser(
        "score",
        help="score detected events against reference events (SzCORE)",
        description="Event-based sensitivity, precision, F1 and false alarms per 24 h (SzCORE "
        "defaults: onset tolerance 30 s, offset 60 s, events over 5 min split, events under "
        "90 s apart merged) and window-based (per second) sensitivity and specificity, for "
        "BIDS/SzCORE events TSV files or folders of *_events.tsv matched by name.",
    )
    p.add_argument("--reference", type=Path, required=True, help="events TSV or folder")
    p.add_argument("--hypothesis", type=Path, required=True, help="events TSV or folder")
    p.add_argument(
        "--duration-s", type=float, help="recording length (default: recordingDuration column)"
    )
    p.add_argument("--json", type=Path, help="also write the scores as JSON here")
    p.set_defaults(func=_cmd_score)


def _cmd_score(args) -> int:
    from .scoring import format_table, score_files, write_json

    result = score_files(args.reference, args.hypothesis, duration_s=args.duration_s)
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigalex",
        description="Classify EEG and speech recordings as time-frequency images with AlexNet.",
    )
    parser.add_argument("--version", action="version", version=f"sigalex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(sub)
    _add_validate(sub)
    _add_render(sub)
    _add_transforms(sub)
    _add_predict(sub)
    _add_score(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    keep_freed_memory()  # steady CPU batches: see sigalex.runtime
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return status
    except SigalexError as exc:
        print(f"sigalex: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sigalex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sigalex transforms | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141  # 128 + SIGPIPE, as the shell reports it


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
