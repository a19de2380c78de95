"""What every transform shares: the result type, the module base class and the name registry."""

from __future__ import annotations

import inspect
from typing import NamedTuple

import torch
from torch import nn

from .._checks import as_signal, choice, positive_int, sample_rate_hz
from ..errors import ParameterError


class TFMap(NamedTuple):
    """A time-frequency map with its axes.

    Attributes
    ----------
    values : torch.Tensor [shape=(..., n_freqs, n_frames)]
        Non-negative magnitudes (``power=1``) or powers (``power=2``), frequency ascending.
    frequencies : torch.Tensor [shape=(n_freqs,)]
        Centre frequency of each row, Hz.
    times : torch.Tensor [shape=(n_frames,)]
        Centre time of each column, seconds from the first sample.
    """

    values: torch.Tensor
    frequencies: torch.Tensor
    times: torch.Tensor


class Transform(nn.Module):
    """Base class: a signal ``(..., n_times)`` → map ``(..., n_freqs, n_frames)``.

    Subclasses precompute their windows / filter banks at construction (as float64 buffers, so
    ``.to(device)`` moves them) and implement :meth:`_forward` on a ``(batch, n_times)`` tensor.
    ``forward`` does only cheap shape checks so that it can sit in a training loop; the
    functional form (``sigalex.transforms.stft(...)`` etc.) checks the signal fully.
    """

    name: str = ""
    power: float = 1.0

    def __init__(self, sample_rate: float):
        super().__init__()
        self.sample_rate = sample_rate_hz(sample_rate)

    # --- to implement -------------------------------------------------------------------
    def min_length(self) -> int:
        """Fewest samples a signal must have."""
        return 1

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, n_times) -> (batch, F, T)
        raise NotImplementedError

    def times(self, n_times: int) -> torch.Tensor:
        """Frame centre times (s) for a signal of ``n_times`` samples, shape ``(n_frames,)``."""
        raise NotImplementedError

    @property
    def frequencies(self) -> torch.Tensor:
        """Row centre frequencies (Hz), ascending, shape ``(n_freqs,)``."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` of shape ``(..., n_times)`` to ``(..., n_freqs, n_frames)``."""
        if x.ndim == 0:
            raise ParameterError("signal must have a time axis; got a scalar")
        n_times = x.shape[-1]
        if n_times < self.min_length():
            raise ParameterError(
                f"signal is too short for {self.name}: n_times={n_times} samples, "
                f"at least {self.min_length()} needed"
            )
        if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        lead = x.shape[:-1]
        out = self._forward(x.reshape(-1, n_times))
        return out.reshape(*lead, *out.shape[-2:])

    def map(self, signal) -> TFMap:
        """Check ``signal`` (array or tensor, ``(..., n_times)``) and return values with axes."""
        x = as_signal(signal, min_length=self.min_length())
        module = self.to(x.device)
        values = module(x)
        return TFMap(values, self.frequencies.to(x.device), self.times(x.shape[-1]).to(x.device))

    def output_shape(self, n_times: int) -> tuple[int, int]:
        """``(n_freqs, n_frames)`` for a signal of ``n_times`` samples."""
        return len(self.frequencies), len(self.times(n_times))

    def _cast(self, buffer: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``buffer`` in ``like``'s real dtype and device (buffers are kept in float64)."""
        dtype = like.real.dtype if like.is_complex() else like.dtype
        return buffer.to(device=like.device, dtype=dtype)

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate:g}"


class SampleGridTransform(Transform):
    """A transform whose columns are input samples, kept every ``hop`` samples (CWT, Hilbert).

    ``hop_length`` fixes the step; ``max_frames`` raises it for long signals so that at most
    that many columns are computed (an image only has so many pixels across).
    """

    def _init_hop(self, hop_length: int, max_frames: int | None) -> None:
        self.hop_length = positive_int("hop_length", hop_length)
        self.max_frames = None if max_frames is None else positive_int("max_frames", max_frames)

    def hop(self, n_times: int) -> int:
        """Samples between columns for a signal of ``n_times`` samples."""
        if self.max_frames is None:
            return self.hop_length
        return max(self.hop_length, -(-n_times // self.max_frames))

    def times(self, n_times: int) -> torch.Tensor:
        return torch.arange(0, n_times, self.hop(n_times), dtype=torch.float64) / self.sample_rate


def decimated_ifft(spectrum: torch.Tensor, hop_length: int, n_out: int) -> torch.Tensor:
    """``ifft(spectrum)[..., ::hop_length][..., :n_out]`` without computing the skipped samples.

    Keeping every ``hop``-th time sample is the same as folding the spectrum into
    ``n_fft / hop`` bins and taking an inverse FFT that much shorter (exact, not an
    approximation). ``spectrum``'s last axis (``n_fft``) must be a multiple of ``hop_length``.
    """
    if hop_length == 1:
        return torch.fft.ifft(spectrum, dim=-1)[..., :n_out]
    n_fft = spectrum.shape[-1]
    folded = spectrum.reshape(*spectrum.shape[:-1], hop_length, n_fft // hop_length).sum(-2)
    return torch.fft.ifft(folded, dim=-1)[..., :n_out] / hop_length


_REGISTRY: dict[str, type[Transform]] = {}


def register(cls: type[Transform]) -> type[Transform]:
    """Class decorator: make ``cls`` available by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def available_transforms() -> list[str]:
    """Names accepted by :func:`get_transform`, sorted."""
    return sorted(_REGISTRY)


def get_transform(name: str) -> type[Transform]:
    """The transform class called ``name``; a miss lists what is available."""
    return _REGISTRY[choice("transform", name, _REGISTRY)]


def transform_parameters(name: str) -> list[str]:
    """Keyword parameters the transform ``name`` accepts (besides ``sample_rate``)."""
    sig = inspect.signature(get_transform(name).__init__)
    return [p for p in sig.parameters if p not in ("self", "sample_rate")]


def build_transform(name: str, sample_rate: float, **params) -> Transform:
    """Instantiate transform ``name``; an unknown parameter is a ``ParameterError``."""
    cls = get_transform(name)
    allowed = transform_parameters(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)} for transform {name!r}; "
            f"accepted: {', '.join(allowed)}"
        )
    return cls(sample_rate, **params)
