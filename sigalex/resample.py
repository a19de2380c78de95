"""The one resampler: polyphase filtering along the time axis (``scipy.signal.resample_poly``).

Training, prediction, :func:`sigalex.io.load_recording` (``sample_rate=``) and
:func:`sigalex.preprocess.resample` all resample through :func:`resample`, so a window resampled
for training is the window prediction sees. The rate ratio is taken as a fraction with a
denominator of at most :data:`MAX_DENOMINATOR` (256 → 173.61 Hz becomes 59/87, a rate error
of 5e-6 relative); the output has ``ceil(n_times * up / down)`` samples.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ._checks import sample_rate_hz
from .errors import ParameterError

MAX_DENOMINATOR = 1000
MAX_RATIO = 100
"""Resampling by more than this factor either way is refused as a usage error: it means a wrong
sample rate (``--sample-rate 1e9`` for an 8 kHz file), and would fill memory before failing."""


def ratio(from_rate: float, to_rate: float) -> tuple[int, int]:
    """``(up, down)``: the integers whose ratio approximates ``to_rate / from_rate``.

    Raises
    ------
    ParameterError
        A rate that is not a positive number, or rates more than :data:`MAX_RATIO` apart.
    """
    from_rate, to_rate = sample_rate_hz(from_rate), sample_rate_hz(to_rate)
    factor = max(to_rate / from_rate, from_rate / to_rate)
    if factor > MAX_RATIO:
        raise ParameterError(
            f"resampling from {from_rate:g} Hz to {to_rate:g} Hz is a factor of {factor:.4g} "
            f"(more than {MAX_RATIO}): is the sample rate right?"
        )
    frac = Fraction(to_rate / from_rate).limit_denominator(MAX_DENOMINATOR)
    return frac.numerator, frac.denominator


def resampled_length(n_times: int, from_rate: float, to_rate: float) -> int:
    """Samples :func:`resample` gives for ``n_times`` input samples."""
    if from_rate == to_rate:
        return int(n_times)
    up, down = ratio(from_rate, to_rate)
    return -(-int(n_times) * up // down)


def resample(x, from_rate: float, to_rate: float) -> np.ndarray:
    """Resample ``x`` ``(..., n_times)`` from ``from_rate`` to ``to_rate`` Hz, float32.

    Polyphase FIR filtering (Kaiser window, ``scipy.signal.resample_poly``) along the last
    axis; leading axes (windows, channels) are independent. Equal rates return ``x`` as float32
    without filtering.

    Returns
    -------
    numpy.ndarray, float32 [shape=(..., ceil(n_times * up / down))]
    """
    x = np.asarray(x)
    if float(from_rate) == float(to_rate):
        return x.astype(np.float32, copy=False)
    import scipy.signal

    up, down = ratio(from_rate, to_rate)
    y = scipy.signal.resample_poly(x, up, down, axis=-1)
    return y.astype(np.float32, copy=False)


__all__ = ["MAX_DENOMINATOR", "MAX_RATIO", "ratio", "resample", "resampled_length"]
