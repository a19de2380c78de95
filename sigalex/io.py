"""Reading recording files: one :class:`~sigalex.recording.Recording` type for every format.

Dispatch is by extension (``format=`` overrides it). Every reader returns float32 data
``(n_channels, n_times)``. Formats that carry no sample rate (:data:`RATELESS_EXTENSIONS`:
``.txt``, ``.csv``, ``.npy``, and ``.npz`` without a ``sample_rate`` array) need
``sample_rate=`` from the caller and fail clearly without one. EDF/BDF are read through MNE
(:mod:`sigalex.edf`); :func:`open_recording` opens them lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .edf import EdfRecording, write_edf
from .errors import DataError, ParameterError
from .recording import Annotation, Recording, pick_rows, select_channels
from .resample import resample

#: Extensions whose files carry no sample rate (an ``.npz`` may hold one; see :func:`stored_sample_rate`).
RATELESS_EXTENSIONS = (".csv", ".npy", ".npz", ".txt")

Reader = Callable[..., Recording]
_READERS: dict[str, Reader] = {}


def reader(*extensions: str):
    """Register a reader function for file extensions (lower case, with the dot)."""

    def wrap(fn: Reader) -> Reader:
        for ext in extensions:
            _READERS[ext] = fn
        return fn

    return wrap


#: The options :func:`load_recording` and :func:`open_recording` accept (each reader uses those
#: that apply to its format: ``key`` to ``.npz``, ``sample_rate`` to every format).
OPTIONS = ("channels", "key", "sample_rate")


def _check_options(function: str, options: dict) -> None:
    """An unknown keyword is a ``TypeError`` naming it and the accepted ones (a typo such as
    ``samplerate=`` must not pass silently)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        import difflib

        hints = [difflib.get_close_matches(k, OPTIONS, n=1) for k in unknown]
        hint = "".join(f" (did you mean {h[0]!r}?)" for h in hints if h)
        raise TypeError(
            f"{function}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}"
            f"{hint}; it accepts: format, {', '.join(OPTIONS)}"
        )


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
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"channel {idx[0]}, sample {idx[1]}" if len(idx) == 2 else f"sample {idx[0]}"
        raise DataError(f"{path}: {int(bad.sum())} NaN/inf value(s), the first at {where}")
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


# --- channel selection ---------------------------------------------------------------------


# --- EDF / BDF -----------------------------------------------------------------------------


@reader(".edf", ".bdf")
def read_edf(path: Path, *, channels=None, sample_rate=None, **_) -> Recording:
    """EDF/EDF+/BDF through MNE into memory, voltages in µV; ``sample_rate=`` resamples."""
    rec = EdfRecording(path, channels=channels).load()
    if sample_rate is not None and float(sample_rate) != rec.sample_rate:
        rec = resample_recording(rec, float(sample_rate))
    return rec


def open_recording(path, *, format: str | None = None, **options) -> EdfRecording | Recording:
    """Open a recording for reading by spans: lazily for EDF/BDF, in memory otherwise.

    EDF/BDF files return an :class:`EdfRecording`, whose ``read(start, stop)`` reads only
    that span from disk, so a 24 h recording can be walked window by window. Other formats
    return :func:`load_recording`'s :class:`Recording`, which has the same ``read``.

    Parameters
    ----------
    path : str or Path
    format : str, optional
        Extension to dispatch on instead of the file's own.
    **options
        ``channels`` (names or patterns, see :func:`select_channels`) and the options of
        :func:`load_recording`. ``sample_rate`` cannot be applied lazily: an EDF is read at
        its own rate (resample windows, or use :func:`load_recording`).

    Raises
    ------
    DataError
        Missing, empty, truncated or corrupt file, or a requested channel it lacks.
    ParameterError
        ``sample_rate`` differing from an EDF's own rate.
    """
    _check_options("open_recording", options)
    path = Path(path)
    ext = ("." + format.lstrip(".")).lower() if format else path.suffix.lower()
    if ext not in (".edf", ".bdf"):
        return load_recording(path, format=format, **options)
    sample_rate = options.pop("sample_rate", None)
    lazy = EdfRecording(path, channels=options.pop("channels", None))
    if sample_rate is not None and float(sample_rate) != lazy.sample_rate:
        raise ParameterError(
            f"{sample_rate=} differs from {path}'s own {lazy.sample_rate} Hz; open_recording "
            "reads EDF lazily at its own rate: use load_recording(..., sample_rate=) instead"
        )
    return lazy


def resample_recording(rec: Recording, sample_rate: float) -> Recording:
    """``rec`` resampled to ``sample_rate`` Hz (:func:`sigalex.resample.resample`, the one
    resampler); annotations unchanged."""
    if not np.isfinite(sample_rate) or sample_rate <= 0:
        raise ParameterError(f"{sample_rate=} must be a positive number of Hz")
    data = resample(rec.data, rec.sample_rate, sample_rate)
    return Recording(data, sample_rate, list(rec.channel_names), list(rec.annotations), rec.path)


def stored_sample_rate(path) -> float | None:
    """The sample rate a file itself records, in Hz, or ``None`` (rate-less formats).

    Reads only headers (EDF/BDF, audio) or the ``sample_rate`` array of an ``.npz``.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return float(z["sample_rate"]) if "sample_rate" in z.files else None
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable NumPy file: {exc}") from exc
    if ext in RATELESS_EXTENSIONS:
        return None
    if ext in (".edf", ".bdf"):
        return float(open_recording(path).sample_rate)
    import soundfile

    try:
        return float(soundfile.info(path).samplerate)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise DataError(f"{path}: not a readable audio file: {exc}") from exc


def load_recording(path, *, format: str | None = None, **options) -> Recording:
    """Read a recording file.

    Parameters
    ----------
    path : str or Path
    format : str, optional
        Extension to dispatch on (``"wav"``, ``".npy"``…) instead of the file's own.
    **options
        Passed to the reader: ``sample_rate`` (Hz; required for txt/csv/npy/npz, resamples
        audio and EDF), ``key`` (npz), ``channels`` (names or patterns, any format; see
        :func:`select_channels`). EDF/BDF voltages are returned in µV; for a lazy view of a
        large EDF use :func:`open_recording`.

    Raises
    ------
    DataError
        Missing, empty, truncated, corrupt or unsupported file, NaN/inf samples, no sample
        rate, a requested channel the file lacks.
    """
    _check_options("load_recording", options)
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
    try:
        if fn is read_edf:
            return fn(path, **options)
        channels = options.pop("channels", None)
        rec = fn(path, **options)
    except DataError:
        raise
    except OSError as exc:  # no read permission, a folder named like a file, an I/O error
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if channels is not None:
        try:
            rec = pick_rows(rec, select_channels(rec.channel_names, channels))
        except ParameterError as exc:
            raise DataError(f"{path}: {exc}") from None
    return rec


__all__ = [
    "OPTIONS",
    "RATELESS_EXTENSIONS",
    "Annotation",
    "EdfRecording",
    "Recording",
    "load_recording",
    "open_recording",
    "readable_extensions",
    "reader",
    "resample_recording",
    "select_channels",
    "stored_sample_rate",
    "write_edf",
]
