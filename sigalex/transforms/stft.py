"""Short-time Fourier transform (magnitude or power), with an optional frequency crop in Hz."""

from __future__ import annotations

from typing import cast

import numpy as np
import scipy.signal
import torch

from .._checks import choice, frequency_range, positive_float, positive_int
from ..errors import ParameterError
from .base import TFMap, Transform, register
from .dense import dft_frames, dft_rows, pad_signal

PAD_MODES = ("constant", "reflect", "replicate", "circular")

#: Signals x frames x n_fft from which a narrow-band float32 STFT on the CPU runs as a
#: convolution with the kept bins' DFT rows instead of torch.stft. Measured on a 2-core x86_64
#: CPU (``bench_predict.py --parts``): below ~4M torch.stft's frames stay in cache and it is up
#: to 2x faster (32 one-channel windows); above, the convolution is up to 3x faster (32 windows
#: x 23 channels of 4097 samples: 12 vs 36 ms).
DFT_MIN_FRAME_SAMPLES = 1 << 22


def make_window(window, win_length: int) -> np.ndarray:
    """A periodic analysis window of ``win_length`` samples as float64.

    ``window`` is a name or tuple understood by :func:`scipy.signal.get_window` (``"hann"``,
    ``("kaiser", 8.0)``, …) or an array of exactly ``win_length`` values.
    """
    if isinstance(window, (str, tuple)):
        try:
            # get_window's return type is inferred from scipy's code paths (tuples among them).
            win = cast(np.ndarray, scipy.signal.get_window(window, win_length, fftbins=True))
            return win.astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"unknown window {window!r}: {exc}") from exc
    arr = np.asarray(window, dtype=np.float64)
    if arr.shape != (win_length,):
        raise ParameterError(f"window array has shape {arr.shape}; expected ({win_length},)")
    return arr


def frame_count(n_times: int, *, n_fft: int, hop_length: int, center: bool) -> int:
    """Frames of an STFT of ``n_times`` samples (``center`` pads ``n_fft // 2`` both sides)."""
    pad = 2 * (n_fft // 2) if center else 0
    return 1 + (n_times + pad - n_fft) // hop_length


def frame_times(
    n_times: int, sample_rate: float, *, n_fft: int, hop_length: int, center: bool
) -> torch.Tensor:
    """Time (s) of each STFT frame, float64, shape ``(n_frames,)``.

    With ``center`` the signal is padded by ``n_fft // 2`` on both sides and frame ``t`` is
    placed at ``t * hop_length / sample_rate`` (librosa's ``frames_to_time``); without, at the
    middle of its ``n_fft`` samples.
    """
    n_frames = frame_count(n_times, n_fft=n_fft, hop_length=hop_length, center=center)
    starts = torch.arange(n_frames, dtype=torch.float64) * hop_length
    if center:
        return starts / sample_rate
    return (starts + n_fft / 2) / sample_rate


class _STFTBase(Transform):
    """Shared by STFT and Mel: the framing, the window and the complex spectrum."""

    window: torch.Tensor  # buffer (registered in __init__)

    def __init__(
        self,
        sample_rate: float,
        *,
        n_fft: int,
        hop_length: int | None,
        win_length: int | None,
        window,
        center: bool,
        pad_mode: str,
        power: float,
    ):
        super().__init__(sample_rate)
        self.n_fft = positive_int("n_fft", n_fft, minimum=2)
        self.win_length = positive_int(
            "win_length", self.n_fft if win_length is None else win_length
        )
        if self.win_length > self.n_fft:
            raise ParameterError(f"win_length={self.win_length} must be <= n_fft={self.n_fft}")
        self.hop_length = positive_int(
            "hop_length", self.win_length // 4 if hop_length is None else hop_length
        )
        self.center = bool(center)
        self.pad_mode = choice("pad_mode", pad_mode, PAD_MODES)
        self.power = positive_float("power", power)
        win = make_window(window, self.win_length)
        left = (self.n_fft - self.win_length) // 2
        full = np.zeros(self.n_fft)
        full[left : left + self.win_length] = win
        self.register_buffer("window", torch.from_numpy(full), persistent=False)

    def min_length(self) -> int:
        return self.n_fft

    def times(self, n_times: int) -> torch.Tensor:
        return frame_times(
            n_times,
            self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            center=self.center,
        )

    def _spectrum(self, x: torch.Tensor, bins: slice = slice(None)) -> torch.Tensor:
        """|STFT|**power of ``x`` ``(batch, n_times)`` → ``(batch, n_bins, n_frames)``.

        ``bins`` selects rows of the ``n_fft // 2 + 1`` before the magnitude is taken.
        """
        spec = torch.stft(
            x,
            self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self._cast(self.window, x),
            center=self.center,  # pads n_fft // 2 on both sides with pad_mode
            pad_mode=self.pad_mode,
            return_complex=True,
        )
        # re^2 + im^2 is several times faster than complex abs() on the CPU.
        kept = spec[:, bins]
        return self._from_power2(kept.real.square() + kept.imag.square())

    def _export_power2(self, x: torch.Tensor, first: int, stop: int) -> torch.Tensor:
        """``|X|**2`` of bins ``first..stop - 1``, export-safe: the centre padding as a gather
        (or a constant pad) and the windowed DFT rows of those bins as a strided convolution
        (:func:`~sigalex.transforms.dense.dft_frames`). ``(batch, stop - first, n_frames)``."""
        pad = self.n_fft // 2 if self.center else 0
        rows = self._constant(
            ("dft", first, stop),
            lambda: dft_rows(self.n_fft, np.arange(first, stop), self.window.cpu().numpy()),
        )
        padded = pad_signal(x, pad, pad, self.pad_mode)
        return dft_frames(padded, rows.to(x.device), self.hop_length)

    def _from_power2(self, power2: torch.Tensor) -> torch.Tensor:
        """``|X|**2`` → ``|X|**power``."""
        if self.power == 2.0:
            return power2
        return power2.sqrt() if self.power == 1.0 else power2.pow(self.power / 2)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate:g}, n_fft={self.n_fft}, hop_length={self.hop_length}, "
            f"win_length={self.win_length}, center={self.center}, power={self.power:g}"
        )


