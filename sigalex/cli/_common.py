"""What the subcommands share: ``KEY=VALUE`` arguments and the log handler."""

from __future__ import annotations

import argparse
import logging
import sys

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


def console_logging() -> None:
    """Send the ``sigalex`` logger's INFO and above to the console (once)."""
    logger = logging.getLogger("sigalex")
    if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
        logger.addHandler(ConsoleHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
