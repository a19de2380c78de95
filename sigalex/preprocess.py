"""Preprocessing on whole recordings: resampling, zero-phase filters, channel picks, montages.

Each function takes a :class:`~sigalex.io.Recording` (a lazily opened EDF is loaded first)
and returns a new one; the input is never modified. Annotations and the path carry over.
Filters run in float64 with scipy second-order sections forward and backward
(``sosfiltfilt``): zero phase, and the magnitude response applied twice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import cast

import numpy as np

from .errors import ParameterError
from .io import Recording, resample_recording, select_channels

__all__ = ["DOUBLE_BANANA", "bandpass", "bipolar", "notch", "pick_channels", "resample"]

#: The longitudinal bipolar ("double banana") montage of the 10-20 system, in the order
#: CHB-MIT uses for its first 18 channels: left temporal, left parasagittal, right
#: parasagittal, right temporal chains, then the midline.
DOUBLE_BANANA: tuple[tuple[str, str], ...] = (
    ("FP1", "F7"),
    ("F7", "T7"),
    ("T7", "P7"),
    ("P7", "O1"),
    ("FP1", "F3"),
    ("F3", "C3"),
    ("C3", "P3"),
    ("P3", "O1"),
    ("FP2", "F4"),
    ("F4", "C4"),
    ("C4", "P4"),
    ("P4", "O2"),
    ("FP2", "F8"),
    ("F8", "T8"),
    ("T8", "P8"),
    ("P8", "O2"),
    ("FZ", "CZ"),
    ("CZ", "PZ"),
)

# Old 10-20 names (left) and their 10-10 equivalents (right).
_ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}


def _recording(rec) -> Recording:
    if isinstance(rec, Recording):
        return rec
    if hasattr(rec, "load"):
        return rec.load()
    raise ParameterError(f"expected a Recording; got {type(rec).__name__}")


def _like(rec: Recording, data: np.ndarray, **changes) -> Recording:
    fields = {
        "sample_rate": rec.sample_rate,
        "channel_names": list(rec.channel_names),
        "annotations": list(rec.annotations),
        "path": rec.path,
    }
    fields.update(changes)
    return Recording(data.astype(np.float32), **fields)


def resample(recording, *, sample_rate: float) -> Recording:
    """Resample to ``sample_rate`` Hz (soxr high quality, via librosa).

    Parameters
    ----------
    recording : Recording
        ``data`` ``(n_channels, n_times)``.
    sample_rate : float
        Target rate in Hz.

    Returns
    -------
    Recording
        ``data`` ``(n_channels, ceil(n_times * sample_rate / recording.sample_rate))``.
    """
    rec = _recording(recording)
    if not isinstance(sample_rate, int | float) or not math.isfinite(sample_rate):
        raise ParameterError(f"{sample_rate=} must be a positive number of Hz")
    if sample_rate <= 0:
        raise ParameterError(f"{sample_rate=} must be a positive number of Hz")
    if float(sample_rate) == rec.sample_rate:
        return _like(rec, rec.data.copy())
    return resample_recording(rec, float(sample_rate))


def _sosfiltfilt(rec: Recording, sos: np.ndarray, what: str) -> Recording:
    from scipy.signal import sosfiltfilt

    # scipy's default edge padding; the signal must be longer than it.
    padlen = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
    if rec.n_times <= padlen:
        raise ParameterError(
            f"{what}: n_times={rec.n_times} is too short for this filter "
            f"(needs more than {padlen} samples)"
        )
    y = sosfiltfilt(sos, rec.data.astype(np.float64), axis=-1)
    return _like(rec, y)


def bandpass(
    recording, *, low_hz: float | None, high_hz: float | None, order: int = 4
) -> Recording:
    """Zero-phase Butterworth band-pass (or high-pass / low-pass) filter.

    Parameters
    ----------
    recording : Recording
        ``data`` ``(n_channels, n_times)``.
    low_hz : float or None
        Lower cut-off in Hz (-3 dB of each pass, -6 dB overall); ``None`` for a low-pass.
    high_hz : float or None
        Upper cut-off in Hz, below Nyquist; ``None`` for a high-pass.
    order : int
        Butterworth order of each pass (the forward-backward filter doubles the roll-off).

    Returns
    -------
    Recording
        Same shape, zero phase shift.

    Raises
    ------
    ParameterError
        Both cut-offs ``None``, a cut-off not in (0, Nyquist), ``low_hz >= high_hz``, a bad
        ``order``, or a recording too short to filter.
    """
    from scipy.signal import butter

    rec = _recording(recording)
    nyquist = rec.sample_rate / 2
    if not isinstance(order, int | np.integer) or isinstance(order, bool) or order < 1:
        raise ParameterError(f"{order=} must be a positive integer")
    for name, value in (("low_hz", low_hz), ("high_hz", high_hz)):
        if value is None:
            continue
        if not isinstance(value, int | float | np.floating | np.integer) or not (
            0 < value < nyquist
        ):
            raise ParameterError(
                f"{name}={value!r} must be between 0 and Nyquist ({nyquist} Hz) for "
                f"sample_rate={rec.sample_rate}"
            )
    if low_hz is None and high_hz is None:
        raise ParameterError("low_hz=None and high_hz=None: give at least one cut-off")
    if low_hz is not None and high_hz is not None:
        if low_hz >= high_hz:
            raise ParameterError(f"{low_hz=} must be below {high_hz=}")
        sos = butter(order, [low_hz, high_hz], btype="bandpass", fs=rec.sample_rate, output="sos")
    elif low_hz is not None:
        sos = butter(order, low_hz, btype="highpass", fs=rec.sample_rate, output="sos")
    else:
        sos = butter(order, high_hz, btype="lowpass", fs=rec.sample_rate, output="sos")
    # butter's return type is inferred as the union of its output= forms; "sos" is an array.
    return _sosfiltfilt(rec, cast(np.ndarray, sos), f"bandpass({low_hz=}, {high_hz=})")


def notch(recording, *, freq_hz: float | Sequence[float], quality: float = 30.0) -> Recording:
    """Zero-phase IIR notch at ``freq_hz`` (and each further frequency given).

    Parameters
    ----------
    recording : Recording
        ``data`` ``(n_channels, n_times)``.
    freq_hz : float or sequence of float
        Frequencies to remove in Hz, e.g. ``50`` or ``[60, 120]``; each below Nyquist.
    quality : float
        Quality factor: the -3 dB width of each pass is ``freq_hz / quality`` Hz.

    Returns
    -------
    Recording
        Same shape, zero phase shift.
    """
    from scipy.signal import iirnotch, tf2sos

    rec = _recording(recording)
    nyquist = rec.sample_rate / 2
    freqs = [freq_hz] if isinstance(freq_hz, int | float | np.number) else list(freq_hz)
    if not freqs:
        raise ParameterError(f"{freq_hz=} must name at least one frequency")
    if not isinstance(quality, int | float | np.number) or not (
        math.isfinite(quality) and quality > 0
    ):
        raise ParameterError(f"{quality=} must be a positive number")
    sections = []
    for f in freqs:
        if not isinstance(f, int | float | np.number) or not (0 < f < nyquist):
            raise ParameterError(
                f"freq_hz={f!r} must be between 0 and Nyquist ({nyquist} Hz) for "
                f"sample_rate={rec.sample_rate}"
            )
        b, a = iirnotch(float(f), float(quality), fs=rec.sample_rate)
        sections.append(tf2sos(b, a))
    return _sosfiltfilt(rec, np.concatenate(sections), f"notch({freq_hz=})")


def pick_channels(recording, channels: str | Iterable[str]) -> Recording:
    """Keep the channels named (or matched by glob / regex patterns), in the order asked.

    See :func:`sigalex.io.select_channels` for the matching rules.

    Raises
    ------
    ParameterError
        A name or pattern that matches no channel (the message lists the available ones).
    """
    if hasattr(recording, "read") and not isinstance(recording, Recording):
        # a lazy EDF: read only the picked rows
        idx = select_channels(recording.channel_names, channels)
        data = recording.read()[idx]
        names = [recording.channel_names[i] for i in idx]
        return Recording(
            data, recording.sample_rate, names, list(recording.annotations), recording.path
        )
    rec = _recording(recording)
    idx = select_channels(rec.channel_names, channels)
    return _like(rec, rec.data[idx], channel_names=[rec.channel_names[i] for i in idx])


def _electrode(name: str) -> str:
    """Normalise a referential channel name: ``"EEG Fp1-REF"`` → ``"FP1"``, ``"T3"`` → ``"T7"``."""
    key = name.strip().upper()
    key = re.sub(r"^(EEG)\s+", "", key)
    key = re.sub(r"[-_ ](REF|LE|AR|AVG|A1|A2|M1|M2)$", "", key)
    return _ALIASES.get(key, key)


def bipolar(recording, pairs: str | Sequence[str | tuple[str, str]] = "double-banana") -> Recording:
    """Re-reference referential EEG to a bipolar montage: each output is ``anode - cathode``.

    Parameters
    ----------
    recording : Recording
        Referential channels (``"FP1"``, ``"Fp1"``, ``"EEG FP1-REF"``; old names T3/T4/T5/T6
        are taken as T7/T8/P7/P8).
    pairs : "double-banana" or sequence of "A-B" strings or (A, B) tuples
        The derivations. ``"double-banana"`` is :data:`DOUBLE_BANANA` (18 channels).

    Returns
    -------
    Recording
        ``data`` ``(len(pairs), n_times)``, channels named ``"FP1-F7"`` etc.

    Raises
    ------
    ParameterError
        An unknown montage name, a malformed pair, or an electrode the recording lacks.
    """
    rec = _recording(recording)
    if isinstance(pairs, str):
        if pairs.lower().replace("_", "-") not in ("double-banana", "banana"):
            raise ParameterError(
                f"unknown montage {pairs!r}; available: 'double-banana' (or pass pairs)"
            )
        pairs = DOUBLE_BANANA
    parsed: list[tuple[str, str]] = []
    for pair in pairs:
        if isinstance(pair, str):
            parts = pair.split("-")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise ParameterError(f"bipolar pair {pair!r} must look like 'FP1-F7'")
            pair = (parts[0].strip(), parts[1].strip())
        if len(pair) != 2 or not all(isinstance(p, str) for p in pair):
            raise ParameterError(f"bipolar pair {pair!r} must be two channel names")
        parsed.append((pair[0], pair[1]))
    if not parsed:
        raise ParameterError(f"{pairs=} must hold at least one pair")
    index: dict[str, int] = {}
    for i, name in enumerate(rec.channel_names):
        index.setdefault(_electrode(name), i)
    rows, names = [], []
    for anode, cathode in parsed:
        missing = [e for e in (anode, cathode) if _electrode(e) not in index]
        if missing:
            raise ParameterError(
                f"bipolar pair {anode}-{cathode}: no channel {', '.join(map(repr, missing))}; "
                f"available: {', '.join(rec.channel_names)}"
            )
        a, c = index[_electrode(anode)], index[_electrode(cathode)]
        rows.append(rec.data[a].astype(np.float64) - rec.data[c])
        names.append(f"{anode}-{cathode}")
    return _like(rec, np.stack(rows), channel_names=names)
