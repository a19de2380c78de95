"""The one resampler: ratios, lengths, and a bound on absurd rates."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from sigalex.errors import ParameterError
from sigalex.resample import MAX_RATIO, ratio, resample, resampled_length


def test_ratio_and_length_agree_with_resample():
    assert ratio(256.0, 173.61) == (59, 87)
    x = np.random.default_rng(0).standard_normal((2, 6041)).astype(np.float32)
    y = resample(x, 256.0, 173.61)
    assert y.dtype == np.float32 and y.shape == (2, resampled_length(6041, 256.0, 173.61)) == (
        2,
        4097,
    )
    np.testing.assert_allclose(y, scipy.signal.resample_poly(x, 59, 87, axis=-1), atol=1e-6)
    assert resample(x, 256.0, 256.0) is x  # same rate: no filtering, no copy


@pytest.mark.parametrize(("a", "b"), [(8000.0, 1e9), (1e7, 256.0), (256.0, 0.0), (256.0, -1.0)])
def test_absurd_rates_are_refused_before_any_memory_is_used(a, b):
    with pytest.raises(ParameterError, match=r"is the sample rate right|positive"):
        ratio(a, b)
    assert MAX_RATIO == 100
