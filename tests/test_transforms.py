"""Transforms against independent references (librosa, scipy, PyWavelets, direct sums), in float64.

Tolerances are stated next to each comparison with the reason for them. Each reference test is
paired with a "mutation" check: the same comparison against a deliberately wrong reference (another
window, a frequency axis shifted by one bin, another wavelet bandwidth…) must FAIL at the same
tolerance, which proves the tolerance is tight enough to catch that mistake.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import pywt
import scipy.fft
import scipy.signal
import torch
from conftest import cpu_and_cuda, tones

import sigalex
from sigalex.transforms import (
    CWT,
    STFT,
    Hilbert,
    Mel,
    analytic_signal,
    available_transforms,
    build_transform,
    cwt,
    get_transform,
    hilbert,
    hz_to_mel,
    mel,
    mel_filterbank,
    mel_to_hz,
    stft,
    transform_parameters,
)


def close(actual, expected, *, rel: float) -> bool:
    """``|actual - expected| <= rel * max|expected|`` everywhere (a scale-free tolerance)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    return actual.shape == expected.shape and bool(
        np.all(np.abs(actual - expected) <= rel * np.abs(expected).max())
    )


def assert_close(actual, expected, *, rel: float):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    err = np.abs(actual - expected).max() / np.abs(expected).max()
    assert err <= rel, f"max error {err:.3g} of the reference's max > {rel:g}"


# --------------------------------------------------------------------------------------------
# STFT vs librosa.stft
# --------------------------------------------------------------------------------------------

# (sigalex kwargs, librosa's name for the pad mode)
STFT_CASES = [
    (dict(n_fft=256, hop_length=64), "constant"),
    (
        dict(n_fft=128, hop_length=32, win_length=100, window="hamming", pad_mode="reflect"),
        "reflect",
    ),
    (dict(n_fft=64, hop_length=7, center=False, window=("kaiser", 8.0)), None),
    (dict(n_fft=100, hop_length=25, win_length=61, pad_mode="replicate"), "edge"),
    (dict(n_fft=33, hop_length=1, window="blackman"), "constant"),  # odd n_fft, hop 1
]


@pytest.mark.parametrize(("params", "pad_mode"), STFT_CASES)
def test_stft_matches_librosa(params, pad_mode, rng):
    x = rng.standard_normal(1000)
    got = stft(x, 100.0, **params)
    lib = {k: v for k, v in params.items() if k != "pad_mode"}
    if pad_mode is not None:
        lib["pad_mode"] = pad_mode
    ref = np.abs(librosa.stft(x, **lib))
    # Same float64 arithmetic on both sides, only FFT rounding differs (measured ~4e-16).
    assert got.values.dtype == torch.float64
    np.testing.assert_allclose(got.values.numpy(), ref, rtol=1e-10, atol=1e-10 * ref.max())


def test_stft_circular_padding_matches_wrapped_signal(rng):
    # librosa has no 'wrap' pad mode: pad by hand and frame without centring.
    x = rng.standard_normal(500)
    got = stft(x, 1.0, n_fft=64, hop_length=16, pad_mode="circular").values.numpy()
    ref = np.abs(librosa.stft(np.pad(x, 32, mode="wrap"), n_fft=64, hop_length=16, center=False))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * ref.max())


def test_stft_power_two_is_squared_magnitude(rng):
    x = rng.standard_normal(800)
    got = stft(x, 50.0, n_fft=128, hop_length=32, power=2.0).values.numpy()
    ref = np.abs(librosa.stft(x, n_fft=128, hop_length=32)) ** 2
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * ref.max())


def test_stft_wrong_window_fails_the_tolerance(rng):
    # Mutation check: a hamming reference must NOT pass for a hann transform at 1e-10
    # (nor even at 1e-2: the windows differ by several percent of the peak).
    x = rng.standard_normal(1000)
    got = stft(x, 100.0, n_fft=256, hop_length=64).values.numpy()
    wrong = np.abs(librosa.stft(x, n_fft=256, hop_length=64, window="hamming"))
    assert not close(got, wrong, rel=1e-10)
    assert not close(got, wrong, rel=1e-2)
    right = np.abs(librosa.stft(x, n_fft=256, hop_length=64, window="hann"))
    assert close(got, right, rel=1e-10)


def test_stft_frequency_axis_off_by_one_bin_fails(rng):
    x = rng.standard_normal(1000)
    sr, n_fft = 100.0, 128
    got = stft(x, sr, n_fft=n_fft, hop_length=32)
    ref = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=32))
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    assert close(got.values.numpy(), ref, rel=1e-10)
    # values shifted by one row, or an axis shifted by one bin, must be caught
    assert not close(got.values.numpy()[1:], ref[:-1], rel=1e-2)
    assert not close(got.frequencies.numpy()[1:], freqs[:-1], rel=1e-10)
    np.testing.assert_allclose(got.frequencies.numpy(), freqs, rtol=0, atol=1e-12)


