"""What every transform shares: the result type, the module base class and the name registry."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import NamedTuple, TypeVar, cast

import torch
from torch import nn

from .._checks import as_signal, choice, positive_int, sample_rate_hz
from ..errors import ParameterError

T = TypeVar("T")


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

    #: Compute with export-safe operators only (real matrix products and gathers: no FFT,
    #: complex or sparse tensors; :mod:`sigalex.transforms.dense`): the same maps to float32
    #: rounding, for the fixed signal length of an exported model. Set while a graph is
    #: exported (:meth:`sigalex.frontend.ImageFrontend.export_safe`); off, PyTorch's fast
    #: paths run as they are.
    export_safe: bool = False

    def __init__(self, sample_rate: float):
        super().__init__()
        self.sample_rate = sample_rate_hz(sample_rate)
        self._export_constants: dict[tuple, object] = {}

    # --- to implement -------------------------------------------------------------------
    def min_length(self) -> int:
        """Fewest samples a signal must have."""
        return 1

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, n_times) -> (batch, F, T)
        raise NotImplementedError

    def _export_forward(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`_forward` with export-safe operators only (see :attr:`export_safe`)."""
        raise ParameterError(f"transform {self.name!r} has no export-safe path")

    def _constant(self, key: tuple, make: Callable[[], T]) -> T:
        """A constant of the export-safe path (a DFT matrix, a bank operator), made once per
        ``key`` (the signal length, say) by ``make()`` and kept (not a buffer: not saved)."""
        if key not in self._export_constants:
            self._export_constants = {key: make()}
        return cast(T, self._export_constants[key])

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
        flat = x.reshape(-1, n_times)
        out = self._export_forward(flat) if self.export_safe else self._forward(flat)
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

    def __init__(self, sample_rate: float):
        super().__init__(sample_rate)
        self._banks: dict[tuple, torch.Tensor] = {}

    def dense_bank(self, n_fft: int) -> torch.Tensor:
        """The filter bank on an ``n_fft``-point FFT grid, float64 on the CPU: ``(n_rows,
        n_fft)``, or ``(n_rows, n_fft // 2 + 1)`` for a bank that is zero at negative
        frequencies (applied to an ``rfft``)."""
        raise NotImplementedError

    def folded_bank(self, n_fft: int, hop: int, device, dtype) -> torch.Tensor:
        """:meth:`dense_bank` in sparse, folded form (:func:`sparse_folded_bank`), on
        ``device`` in ``dtype``. One FFT length is cached: the windows of a run share it."""
        key = (n_fft, hop, str(device), dtype)
        bank = self._banks.get(key)
        if bank is None:
            bank = sparse_folded_bank(self.dense_bank(n_fft), hop, device, dtype, n_fft=n_fft)
            self._banks = {key: bank}
        return bank

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

    #: On the CPU, signals go through in blocks whose largest intermediate holds about this
    #: many values (16 MB in float32): a block's working set stays in cache, which made 736
    #: signals (32 windows × 23 channels) 2.8× faster than one pass over the whole batch.
    CPU_BLOCK_VALUES = 1 << 22

    def block_values(self, n_times: int) -> int:
        """Values of the largest intermediate tensor per signal of ``n_times`` samples."""
        raise NotImplementedError

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n_signals, n_times = x.shape
        per_block = max(1, self.CPU_BLOCK_VALUES // self.block_values(n_times))
        if x.device.type != "cpu" or n_signals <= per_block:
            return self._transform_block(x)
        first = self._transform_block(x[:per_block])
        out = first.new_empty((n_signals, *first.shape[1:]))
        out[:per_block] = first
        for i in range(per_block, n_signals, per_block):
            out[i : i + per_block] = self._transform_block(x[i : i + per_block])
        return out

    def _transform_block(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_times)`` → ``(batch, n_freqs, n_frames)``, all at once."""
        raise NotImplementedError


def sparse_folded_bank(
    dense: torch.Tensor, hop_length: int, device, dtype, *, n_fft: int | None = None,
    rel_tol: float = 1e-9,
) -> torch.Tensor:  # fmt: skip
    """A bank of real spectral filters as a sparse ``(n_rows * n_fold, n_bins)`` matrix.

    ``dense`` is ``(n_rows, n_bins)``: filter ``r``'s gain at each bin of an ``n_fft``-point
    FFT grid, either all ``n_fft`` bins or the first ``n_fft // 2 + 1`` (a bank that is zero at
    negative frequencies, applied to an ``rfft``); ``n_fft`` defaults to ``n_bins``, and
    ``n_fold = n_fft / hop_length``. Row ``r * n_fold + (k mod n_fold)`` holds bin ``k`` of
    filter ``r``, divided by ``hop_length``: multiplying a spectrum by it filters it with every
    row and folds each product into ``n_fold`` bins at once, so an inverse FFT of length
    ``n_fold`` gives every ``hop_length``-th output sample: keeping every ``hop``-th time
    sample is the same as summing the spectrum's ``hop`` aliases (exact, not an approximation).
    Only bins where a filter is above ``rel_tol`` of its own peak are stored: band-pass banks
    (Morlet wavelets, Butterworth bands) are a small fraction of the dense matrix.
    """
    n_rows, n_bins = dense.shape
    n_fold = (n_bins if n_fft is None else n_fft) // hop_length
    peak = dense.abs().amax(dim=1, keepdim=True)
    rows, cols = torch.nonzero(dense.abs() > rel_tol * peak, as_tuple=True)
    index = torch.stack([rows * n_fold + cols % n_fold, cols])
    bank = torch.sparse_coo_tensor(
        index, dense[rows, cols] / hop_length, (n_rows * n_fold, n_bins), check_invariants=False
    ).coalesce()
    return bank.to(device=device, dtype=dtype)


def apply_folded_bank(
    bank: torch.Tensor, spectrum: torch.Tensor, n_fold: int, n_out: int
) -> torch.Tensor:
    """Filter ``spectrum`` ``(batch, n_bins)`` (complex) with every row of a
    :func:`sparse_folded_bank` and return the first ``n_out`` of the ``n_fold`` decimated time
    samples of each: ``(batch, n_rows, n_out)`` complex, ``ifft(spectrum * dense[r])[::hop]``.

    One real sparse product on ``(re, im)`` pairs, then inverse FFTs ``n_fold`` long.
    """
    batch, n_bins = spectrum.shape
    n_rows = bank.shape[0] // n_fold
    pairs = torch.view_as_real(spectrum).transpose(0, 1).reshape(n_bins, batch * 2)
    folded = torch.sparse.mm(bank, pairs)  # (n_rows * n_fold, batch * 2)
    folded = folded.reshape(n_rows, n_fold, batch, 2).permute(2, 0, 1, 3).contiguous()
    return torch.fft.ifft(torch.view_as_complex(folded), dim=-1)[..., :n_out]


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
