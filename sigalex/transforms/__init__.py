"""Time-frequency transforms: a pure function and a thin ``nn.Module`` each, by name.

Every transform maps a signal ``(..., n_times)`` to ``(..., n_freqs, n_frames)`` with the
frequency axis ascending; the functions return a :class:`TFMap` with the axes in Hz and seconds.

>>> from sigalex.transforms import stft, get_transform
>>> stft(x, 173.61, n_fft=256, fmax=40).values.shape  # doctest: +SKIP
"""

from .augment import Augment, freq_warp, spec_augment, time_shift
from .base import (
    TFMap,
    Transform,
    available_transforms,
    build_transform,
    get_transform,
    transform_parameters,
)
from .cwt import CWT, cwt
from .hilbert import Hilbert, analytic_signal, hilbert
from .mel import Mel, hz_to_mel, mel, mel_filterbank, mel_to_hz
from .stft import STFT, stft

__all__ = [
    "CWT",
    "STFT",
    "Augment",
    "Hilbert",
    "Mel",
    "TFMap",
    "Transform",
    "analytic_signal",
    "available_transforms",
    "build_transform",
    "cwt",
    "freq_warp",
    "get_transform",
    "hilbert",
    "hz_to_mel",
    "mel",
    "mel_filterbank",
    "mel_to_hz",
    "spec_augment",
    "stft",
    "time_shift",
    "transform_parameters",
]
