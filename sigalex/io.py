"""Reading recordings: one :class:`Recording` type for every file format.

Dispatch is by extension (``format=`` overrides it). Every reader returns float32 data
``(n_channels, n_times)``; formats that carry no sample rate (``.txt``, ``.csv``, ``.npy``,
``.npz``) need ``sample_rate=`` from the caller and fail clearly without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError, ParameterError


@dataclass(frozen=True)
class Annotation:
    """One annotated event: ``onset`` and ``duration`` in seconds from the recording start."""

    onset: float
    duration: float
    label: str
    channels: tuple[str, ...] = ()

    @property
    def offset(self) -> float:
        return self.onset + self.duration


@dataclass
class Recording:
    """A multichannel recording in memory.

    Attributes
    ----------
    data : numpy.ndarray, float32 [shape=(n_channels, n_times)]
    sample_rate : float
        Hz.
    channel_names : list of str
        One per row of ``data``.
    annotations : list of Annotation
        Events (seizures, labels) with times in seconds.
    path : pathlib.Path or None
        The file it was read from.
    """

    data: np.ndarray
    sample_rate: float
    channel_names: list[str]
    annotations: list[Annotation] = field(default_factory=list)
    path: Path | None = None

    def __post_init__(self):
        data = np.asarray(self.data)
        if data.ndim == 1:
            data = data[None]
        if data.ndim != 2:
            raise DataError(f"{self._where()}data must be (n_channels, n_times); got {data.shape}")
        self.data = data.astype(np.float32, copy=False)
        if not self.channel_names:
            self.channel_names = [f"ch{i}" for i in range(data.shape[0])]
        if len(self.channel_names) != data.shape[0]:
            raise DataError(
                f"{self._where()}{len(self.channel_names)} channel names for {data.shape[0]} channels"
            )

    def _where(self) -> str:
        return f"{self.path}: " if self.path else ""

    @property
    def n_channels(self) -> int:
        return self.data.shape[0]

    @property
    def n_times(self) -> int:
        return self.data.shape[1]

    @property
    def duration_s(self) -> float:
        return self.n_times / self.sample_rate

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start:stop`` of every channel, float32 ``(n_channels, stop - start)``.

        The same call works on lazily opened recordings (EDF), so windowing code can stream
        any source through ``read``.
        """
        return self.data[:, start:stop]


Reader = Callable[..., Recording]
_READERS: dict[str, Reader] = {}


def reader(*extensions: str):
    """Register a reader function for file extensions (lower case, with the dot)."""

    def wrap(fn: Reader) -> Reader:
        for ext in extensions:
            _READERS[ext] = fn
        return fn

    return wrap


def readable_extensions() -> list[str]:
    """Extensions :func:`load_recording` can read."""
    return sorted(_READERS)


def _need_rate(path: Path, sample_rate) -> float:
    if sample_rate is None:
        raise DataError(
            f"{path}: a {path.suffix} file carries no sample rate; pass sample_rate= (Hz) "
            "or use a dataset layout that knows it"
        )
    if not np.isfinite(sample_rate) or sample_rate <= 0:
        raise ParameterError(f"{sample_rate=} must be a positive number of Hz")
    return float(sample_rate)


def _checked(path: Path, data: np.ndarray) -> np.ndarray:
    if data.size == 0:
        raise DataError(f"{path}: the file holds no samples")
    if data.dtype.kind not in "iuf":
        raise DataError(f"{path}: values must be numbers; got dtype {data.dtype}")
    data = np.asarray(data, dtype=np.float32)
    bad = ~np.isfinite(data)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise DataError(f"{path}: {int(bad.sum())} NaN/inf value(s), first at index {tuple(idx)}")
    return data


@reader(".txt")
def read_txt(path: Path, *, sample_rate=None, **_) -> Recording:
    """One value per line (Bonn layout), or whitespace-separated columns = channels."""
    rate = _need_rate(path, sample_rate)
    try:
        data = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: not a text file of numbers: {exc}") from exc
    return Recording(_checked(path, data.T), rate, [], path=path)


