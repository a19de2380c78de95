"""Input checks shared by every entry point: a signal is checked once, where it enters.

Hard problems raise :class:`~sigalex.errors.ParameterError` with the parameter's name and value;
soft ones warn with ``stacklevel`` pointing at the caller.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
import torch

from .errors import ParameterError


def as_signal(signal, *, name: str = "signal", min_length: int = 1) -> torch.Tensor:
    """Return ``signal`` as a floating torch tensor ``(..., n_times)``, checked.

    Integer input becomes float32, float16/bfloat16 become float32, float32/float64 are kept.
    Raises ``ParameterError`` for complex, boolean or object data, zero dimensions, fewer than
    ``min_length`` samples, or any NaN/inf.
    """
    if isinstance(signal, torch.Tensor):
        x = signal
    else:
        try:
            arr = np.asarray(signal)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{name} cannot be read as an array: {exc}") from exc
        if arr.dtype.kind not in "iuf":
            raise ParameterError(f"{name} must be real numbers; got dtype {arr.dtype}")
        if arr.ndim == 0:  # np.ascontiguousarray would make it 1-D
            raise ParameterError(f"{name} must have a time axis; got a scalar")
        x = torch.from_numpy(np.ascontiguousarray(arr))
    if x.is_complex() or x.dtype == torch.bool:
        raise ParameterError(f"{name} must be real numbers; got dtype {x.dtype}")
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x = x.to(torch.float32)
    if x.ndim == 0:
        raise ParameterError(f"{name} must have a time axis; got a scalar")
    n_times = x.shape[-1]
    if x.numel() == 0 or n_times == 0:
        raise ParameterError(f"{name} is empty: shape {tuple(x.shape)}")
    if n_times < min_length:
        raise ParameterError(
            f"{name} is too short: n_times={n_times} samples, at least {min_length} needed"
        )
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        n_bad = int((~finite).sum())
        first = np.unravel_index(int((~finite).flatten().nonzero()[0, 0]), tuple(x.shape))
        kind = "NaN" if bool(torch.isnan(x).any()) else "inf"
        raise ParameterError(
            f"{name} has {n_bad} non-finite value(s) ({kind}), first at index {tuple(map(int, first))}"
        )
    return x


def sample_rate_hz(sample_rate) -> float:
    """Check ``sample_rate`` (Hz): a finite number > 0."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, Real):
        raise ParameterError(f"{sample_rate=} must be a number in Hz")
    if not math.isfinite(sample_rate) or sample_rate <= 0:
        raise ParameterError(f"{sample_rate=} must be a positive, finite number of Hz")
    return float(sample_rate)


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    """Check an integer hyperparameter such as ``hop_length``; returns it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ParameterError(f"{name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise ParameterError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def positive_float(name: str, value, *, allow_zero: bool = False) -> float:
    """Check a real hyperparameter that must be > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ParameterError(f"{name}={value!r} must be a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name}={value!r} must be {bound}")
    return float(value)


def frequency_range(
    fmin, fmax, sample_rate: float, *, default_fmin: float = 0.0, allow_zero_fmin: bool = True
) -> tuple[float, float]:
    """Check a band ``[fmin, fmax]`` in Hz against the Nyquist frequency; fill defaults."""
    nyquist = sample_rate / 2
    fmin = default_fmin if fmin is None else fmin
    fmax = nyquist if fmax is None else fmax
    fmin = positive_float("fmin", fmin, allow_zero=allow_zero_fmin)
    fmax = positive_float("fmax", fmax)
    if fmax > nyquist * (1 + 1e-9):
        raise ParameterError(
            f"fmax={fmax:g} Hz is above the Nyquist frequency {nyquist:g} Hz "
            f"(sample_rate={sample_rate:g} Hz)"
        )
    if fmin >= fmax:
        raise ParameterError(f"fmin={fmin:g} Hz must be below fmax={fmax:g} Hz")
    return fmin, min(fmax, nyquist)


def choice(name: str, value, options: Iterable[str]) -> str:
    """Check that ``value`` is one of ``options``; the error lists them and a near miss."""
    options = sorted(options)
    if isinstance(value, str) and value in options:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, options, n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    raise ParameterError(f"unknown {name} {value!r}{hint}; available: {', '.join(options)}")


def resolve_device(value, *, name: str = "device") -> torch.device:
    """``None`` or ``"auto"`` → CUDA when available, else the CPU; any other value is checked.

    Raises ``ParameterError`` naming ``name`` for an unparsable device or CUDA on a machine
    without one.
    """
    if value is None or value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"{name} = {value!r}: {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"{name} = {value!r}: no CUDA device here; use 'auto' or 'cpu'")
    return device
