"""Reading recordings: one :class:`Recording` type for every file format.

Dispatch is by extension (``format=`` overrides it). Every reader returns float32 data
``(n_channels, n_times)``; formats that carry no sample rate (``.txt``, ``.csv``, ``.npy``,
``.npz``) need ``sample_rate=`` from the caller and fail clearly without one.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ._files import atomic_path
from .errors import DataError, ParameterError


@dataclass(frozen=True)
class Annotation:
    """One annotated event: ``onset`` and ``duration`` in seconds from the recording start.

    ``channels`` names the channels involved (empty: all or unknown); ``confidence`` is a
    detector's score in [0, 1] (``None`` for human annotations), as in SzCORE event files.
    """

    onset: float
    duration: float
    label: str
    channels: tuple[str, ...] = ()
    confidence: float | None = None

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


# --- channel selection ---------------------------------------------------------------------


def select_channels(available: Sequence[str], channels: str | Iterable[str]) -> list[int]:
    """Indices of the channels that ``channels`` asks for, in the order asked.

    Each item is matched against ``available`` case-insensitively: first as an exact name,
    then as a glob pattern (``"FP*"``, ``"T[78]-P[78]"``), then as a regular expression
    matched in full (``"(FP|F)[0-9]-.*"``). A channel matched by several items is kept once.

    Parameters
    ----------
    available : sequence of str
        The recording's channel names.
    channels : str or iterable of str
        Names or patterns.

    Raises
    ------
    ParameterError
        An item that matches no channel; the message lists the available channels.
    """
    if isinstance(channels, str):
        channels = [channels]
    channels = list(channels)
    if not channels:
        raise ParameterError(f"{channels=} must name at least one channel")
    lower = [name.lower() for name in available]
    picked: list[int] = []
    unmatched: list[str] = []
    for item in channels:
        if not isinstance(item, str):
            raise ParameterError(f"channel {item!r} must be a name or pattern (str)")
        key = item.lower()
        hits = [i for i, name in enumerate(lower) if name == key]
        if not hits and any(c in item for c in "*?["):
            hits = [i for i, name in enumerate(lower) if fnmatch.fnmatchcase(name, key)]
        if not hits:
            try:
                rx = re.compile(item, re.IGNORECASE)
            except re.error:
                rx = None
            if rx is not None:
                hits = [i for i, name in enumerate(available) if rx.fullmatch(name)]
        if not hits:
            unmatched.append(item)
        picked.extend(i for i in hits if i not in picked)
    if unmatched:
        raise ParameterError(
            f"no channel matches {', '.join(map(repr, unmatched))}; available: "
            f"{', '.join(available) or '(none)'}"
        )
    return picked


def _pick(rec: Recording, idx: list[int]) -> Recording:
    return Recording(
        rec.data[idx],
        rec.sample_rate,
        [rec.channel_names[i] for i in idx],
        list(rec.annotations),
        rec.path,
    )


# --- EDF / BDF -----------------------------------------------------------------------------

_VOLT_SCALE_TO_UV = {"v": 1e6, "mv": 1e6, "µv": 1e6, "μv": 1e6, "uv": 1e6, "nv": 1e6}
# MNE returns every voltage channel in volts, whatever unit the file used; ×1e6 gives µV.
# Channels in other units (°C, %, n/a) are returned as MNE gives them.


def _edf_header(path: Path) -> dict:
    """Check an EDF/BDF header against the file size; DataError naming the problem."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(256)
        if len(head) < 256:
            raise DataError(
                f"{path}: {size} bytes is too short for an EDF/BDF header (256 bytes at least)"
            )
        if head[:8] == b"0       ":
            kind, bytes_per_sample = "EDF", 2
        elif head[:8] == b"\xffBIOSEMI":
            kind, bytes_per_sample = "BDF", 3
        else:
            raise DataError(
                f"{path}: not an EDF/BDF file: version field is {head[:8]!r} "
                "(expected b'0       ' for EDF or b'\\xffBIOSEMI' for BDF)"
            )

        def field(lo: int, hi: int, name: str, cast):
            raw = head[lo:hi].decode("ascii", errors="replace").strip()
            try:
                return cast(raw)
            except ValueError:
                raise DataError(f"{path}: corrupt {kind} header: {name} field is {raw!r}") from None

        header_bytes = field(184, 192, "header size", int)
        n_records = field(236, 244, "number of data records", int)
        record_s = field(244, 252, "data record duration", float)
        n_signals = field(252, 256, "number of signals", int)
        if n_signals < 1:
            raise DataError(f"{path}: corrupt {kind} header: {n_signals=} must be at least 1")
        if header_bytes != 256 * (n_signals + 1):
            raise DataError(
                f"{path}: corrupt {kind} header: header size {header_bytes} bytes does not "
                f"match {n_signals} signals (expected {256 * (n_signals + 1)})"
            )
        if not np.isfinite(record_s) or record_s < 0:
            raise DataError(f"{path}: corrupt {kind} header: data record duration {record_s}")
        signal_head = fh.read(256 * n_signals)
    if len(signal_head) < 256 * n_signals:
        raise DataError(
            f"{path}: truncated {kind} header: {size} bytes, the header alone needs {header_bytes}"
        )
    ns = n_signals

    def column(offset: int, width: int, name: str, cast) -> list:
        # signal header fields are stored column by column: ns labels, ns transducers, ...
        values = []
        for i in range(ns):
            lo = ns * offset + width * i
            raw = signal_head[lo : lo + width].decode("ascii", errors="replace").strip()
            try:
                values.append(cast(raw))
            except ValueError:
                raise DataError(
                    f"{path}: corrupt {kind} header: {name} of signal {i} is {raw!r}"
                ) from None
        return values

    phys_min = column(104, 8, "physical minimum", float)
    phys_max = column(112, 8, "physical maximum", float)
    dig_min = column(120, 8, "digital minimum", int)
    dig_max = column(128, 8, "digital maximum", int)
    per_record = column(216, 8, "samples per record", int)
    for i in range(ns):
        if dig_max[i] <= dig_min[i] or phys_max[i] == phys_min[i] or per_record[i] < 1:
            raise DataError(
                f"{path}: corrupt {kind} header for signal {i}: digital range "
                f"{dig_min[i]}..{dig_max[i]}, physical range {phys_min[i]}..{phys_max[i]}, "
                f"{per_record[i]} samples per record"
            )
    record_bytes = sum(per_record) * bytes_per_sample
    data_bytes = size - header_bytes
    if n_records == 0 or data_bytes < record_bytes:
        raise DataError(f"{path}: the {kind} file holds no complete data record")
    if n_records < 0:
        warnings.warn(
            f"{path}: {kind} header gives {n_records} data records (unknown); "
            f"using the {data_bytes // record_bytes} complete records in the file",
            stacklevel=3,
        )
    elif data_bytes < n_records * record_bytes:
        raise DataError(
            f"{path}: truncated {kind} file: the header promises {n_records} data records "
            f"({header_bytes + n_records * record_bytes} bytes) but the file has {size} bytes"
        )
    elif data_bytes > n_records * record_bytes:
        warnings.warn(
            f"{path}: {data_bytes - n_records * record_bytes} bytes after the last data record "
            "are ignored",
            stacklevel=3,
        )
    return {"kind": kind, "n_records": n_records, "record_s": record_s}