def test_stft_frequency_axis_and_crop(rng):
    sr, n_fft = 173.61, 256
    x = rng.standard_normal(2048)
    full = stft(x, sr, n_fft=n_fft, hop_length=64)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    np.testing.assert_allclose(full.frequencies.numpy(), freqs, rtol=1e-14)
    for fmin, fmax in [(0.5, 40.0), (freqs[3], freqs[40]), (0.0, sr / 2), (10.0, freqs[-1])]:
        cropped = stft(x, sr, n_fft=n_fft, hop_length=64, fmin=fmin, fmax=fmax)
        keep = (freqs >= fmin - 1e-9) & (freqs <= fmax + 1e-9)
        np.testing.assert_array_equal(cropped.frequencies.numpy(), freqs[keep])
        np.testing.assert_array_equal(cropped.values.numpy(), full.values.numpy()[keep])
    # band edges exactly on a bin keep that bin (inclusive on both sides)
    cropped = stft(x, sr, n_fft=n_fft, hop_length=64, fmin=freqs[3], fmax=freqs[40])
    assert len(cropped.frequencies) == 38


def test_stft_tone_peaks_in_its_bin():
    sr, n_fft = 128.0, 128  # 1 Hz bins
    x = tones(sr, 1024, [(17.0, 1.0)])
    got = stft(x, sr, n_fft=n_fft, hop_length=32, fmin=5.0, fmax=40.0)
    row = int(got.values.mean(-1).argmax())
    assert got.frequencies[row].item() == 17.0


@pytest.mark.parametrize("n_times", [1000, 1001, 1023])
@pytest.mark.parametrize(
    ("center", "n_fft", "hop"),
    [(True, 128, 32), (False, 128, 32), (True, 64, 50), (True, 33, 5), (False, 33, 5)],
)
def test_stft_times(n_times, center, n_fft, hop):
    sr = 250.0
    got = stft(np.zeros(n_times), sr, n_fft=n_fft, hop_length=hop, center=center)
    n_frames = got.values.shape[-1]
    ref_frames = librosa.stft(np.zeros(n_times), n_fft=n_fft, hop_length=hop, center=center).shape[
        -1
    ]
    assert n_frames == ref_frames == len(got.times)
    if not center and n_fft % 2:
        # odd n_fft without centring: sigalex places the frame at start + n_fft / 2 (the peak
        # of the periodic window), librosa at start + n_fft // 2: half a sample apart, by
        # convention; only the count is compared
        return
    if center:
        ref = librosa.frames_to_time(np.arange(n_frames), sr=sr, hop_length=hop)
    else:  # frame t spans [t*hop, t*hop + n_fft): its centre
        ref = librosa.frames_to_time(np.arange(n_frames), sr=sr, hop_length=hop, n_fft=n_fft)
    np.testing.assert_allclose(got.times.numpy(), ref, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Mel vs librosa.feature.melspectrogram
# --------------------------------------------------------------------------------------------

MEL_CASES = [
    dict(),
    dict(htk=True),
    dict(norm=None),
    dict(fmin=100.0, fmax=3000.0, n_mels=40, htk=True, norm=None),
    dict(n_fft=512, hop_length=128, n_mels=64, fmin=50.0),
    dict(n_fft=256, hop_length=80, win_length=200, n_mels=32, power=1.0, window="hamming"),
]


@pytest.mark.parametrize("params", MEL_CASES)
def test_mel_matches_librosa(params, rng):
    sr = 8000.0
    x = rng.standard_normal(4000)
    got = mel(x, sr, **params).values.numpy()
    ref = librosa.feature.melspectrogram(y=x, sr=sr, **params)
    # librosa builds its filterbank in float32 (dtype default), so its result carries ~1e-7
    # relative error (measured: at most 6e-8 elementwise); 1e-6 relative is 10x that margin.
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * ref.max())


@pytest.mark.parametrize("params", MEL_CASES)
def test_mel_filterbank_and_centres_match_librosa(params):
    sr = 8000.0
    n_fft = params.get("n_fft", 2048)
    fb_kw = {k: params[k] for k in ("n_mels", "fmin", "fmax", "htk", "norm") if k in params}
    weights, centres = mel_filterbank(sr, n_fft, **fb_kw)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, dtype=np.float64, **fb_kw)
    # Same float64 construction: only rounding differs.
    np.testing.assert_allclose(weights, ref, rtol=1e-12, atol=1e-12 * ref.max())
    edges = librosa.mel_frequencies(
        n_mels=fb_kw.get("n_mels", 128) + 2,
        fmin=fb_kw.get("fmin", 0.0),
        fmax=fb_kw.get("fmax", sr / 2),
        htk=fb_kw.get("htk", False),
    )
    np.testing.assert_allclose(centres, edges[1:-1], rtol=1e-12)
    module = Mel(sr, n_fft=n_fft, **fb_kw)
    np.testing.assert_allclose(module.frequencies.numpy(), edges[1:-1], rtol=1e-12)
    assert np.all(np.diff(module.frequencies.numpy()) > 0)


