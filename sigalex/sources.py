"""One source layer: everything sigalex reads windows from, opened one way.

A **source** is a recording that can be read span by span (:class:`Source`): ``sample_rate``
(Hz), ``channel_names``, ``n_channels``, ``n_times``, ``annotations``, ``path`` (or ``None``)
and ``read(start, stop)`` → float32 ``(n_channels, stop - start)``. :func:`open_source` makes
one from

- a path: EDF/BDF opened lazily (only the spans asked for are read from disk), any other
  readable format read into memory (:func:`sigalex.io.load_recording`);
- a :class:`~sigalex.recording.Recording`, an :class:`~sigalex.edf.EdfRecording` or
  :class:`~sigalex.edf.RawRecording`: used as they are;
- an MNE ``Raw`` (``mne.io.BaseRaw``): wrapped lazily, voltages in µV;
- an array or tensor ``(n_times,)`` or ``(n_channels, n_times)`` with ``sample_rate``.

Training (:class:`sigalex.windows.WindowDataset`'s opener) and prediction
(:class:`sigalex.inference.Predictor`) both open recordings here.

Sample rates. A source that carries its rate (EDF, audio, an ``.npz`` with a ``sample_rate``
array, a Recording, a Raw) keeps it. One that carries none (arrays, ``.txt``, ``.csv``,
``.npy``; :data:`sigalex.io.RATELESS_EXTENSIONS`) takes ``sample_rate``, else
``default_sample_rate`` with a :class:`SampleRateAssumed` warning (a model's rate), else it is
an error.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ._checks import as_signal, sample_rate_hz
from .edf import RawRecording
from .errors import DataError, ParameterError
from .io import RATELESS_EXTENSIONS, load_recording, open_recording, stored_sample_rate
from .recording import Annotation, Recording, pick_rows, select_channels


@runtime_checkable
class Source(Protocol):
    """A recording read span by span (see the module docs)."""

    sample_rate: float
    channel_names: list[str]
    annotations: list[Annotation]

    @property
    def n_channels(self) -> int: ...

    @property
    def n_times(self) -> int: ...

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray: ...


class SampleRateAssumed(UserWarning):
    """A source carried no sample rate and none was given: a default rate was assumed."""


def _is_mne_raw(obj) -> bool:
    try:
        from mne.io import BaseRaw
    except ImportError:  # pragma: no cover - mne is a dependency
        return False
    return isinstance(obj, BaseRaw)


def source_name(obj, name: str | None = None) -> str:
    """A name for messages and results: ``name``, else the path, else a description."""
    if name is not None:
        return str(name)
    if isinstance(obj, str | os.PathLike):
        return str(obj)
    path = getattr(obj, "path", None)
    if path is not None:
        return str(path)
    if _is_mne_raw(obj):
        return "<mne Raw>"
    return "<in-memory recording>" if isinstance(obj, Recording) else "<in-memory signal>"


def _rate(given, default, where: str, notes: list[str] | None) -> float:
    if given is not None:
        return sample_rate_hz(given)
    if default is not None:
        message = (
            f"{where}: carries no sample rate and none was given; assumed {default:g} Hz "
            "(give the rate: --sample-rate / sample_rate=)"
        )
        if notes is None:
            warnings.warn(SampleRateAssumed(message), stacklevel=4)
        else:
            notes.append(message)
        return sample_rate_hz(default)
    raise DataError(f"{where}: carries no sample rate; give sample_rate= (Hz)")


def _open_path(path: Path, sample_rate, default_sample_rate, channels, notes) -> Source:
    ext = path.suffix.lower()
    options = {} if channels is None else {"channels": channels}
    if ext not in RATELESS_EXTENSIONS:
        return open_recording(path, **options)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rate = sample_rate
    if rate is None:
        rate = stored_sample_rate(path)
    rate = _rate(rate, default_sample_rate, str(path), notes)
    return load_recording(path, sample_rate=rate, **options)


def open_source(
    obj,
    *,
    sample_rate: float | None = None,
    default_sample_rate: float | None = None,
    channels: str | Iterable[str] | None = None,
    notes: list[str] | None = None,
) -> Source:
    """Open anything a recording can come from as a :class:`Source`.

    Parameters
    ----------
    obj : path, Recording, EdfRecording, RawRecording, mne.io.BaseRaw, array or tensor
        An array is ``(n_times,)`` or ``(n_channels, n_times)``, real and finite.
    sample_rate : float, optional
        Hz of a source that carries no rate (arrays, rate-less files). A source that carries
        one keeps it; giving another for an in-memory object is an error.
    default_sample_rate : float, optional
        Assumed, with a :class:`SampleRateAssumed` warning, when neither the source nor
        ``sample_rate`` gives a rate.
    notes : list of str, optional
        Where to append what a user should know (an assumed rate) instead of warning: the
        list travels with a result (thread-safe, unlike warnings).
    channels : str or iterable of str, optional
        Channel names or patterns to keep (:func:`~sigalex.recording.select_channels`).

    Raises
    ------
    DataError
        Unreadable, missing or corrupt file; no sample rate; a requested channel it lacks.
    ParameterError
        A bad array or sample rate.
    """
    if sample_rate is not None:
        sample_rate = sample_rate_hz(sample_rate)
    if isinstance(obj, str | os.PathLike):
        return _open_path(Path(obj), sample_rate, default_sample_rate, channels, notes)
    if _is_mne_raw(obj):
        src: Source = RawRecording(obj)
    elif isinstance(obj, Recording | RawRecording):
        src = obj
    elif hasattr(obj, "read") and hasattr(obj, "sample_rate") and hasattr(obj, "channel_names"):
        src = obj  # any other object with the Source interface
    else:
        x = as_signal(obj).numpy()
        if x.ndim > 2:
            raise ParameterError(
                f"signal must be (n_times,) or (n_channels, n_times); got shape {x.shape}"
            )
        rate = _rate(sample_rate, default_sample_rate, source_name(obj), notes)
        src = Recording(np.asarray(x, dtype=np.float32), rate, [])
        sample_rate = None  # used
    if sample_rate is not None and sample_rate != float(src.sample_rate):
        raise ParameterError(
            f"sample_rate={sample_rate:g} Hz differs from the {float(src.sample_rate):g} Hz "
            f"{source_name(obj)} carries; resample it instead (sigalex.preprocess.resample)"
        )
    if channels is not None:
        try:
            rows = select_channels(src.channel_names, channels)
        except ParameterError as exc:
            raise DataError(f"{source_name(obj)}: {exc}") from None
        src = select_rows(src, rows)
    return src


class _RowsView:
    """Rows of a source that has no ``select`` of its own (read whole, then sliced)."""

    def __init__(self, source, rows: Sequence[int]):
        self._source, self._rows = source, list(rows)
        self.sample_rate = float(source.sample_rate)
        self.channel_names = [source.channel_names[i] for i in self._rows]
        self.annotations = list(getattr(source, "annotations", []) or [])
        self.path = getattr(source, "path", None)

    @property
    def n_channels(self) -> int:
        return len(self._rows)

    @property
    def n_times(self) -> int:
        return int(self._source.n_times)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        return np.asarray(self._source.read(start, stop))[self._rows]


def select_rows(source: Source, rows: Sequence[int]) -> Source:
    """The channels ``rows`` of ``source``, in that order (lazy sources stay lazy)."""
    rows = list(rows)
    if rows == list(range(source.n_channels)):
        return source
    if isinstance(source, Recording):
        return pick_rows(source, rows)
    if isinstance(source, RawRecording):
        return source.select(rows)
    return _RowsView(source, rows)


__all__ = ["SampleRateAssumed", "Source", "open_source", "select_rows", "source_name"]
