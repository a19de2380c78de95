"""Classifying recordings with a trained checkpoint: ``sigalex predict`` and :class:`Predictor`.

Along the data flow:

- :mod:`~sigalex.inference.predictor`: :class:`Predictor` (the model unit rebuilt from a
  checkpoint alone; one recording, or many files batched together) and :class:`Prediction`;
- :mod:`~sigalex.inference.stream`: windows read and cut from recordings, batched across files,
  read ahead in a thread;
- :mod:`~sigalex.inference.events`: positive windows → events;
- :mod:`~sigalex.inference.outputs`: per-recording parts and the sinks that write the tables;
- :mod:`~sigalex.inference.inputs` and :mod:`~sigalex.inference.run`: the command
  (:func:`predict_to_dir`);
- :mod:`~sigalex.inference.shards`: shards of the inputs into one folder, and their assembly
  (:func:`assemble_shards`).

Inference stands on :mod:`sigalex.checkpoint` and :mod:`sigalex.models`; it never imports the
training package.
"""

from .events import windows_to_events
from .inputs import find_inputs
from .outputs import (
    DEFAULT_SINKS,
    ERROR_COLUMNS,
    RECORDING_COLUMNS,
    WINDOW_COLUMNS,
    OutputContext,
    Sink,
)
from .predictor import FileResult, Prediction, Predictor
from .run import EXIT_ALL_FAILED, EXIT_OK, EXIT_SOME_FAILED, predict_to_dir
from .shards import assemble_shards, shard_of

__all__ = [
    "DEFAULT_SINKS",
    "ERROR_COLUMNS",
    "EXIT_ALL_FAILED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "RECORDING_COLUMNS",
    "WINDOW_COLUMNS",
    "FileResult",
    "OutputContext",
    "Prediction",
    "Predictor",
    "Sink",
    "assemble_shards",
    "find_inputs",
    "predict_to_dir",
    "shard_of",
    "windows_to_events",
]