@register
class STFT(_STFTBase):
    """Magnitude (``power=1``) or power (``power=2``) STFT, as ``librosa.stft`` frames it.

    Parameters
    ----------
    sample_rate : float
        Hz.
    n_fft : int
        FFT length in samples; rows are the ``n_fft // 2 + 1`` bins ``k * sample_rate / n_fft``.
    hop_length : int, optional
        Samples between frames; default ``win_length // 4``.
    win_length : int, optional
        Window length in samples (zero-padded to ``n_fft``, centred); default ``n_fft``.
    window : str, tuple or array
        Periodic window, any name :func:`scipy.signal.get_window` knows; default ``"hann"``.
    center : bool
        Pad ``n_fft // 2`` on both sides so frame ``t`` is centred at ``t * hop_length``.
    pad_mode : {"constant", "reflect", "replicate", "circular"}
        Padding used when ``center`` (librosa's default is ``"constant"``).
    power : float
        Exponent of the magnitude: 1 for magnitude, 2 for power.
    fmin, fmax : float, optional
        Keep only bins with ``fmin <= f <= fmax`` (Hz). ``fmax`` may not exceed Nyquist.
    """

    name = "stft"

    _freqs: torch.Tensor  # buffers (registered in __init__)
    _dft: torch.Tensor  # only when _use_dft

    def __init__(
        self,
        sample_rate: float,
        *,
        n_fft: int = 256,
        hop_length: int | None = None,
        win_length: int | None = None,
        window="hann",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 1.0,
        fmin: float | None = None,
        fmax: float | None = None,
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
        self.fmin, self.fmax = frequency_range(fmin, fmax, self.sample_rate)
        freqs = np.arange(self.n_fft // 2 + 1) * self.sample_rate / self.n_fft
        keep = np.nonzero((freqs >= self.fmin - 1e-9) & (freqs <= self.fmax + 1e-9))[0]
        if keep.size == 0:
            raise ParameterError(
                f"no STFT bin lies in fmin={self.fmin:g}..fmax={self.fmax:g} Hz with "
                f"n_fft={self.n_fft} (bin spacing {self.sample_rate / self.n_fft:g} Hz); "
                "widen the band or raise n_fft"
            )
        self._bins = slice(int(keep[0]), int(keep[-1]) + 1)
        self.register_buffer("_freqs", torch.from_numpy(freqs[self._bins]), persistent=False)
        # A short FFT of which few bins are kept (EEG: 0-40 Hz of 0-86.8 Hz) can run on a CPU as
        # a strided convolution with the windowed DFT rows of just those bins (_dft_spectrum):
        # no faster keeping all bins, slower for n_fft >= 512, and for big batches only.
        self._use_dft = self.n_fft <= 256 and 4 * keep.size <= self.n_fft
        if self._use_dft:
            k = np.arange(self._bins.start, self._bins.stop)[:, None]
            phase = 2 * np.pi * k * np.arange(self.n_fft)[None] / self.n_fft
            rows = np.concatenate([np.cos(phase), -np.sin(phase)]) * self.window.numpy()
            self.register_buffer("_dft", torch.from_numpy(rows)[:, None, :], persistent=False)

    @property
    def frequencies(self) -> torch.Tensor:
        return self._freqs

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_dft and x.device.type == "cpu" and x.dtype == torch.float32:
            n_frames = frame_count(
                x.shape[-1], n_fft=self.n_fft, hop_length=self.hop_length, center=self.center
            )
            if x.shape[0] * n_frames * self.n_fft >= DFT_MIN_FRAME_SAMPLES:
                return self._dft_spectrum(x)
        return self._spectrum(x, self._bins)

    def _export_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._from_power2(self._export_power2(x, self._bins.start, self._bins.stop))

    def _dft_spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """What ``_spectrum(x, self._bins)`` gives (to float32 rounding, < 1e-5 of the peak),
        as a convolution of ``x`` ``(batch, n_times)`` with the kept bins' DFT rows, stride
        ``hop_length``: frames never materialised, bins outside ``fmin..fmax`` never computed.
        Float32 on the CPU only (float64 stays on torch.stft, the reference-checked path)."""
        x = x[:, None]
        if self.center:
            pad = self.n_fft // 2
            x = torch.nn.functional.pad(x, (pad, pad), mode=self.pad_mode)
        y = torch.nn.functional.conv1d(x, self._cast(self._dft, x), stride=self.hop_length)
        n = y.shape[1] // 2
        return self._from_power2(y[:, :n].square() + y[:, n:].square())


def stft(signal, sample_rate: float, **params) -> TFMap:
    """STFT of ``signal`` ``(..., n_times)`` → :class:`TFMap` ``(..., n_freqs, n_frames)``.

    Keyword parameters are those of :class:`STFT`. The signal is checked (finite, long enough).
    """
    return STFT(sample_rate, **params).map(signal)
