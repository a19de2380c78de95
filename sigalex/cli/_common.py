"""What the subcommands share: ``KEY=VALUE`` arguments and the log handler."""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager

from ..config import parse_value


def key_value(text: str) -> tuple[str, object]:
    """``-p KEY=VALUE``: the value read as ``--set`` reads it (:func:`sigalex.config.parse_value`)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip().replace("-", "_"), parse_value(value)


class ConsoleHandler(logging.Handler):
    """Library messages as command output: information on stdout, warnings on stderr (looked
    up at every message, so redirected or captured streams are honoured)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


@contextmanager
def console_logging():
    """While a command runs, the ``sigalex`` logger's INFO and above go to the console; the
    logger is left as it was afterwards (``sigalex.cli.main`` may run inside a program)."""
    logger = logging.getLogger("sigalex")
    handler, level = ConsoleHandler(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
