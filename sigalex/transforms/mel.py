"""Mel spectrogram with librosa's conventions (Slaney or HTK scale, Slaney area norm)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .._checks import frequency_range, positive_int
from ..errors import ParameterError
from .base import TFMap, register
from .stft import _STFTBase


def hz_to_mel(frequencies, *, htk: bool = False) -> np.ndarray:
    """Hz → mel (Slaney's piecewise linear/log scale, or HTK's ``2595 log10(1 + f/700)``)."""
    f = np.asanyarray(frequencies, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(
        f >= min_log_hz,
        min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep,
        mels,
    )


def mel_to_hz(mels, *, htk: bool = False) -> np.ndarray:
    """Mel → Hz, the inverse of :func:`hz_to_mel`."""
    m = np.asanyarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filterbank(
    sample_rate: float,
    n_fft: int,
    *,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> tuple[np.ndarray, np.ndarray]:
    """Triangular mel filters, float64 ``(n_mels, n_fft // 2 + 1)``, and their centres in Hz.

    Same construction as ``librosa.filters.mel``: triangles between consecutive mel-spaced
    edges; ``norm="slaney"`` divides each by its width in Hz so filters have equal area.
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels + 2), htk=htk
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    elif norm is not None:
        raise ParameterError(f"{norm=} must be 'slaney' or None")
    empty = ~np.any(weights > 0, axis=1)
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} of n_mels={n_mels} mel filters are empty (no FFT bin falls "
            f"inside them); raise n_fft={n_fft} or lower n_mels",
            UserWarning,
            stacklevel=3,
        )
    return weights, edges[1:-1]


@register
class Mel(_STFTBase):
    """Mel spectrogram, matching ``librosa.feature.melspectrogram`` for the same parameters.

    Parameters are those of :class:`~sigalex.transforms.STFT` (defaults ``n_fft=2048``,
    ``power=2`` as librosa; ``hop_length=win_length // 4``, which is librosa's 512 only at its
    default ``n_fft``) plus ``n_mels``, ``fmin``,
    ``fmax`` (Hz, default Nyquist), ``htk`` (HTK formula instead of Slaney's) and ``norm``
    (``"slaney"`` area normalisation or ``None``). Rows are ordered by ascending centre frequency.
    """

    name = "mel"

    filterbank: torch.Tensor  # buffers (registered in __init__)
    _freqs: torch.Tensor

    def __init__(
        self,
        sample_rate: float,
        *,
        n_fft: int = 2048,
        hop_length: int | None = None,
        win_length: int | None = None,
        window="hann",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 2.0,
        n_mels: int = 128,
        fmin: float = 0.0,
        fmax: float | None = None,
        htk: bool = False,
        norm: str | None = "slaney",
    ):
        super().__init__(
            sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=center,
            pad_mode=pad_mode,
            power=power,
        )
        self.n_mels = positive_int("n_mels", n_mels)
        self.fmin, self.fmax = frequency_range(fmin, fmax, self.sample_rate)
        self.htk = bool(htk)
        weights, centres = mel_filterbank(
            self.sample_rate,
            self.n_fft,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax,
            htk=self.htk,
            norm=norm,
        )
        self.norm = norm
        self.register_buffer("filterbank", torch.from_numpy(weights), persistent=False)
        self.register_buffer("_freqs", torch.from_numpy(centres), persistent=False)

    @property
    def frequencies(self) -> torch.Tensor:
        return self._freqs

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self._spectrum(x)
        return torch.matmul(self._cast(self.filterbank, spec), spec)

    def _export_forward(self, x: torch.Tensor) -> torch.Tensor:
        # Only the bins some filter uses: the DFT rows and the filters' columns of those.
        used = np.nonzero((self.filterbank != 0).any(0).cpu().numpy())[0]
        first, stop = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
        spec = self._from_power2(self._export_power2(x, first, stop))
        bank = self._cast(self.filterbank[:, first:stop], spec)
        return torch.matmul(bank, spec)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, n_mels={self.n_mels}, fmin={self.fmin:g}, fmax={self.fmax:g}"
        )


def mel(signal, sample_rate: float, **params) -> TFMap:
    """Mel spectrogram of ``signal`` ``(..., n_times)`` → :class:`TFMap` ``(..., n_mels, n_frames)``.

    Keyword parameters are those of :class:`Mel`.
    """
    return Mel(sample_rate, **params).map(signal)
