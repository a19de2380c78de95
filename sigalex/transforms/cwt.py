"""Continuous wavelet transform with a complex Morlet wavelet, FFT-based, frequencies in Hz."""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import scipy.fft
import torch

from .._checks import choice, frequency_range, positive_float, positive_int
from .base import SampleGridTransform, TFMap, apply_folded_bank, register
from .dense import apply_dense_folded, folded_bank_operator


def frequency_grid(fmin: float, fmax: float, n_freqs: int, spacing: str) -> np.ndarray:
    """``n_freqs`` frequencies from ``fmin`` to ``fmax`` (Hz), ascending, log or linear spaced."""
    if spacing == "log":
        return np.geomspace(fmin, fmax, n_freqs)
    return np.linspace(fmin, fmax, n_freqs)


@register
class CWT(SampleGridTransform):
    """|CWT| with the complex Morlet ``cmor{bandwidth}-{center_frequency}`` of PyWavelets.

    The wavelet is ``psi(t) = (pi B)^-1/2 exp(-t^2 / B) exp(2j pi C t)``; the row for frequency
    ``f`` uses scale ``s = C * sample_rate / f`` samples and is
    ``W[n] = s^-1/2 sum_m x[m] conj(psi((m - n) / s))``, the same normalisation as
    ``pywt.cwt``. It is computed in the frequency domain with the analytic Fourier transform of
    the wavelet, on a zero-padded signal (no wrap-around), for all rows at once: one FFT, one
    sparse product with the (narrow-band) wavelet spectra, and short inverse FFTs that yield
    only the kept columns when ``hop_length > 1``.

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
    max_frames : int, optional
        Raise the hop for long signals so that at most this many columns are computed.
    power : float
        1 for magnitude, 2 for power.
    """

    name = "cwt"

    _freqs: torch.Tensor  # buffers (registered in __init__)
    scales: torch.Tensor

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
        max_frames: int | None = None,
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
        self._init_hop(hop_length, max_frames)
        self.power = positive_float("power", power)
        freqs = frequency_grid(self.fmin, self.fmax, self.n_freqs, self.spacing)
        self.register_buffer("_freqs", torch.from_numpy(freqs), persistent=False)
        self.register_buffer(
            "scales",
            torch.from_numpy(self.center_frequency * self.sample_rate / freqs),
            persistent=False,
        )

    @property
    def frequencies(self) -> torch.Tensor:
        return self._freqs

    def fft_length(self, n_times: int, hop: int = 1) -> int:
        """Zero-padded FFT length, a multiple of ``hop``: the widest wavelet (to exp(-16)
        of its peak) never wraps around."""
        support = 4.0 * math.sqrt(self.bandwidth) * float(self.scales.max())
        # scipy's lru_cache-wrapped next_fast_len is inferred as returning None: it returns int.
        fast = cast(
            int, scipy.fft.next_fast_len(-(-(n_times + math.ceil(support)) // hop), real=False)
        )
        return hop * fast

    def wavelet_bank(self, n_fft: int, device, dtype) -> torch.Tensor:
        """``sqrt(s) * psi_hat(s * nu)`` for each scale on the FFT grid ``nu``: ``(n_freqs, n_fft)``.

        ``nu = fftfreq(n_fft)`` in cycles per sample; dense, float64 by default. The transform
        itself uses the sparse, folded form of this bank (:meth:`folded_bank`).
        """
        nu = torch.fft.fftfreq(n_fft, dtype=torch.float64)
        s = self.scales.detach().cpu()[:, None]
        arg = s * nu[None, :] - self.center_frequency
        bank = torch.sqrt(s) * torch.exp(-(math.pi**2) * self.bandwidth * arg * arg)
        return bank.to(device=device, dtype=dtype)

    def dense_bank(self, n_fft: int) -> torch.Tensor:
        """:meth:`wavelet_bank` in float64 on the CPU. A Morlet is narrow in frequency: the
        transform applies only its bins above 1e-9 of each wavelet's peak (:meth:`folded_bank`)."""
        return self.wavelet_bank(n_fft, "cpu", torch.float64)

    def block_values(self, n_times: int) -> int:
        """The folded product: ``n_freqs × n_fft / hop`` complex values per signal."""
        hop = self.hop(n_times)
        return 2 * self.n_freqs * (self.fft_length(n_times, hop) // hop)

    def _transform_block(self, x: torch.Tensor) -> torch.Tensor:
        n_times = x.shape[-1]
        hop = self.hop(n_times)
        n_fft = self.fft_length(n_times, hop)
        spectrum = torch.fft.fft(x, n=n_fft)  # (batch, n_fft)
        bank = self.folded_bank(n_fft, hop, x.device, x.dtype)
        mag = apply_folded_bank(bank, spectrum, n_fft // hop, -(-n_times // hop)).abs()
        return mag if self.power == 1.0 else mag.pow(self.power)

    def _export_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The folded product of :meth:`_transform_block` as dense real matrix products
        (:func:`~sigalex.transforms.dense.folded_bank_operator`), for this signal length."""
        n_times = int(x.shape[-1])  # fixed in an export (a traced shape is a tensor)
        hop = self.hop(n_times)
        n_fft = self.fft_length(n_times, hop)
        op = self._constant(
            ("folded", n_times),
            lambda: folded_bank_operator(
                self.dense_bank(n_fft).numpy(),
                n_signal=n_times,
                hop=hop,
                n_out=-(-n_times // hop),
            ),
        )
        mag = apply_dense_folded(x, op.to(x.device, x.dtype))
        return mag if self.power == 1.0 else mag.pow(self.power)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate:g}, fmin={self.fmin:g}, fmax={self.fmax:g}, "
            f"n_freqs={self.n_freqs}, spacing={self.spacing!r}, wavelet='cmor{self.bandwidth:g}-"
            f"{self.center_frequency:g}', hop_length={self.hop_length}, max_frames={self.max_frames}"
        )


def cwt(signal, sample_rate: float, **params) -> TFMap:
    """Morlet CWT of ``signal`` ``(..., n_times)`` → :class:`TFMap` ``(..., n_freqs, n_frames)``.

    Keyword parameters are those of :class:`CWT`.
    """
    return CWT(sample_rate, **params).map(signal)
