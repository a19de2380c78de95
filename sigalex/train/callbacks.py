"""Callbacks around the training loop: early stopping, checkpoints, history, logging, progress.

The loop (:class:`~sigalex.train.trainer.Trainer`) knows none of them: each implements some of
the hooks below and, if it keeps state that a resumed run needs (early stopping's count of
epochs without improvement), ``state_dict`` / ``load_state_dict``. A pruning callback for
hyperparameter search plugs in the same way (report :attr:`Trainer.last_score` at
``on_epoch_end`` and raise to stop).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import atomic_write_text
from ..checkpoint import save_checkpoint

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

log = logging.getLogger("sigalex.train")


class Callback:
    """Hooks called by :meth:`Trainer.fit`; every one is optional."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first epoch (also after a resume)."""

    def on_epoch_start(self, trainer: Trainer) -> None:
        """Before each epoch's first batch."""

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict) -> None:
        """After each optimiser step; ``logs`` has the running ``loss`` and ``accuracy``, and
        the batch's raw windows (``inputs``, as the loader gave them)."""

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        """After validation; ``row`` is the epoch's history row (already in the history)."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last epoch (or an early stop)."""

    def state_dict(self) -> dict:
        """What a resumed run needs to carry on as if never stopped."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""


class EarlyStopping(Callback):
    """Stop when the monitored validation score has not improved for ``patience`` epochs."""

    def __init__(self, patience: int):
        self.patience = int(patience)
        self.stale = 0

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        self.stale = 0 if trainer.improved else self.stale + 1
        if self.patience and self.stale >= self.patience:
            trainer.stop(
                f"early stopping: no better validation {trainer.cfg.train.monitor} for "
                f"{self.stale} epochs"
            )

    def state_dict(self) -> dict:
        return {"stale": self.stale}

    def load_state_dict(self, state: dict) -> None:
        self.stale = int(state.get("stale", 0))


class History(Callback):
    """``history.csv``: one row per epoch, rewritten atomically after each."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        write_history(self.path, trainer.history)


def write_history(path: Path, history: list[dict]) -> None:
    """Rows of dicts as CSV (columns in order of first appearance; empty for missing)."""
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    lines = [",".join(keys)]
    for row in history:
        lines.append(",".join("" if row.get(k) is None else f"{row[k]}" for k in keys))
    atomic_write_text(path, "\n".join(lines) + "\n")


class Checkpointing(Callback):
    """``checkpoint.pt`` when the validation score improves; ``last.pt`` (with the resume state)
    after every epoch. Both are written atomically: a kill never leaves half a file."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        if trainer.improved:
            save_checkpoint(self.run_dir / "checkpoint.pt", trainer.checkpoint(resume=False))
        save_checkpoint(self.run_dir / "last.pt", trainer.checkpoint(resume=True))


class EpochLog(Callback):
    """One line per epoch (loss, accuracy, validation scores, seconds; ``*`` when best) on the
    ``sigalex.train`` logger."""

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        parts = [
            f"epoch {row['epoch']:3d}",
            f"loss {row['train_loss']:.4f}",
            f"acc {row['train_accuracy']:.3f}",
        ]
        if "val_loss" in row:
            parts += [
                f"val loss {row['val_loss']:.4f}",
                f"val acc {row['val_accuracy']:.3f}",
                f"val bal-acc {row['val_balanced_accuracy']:.3f}",
            ]
        parts.append(f"{row['seconds']:.1f}s")
        log.info("  ".join(parts) + ("  *" if trainer.improved else ""))
        if trainer.stop_reason:
            log.info(trainer.stop_reason)


def show_progress() -> bool:
    """Progress bars when stderr is a terminal, or ``SIGALEX_PROGRESS=1``."""
    return sys.stderr.isatty() or os.environ.get("SIGALEX_PROGRESS") == "1"


class ProgressBar(Callback):
    """A bar over an epoch's batches with the running loss and accuracy (stderr)."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = show_progress() if enabled is None else enabled
        self._bar = None

    def on_epoch_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=trainer.steps_per_epoch, desc=f"epoch {trainer.epoch + 1}", leave=False,
            disable=not self.enabled, unit="batch", dynamic_ncols=True,
        )  # fmt: skip

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{logs['loss']:.4f}", acc=f"{logs['accuracy']:.3f}")
            self._bar.update(1)

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        self._close()

    def on_fit_end(self, trainer: Trainer) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class TensorBoard(Callback):
    """TensorBoard event files in ``log_dir`` (``output.tensorboard = true``): every numeric
    column of an epoch's history row (losses, accuracies, validation scores, learning rate) as
    a scalar at that epoch, and the images of the first training batch once. The writer is
    ``torch.utils.tensorboard.SummaryWriter`` (the ``tensorboard`` package, an extra)."""

    MAX_IMAGES = 16

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self._writer = None

    def _open(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        return self._writer

    def on_fit_start(self, trainer: Trainer) -> None:
        self._open()

    def on_batch_end(self, trainer: Trainer, step: int, logs: dict) -> None:
        x = logs.get("inputs")
        if trainer.epoch != 0 or step != 0 or x is None:
            return
        import torch

        from ..render import to_uint8

        with torch.no_grad():
            images = to_uint8(trainer.model.images(x[: self.MAX_IMAGES]))
        self._open().add_images("examples/first_batch", images, 0, dataformats="NHWC")

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        writer = self._open()
        epoch = int(row["epoch"])
        for key, value in row.items():
            if key == "epoch" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            writer.add_scalar(_tag(key), value, epoch)
        writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _tag(key: str) -> str:
    """History columns as TensorBoard tags: ``train_loss`` → ``loss/train``, ``val_f1_macro``
    → ``f1_macro/val``, ``lr`` → ``lr``."""
    for prefix in ("train_", "val_"):
        if key.startswith(prefix):
            return f"{key[len(prefix) :]}/{prefix[:-1]}"
    return key


def default_callbacks(cfg, run_dir: Path, *, tensorboard_dir: Path | None = None) -> list[Callback]:
    """The callbacks ``sigalex run`` trains with, in order (early stopping counts before
    ``last.pt`` is written, so a resumed run keeps the count); with ``output.tensorboard``,
    :class:`TensorBoard` into ``tensorboard_dir`` (default ``<run_dir>/tensorboard``)."""
    out: list[Callback] = [
        ProgressBar(),
        EarlyStopping(cfg.train.early_stopping_patience),
        History(Path(run_dir) / "history.csv"),
        Checkpointing(run_dir),
        EpochLog(),
    ]
    if cfg.output.tensorboard:
        out.append(TensorBoard(tensorboard_dir or Path(run_dir) / "tensorboard"))
    return out


__all__ = [
    "Callback",
    "Checkpointing",
    "EarlyStopping",
    "EpochLog",
    "History",
    "ProgressBar",
    "TensorBoard",
    "default_callbacks",
    "show_progress",
    "write_history",
]