class EdfRecording:
    """An EDF/BDF file opened lazily: samples are read from disk only when asked for.

    It has the interface of :class:`Recording` apart from ``data``: ``read(start, stop)``
    reads one span, ``load()`` reads everything into a :class:`Recording`. Open it with
    :func:`open_recording`.

    Attributes
    ----------
    sample_rate : float
        Hz.
    channel_names : list of str
        The selected channels, in the order selected.
    annotations : list of Annotation
        EDF+ annotations (onset and duration in seconds from the recording start).
    path : pathlib.Path
    n_channels, n_times : int
    duration_s : float
        Seconds.
    """

    def __init__(self, path, *, channels: str | Iterable[str] | None = None):
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty")
        info = _edf_header(path)
        import mne

        if path.suffix.lower() == "." + info["kind"].lower():
            read = mne.io.read_raw_bdf if info["kind"] == "BDF" else mne.io.read_raw_edf
        else:  # read_raw_edf insists on the extension; the classes behind it do not
            from mne.io.edf.edf import RawBDF, RawEDF

            read = RawBDF if info["kind"] == "BDF" else RawEDF
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raw = read(path, preload=False, verbose="error")
        except Exception as exc:
            raise DataError(f"{path}: not a readable {info['kind']} file: {exc}") from exc
        names = list(raw.ch_names)
        if channels is not None:
            try:
                self._picks = select_channels(names, channels)
            except ParameterError as exc:
                raise DataError(f"{path}: {exc}") from None
        else:
            self._picks = list(range(len(names)))
        units = getattr(raw, "_orig_units", {}) or {}
        self._scale = np.array(
            [_VOLT_SCALE_TO_UV.get(str(units.get(names[i], "")).lower(), 1.0) for i in self._picks]
        )[:, None]
        self._raw = raw
        self.path = path
        self.sample_rate = float(raw.info["sfreq"])
        self.channel_names = [names[i] for i in self._picks]
        self.annotations = [
            Annotation(
                float(a["onset"]),
                float(a["duration"]),
                str(a["description"]),
                tuple(a.get("ch_names", ()) or ()),
            )
            for a in raw.annotations
        ]

    @property
    def n_channels(self) -> int:
        return len(self._picks)

    @property
    def n_times(self) -> int:
        return int(self._raw.n_times)

    @property
    def duration_s(self) -> float:
        return self.n_times / self.sample_rate

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start:stop`` (slice semantics) of the selected channels, read from disk.

        Returns
        -------
        numpy.ndarray, float32 [shape=(n_channels, stop - start)]
            µV for voltage channels.
        """
        start, stop, _ = slice(start, stop).indices(self.n_times)
        if stop <= start:
            return np.zeros((self.n_channels, 0), np.float32)
        try:
            data = self._raw.get_data(picks=self._picks, start=start, stop=stop)
        except Exception as exc:
            raise DataError(f"{self.path}: cannot read samples {start}:{stop}: {exc}") from exc
        return (data * self._scale).astype(np.float32)

    def load(self) -> Recording:
        """The whole recording in memory."""
        return Recording(
            self.read(),
            self.sample_rate,
            list(self.channel_names),
            list(self.annotations),
            self.path,
        )

    def __repr__(self) -> str:
        return (
            f"EdfRecording({str(self.path)!r}, n_channels={self.n_channels}, "
            f"n_times={self.n_times}, sample_rate={self.sample_rate})"
        )


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


def _record_layout(sample_rate: float, n_times: int) -> tuple[float, int]:
    """A data-record duration (s) and samples per record that represent ``sample_rate``
    exactly; prefers records that divide ``n_times``."""
    rate = Fraction(sample_rate).limit_denominator(10**6)
    if float(rate) != sample_rate:
        raise ParameterError(f"{sample_rate=} cannot be written exactly to EDF")
    durations = ["1", "2", "0.5", "4", "5", "0.25", "0.2", "10", "0.1", "20", "25", "50"]
    durations += ["100", "0.05", "0.04", "0.02", "0.01", "200", "250", "500", "1000"]
    fitting = []
    for text in durations:
        spr = rate * Fraction(text)
        if spr.denominator == 1 and spr.numerator >= 1:
            fitting.append((float(text), int(spr)))
    if not fitting:
        raise ParameterError(
            f"{sample_rate=} cannot be written to EDF: no data-record duration gives an "
            "integer number of samples per record"
        )
    for duration, spr in fitting:
        if n_times % spr == 0:
            return duration, spr
    return fitting[0]


def _physical_range(x: np.ndarray) -> tuple[float, float]:
    """(min, max) covering ``x``, each exactly representable in the 8-character EDF field."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi - lo < 1e-6 * max(1.0, abs(lo), abs(hi)):
        lo, hi = lo - 1.0, hi + 1.0

    def fit(v: float, up: bool) -> float:
        for decimals in range(6, -1, -1):
            scale = 10.0**decimals
            r = (np.ceil(v * scale) if up else np.floor(v * scale)) / scale
            text = f"{r:.{decimals}f}"
            if len(text) <= 8:
                return float(text)
        raise ParameterError(f"value {v} is too large for an EDF header field")

    return fit(lo, False), fit(hi, True)


