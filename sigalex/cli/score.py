"""``sigalex score``: detected events against reference events (SzCORE)."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
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
    p.set_defaults(func=main)


def main(args) -> int:
    from ..scoring import format_table, score_files, write_json

    result = score_files(args.reference, args.hypothesis, duration_s=args.duration_s)
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0