def test_mel_wrong_scale_or_norm_fails(rng):
    sr = 8000.0
    x = rng.standard_normal(4000)
    kw = dict(n_fft=512, hop_length=128, n_mels=40)
    got = mel(x, sr, **kw).values.numpy()
    assert close(got, librosa.feature.melspectrogram(y=x, sr=sr, **kw), rel=1e-6)
    for wrong in (dict(htk=True), dict(norm=None), dict(window="hamming"), dict(fmin=20.0)):
        ref = librosa.feature.melspectrogram(y=x, sr=sr, **{**kw, **wrong})
        assert not close(got, ref, rel=1e-6), wrong


@pytest.mark.parametrize("htk", [False, True])
def test_mel_scale_conversions_match_librosa(htk):
    f = np.array([0.0, 20.0, 440.0, 999.0, 1000.0, 1001.0, 4000.0, 11025.0])
    np.testing.assert_allclose(hz_to_mel(f, htk=htk), librosa.hz_to_mel(f, htk=htk), rtol=1e-12)
    m = hz_to_mel(f, htk=htk)
    np.testing.assert_allclose(mel_to_hz(m, htk=htk), librosa.mel_to_hz(m, htk=htk), rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(m, htk=htk), f, rtol=1e-12, atol=1e-9)


def test_mel_empty_filters_warn():
    with pytest.warns(UserWarning, match="empty"):
        Mel(8000.0, n_fft=64, n_mels=128)


# --------------------------------------------------------------------------------------------
# CWT vs PyWavelets and vs the exact direct sum
# --------------------------------------------------------------------------------------------


def morlet_direct(x: np.ndarray, scale: float, bandwidth: float, center: float) -> np.ndarray:
    """``W[n] = s^-1/2 sum_m x[m] conj(psi((m - n) / s))``, exactly (every lag, no FFT)."""
    n = len(x)
    lags = np.arange(-(n - 1), n) / scale  # m - n for every pair
    psi = (
        (np.pi * bandwidth) ** -0.5
        * np.exp(-(lags**2) / bandwidth)
        * np.exp(2j * np.pi * center * lags)
    )
    # W[n] = sum_m x[m] g[n - m] with g[i] = conj(psi(-i / s)): a plain (direct) convolution
    g = np.conj(psi[::-1])
    return np.convolve(x, g)[n - 1 : 2 * n - 1] / np.sqrt(scale)


CWT_SIGNAL_SR = 200.0


def cwt_signal(n: int = 1000) -> np.ndarray:
    # smooth multi-tone signal, all components far below Nyquist (100 Hz)
    return tones(CWT_SIGNAL_SR, n, [(5.0, 1.0), (13.0, 0.5), (27.0, 0.3)])


def interior_error(values, ref, scales, bandwidth) -> float:
    """Max |values - ref| away from the edges (2 sqrt(B) scales: the wavelet's envelope is
    exp(-4) there), as a fraction of ref's global max."""
    n = ref.shape[-1]
    errs = []
    for row, s in enumerate(scales):
        k = int(np.ceil(2 * np.sqrt(bandwidth) * s))
        errs.append(np.abs(values[row, k : n - k] - ref[row, k : n - k]).max())
    return max(errs) / np.abs(ref).max()


