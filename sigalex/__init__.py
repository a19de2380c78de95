"""sigalex: EEG and speech recordings → time-frequency images → AlexNet.

The public API:

- :func:`spectrogram` / :func:`to_image`: one signal → an RGB image (uint8 array / PIL).
- :class:`ImageFrontend`: batched windows ``(batch, n_channels, n_times)`` → images
  ``(batch, 3, size, size)`` on the windows' device.
- :mod:`sigalex.transforms`: ``stft``, ``mel``, ``cwt``, ``hilbert`` (functions and modules).
- :mod:`sigalex.render`: scaling, normalisation, channel fusion, colormaps, PNG output.
- :func:`load_recording` / :func:`open_recording` (lazy EDF) and :class:`Recording`: reading
  signal files; :func:`write_edf`.
- :func:`make_windows`, :func:`iter_windows`, :class:`WindowDataset`: windows and their labels;
  :func:`grouped_split` and friends: honest splits. :mod:`sigalex.datasets`: dataset layouts,
  the registry and verified downloads; :mod:`sigalex.annotations`, :mod:`sigalex.preprocess`,
  :mod:`sigalex.synthetic`.
- :class:`Predictor`: a trained checkpoint on whole recordings (files, Recordings, MNE ``Raw``
  objects, arrays): :mod:`sigalex.inference`; training is :mod:`sigalex.train`, the checkpoint
  format :mod:`sigalex.checkpoint`, the model unit :mod:`sigalex.models`. None of these is
  imported by ``import sigalex`` (``Predictor`` on first use).
- :func:`keep_freed_memory`: steadier, faster CPU batches (glibc malloc keeps freed memory; the
  ``sigalex`` command does this itself).
"""

from typing import TYPE_CHECKING

from ._version import __version__
from .errors import ConfigError, DataError, ParameterError, SigalexError
from .frontend import ImageFrontend, spectrogram, to_image
from .io import (
    Annotation,
    EdfRecording,
    Recording,
    load_recording,
    open_recording,
    select_channels,
    write_edf,
)
from .render import Render, save_png
from .runtime import keep_freed_memory
from .splits import (
    Split,
    group_kfold,
    grouped_split,
    leave_one_group_out,
    official_split,
    stratified_split,
)
from .transforms import available_transforms
from .windows import Window, WindowDataset, fit_length, iter_windows, make_windows

if TYPE_CHECKING:  # imported on first use at run time (__getattr__ below)
    from .inference import Predictor

__all__ = [
    "Annotation",
    "ConfigError",
    "DataError",
    "EdfRecording",
    "ImageFrontend",
    "ParameterError",
    "Predictor",
    "Recording",
    "Render",
    "SigalexError",
    "Split",
    "Window",
    "WindowDataset",
    "__version__",
    "available_transforms",
    "fit_length",
    "group_kfold",
    "grouped_split",
    "iter_windows",
    "keep_freed_memory",
    "leave_one_group_out",
    "load_recording",
    "make_windows",
    "official_split",
    "open_recording",
    "save_png",
    "select_channels",
    "spectrogram",
    "stratified_split",
    "to_image",
    "write_edf",
]


def __getattr__(name: str):
    """``sigalex.Predictor`` is imported on first use (it pulls in the model code)."""
    if name == "Predictor":
        from .inference import Predictor

        return Predictor
    raise AttributeError(f"module 'sigalex' has no attribute {name!r}")
