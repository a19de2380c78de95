"""Recordings read through MNE, lazily: any ``mne.io.Raw`` (:class:`RawRecording`) and EDF/BDF
files (:class:`EdfRecording`, header checked against the file first); and :func:`write_edf`.

Samples are read from disk only when asked for (``read(start, stop)``), so a 24 h recording can
be walked window by window. Voltage channels come back in µV.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from ._files import atomic_path
from .errors import DataError, ParameterError
from .recording import Annotation, Recording, select_channels

_VOLT_SCALE_TO_UV = {"v": 1e6, "mv": 1e6, "µv": 1e6, "μv": 1e6, "uv": 1e6, "nv": 1e6}
# MNE returns every voltage channel of an EDF in volts, whatever unit the file used; ×1e6 gives
# µV. Channels in other units (°C, %, n/a) are returned as MNE gives them.
_FIFF_UNIT_V = 107  # mne.io.constants.FIFF.FIFF_UNIT_V: the unit of a Raw's voltage channels


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


class RawRecording:
    """An ``mne.io.Raw`` as a sigalex recording: samples read from it only when asked for.

    It has the interface of :class:`~sigalex.recording.Recording` apart from ``data``:
    ``read(start, stop)`` reads one span (µV for channels MNE holds in volts), ``load()`` reads
    everything into a :class:`~sigalex.recording.Recording`. A preloaded ``Raw`` works as well.

    Parameters
    ----------
    raw : mne.io.BaseRaw
    channels : str or iterable of str, optional
        Names or patterns to keep (see :func:`~sigalex.recording.select_channels`).
    path : path, optional
        The file it came from (default: the Raw's own ``filenames``).

    Attributes
    ----------
    sample_rate : float
        Hz.
    channel_names : list of str
        The selected channels, in the order selected.
    annotations : list of Annotation
        The Raw's annotations (onset and duration in seconds from the recording start).
    path : pathlib.Path or None
    n_channels, n_times : int
    duration_s : float
    """

    def __init__(self, raw, *, channels: str | Iterable[str] | None = None, path=None):
        names = list(raw.ch_names)
        where = path or _raw_path(raw) or "<mne Raw>"
        if channels is not None:
            try:
                picks = select_channels(names, channels)
            except ParameterError as exc:
                raise DataError(f"{where}: {exc}") from None
        else:
            picks = list(range(len(names)))
        self._raw = raw
        self._picks = picks
        self._scale = self._unit_scale(raw, picks)
        self.path = Path(path) if path is not None else _raw_path(raw)
        self.sample_rate = float(raw.info["sfreq"])
        self.channel_names = [names[i] for i in picks]
        self.annotations = [
            Annotation(
                float(a["onset"]) - float(getattr(raw, "first_time", 0.0) or 0.0)
                if raw.annotations.orig_time is not None
                else float(a["onset"]),
                float(a["duration"]),
                str(a["description"]).strip("\x00"),
                tuple(a.get("ch_names", ()) or ()),
            )
            for a in raw.annotations
        ]

    @staticmethod
    def _unit_scale(raw, picks: Sequence[int]) -> np.ndarray:
        """Per channel: 1e6 for channels MNE holds in volts (→ µV), else 1; ``(n, 1)``."""
        chs = raw.info["chs"]
        return np.array([1e6 if chs[i]["unit"] == _FIFF_UNIT_V else 1.0 for i in picks])[:, None]

    def select(self, rows: Sequence[int]) -> RawRecording:
        """A view of rows ``rows`` of this recording (nothing is read)."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._picks = [self._picks[i] for i in rows]
        view._scale = self._scale[list(rows)]
        view.channel_names = [self.channel_names[i] for i in rows]
        return view

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
        """Samples ``start:stop`` (slice semantics) of the selected channels.

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
            f"{type(self).__name__}({str(self.path)!r}, n_channels={self.n_channels}, "
            f"n_times={self.n_times}, sample_rate={self.sample_rate})"
        )


def _raw_path(raw) -> Path | None:
    names = [f for f in (getattr(raw, "filenames", None) or ()) if f]
    return Path(names[0]) if names else None


class EdfRecording(RawRecording):
    """An EDF/BDF file opened lazily (a :class:`RawRecording` of MNE's reader).

    The header is checked against the file size first, so a truncated or garbled file is a
    ``DataError`` naming the problem rather than an MNE traceback. Open it with
    :func:`sigalex.io.open_recording`.
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
                try:
                    raw = read(path, preload=False, verbose="error")
                except Exception as exc:
                    if "encoding" not in str(exc):
                        raise
                    # EDF+ annotations must be UTF-8, but older European exports write
                    # Latin-1: read them so, and keep the signals.
                    raw = read(path, preload=False, verbose="error", encoding="latin1")
                    latin1 = True
                else:
                    latin1 = False
        except Exception as exc:
            raise DataError(f"{path}: not a readable {info['kind']} file: {exc}") from exc
        if latin1:
            warnings.warn(
                f"{path}: the EDF+ annotations are not UTF-8; read as Latin-1", stacklevel=2
            )
        super().__init__(raw, channels=channels, path=path)

    @staticmethod
    def _unit_scale(raw, picks: Sequence[int]) -> np.ndarray:
        units = getattr(raw, "_orig_units", {}) or {}
        names = raw.ch_names
        return np.array(
            [_VOLT_SCALE_TO_UV.get(str(units.get(names[i], "")).lower(), 1.0) for i in picks]
        )[:, None]


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


__all__ = ["EdfRecording", "RawRecording", "write_edf"]