@pytest.mark.parametrize(("bandwidth", "center"), [(1.5, 1.0), (2.0, 1.5), (1.0, 1.0)])
def test_cwt_matches_pywt(bandwidth, center):
    sr = CWT_SIGNAL_SR
    x = cwt_signal()
    got = cwt(x, sr, fmin=2.0, fmax=40.0, n_freqs=24, bandwidth=bandwidth, center_frequency=center)
    freqs = got.frequencies.numpy()
    scales = center * sr / freqs
    wavelet = f"cmor{bandwidth:g}-{center:g}"
    coef, pywt_freqs = pywt.cwt(
        x, scales, wavelet, sampling_period=1 / sr, method="fft", precision=14
    )
    # the frequency axis is pywt's own (scale2frequency * sample_rate)
    np.testing.assert_allclose(freqs, pywt_freqs, rtol=1e-12)
    np.testing.assert_allclose(freqs, pywt.scale2frequency(wavelet, scales) * sr, rtol=1e-12)
    ref = np.abs(coef)
    # pywt integrates the wavelet on a grid of 2**precision points and differentiates the
    # convolution with that integral; this discretisation (not ours) limits agreement to
    # ~0.5% of the global max on this smooth signal (measured 0.46-0.65%, worse at very small
    # scales, hence fmax = sr/5) and the edges differ by design (pywt pads differently), so
    # we compare magnitudes away from the edges at 2% of the max. The mutations below miss by
    # 15-50%, so 2% still separates right from wrong.
    err = interior_error(got.values.numpy(), ref, scales, bandwidth)
    assert err < 0.02
    # mutations: a wrong bandwidth, scales off by 5%, or rows shifted by one must fail
    wrong_b = np.abs(
        pywt.cwt(
            x,
            scales,
            f"cmor{1.5 * bandwidth:g}-{center:g}",
            sampling_period=1 / sr,
            method="fft",
            precision=14,
        )[0]
    )
    assert interior_error(got.values.numpy(), wrong_b, scales, bandwidth) > 0.02
    wrong_s = np.abs(
        pywt.cwt(x, scales * 1.05, wavelet, sampling_period=1 / sr, method="fft", precision=14)[0]
    )
    assert interior_error(got.values.numpy(), wrong_s, scales, bandwidth) > 0.02
    assert interior_error(got.values.numpy(), np.roll(ref, 1, axis=0), scales, bandwidth) > 0.02


@pytest.mark.parametrize(
    ("bandwidth", "center", "spacing"), [(1.5, 1.0, "log"), (3.0, 2.0, "linear")]
)
def test_cwt_matches_direct_sum(bandwidth, center, spacing, rng):
    sr = CWT_SIGNAL_SR
    x = cwt_signal(600) + 0.3 * rng.standard_normal(600)
    module = CWT(
        sr,
        fmin=1.0,
        fmax=45.0,
        n_freqs=16,
        spacing=spacing,
        bandwidth=bandwidth,
        center_frequency=center,
    )
    got = module.map(x).values.numpy()
    scales = module.scales.numpy()
    ref = np.stack([np.abs(morlet_direct(x, s, bandwidth, center)) for s in scales])
    # The FFT method uses the wavelet's exact Fourier transform on a zero-padded grid (no
    # wrap-around), so it equals the direct sum up to the Gaussian's aliasing at the highest
    # rows and rounding: measured ~5e-9 of the max. 1e-6 leaves room for computing only the
    # non-negligible band of each wavelet's spectrum.
    assert_close(got, ref, rel=1e-6)
    # edges included: no wrap-around (a circular FFT would leak the other end in here)
    for row in range(len(scales)):
        np.testing.assert_allclose(got[row], ref[row], rtol=0, atol=1e-6 * ref.max())
    # mutation: a 10% wider wavelet is far outside that tolerance
    wrong = np.stack([np.abs(morlet_direct(x, s, 1.1 * bandwidth, center)) for s in scales])
    assert not close(got, wrong, rel=1e-3)


def test_cwt_frequency_grid():
    sr = 256.0
    log = CWT(sr, fmin=1.0, fmax=64.0, n_freqs=7)
    np.testing.assert_allclose(log.frequencies.numpy(), [1, 2, 4, 8, 16, 32, 64], rtol=1e-12)
    lin = CWT(sr, fmin=4.0, fmax=40.0, n_freqs=10, spacing="linear")
    np.testing.assert_allclose(lin.frequencies.numpy(), np.arange(4.0, 41.0, 4.0), rtol=1e-12)
    # scales: C * sample_rate / f, pywt's convention
    c = CWT(sr, fmin=2.0, fmax=50.0, n_freqs=5, center_frequency=1.5)
    np.testing.assert_allclose(c.scales.numpy(), 1.5 * sr / c.frequencies.numpy(), rtol=1e-14)
    # defaults: sample_rate / 128 .. sample_rate / 4
    d = CWT(sr)
    assert d.frequencies[0].item() == pytest.approx(2.0)
    assert d.frequencies[-1].item() == pytest.approx(64.0)
    assert d.times(10).tolist() == pytest.approx(np.arange(10) / sr)


def test_cwt_tone_peaks_at_its_frequency():
    sr = 200.0
    module = CWT(sr, fmin=2.0, fmax=60.0, n_freqs=60, bandwidth=4.0)
    for f0 in (6.0, 17.0, 41.0):
        values = module(torch.from_numpy(tones(sr, 800, [(f0, 1.0)])))
        row = int(values[:, 200:600].mean(-1).argmax())
        freqs = module.frequencies.numpy()
        assert abs(np.log(freqs[row] / f0)) <= np.log(freqs[1] / freqs[0]) / 2 + 1e-9