def write_edf(path, recording, *, physical_dimension: str = "uV") -> Path:
    """Write a recording to an EDF+ file (16-bit), annotations as EDF+ annotations.

    The file is written to a temporary name beside ``path`` and moved into place, so a
    failed write never leaves a partial file.

    Parameters
    ----------
    path : str or Path
    recording : Recording or EdfRecording
        ``data`` ``(n_channels, n_times)`` in ``physical_dimension`` units (µV by default).
    physical_dimension : str
        Unit written in the header (``"uV"``: readers return µV).

    Returns
    -------
    pathlib.Path

    Notes
    -----
    Each channel is quantised to 16 bits over its own range: read-back values differ by
    at most one step, ``(max - min) / 65535`` (plus float32 rounding). Sample rate, channel
    names and annotations (to 1 µs; MNE's resolution) read back exactly; the annotations'
    ``channels`` and ``confidence`` are not stored (write an events TSV for those). A length
    that is not a whole number of EDF data records is padded with its last value, with a
    warning.
    """
    import edfio

    path = Path(path)
    if not isinstance(recording, Recording):
        recording = recording.load()
    data = np.asarray(recording.data, dtype=np.float64)
    if data.size == 0:
        raise ParameterError(f"{data.shape=}: nothing to write")
    if not np.isfinite(data).all():
        raise ParameterError("the recording holds NaN/inf values; EDF cannot store them")
    record_s, spr = _record_layout(float(recording.sample_rate), data.shape[1])
    if data.shape[1] % spr:
        pad = spr - data.shape[1] % spr
        warnings.warn(
            f"{path}: n_times={data.shape[1]} is not a whole number of {spr}-sample EDF data "
            f"records; padded with {pad} copies of the last value",
            stacklevel=2,
        )
        data = np.pad(data, ((0, 0), (0, pad)), mode="edge")
    signals = [
        edfio.EdfSignal(
            row,
            float(recording.sample_rate),
            label=str(name),
            physical_dimension=physical_dimension,
            physical_range=_physical_range(row),
        )
        for row, name in zip(data, recording.channel_names, strict=True)
    ]
    annotations = [
        edfio.EdfAnnotation(float(a.onset), float(a.duration) if a.duration else None, a.label)
        for a in recording.annotations
    ]
    edf = edfio.Edf(signals, data_record_duration=record_s, annotations=annotations)
    with atomic_path(path) as tmp:
        edf.write(tmp)
    return path


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
        audio and EDF), ``key`` (npz), ``channels`` (names or patterns, any format; see
        :func:`select_channels`). EDF/BDF voltages are returned in µV; for a lazy view of a
        large EDF use :func:`open_recording`.

    Raises
    ------
    DataError
        Missing, empty, truncated, corrupt or unsupported file, NaN/inf samples, no sample
        rate, a requested channel the file lacks.
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
    if fn is read_edf:
        return fn(path, **options)
    channels = options.pop("channels", None)
    rec = fn(path, **options)
    if channels is not None:
        try:
            rec = _pick(rec, select_channels(rec.channel_names, channels))
        except ParameterError as exc:
            raise DataError(f"{path}: {exc}") from None
    return rec