@reader(".csv")
def read_csv(path: Path, *, sample_rate=None, **_) -> Recording:
    """Comma-separated columns = channels; a first row of names is used as channel names."""
    rate = _need_rate(path, sample_rate)
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    names: list[str] = []
    skip = 0
    cells = [c.strip() for c in first.split(",")]
    try:
        [float(c) for c in cells if c]
    except ValueError:
        names, skip = cells, 1
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=skip, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: not a CSV of numbers: {exc}") from exc
    return Recording(
        _checked(path, data.T), rate, names if len(names) == data.shape[1] else [], path=path
    )


@reader(".npy", ".npz")
def read_numpy(path: Path, *, sample_rate=None, key: str | None = None, **_) -> Recording:
    """A ``.npy`` array ``(n_times,)`` or ``(n_channels, n_times)``; ``.npz``: array ``key``
    (default: the only array, or ``data``), with ``sample_rate``/``channel_names`` arrays
    used when present."""
    names: list[str] = []
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if key is None:
                    key = "data" if "data" in keys else (keys[0] if len(keys) == 1 else None)
                if key is None or key not in keys:
                    raise DataError(f"{path}: choose the array with key=; it holds {keys}")
                data = z[key]
                if sample_rate is None and "sample_rate" in keys:
                    sample_rate = float(z["sample_rate"])
                if "channel_names" in keys:
                    names = [str(n) for n in z["channel_names"]]
        else:
            data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable NumPy file: {exc}") from exc
    rate = _need_rate(path, sample_rate)
    if data.ndim not in (1, 2):
        raise DataError(
            f"{path}: array must be (n_times,) or (n_channels, n_times); got {data.shape}"
        )
    return Recording(_checked(path, data), rate, names, path=path)


@reader(".wav", ".flac", ".ogg")
def read_audio(path: Path, *, sample_rate=None, **_) -> Recording:
    """Audio through soundfile, all channels, float32 in [-1, 1]; ``sample_rate=`` resamples."""
    import soundfile

    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
        raise DataError(f"{path}: not a readable audio file: {exc}") from exc
    rec = Recording(_checked(path, data.T), float(rate), [], path=path)
    if sample_rate is not None and float(sample_rate) != rec.sample_rate:
        rec = resample_recording(rec, float(sample_rate))
    return rec


def resample_recording(rec: Recording, sample_rate: float) -> Recording:
    """``rec`` resampled to ``sample_rate`` Hz (soxr, high quality); annotations unchanged."""
    import librosa

    if not np.isfinite(sample_rate) or sample_rate <= 0:
        raise ParameterError(f"{sample_rate=} must be a positive number of Hz")
    data = librosa.resample(rec.data, orig_sr=rec.sample_rate, target_sr=sample_rate, axis=-1)
    return Recording(data, sample_rate, list(rec.channel_names), list(rec.annotations), rec.path)


def load_recording(path, *, format: str | None = None, **options) -> Recording:
    """Read a recording file.

    Parameters
    ----------
    path : str or Path
    format : str, optional
        Extension to dispatch on (``"wav"``, ``".npy"``…) instead of the file's own.
    **options
        Passed to the reader: ``sample_rate`` (Hz; required for txt/csv/npy/npz, resamples
        audio), ``key`` (npz).

    Raises
    ------
    DataError
        Missing, empty, corrupt or unsupported file, NaN/inf samples, no sample rate.
    """
    path = Path(path)
    ext = ("." + format.lstrip(".")).lower() if format else path.suffix.lower()
    fn = _READERS.get(ext)
    if fn is None:
        raise DataError(
            f"{path}: unknown extension {ext or '(none)'!r}; readable: "
            f"{', '.join(readable_extensions())} (or pass format=)"
        )
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    return fn(path, **options)
