"""Fixed-length windows over recordings, their labels, and a torch ``Dataset`` of raw windows.

Windows are cut in **samples** from lengths given in **seconds**: ``window_samples =
round(window_s * sample_rate)`` and ``stride_samples = round(stride_s * sample_rate)``. Window
``k`` covers samples ``[k * stride_samples, k * stride_samples + window_samples)``; a trailing
part shorter than one window is dropped, never padded. Every window is read through the
source's ``read(start, stop)``, so an in-memory :class:`~sigalex.io.Recording`, a memory-mapped
array or a lazily opened EDF are all walked one window at a time.

Labels come from one of three places:

- **annotations**: :func:`annotation_label` gives a window the label whose annotations cover at
  least ``min_overlap`` of it (the union of that label's events, as a fraction of the window's
  duration), else a default label such as ``"background"``;
- **file or folder names**: each dataset's own rule (:mod:`sigalex.datasets`: FSDD's
  ``{digit}_{speaker}_{index}.wav``, Bonn's set letter ``Z O N F S``);
- **a manifest**: :mod:`sigalex.datasets` gives each item a label (and optional onset/offset).

Clips shorter or longer than the model's input (FSDD runs 0.14–2.3 s) are brought to one length
by :func:`fit_length`: **pad** with zeros split evenly around the clip (the extra sample, when
the padding is odd, goes at the end), or **crop** the centre (the extra sample dropped is at the
end). ``"pad_or_crop"`` does whichever the clip needs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._checks import choice, positive_float
from .errors import DataError, ParameterError
from .io import Annotation
from .resample import resample
from .sources import open_source

if TYPE_CHECKING:
    from .sources import Source

FIT_MODES = ("crop", "pad", "pad_or_crop")


@dataclass(frozen=True)
class Window:
    """One window of one recording: where it lies and what it is.

    Attributes
    ----------
    recording : str
        Identity of the recording (its path, or a name for in-memory sources).
    start, stop : int
        Sample indices ``[start, stop)`` in the recording.
    sample_rate : float
        Hz, the recording's rate (``start_s = start / sample_rate``).
    label : str or None
        Class name (``None`` when unlabelled).
    group : str or None
        What must stay on one side of a split (patient, speaker, recording).
    path : pathlib.Path or None
        The file, when the recording is one; workers reopen it by this path.
    """

    recording: str
    start: int
    stop: int
    sample_rate: float
    label: str | None = None
    group: str | None = None
    path: Path | None = None

    @property
    def start_s(self) -> float:
        """Start in seconds from the recording start."""
        return self.start / self.sample_rate

    @property
    def end_s(self) -> float:
        """End in seconds from the recording start (exclusive)."""
        return self.stop / self.sample_rate

    @property
    def n_times(self) -> int:
        """Length in samples."""
        return self.stop - self.start


def window_samples(
    *, window_s: float, stride_s: float | None, sample_rate: float
) -> tuple[int, int]:
    """Window and stride lengths in samples: ``round(seconds * sample_rate)``.

    ``stride_s=None`` means non-overlapping windows (stride = window).

    Raises
    ------
    ParameterError
        Non-positive lengths, or a window or stride shorter than one sample.
    """
    window_s = positive_float("window_s", window_s)
    stride_s = window_s if stride_s is None else positive_float("stride_s", stride_s)
    sample_rate = positive_float("sample_rate", sample_rate)
    n_window = round(window_s * sample_rate)
    n_stride = round(stride_s * sample_rate)
    if n_window < 1 or n_stride < 1:
        raise ParameterError(
            f"{window_s=} s and {stride_s=} s must each span at least one sample at "
            f"{sample_rate=} Hz"
        )
    return n_window, n_stride


def n_windows(n_times: int, *, window_samples: int, stride_samples: int) -> int:
    """Number of whole windows in ``n_times`` samples (0 if the recording is shorter)."""
    if n_times < window_samples:
        return 0
    return (n_times - window_samples) // stride_samples + 1


def window_starts(
    n_times: int,
    *,
    window_samples: int,
    stride_samples: int,
    first: int = 0,
    cover_end: bool = False,
) -> np.ndarray:
    """Start samples of the windows in samples ``[first, n_times)``: the one window grid.

    Window ``k`` starts at ``first + k * stride_samples``. A trailing part shorter than a
    window is dropped (training), unless ``cover_end``: then one more window ends at the last
    sample, overlapping the one before, so that every sample is classified (prediction).

    Returns
    -------
    numpy.ndarray, int64 [shape=(n_windows,)]
        Empty when the span is shorter than one window.
    """
    n = n_windows(n_times - first, window_samples=window_samples, stride_samples=stride_samples)
    starts = first + np.arange(n, dtype=np.int64) * stride_samples
    if cover_end and n and starts[-1] + window_samples < n_times:
        starts = np.append(starts, n_times - window_samples)
    return starts


def cut(span: np.ndarray, starts, window_samples: int) -> np.ndarray:
    """Windows of ``window_samples`` at ``starts`` (relative to the span's first sample).

    Parameters
    ----------
    span : numpy.ndarray [shape=(n_channels, n)]
    starts : array_like of int [shape=(k,)]

    Returns
    -------
    numpy.ndarray, float32 [shape=(k, n_channels, window_samples)], a fresh C-contiguous array
    """
    view = np.lib.stride_tricks.sliding_window_view(
        np.asarray(span, dtype=np.float32), window_samples, axis=-1
    )
    return np.ascontiguousarray(view[:, np.asarray(starts, dtype=np.int64)].transpose(1, 0, 2))


def conform(x, from_rate: float, *, sample_rate: float, n_times: int, fit: str) -> np.ndarray:
    """Windows cut at their recording's rate → the model's input: the one way, in this order.

    Resampled from ``from_rate`` to ``sample_rate`` Hz (:func:`sigalex.resample.resample`),
    then brought to ``n_times`` samples by :func:`fit_length` (``fit`` mode; a resampled window
    may be a sample longer or shorter). Training and prediction both call this.

    Parameters
    ----------
    x : array_like [shape=(..., n)]
        float32 windows at ``from_rate`` Hz.

    Returns
    -------
    numpy.ndarray, float32 [shape=(..., n_times)]
    """
    y = resample(x, from_rate, sample_rate)
    return np.asarray(fit_length(y, n_times, mode=fit), dtype=np.float32)


def _source_name(source, recording: str | None) -> str:
    if recording is not None:
        return str(recording)
    path = getattr(source, "path", None)
    return str(path) if path is not None else "<in-memory recording>"


def make_windows(
    source,
    *,
    window_s: float,
    stride_s: float | None = None,
    label: str | None = None,
    annotations: Iterable[Annotation] | None = None,
    min_overlap: float = 0.5,
    default_label: str | None = "background",
    annotation_labels: Iterable[str] | None = None,
    group: str | None = None,
    recording: str | None = None,
    onset_s: float | None = None,
    offset_s: float | None = None,
) -> list[Window]:
    """Describe the fixed-length windows of one recording, reading no samples.

    Parameters
    ----------
    source : Recording or any object with ``sample_rate``, ``n_times`` and ``path``
    window_s, stride_s : float
        Window length and step in seconds; ``stride_s=None`` is ``window_s`` (no overlap).
    label : str, optional
        One label for every window (from a file or folder name, or a manifest). Exclusive with
        ``annotations``.
    annotations : iterable of Annotation, optional
        Label windows from events; default: ``source.annotations`` when ``label`` is ``None``.
        See :func:`annotation_label` for ``min_overlap``, ``default_label`` and
        ``annotation_labels``.
    group : str, optional
        Split group for every window (default: the recording id, so windows of one recording
        never straddle a split).
    recording : str, optional
        Recording id (default: ``str(source.path)``).
    onset_s, offset_s : float, optional
        Only window ``[onset_s, offset_s)`` of the recording (a manifest segment).

    Returns
    -------
    list of Window

    Raises
    ------
    DataError
        The recording (or segment) is shorter than one window; the message names the file.
    """
    rate = float(source.sample_rate)
    n_window, n_stride = window_samples(window_s=window_s, stride_s=stride_s, sample_rate=rate)
    n_total = int(source.n_times)
    first = (
        0 if onset_s is None else round(positive_float("onset_s", onset_s, allow_zero=True) * rate)
    )
    last = (
        n_total
        if offset_s is None
        else min(n_total, round(positive_float("offset_s", offset_s) * rate))
    )
    name = _source_name(source, recording)
    starts = window_starts(last, window_samples=n_window, stride_samples=n_stride, first=first)
    if len(starts) == 0:
        raise DataError(
            f"{name}: {last - first} samples ({(last - first) / rate:.3f} s) is shorter than one "
            f"window of {n_window} samples ({window_s=} s at {rate:g} Hz)"
        )
    if label is not None and annotations is not None:
        raise ParameterError("give label= or annotations=, not both")
    if label is None and annotations is None:
        annotations = getattr(source, "annotations", None) or []
    events = list(annotations) if annotations is not None else []
    keep = None if annotation_labels is None else set(annotation_labels)
    path = getattr(source, "path", None)
    group = name if group is None else group
    windows = []
    for start in starts.tolist():
        stop = start + n_window
        lab = label
        if label is None:
            lab = annotation_label(
                events,
                start_s=start / rate,
                end_s=stop / rate,
                min_overlap=min_overlap,
                default_label=default_label,
                annotation_labels=keep,
            )
        windows.append(Window(name, start, stop, rate, lab, group, Path(path) if path else None))
    return windows


def whole_window(
    source, *, label: str | None = None, group: str | None = None, recording: str | None = None
) -> Window:
    """One window spanning the whole recording (a short clip to be fitted by :func:`fit_length`)."""
    name = _source_name(source, recording)
    path = getattr(source, "path", None)
    return Window(
        name,
        0,
        int(source.n_times),
        float(source.sample_rate),
        label,
        name if group is None else group,
        Path(path) if path else None,
    )


def iter_windows(
    source, windows: Iterable[Window] | None = None, **window_options
) -> Iterator[tuple[np.ndarray, Window]]:
    """Stream ``(samples, window)`` pairs, reading one window span at a time.

    Parameters
    ----------
    source : object with ``read(start, stop)``
        A :class:`~sigalex.io.Recording`, a lazily opened EDF, a memory-mapped array wrapper.
    windows : iterable of Window, optional
        The windows to read; default: ``make_windows(source, **window_options)``.

    Yields
    ------
    samples : numpy.ndarray, float32 [shape=(n_channels, window_samples)]
        A fresh array (never a view into the source).
    window : Window
    """
    if windows is None:
        windows = make_windows(source, **window_options)
    elif window_options:
        raise ParameterError(f"give windows= or window options, not both: {sorted(window_options)}")
    for w in windows:
        x = np.array(source.read(w.start, w.stop), dtype=np.float32, copy=True)
        if x.ndim == 1:
            x = x[None]
        if x.shape[-1] != w.n_times:
            raise DataError(
                f"{w.recording}: read {x.shape[-1]} samples for window [{w.start}, {w.stop}); "
                "the file ends early (truncated?)"
            )
        yield x, w


def window_array(source, **window_options) -> tuple[np.ndarray, list[Window]]:
    """All windows of a recording in memory: ``(n_windows, n_channels, window_samples)`` float32.

    The in-memory twin of :func:`iter_windows` (uses ``numpy.lib.stride_tricks``; fine for
    short recordings, not for a day of EEG).
    """
    windows = make_windows(source, **window_options)
    data = np.asarray(source.read(0, None), dtype=np.float32)
    if data.ndim == 1:
        data = data[None]
    return cut(data, [w.start for w in windows], windows[0].n_times), windows


def _covered(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of intervals."""
    total, end = 0.0, -math.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def annotation_label(
    annotations: Iterable[Annotation],
    *,
    start_s: float,
    end_s: float,
    min_overlap: float = 0.5,
    default_label: str | None = "background",
    annotation_labels: Iterable[str] | None = None,
) -> str | None:
    """The label of window ``[start_s, end_s)`` from overlapping annotations.

    For each annotation label, the covered fraction is the length of the union of its events
    inside the window divided by the window length. The label with the largest fraction wins if
    that fraction is ``>= min_overlap`` (ties: the alphabetically first label); otherwise the
    window gets ``default_label``.

    Parameters
    ----------
    annotations : iterable of Annotation
    start_s, end_s : float
        Window bounds in seconds.
    min_overlap : float
        Fraction of the window in ``(0, 1]`` (``0.5``: a seizure must cover half the window).
    default_label : str or None
        Label of windows no annotation covers enough.
    annotation_labels : iterable of str, optional
        Only these annotation labels count (others are ignored).
    """
    if not (isinstance(min_overlap, int | float) and 0 < min_overlap <= 1):
        raise ParameterError(f"{min_overlap=} must be a fraction in (0, 1]")
    length = end_s - start_s
    if not length > 0:
        raise ParameterError(f"window [{start_s=}, {end_s=}) is empty")
    keep = None if annotation_labels is None else set(annotation_labels)
    parts: dict[str, list[tuple[float, float]]] = {}
    for a in annotations:
        if keep is not None and a.label not in keep:
            continue
        lo, hi = max(a.onset, start_s), min(a.onset + a.duration, end_s)
        if hi > lo:
            parts.setdefault(a.label, []).append((lo, hi))
    best, best_frac = default_label, 0.0
    for lab in sorted(parts):
        frac = _covered(parts[lab]) / length
        if frac > best_frac + 1e-12:
            best, best_frac = lab, frac
    return best if best_frac >= min_overlap - 1e-9 else default_label


def fit_length(x, n_times: int, *, mode: str = "pad_or_crop") -> np.ndarray:
    """Bring a clip to exactly ``n_times`` samples along the last axis.

    Rule: **pad** adds zeros, ``(n_times - n) // 2`` before the clip and the rest after it
    (the clip is centred; an odd extra sample goes at the end). **crop** keeps the centre:
    it drops ``(n - n_times) // 2`` samples at the start and the rest at the end.

    Parameters
    ----------
    x : array_like [shape=(..., n)]
    n_times : int
        Target length in samples.
    mode : {"pad_or_crop", "pad", "crop"}
        ``"pad"`` refuses clips longer than ``n_times``; ``"crop"`` refuses shorter ones.

    Returns
    -------
    numpy.ndarray [shape=(..., n_times)], the dtype of ``x`` (a copy only when needed)

    Raises
    ------
    ParameterError
        Bad ``n_times`` or ``mode``, or a clip the chosen mode cannot fit.
    """
    mode = choice("fit mode", mode, FIT_MODES)
    if isinstance(n_times, bool) or not isinstance(n_times, int | np.integer) or n_times < 1:
        raise ParameterError(f"{n_times=} must be a positive integer number of samples")
    x = np.asarray(x)
    n = x.shape[-1]
    if n == n_times:
        return x
    if n < n_times:
        if mode == "crop":
            raise ParameterError(f"clip of {n} samples is shorter than {n_times=}; use mode='pad'")
        before = (n_times - n) // 2
        pad = [(0, 0)] * (x.ndim - 1) + [(before, n_times - n - before)]
        return np.pad(x, pad)
    if mode == "pad":
        raise ParameterError(f"clip of {n} samples is longer than {n_times=}; use mode='crop'")
    start = (n - n_times) // 2
    return x[..., start : start + n_times]


class RecordingOpener:
    """Opens a window's file through :func:`sigalex.sources.open_source` (EDF/BDF lazily,
    other formats in memory, rate-less formats at the window's rate); picklable for workers.

    Parameters
    ----------
    channels : sequence of str, optional
        Channel names or patterns to keep (see :func:`sigalex.recording.select_channels`).
    """

    def __init__(self, channels: Sequence[str] | None = None):
        self.channels = list(channels) if channels else None

    def __call__(self, window: Window) -> Source:
        if window.path is None:
            raise DataError(
                f"{window.recording}: an in-memory recording; pass sources= to WindowDataset"
            )
        return open_source(window.path, sample_rate=window.sample_rate, channels=self.channels)


class WindowDataset(torch.utils.data.Dataset):
    """A torch map-style dataset of raw windows: ``(float32 (n_channels, n_times), int label)``.

    It only reads and cuts (no FFTs), so DataLoader workers stay cheap; the batched front end
    turns windows into images on the device. Each worker keeps up to ``cache_size`` recordings
    open.

    Parameters
    ----------
    windows : sequence of Window
    classes : sequence of str, optional
        Class names; label ``i`` is ``classes.index(window.label)``. Default: the sorted labels.
    n_times : int, optional
        Fit every window to this many samples with :func:`fit_length` (``fit`` mode); needed
        when windows differ in length (whole short clips).
    fit : {"pad_or_crop", "pad", "crop"}
    sample_rate : float, optional
        Hz of the windows given out: windows at another rate are resampled, then fitted to
        ``n_times`` (:func:`conform`, as prediction does). Needs ``n_times``.
    sources : mapping of str to source, optional
        Sources by recording id (in-memory recordings); others are opened from ``window.path``.
    opener : callable(Window) -> source, optional
        How to open a window's recording (default: EDF lazily, other formats in memory).
    cache_size : int
        Open recordings kept per worker.

    Raises
    ------
    ParameterError
        A window whose label is not in ``classes``.
    """

    def __init__(
        self,
        windows: Sequence[Window],
        *,
        classes: Sequence[str] | None = None,
        n_times: int | None = None,
        fit: str = "pad_or_crop",
        sample_rate: float | None = None,
        sources: Mapping[str, Source] | None = None,
        opener: Callable[[Window], Source] | None = None,
        cache_size: int = 4,
    ):
        self.windows = list(windows)
        labels = {w.label for w in self.windows}
        if classes is None:
            if None in labels:
                raise ParameterError("some windows have no label; pass classes= or label them")
            classes = sorted(lab for lab in labels if lab is not None)  # (None refused above)
        self.classes = list(classes)
        index: dict[str | None, int] = {c: i for i, c in enumerate(self.classes)}
        missing = sorted(str(lab) for lab in labels if lab not in index)
        if missing:
            raise ParameterError(f"labels {missing} are not in {classes=}")
        self.targets = np.array([index[w.label] for w in self.windows], dtype=np.int64)
        self.n_times = n_times
        self.fit = choice("fit mode", fit, FIT_MODES)
        if n_times is not None:
            fit_length(np.zeros(1, np.float32), n_times, mode="pad_or_crop")  # checks n_times
        if sample_rate is not None and n_times is None:
            raise ParameterError("sample_rate= needs n_times= (resampled windows are fitted)")
        self.sample_rate = (
            None if sample_rate is None else positive_float("sample_rate", sample_rate)
        )
        self.sources = dict(sources or {})
        self.opener = opener or RecordingOpener()
        self.cache_size = max(1, int(cache_size))
        self._open: OrderedDict[str, Source] = OrderedDict()

    def __len__(self) -> int:
        return len(self.windows)

    def _source(self, w: Window) -> Source:
        if w.recording in self.sources:
            return self.sources[w.recording]
        src = self._open.get(w.recording)
        if src is None:
            src = self.opener(w)
            self._open[w.recording] = src
            while len(self._open) > self.cache_size:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(w.recording)
        return src

    def __getitem__(self, i: int):
        w = self.windows[i]
        x = np.asarray(self._source(w).read(w.start, w.stop), dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if self.sample_rate is not None:
            assert self.n_times is not None  # __init__ refuses sample_rate= without n_times=
            x = conform(
                x, w.sample_rate, sample_rate=self.sample_rate, n_times=self.n_times, fit=self.fit
            )
        elif self.n_times is not None:
            x = fit_length(x, self.n_times, mode=self.fit)
        elif x.shape[-1] != w.n_times:
            raise DataError(f"{w.recording}: read {x.shape[-1]} samples, expected {w.n_times}")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), int(self.targets[i])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_open"] = OrderedDict()  # workers open their own files
        return state


__all__ = [
    "FIT_MODES",
    "RecordingOpener",
    "Window",
    "WindowDataset",
    "annotation_label",
    "conform",
    "cut",
    "fit_length",
    "iter_windows",
    "make_windows",
    "n_windows",
    "whole_window",
    "window_array",
    "window_samples",
    "window_starts",
]
