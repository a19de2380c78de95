"""Continuous wavelet transform with a complex Morlet wavelet, FFT-based, frequencies in Hz."""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import torch

from .._checks import choice, frequency_range, positive_float, positive_int
from .base import TFMap, Transform, decimated_ifft, register

# Elements (batch x freqs x fft length) processed at once; bounds the complex workspace.
_CHUNK_ELEMENTS = 1 << 25


def frequency_grid(fmin: float, fmax: float, n_freqs: int, spacing: str) -> np.ndarray:
    """``n_freqs`` frequencies from ``fmin`` to ``fmax`` (Hz), ascending, log or linear spaced."""
    if spacing == "log":
        return np.geomspace(fmin, fmax, n_freqs)
    return np.linspace(fmin, fmax, n_freqs)


@register
class CWT(Transform):
    """|CWT| with the complex Morlet ``cmor{bandwidth}-{center_frequency}`` of PyWavelets.

    The wavelet is ``psi(t) = (pi B)^-1/2 exp(-t^2 / B) exp(2j pi C t)``; the row for frequency
    ``f`` uses scale ``s = C * sample_rate / f`` samples and is
    ``W[n] = s^-1/2 sum_m x[m] conj(psi((m - n) / s))``, the same normalisation as
    ``pywt.cwt``. It is computed in the frequency domain with the analytic Fourier transform of
    the wavelet, on a zero-padded signal (no wrap-around), for all rows at once.

    Parameters
    ----------
    sample_rate : float
        Hz.
    fmin, fmax : float, optional
        Lowest and highest row frequency, Hz. Defaults: ``sample_rate / 128`` and Nyquist / 2.
    n_freqs : int
        Number of rows.
    spacing : {"log", "linear"}
        How rows are spaced between ``fmin`` and ``fmax``.
    bandwidth : float
        ``B`` of the Morlet: larger is narrower in frequency and wider in time.
    center_frequency : float
        ``C`` of the Morlet, cycles per unit scale.
    hop_length : int
        Keep every ``hop_length``-th output sample (columns at ``n * hop_length / sample_rate``).
    power : float
        1 for magnitude, 2 for power.
    """

    name = "cwt"

    def __init__(
        self,
        sample_rate: float,
        *,
        fmin: float | None = None,
        fmax: float | None = None,
        n_freqs: int = 64,
        spacing: str = "log",
        bandwidth: float = 1.5,
        center_frequency: float = 1.0,
        hop_length: int = 1,
        power: float = 1.0,
    ):
        super().__init__(sample_rate)
        if fmax is None:
            fmax = self.sample_rate / 4
        self.fmin, self.fmax = frequency_range(
            fmin, fmax, self.sample_rate, default_fmin=self.sample_rate / 128, allow_zero_fmin=False
        )
        self.n_freqs = positive_int("n_freqs", n_freqs)
        self.spacing = choice("spacing", spacing, ("log", "linear"))
        self.bandwidth = positive_float("bandwidth", bandwidth)
        self.center_frequency = positive_float("center_frequency", center_frequency)
        self.hop_length = positive_int("hop_length", hop_length)
        self.power = positive_float("power", power)
        freqs = frequency_grid(self.fmin, self.fmax, self.n_freqs, self.spacing)
        self.register_buffer("_freqs", torch.from_numpy(freqs), persistent=False)
        self.register_buffer(
            "scales",
            torch.from_numpy(self.center_frequency * self.sample_rate / freqs),
            persistent=False,
        )
        self._banks: dict[tuple, torch.Tensor] = {}

    @property
    def frequencies(self) -> torch.Tensor:
        return self._freqs

    def times(self, n_times: int) -> torch.Tensor:
        return torch.arange(0, n_times, self.hop_length, dtype=torch.float64) / self.sample_rate

    def fft_length(self, n_times: int) -> int:
        """Zero-padded FFT length, a multiple of ``hop_length``: the widest wavelet (to exp(-16)
        of its peak) never wraps around."""
        support = 4.0 * math.sqrt(self.bandwidth) * float(self.scales.max())
        hop = self.hop_length
        return hop * scipy.fft.next_fast_len(-(-(n_times + math.ceil(support)) // hop), real=False)

    def wavelet_bank(self, n_fft: int, device, dtype) -> torch.Tensor:
        """``sqrt(s) * psi_hat(s * nu)`` for each scale on the FFT grid ``nu``: ``(n_freqs, n_fft)``."""
        key = (n_fft, str(device), dtype)
        bank = self._banks.get(key)
        if bank is None:
            nu = torch.fft.fftfreq(n_fft, dtype=torch.float64)
            s = self.scales.detach().cpu()[:, None]
            arg = s * nu[None, :] - self.center_frequency
            bank64 = torch.sqrt(s) * torch.exp(-(math.pi**2) * self.bandwidth * arg * arg)
            bank = bank64.to(device=device, dtype=dtype)
            self._banks = {key: bank}  # one length cached: windows in a run share it
        return bank

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, n_times = x.shape
        n_fft = self.fft_length(n_times)
        spectrum = torch.fft.fft(x, n=n_fft)  # (batch, n_fft)
        bank = self.wavelet_bank(n_fft, x.device, x.dtype)
        n_frames = -(-n_times // self.hop_length)
        rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(1, batch * n_fft))
        out = []
        for start in range(0, self.n_freqs, rows_per_chunk):
            rows = bank[start : start + rows_per_chunk]
            coef = decimated_ifft(spectrum[:, None, :] * rows[None], self.hop_length, n_frames)
            mag = coef.abs()
            out.append(mag if self.power == 1.0 else mag.pow(self.power))
        return torch.cat(out, dim=1)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate:g}, fmin={self.fmin:g}, fmax={self.fmax:g}, "
            f"n_freqs={self.n_freqs}, spacing={self.spacing!r}, wavelet='cmor{self.bandwidth:g}-"
            f"{self.center_frequency:g}', hop_length={self.hop_length}"
        )


def cwt(signal, sample_rate: float, **params) -> TFMap:
    """Morlet CWT of ``signal`` ``(..., n_times)`` → :class:`TFMap` ``(..., n_freqs, n_frames)``.

    Keyword parameters are those of :class:`CWT`.
    """
    return CWT(sample_rate, **params).map(signal)
