"""Training and evaluation: ``sigalex run`` (importable; ``import sigalex`` does not load it).

Along the data flow:

- :mod:`~sigalex.train.data`: the dataset index → labelled windows → honest splits → the
  model spec (:func:`prepare_data`, :func:`window_dataset`);
- :mod:`~sigalex.train.optim`: optimisers and schedules;
- :mod:`~sigalex.train.trainer`: the loop (:class:`Trainer`), with every random-number stream
  in its resume state;
- :mod:`~sigalex.train.callbacks`: early stopping, checkpoints, history, logging, progress;
- :mod:`~sigalex.train.report`: testing a fold's best checkpoint, metrics and plots;
- :mod:`~sigalex.train.runner`: :func:`run`, :func:`validate`, :func:`run_recipe`.

A run directory ``<output.dir>/<name>-<timestamp>/`` holds ``config.toml`` (the resolved
recipe), ``checkpoint.pt`` (the best epoch, :mod:`sigalex.checkpoint`'s format), ``last.pt``
(adds the resume state), ``history.csv``, ``test_predictions.tsv``, ``metrics.json`` and
``plots/``; with several folds each has a ``fold-NN/`` folder.

Training stands on :mod:`sigalex.checkpoint` and :mod:`sigalex.models`; it never imports the
inference package.
"""

from .callbacks import (
    Callback,
    Checkpointing,
    EarlyStopping,
    EpochLog,
    History,
    ProgressBar,
    default_callbacks,
)
from .data import PreparedData, prepare_data, window_dataset
from .runner import (
    RunResult,
    new_run_dir,
    resolve_device,
    run,
    run_recipe,
    seed_everything,
    validate,
)
from .trainer import Trainer

__all__ = [
    "Callback",
    "Checkpointing",
    "EarlyStopping",
    "EpochLog",
    "History",
    "PreparedData",
    "ProgressBar",
    "RunResult",
    "Trainer",
    "default_callbacks",
    "new_run_dir",
    "prepare_data",
    "resolve_device",
    "run",
    "run_recipe",
    "seed_everything",
    "validate",
    "window_dataset",
]
