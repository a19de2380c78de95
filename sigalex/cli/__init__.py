"""The ``sigalex`` command line: one module per subcommand (``run``/``validate``, ``render``,
``transforms``, ``predict``, ``score``, ``tune``, ``export``, ``explain``). Errors print one line and exit 1; library messages
(the ``sigalex`` logger) print as the command's output."""

from __future__ import annotations

import argparse
import os
import sys

from .._version import __version__
from ..errors import SigalexError
from ..runtime import keep_freed_memory
from . import explain, export, predict, render, run, score, transforms, tune
from ._common import console_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigalex",
        description="Classify EEG and speech recordings as time-frequency images with AlexNet.",
    )
    parser.add_argument("--version", action="version", version=f"sigalex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run.add_parser(sub)
    run.add_validate_parser(sub)
    render.add_parser(sub)
    transforms.add_parser(sub)
    predict.add_parser(sub)
    score.add_parser(sub)
    tune.add_parser(sub)
    export.add_parser(sub)
    explain.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    keep_freed_memory()  # steady CPU batches: see sigalex.runtime
    try:
        with console_logging():
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
    except OSError as exc:  # an output that cannot be written: the file and the reason
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"sigalex: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("sigalex: error: out of memory; ask for smaller sizes or batches", file=sys.stderr)
        return 1
