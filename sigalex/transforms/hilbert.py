"""Hilbert transform: the analytic signal, and a band-pass envelope (or frequency) map."""

from __future__ import annotations

import itertools
from typing import cast

import numpy as np
import scipy.fft
import scipy.signal
import torch

from .._checks import as_signal, choice, frequency_range, positive_float, positive_int
from ..errors import ParameterError
from .base import SampleGridTransform, TFMap, apply_folded_bank, register
from .cwt import frequency_grid
from .dense import apply_dense_folded, folded_bank_operator, pad_signal


def analytic_signal(signal) -> torch.Tensor:
    """Analytic signal of ``signal`` along its last axis, as ``scipy.signal.hilbert``.

    Parameters
    ----------
    signal : array or torch.Tensor [shape=(..., n_times)]

    Returns
    -------
    torch.Tensor [shape=(..., n_times)], complex
        ``x + 1j * H[x]``: the FFT with negative frequencies zeroed and positive ones doubled.
    """
    x = as_signal(signal)
    return _analytic(x)


def _analytic(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[-1]
    spectrum = torch.fft.fft(x, dim=-1)
    return torch.fft.ifft(spectrum * _analytic_gain(n, x.device, x.dtype), dim=-1)


def _analytic_gain(n: int, device, dtype) -> torch.Tensor:
    """1 at DC (and Nyquist for even ``n``), 2 for positive, 0 for negative frequencies."""
    h = torch.zeros(n, device=device, dtype=dtype)
    half = (n + 1) // 2
    h[0] = 1
    h[1:half] = 2
    if n % 2 == 0:
        h[n // 2] = 1
    return h


def band_edges(fmin: float, fmax: float, n_bands: int, spacing: str) -> np.ndarray:
    """``n_bands + 1`` edges (Hz) of adjacent bands covering ``fmin``..``fmax``."""
    return frequency_grid(fmin, fmax, n_bands + 1, spacing)


@register
class Hilbert(SampleGridTransform):
    """Hilbert time-frequency map: a band-pass filter bank, then each band's envelope.

    Each band is a Butterworth band-pass of order ``order`` applied forward and backward
    (zero phase, power response ``|H(f)|^2``, as ``scipy.signal.sosfiltfilt`` gives), computed
    in the frequency domain on a reflect-padded signal together with the analytic signal. The
    map is the envelope ``|z_k(t)|`` of each band (``output="envelope"``) or its instantaneous
    frequency in Hz (``output="frequency"``), one column per ``hop_length`` samples.

    The envelope applies every band at once as a sparse product with the one-sided spectrum,
    keeping the gains above 1e-9 of each band's peak (about a tenth of them for 32 log-spaced
    bands; the map moves by under 1e-8 of its peak), and computes only the kept columns.

    Parameters
    ----------
    sample_rate : float
        Hz.
    fmin, fmax : float, optional
        Edges of the lowest and highest band, Hz. Defaults ``sample_rate / 128`` and Nyquist / 2.
    n_bands : int
        Number of adjacent bands between ``fmin`` and ``fmax``.
    spacing : {"log", "linear"}
        Band edges spaced geometrically (constant relative bandwidth) or linearly.
    order : int
        Butterworth order of each band-pass (applied twice: forward and backward).
    output : {"envelope", "frequency"}
        Envelope amplitude (units of the signal) or instantaneous frequency (Hz).
    hop_length : int
        Keep every ``hop_length``-th sample.
    max_frames : int, optional
        Raise the hop for long signals so that at most this many columns are computed.
    power : float
        Exponent applied to the envelope (1 amplitude, 2 power); ignored for ``"frequency"``.
    """

    name = "hilbert"

    _freqs: torch.Tensor  # buffer (registered in __init__)

    def __init__(
        self,
        sample_rate: float,
        *,
        fmin: float | None = None,
        fmax: float | None = None,
        n_bands: int = 32,
        spacing: str = "log",
        order: int = 4,
        output: str = "envelope",
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
        if self.fmax >= self.sample_rate / 2:
            raise ParameterError(
                f"fmax={self.fmax:g} Hz must be below the Nyquist frequency "
                f"{self.sample_rate / 2:g} Hz for a band-pass"
            )
        self.n_bands = positive_int("n_bands", n_bands)
        self.spacing = choice("spacing", spacing, ("log", "linear"))
        self.order = positive_int("order", order)
        self.output = choice("output", output, ("envelope", "frequency"))
        self._init_hop(hop_length, max_frames)
        self.power = 1.0 if self.output == "frequency" else positive_float("power", power)
        edges = band_edges(self.fmin, self.fmax, self.n_bands, self.spacing)
        self.edges = edges
        self.sos = [
            scipy.signal.butter(
                self.order, [lo, hi], btype="bandpass", fs=self.sample_rate, output="sos"
            )
            for lo, hi in itertools.pairwise(edges)
        ]
        centres = (
            np.sqrt(edges[:-1] * edges[1:])
            if self.spacing == "log"
            else (edges[:-1] + edges[1:]) / 2
        )
        self.register_buffer("_freqs", torch.from_numpy(centres), persistent=False)
        self._gains: dict[tuple, torch.Tensor] = {}

    @property
    def frequencies(self) -> torch.Tensor:
        return self._freqs

    def min_length(self) -> int:
        return 2

    def padding(self, n_times: int) -> int:
        """Samples of reflect padding on each side (half the signal, at most ``n_times - 1``)."""
        return min(n_times - 1, max(1, n_times // 2))

    def band_gains(self, n_fft: int, device, dtype) -> torch.Tensor:
        """``|H_k(f)|^2`` times the analytic gain on the full FFT grid: ``(n_bands, n_fft)``."""
        key = (n_fft, str(device), dtype)
        gains = self._gains.get(key)
        if gains is None:
            nu = np.fft.fftfreq(n_fft) * self.sample_rate
            pos = np.abs(nu[: n_fft // 2 + 1])
            rows = np.zeros((self.n_bands, n_fft))
            for k, sos in enumerate(self.sos):
                _, h = scipy.signal.sosfreqz(sos, worN=pos, fs=self.sample_rate)
                rows[k, : n_fft // 2 + 1] = np.abs(h) ** 2
            analytic = _analytic_gain(n_fft, "cpu", torch.float64).numpy()
            gains = torch.from_numpy(rows * analytic[None]).to(device=device, dtype=dtype)
            self._gains = {key: gains}
        return gains

    def dense_bank(self, n_fft: int) -> torch.Tensor:
        """:meth:`band_gains` at the ``n_fft // 2 + 1`` non-negative frequencies (the analytic
        gain zeroes the others), float64. The transform applies only the gains above 1e-9 of
        each band's peak (:meth:`folded_bank`): about a tenth of them for 32 log-spaced bands."""
        return self.band_gains(n_fft, "cpu", torch.float64)[:, : n_fft // 2 + 1]

    @staticmethod
    def _shift(n_fft: int, delay: int, like: torch.Tensor) -> torch.Tensor:
        """Spectral factor that advances a signal by ``delay`` samples (circularly)."""
        k = torch.fft.fftfreq(n_fft, device=like.device, dtype=like.real.dtype)
        return torch.polar(torch.ones_like(k), 2 * np.pi * delay * k)

    def _step(self, n_times: int) -> int:
        """Samples between the columns computed: the hop for the envelope, 1 for the
        instantaneous frequency (its phase differences need every sample)."""
        return self.hop(n_times) if self.output == "envelope" else 1

    def fft_length(self, n_times: int) -> int:
        """FFT length of the padded signal, a multiple of :meth:`_step`."""
        step = self._step(n_times)
        n_padded = n_times + 2 * self.padding(n_times)
        # scipy's lru_cache-wrapped next_fast_len is inferred as returning None: it returns int.
        return step * cast(int, scipy.fft.next_fast_len(-(-n_padded // step), real=False))

    def block_values(self, n_times: int) -> int:
        """Per signal: the folded product (envelope, ``n_bands × n_fft / hop`` complex) or
        every band's analytic signal (frequency, ``n_bands × n_fft`` complex)."""
        return 2 * self.n_bands * (self.fft_length(n_times) // self._step(n_times))

    def _transform_block(self, x: torch.Tensor) -> torch.Tensor:
        n_times = x.shape[-1]
        pad = self.padding(n_times)
        padded = torch.nn.functional.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
        hop = self.hop(n_times)
        step = self._step(n_times)
        n_fft = self.fft_length(n_times)
        if self.output == "envelope":
            # One-sided spectrum (the analytic band gains are zero at negative frequencies),
            # rotated so the kept samples start at the first unpadded one; then every band is
            # filtered and decimated by one sparse product and short inverse FFTs.
            spectrum = torch.fft.rfft(padded, n=n_fft)
            spectrum = spectrum * self._shift(n_fft, pad, spectrum)[: spectrum.shape[-1]]
            bank = self.folded_bank(n_fft, step, x.device, x.dtype)
            env = apply_folded_bank(bank, spectrum, n_fft // step, -(-n_times // step)).abs()
            return env if self.power == 1.0 else env.pow(self.power)
        spectrum = torch.fft.fft(padded, n=n_fft)
        z = torch.fft.ifft(spectrum[:, None, :] * self.band_gains(n_fft, x.device, x.dtype)[None])
        z = z[..., pad : pad + n_times]
        # instantaneous frequency: phase advance per sample, centred difference, in Hz
        dphi = torch.angle(z[..., 1:] * z[..., :-1].conj())
        dphi = torch.cat([dphi[..., :1], (dphi[..., 1:] + dphi[..., :-1]) / 2, dphi[..., -1:]], -1)
        freq = dphi * (self.sample_rate / (2 * np.pi))
        return freq[..., ::hop].clamp_min(0)

    def _export_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The envelope of :meth:`_transform_block` as a gather (the reflect padding) and
        dense real matrix products (:func:`~sigalex.transforms.dense.folded_bank_operator`):
        the one-sided bank, with the advance by the padding folded into it as a phase."""
        if self.output != "envelope":
            raise ParameterError(
                f"hilbert output={self.output!r} has no export-safe path (its phase differences "
                "need every sample's complex value); export output='envelope' models"
            )
        n_times = int(x.shape[-1])  # fixed in an export (a traced shape is a tensor)
        pad = self.padding(n_times)
        step = self._step(n_times)
        n_fft = self.fft_length(n_times)

        def make():
            half = n_fft // 2 + 1
            bank = np.zeros((self.n_bands, n_fft), np.complex128)
            shift = np.exp(2j * np.pi * pad * np.fft.fftfreq(n_fft)[:half])
            bank[:, :half] = self.dense_bank(n_fft).numpy() * shift[None]
            return folded_bank_operator(
                bank, n_signal=n_times + 2 * pad, hop=step, n_out=-(-n_times // step)
            )

        op = self._constant(("folded", n_times), make)
        padded = pad_signal(x, pad, pad, "reflect")
        env = apply_dense_folded(padded, op.to(x.device, x.dtype))
        return env if self.power == 1.0 else env.pow(self.power)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate:g}, fmin={self.fmin:g}, fmax={self.fmax:g}, "
            f"n_bands={self.n_bands}, spacing={self.spacing!r}, order={self.order}, "
            f"output={self.output!r}, hop_length={self.hop_length}, max_frames={self.max_frames}"
        )


def hilbert(signal, sample_rate: float, **params) -> TFMap:
    """Hilbert envelope map of ``signal`` ``(..., n_times)`` → ``(..., n_bands, n_frames)``.

    Keyword parameters are those of :class:`Hilbert`.
    """
    return Hilbert(sample_rate, **params).map(signal)