@pytest.mark.parametrize(("n_times", "hop"), [(1000, 4), (999, 7), (517, 3), (64, 64)])
def test_cwt_hop_length_is_subsampling(n_times, hop, rng):
    x = torch.from_numpy(rng.standard_normal(n_times))
    kw = dict(fmin=2.0, fmax=50.0, n_freqs=12)
    full = CWT(200.0, **kw)(x)
    dec_module = CWT(200.0, hop_length=hop, **kw)
    dec = dec_module(x)
    assert tuple(dec.shape) == dec_module.output_shape(n_times)
    # Decimation folds the spectrum (exact in exact arithmetic), but the padded FFT length may
    # change to a multiple of hop: the difference is the Gaussian tail beyond the padding
    # and rounding, measured < 1e-12 of the max; 1e-8 is a safe margin.
    assert_close(dec.numpy(), full.numpy()[:, ::hop], rel=1e-8)
    np.testing.assert_allclose(
        dec_module.times(n_times).numpy(), np.arange(0, n_times, hop) / 200.0
    )


def test_cwt_power_two_is_squared_magnitude(rng):
    x = torch.from_numpy(rng.standard_normal(300))
    a = CWT(100.0, n_freqs=8, fmin=5.0)(x)
    b = CWT(100.0, n_freqs=8, fmin=5.0, power=2.0)(x)
    torch.testing.assert_close(b, a**2, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Hilbert: analytic signal and the band-pass envelope map
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_times", [999, 1000, 2, 3])
def test_analytic_signal_matches_scipy(n_times, rng):
    x = rng.standard_normal((3, 2, n_times))
    got = analytic_signal(x)
    assert got.is_complex() and got.shape == x.shape
    ref = scipy.signal.hilbert(x, axis=-1)
    # Both are one FFT, a gain, one inverse FFT in float64: rounding only (~1e-15).
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # the real part is the signal itself
    np.testing.assert_allclose(got.real.numpy(), x, atol=1e-12)
    # tensors work the same, and float32 stays single precision (complex64)
    t = analytic_signal(torch.from_numpy(x).float())
    assert t.dtype == torch.complex64
    np.testing.assert_allclose(t.numpy(), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


HILBERT_SR = 250.0


def test_hilbert_map_matches_sosfiltfilt(rng):
    sr, n = HILBERT_SR, 2000
    x = tones(sr, n, [(10.0, 1.0), (31.0, 0.5)]) + 0.2 * rng.standard_normal(n)
    module = Hilbert(sr, fmin=2.0, fmax=60.0, n_bands=12)
    got = module(torch.from_numpy(x)).numpy()
    ref = np.stack(
        [
            np.abs(
                scipy.signal.hilbert(scipy.signal.sosfiltfilt(sos, x, padtype="even", padlen=n - 1))
            )
            for sos in module.sos
        ]
    )
    # sigalex filters in the frequency domain (|H|^2 on the FFT grid of a reflect-padded
    # signal); sosfiltfilt runs the IIR forward and back in time with its own edge handling.
    # Same zero-phase response, different edge transients: compare the middle half only, at
    # 2e-3 of the max (measured 2.7e-4).
    q = n // 4
    assert_close(got[:, q:-q], ref[:, q:-q], rel=2e-3)
    # mutation: a filter applied once (order 2 instead of 4 → a different response) fails
    once = Hilbert(sr, fmin=2.0, fmax=60.0, n_bands=12, order=2)(torch.from_numpy(x)).numpy()
    assert not close(once[:, q:-q], ref[:, q:-q], rel=2e-3)
    # mutation: bands shifted by one fail
    assert not close(got[1:, q:-q], ref[:-1, q:-q], rel=2e-3)


def test_hilbert_bands_and_centres():
    log = Hilbert(HILBERT_SR, fmin=2.0, fmax=64.0, n_bands=5)
    np.testing.assert_allclose(log.edges, [2, 4, 8, 16, 32, 64], rtol=1e-12)
    np.testing.assert_allclose(log.frequencies.numpy(), np.sqrt(log.edges[:-1] * log.edges[1:]))
    lin = Hilbert(HILBERT_SR, fmin=10.0, fmax=60.0, n_bands=5, spacing="linear")
    np.testing.assert_allclose(lin.frequencies.numpy(), [15, 25, 35, 45, 55])
    assert len(lin.sos) == 5


def test_hilbert_tone_envelope():
    sr, n, amp = HILBERT_SR, 2500, 2.5
    x = amp * np.sin(2 * np.pi * 10.0 * np.arange(n) / sr)
    module = Hilbert(sr, fmin=2.0, fmax=60.0, n_bands=12)
    env = module(torch.from_numpy(x)).numpy()
    band = int(np.searchsorted(module.edges, 10.0)) - 1
    q = n // 4
    # inside its band, a steady tone's envelope is flat at its amplitude: the Butterworth power
    # response at 10 Hz is within 0.1% of 1 (measured 0.9995..1.0005 of the amplitude)
    np.testing.assert_allclose(env[band, q:-q], amp, rtol=5e-3)
    # bands two or more away see almost nothing (measured < 0.7% of the amplitude)
    far = [k for k in range(module.n_bands) if abs(k - band) >= 2]
    assert env[far, q:-q].max() < 0.01 * amp


def test_hilbert_instantaneous_frequency():
    sr, n = HILBERT_SR, 2500
    x = tones(sr, n, [(10.0, 1.0)])
    module = Hilbert(sr, fmin=2.0, fmax=60.0, n_bands=12, output="frequency")
    freq = module(torch.from_numpy(x)).numpy()
    assert freq.shape == (12, n)
    band = int(np.searchsorted(module.edges, 10.0)) - 1
    q = n // 4
    # phase advance per sample of a clean tone: 10 Hz to well within 0.01 Hz (measured 4e-4)
    np.testing.assert_allclose(freq[band, q:-q], 10.0, atol=0.01)
    assert freq.min() >= 0
    sub = Hilbert(sr, fmin=2.0, fmax=60.0, n_bands=12, output="frequency", hop_length=5)
    np.testing.assert_allclose(sub(torch.from_numpy(x)).numpy(), freq[:, ::5], atol=1e-12)


@pytest.mark.parametrize(
    ("n_times", "hop"), [(2000, 2), (1999, 16), (1001, 7), (1999, 3), (777, 3)]
)
def test_hilbert_hop_length_is_subsampling(n_times, hop, rng):
    x = torch.from_numpy(rng.standard_normal(n_times))
    kw = dict(fmin=2.0, fmax=60.0, n_bands=12)
    full = Hilbert(HILBERT_SR, **kw)(x).numpy()
    dec_module = Hilbert(HILBERT_SR, hop_length=hop, **kw)
    dec = dec_module(x).numpy()
    assert dec.shape == dec_module.output_shape(n_times)
    n_pad = n_times + 2 * dec_module.padding(n_times)
    same_fft = scipy.fft.next_fast_len(n_pad, real=False) == hop * scipy.fft.next_fast_len(
        -(-n_pad // hop), real=False
    )
    if same_fft:
        # identical FFT length: decimation by folding the spectrum is exact (rounding only)
        assert_close(dec, full[:, ::hop], rel=1e-10)
    else:
        # The decimated path rounds the FFT length up to a multiple of hop, so the circular
        # filtering wraps differently: the lowest, narrowest bands (longest impulse responses)
        # differ near the edges by up to ~0.35% of the max (measured); the upper half of the
        # bands agree to ~2e-4.
        assert_close(dec, full[:, ::hop], rel=1e-2)
        assert_close(dec[6:], full[6:, ::hop], rel=1e-3)


def test_hilbert_rejects_fmax_at_nyquist():
    with pytest.raises(sigalex.ParameterError, match="fmax"):
        Hilbert(100.0, fmax=50.0)


@pytest.mark.parametrize("hop", [1, 5])
def test_hilbert_sparse_bank_matches_the_dense_band_gains(hop, rng):
    # The envelope keeps only bins where a band's gain is above 1e-9 of its peak (a tenth of
    # the dense bank); against the dense product, the map must agree to float rounding.
    n_times = 1500
    x = torch.from_numpy(rng.standard_normal((3, n_times)))
    module = Hilbert(HILBERT_SR, fmin=1.0, fmax=60.0, n_bands=16, hop_length=hop)
    got = module(x)
    pad = module.padding(n_times)
    padded = torch.nn.functional.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    n_fft = module.fft_length(n_times)
    gains = module.band_gains(n_fft, "cpu", torch.float64)
    dense = torch.fft.ifft(torch.fft.fft(padded, n=n_fft)[:, None] * gains).abs()
    ref = dense[..., pad : pad + n_times : hop]
    assert_close(got.numpy(), ref.numpy(), rel=1e-8)
    bank = module.folded_bank(n_fft, hop, "cpu", torch.float64)
    assert bank._nnz() < 0.3 * gains[:, : n_fft // 2 + 1].count_nonzero()


@pytest.mark.parametrize(
    "make",
    [
        lambda: CWT(HILBERT_SR, fmin=2.0, fmax=60.0, n_freqs=12, max_frames=100),
        lambda: Hilbert(HILBERT_SR, fmin=2.0, fmax=60.0, n_bands=8, max_frames=100),
        lambda: Hilbert(HILBERT_SR, fmin=2.0, fmax=60.0, n_bands=8, output="frequency"),
    ],
    ids=["cwt", "hilbert", "hilbert-frequency"],
)
def test_cpu_blocks_give_the_same_map_as_one_pass(make, monkeypatch, rng):
    # On the CPU, many signals go through in cache-sized blocks: the map must not change.
    x = torch.from_numpy(rng.standard_normal((7, 1200)).astype(np.float32))
    module = make()
    one_pass = module(x)
    monkeypatch.setattr(type(module), "CPU_BLOCK_VALUES", 2 * module.block_values(1200))
    blocks = []
    real = type(module)._transform_block
    monkeypatch.setattr(
        type(module), "_transform_block", lambda self, b: blocks.append(len(b)) or real(self, b)
    )
    got = module(x)
    assert blocks == [2, 2, 2, 1]
    torch.testing.assert_close(got, one_pass, rtol=1e-5, atol=1e-6 * float(one_pass.abs().max()))


# --------------------------------------------------------------------------------------------
# Shared contract: shapes, batches, dtypes, registry
# --------------------------------------------------------------------------------------------

SR = 128.0
SMALL = {
    "stft": dict(n_fft=64, hop_length=16),
    "mel": dict(n_fft=128, hop_length=32, n_mels=16),
    "cwt": dict(n_freqs=10, fmin=2.0, fmax=40.0, hop_length=2),
    "hilbert": dict(n_bands=8, fmin=2.0, fmax=40.0, hop_length=2),
}


def small(name: str, **extra):
    return build_transform(name, SR, **{**SMALL[name], **extra})


def test_registry_lists_the_four_transforms():
    assert available_transforms() == ["cwt", "hilbert", "mel", "stft"]
    assert get_transform("stft") is STFT and get_transform("cwt") is CWT
    assert "n_fft" in transform_parameters("stft") and "sample_rate" not in transform_parameters(
        "stft"
    )
    assert "n_bands" in transform_parameters("hilbert")


def test_registry_miss_lists_available_and_suggests():
    with pytest.raises(sigalex.ParameterError) as err:
        get_transform("cwtt")
    msg = str(err.value)
    assert "'cwtt'" in msg and "did you mean 'cwt'" in msg and "cwt, hilbert, mel, stft" in msg


def test_build_transform_rejects_unknown_parameter():
    with pytest.raises(sigalex.ParameterError, match=r"n_ftt.*'stft'"):
        build_transform("stft", 100.0, n_ftt=256)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_batch_consistency_and_leading_dims(name, rng):
    # torchaudio's assert_batch_consistency: a batch equals its items stacked, exactly up to
    # rounding (batched FFTs may take a different code path: 1e-10 relative).
    module = small(name)
    x = torch.from_numpy(rng.standard_normal((2, 3, 400)))
    batch = module(x)
    assert batch.shape == (2, 3, *module.output_shape(400))
    items = torch.stack([torch.stack([module(x[a, b]) for b in range(3)]) for a in range(2)])
    assert_close(batch.numpy(), items.numpy(), rel=1e-10)
    # one channel differing only in channel 1 changes only channel 1's map
    y = x.clone()
    y[1, 2] = torch.from_numpy(rng.standard_normal(400))
    changed = (module(y) - batch).abs().amax(dim=(-2, -1))
    assert changed[1, 2] > 0
    changed[1, 2] = 0
    assert changed.max() == 0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_functional_form_returns_axes(name, rng):
    fn = {"stft": stft, "mel": mel, "cwt": cwt, "hilbert": hilbert}[name]
    x = rng.standard_normal((2, 300))
    out = fn(x, SR, **SMALL[name])
    module = small(name)
    n_freqs, n_frames = module.output_shape(300)
    assert out.values.shape == (2, n_freqs, n_frames)
    assert out.frequencies.shape == (n_freqs,) and out.times.shape == (n_frames,)
    assert torch.all(out.frequencies[1:] > out.frequencies[:-1])
    assert torch.all(out.times[1:] > out.times[:-1])
    assert bool(torch.all(out.values >= 0))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_float32_and_float64(name, rng):
    x64 = torch.from_numpy(rng.standard_normal((2, 400)))
    module = small(name)
    v64 = module(x64)
    v32 = module(x64.float())
    assert v64.dtype == torch.float64 and v32.dtype == torch.float32
    # float32 FFTs carry ~1e-7 relative error per operation; 1e-4 of the max (torchaudio's
    # spectrogram tolerance) bounds the accumulated error with a wide margin.
    assert_close(v32.double().numpy(), v64.numpy(), rel=1e-4)
    # integers and half precision come out as float32
    ints = module.map((x64 * 1000).round().to(torch.int32)).values
    halves = module(x64.half())
    assert ints.dtype == torch.float32 and halves.dtype == torch.float32


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("name", sorted(SMALL))
def test_device_parity(name, device, rng):
    x = torch.from_numpy(rng.standard_normal((3, 500))).float()
    module = small(name)
    ref = module(x)
    got = module.to(device)(x.to(device))
    assert got.device.type == device and got.dtype == torch.float32
    # float32 on different FFT libraries: rtol 1e-4 with an absolute floor of 1e-4 of the max
    torch.testing.assert_close(got.cpu(), ref, rtol=1e-4, atol=1e-4 * float(ref.max()))
    out = module.map(x.to(device))
    assert out.values.device.type == out.frequencies.device.type == out.times.device.type == device


@pytest.mark.parametrize("name", sorted(SMALL))
def test_modules_compose_and_carry_buffers(name):
    module = small(name)
    assert name in repr(module) or type(module).__name__ in repr(module)
    # buffers are float64 (cast per call), and not part of the state dict
    for buf in module.buffers():
        assert buf.dtype == torch.float64
    assert module.state_dict() == {} or all(
        k not in module.state_dict() for k in ("window", "filterbank")
    )


@pytest.mark.parametrize("cls", [CWT, Hilbert])
@pytest.mark.parametrize(
    ("n_times", "max_frames"), [(1000, 100), (1000, 333), (1000, 5000), (999, 1)]
)
def test_max_frames_caps_columns_by_raising_the_hop(cls, n_times, max_frames, rng):
    x = torch.from_numpy(rng.standard_normal(n_times))
    kw = dict(fmin=2.0, fmax=40.0, **({"n_freqs": 8} if cls is CWT else {"n_bands": 8}))
    capped = cls(200.0, max_frames=max_frames, **kw)
    out = capped(x)
    hop = -(-n_times // max_frames) if max_frames < n_times else 1
    assert out.shape[-1] == -(-n_times // hop) <= max_frames
    assert tuple(out.shape) == capped.output_shape(n_times)
    np.testing.assert_allclose(capped.times(n_times).numpy(), np.arange(0, n_times, hop) / 200.0)
    # the same as asking for that hop explicitly
    explicit = cls(200.0, hop_length=hop, **kw)(x)
    torch.testing.assert_close(out, explicit, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "params",
    [
        dict(n_fft=256, hop_length=64, fmax=40.0),
        dict(n_fft=128, hop_length=8, fmax=40.0),
        dict(n_fft=256, hop_length=32, fmax=40.0, center=False),
        dict(n_fft=256, hop_length=32, fmin=5.0, fmax=30.0, pad_mode="reflect", power=2.0),
        dict(n_fft=200, win_length=150, hop_length=50, fmax=20.0, window=("kaiser", 8.0)),
        dict(n_fft=255, hop_length=17, fmax=30.0, power=1.5),
    ],
)
def test_stft_narrow_band_dft_path_matches_the_fft(params, monkeypatch):
    """Float32 on the CPU, a big batch of a short FFT keeping few bins runs as a convolution
    with those bins' DFT rows; it must give torch.stft's values (float64 here) to float32
    rounding."""
    import importlib

    stft_module = importlib.import_module("sigalex.transforms.stft")  # not the stft function

    st = build_transform("stft", 173.61, **params)
    assert st._use_dft
    calls = []
    monkeypatch.setattr(stft_module, "DFT_MIN_FRAME_SAMPLES", 0)  # any batch takes it
    dft = st._dft_spectrum
    monkeypatch.setattr(st, "_dft_spectrum", lambda x: calls.append(x.shape) or dft(x))
    x = torch.randn(5, 3, 1500, generator=torch.Generator().manual_seed(0))
    fast, ref = st(x), st(x.double())
    assert calls == [(15, 1500)]  # float64 went through torch.stft
    assert fast.dtype == torch.float32 and fast.shape == ref.shape
    assert ((fast.double() - ref).abs().max() / ref.abs().max()) < 1e-5


def test_stft_dft_path_only_where_it_is_faster(monkeypatch):
    assert not build_transform("stft", 173.61, n_fft=256, hop_length=64)._use_dft  # all bins
    assert not build_transform("stft", 8000.0, n_fft=1024, fmax=800.0)._use_dft  # long FFT
    st = build_transform("stft", 173.61, n_fft=256, hop_length=64, fmax=40.0)
    assert st._use_dft
    calls = []
    dft = st._dft_spectrum
    monkeypatch.setattr(st, "_dft_spectrum", lambda x: calls.append(len(x)) or dft(x))
    st(torch.randn(32, 1, 4097))  # 32 x 65 frames x 256 = 0.5M: torch.stft is faster
    st(torch.randn(32, 23, 4097))  # 12M: the convolution is
    assert calls == [32 * 23]
