"""The public API (``sigalex.spectrogram``, ``sigalex.ImageFrontend``), bad input, and property
tests on shapes, finiteness and value ranges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import cpu_and_cuda, tones
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sigalex
from sigalex import ImageFrontend, ParameterError, spectrogram, to_image
from sigalex.render import Render
from sigalex.transforms import build_transform

SR = 128.0
METHOD_PARAMS = {
    "stft": dict(n_fft=64, hop_length=16),
    "mel": dict(n_fft=128, hop_length=32, n_mels=16),
    "cwt": dict(n_freqs=12, fmin=2.0, fmax=40.0),
    "hilbert": dict(n_bands=8, fmin=2.0, fmax=40.0),
}
METHODS = sorted(METHOD_PARAMS)


def signal(n_times: int = 512, n_channels: int | None = None, seed: int = 0) -> np.ndarray:
    x = tones(SR, n_times, [(6.0, 1.0), (20.0, 0.3)], noise=0.1, seed=seed)
    if n_channels is None:
        return x.astype(np.float32)
    rows = [
        x * (i + 1) + np.random.default_rng(seed + i).standard_normal(n_times) * 0.1
        for i in range(n_channels)
    ]
    return np.stack(rows).astype(np.float32)


# --------------------------------------------------------------------------------------------
# sigalex.spectrogram
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_spectrogram_one_channel(method):
    image = spectrogram(signal(), SR, method=method, size=64, **METHOD_PARAMS[method])
    assert isinstance(image, np.ndarray)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert image.std() > 0  # not blank


def test_spectrogram_defaults_are_227_viridis():
    image = spectrogram(signal(), SR)
    assert image.shape == (227, 227, 3) and image.dtype == np.uint8
    # minmax + viridis: the darkest colour of viridis (68, 1, 84) is present
    viridis0 = np.array([68, 1, 84])
    # (within a few levels: bilinear upsampling blends the darkest pixel with its neighbours)
    assert np.abs(image.reshape(-1, 3).astype(int) - viridis0).sum(-1).min() <= 10


def test_spectrogram_accepts_lists_ints_and_tensors():
    x = signal()
    ref = spectrogram(x, SR, size=32)
    np.testing.assert_array_equal(spectrogram(torch.from_numpy(x), SR, size=32), ref)
    np.testing.assert_array_equal(spectrogram(x.tolist(), SR, size=32), ref)
    ints = spectrogram((x * 1000).astype(np.int16), SR, size=32)
    assert ints.shape == (32, 32, 3)


@pytest.mark.parametrize("channels", ["mean", "tile"])
def test_spectrogram_two_dimensional_one_image(channels):
    image = spectrogram(signal(n_channels=3), SR, size=(48, 80), channels=channels, n_fft=64)
    assert image.shape == (48, 80, 3) and image.dtype == np.uint8


def test_spectrogram_each_gives_one_image_per_channel_in_order():
    x = signal(n_channels=3)
    images = spectrogram(x, SR, size=40, channels="each", n_fft=64)
    assert images.shape == (3, 40, 40, 3) and images.dtype == np.uint8
    for i in range(3):
        np.testing.assert_array_equal(images[i], spectrogram(x[i], SR, size=40, n_fft=64))


def test_spectrogram_tile_cells_are_the_channels_row_major():
    x = signal(n_channels=4)  # 512 samples: n_fft=64, hop 16 → 33 x 33 maps
    x[0] = 0.0
    x[0, ::8] = 1.0  # a click train: broadband, unlike the others
    # a fixed range renders each cell exactly as the channel alone; the grid is 2 x 2 cells of
    # 33 x 33, so size (66, 66) needs no resize
    kw = dict(n_fft=64, hop_length=16, normalize="fixed", vmin=-60.0, vmax=20.0, top_db=None)
    tiled = spectrogram(x, SR, channels="tile", size=(66, 66), **kw)
    for i in range(4):
        r, c = divmod(i, 2)
        alone = spectrogram(x[i], SR, size=(33, 33), **kw)
        np.testing.assert_array_equal(tiled[33 * r : 33 * (r + 1), 33 * c : 33 * (c + 1)], alone)


def test_hilbert_frequency_output_reaches_the_transform():
    # 'output' belongs to the Hilbert transform (envelope | frequency), not to rendering
    x = signal(600)
    frontend = ImageFrontend(
        SR, "hilbert", size=32, n_bands=8, fmin=2.0, fmax=40.0, output="frequency"
    )
    assert frontend.transform.output == "frequency"
    freq = spectrogram(
        x,
        SR,
        method="hilbert",
        size=32,
        n_bands=8,
        fmin=2.0,
        fmax=40.0,
        output="frequency",
        scale="linear",
    )
    env = spectrogram(
        x, SR, method="hilbert", size=32, n_bands=8, fmin=2.0, fmax=40.0, scale="linear"
    )
    assert freq.shape == env.shape == (32, 32, 3)
    assert not np.array_equal(freq, env)
    # frequency rows increase upwards (low bands at the bottom): the top row is brightest
    gray = spectrogram(
        x,
        SR,
        method="hilbert",
        size=32,
        n_bands=8,
        fmin=2.0,
        fmax=40.0,
        output="frequency",
        scale="linear",
        colormap="gray",
    )
    rows = gray[..., 0].astype(float).mean(axis=1)
    assert rows[0] > rows[-1]


def test_to_image_returns_pil():
    image = to_image(signal(), SR, size=50, method="mel", **METHOD_PARAMS["mel"])
    assert image.size == (50, 50) and image.mode == "RGB"
    with pytest.raises(ParameterError, match="one image"):
        to_image(signal(n_channels=2), SR, size=50, channels="each")


# --------------------------------------------------------------------------------------------
# ImageFrontend: the batched tensor path
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_frontend_shapes_dtype_and_batch_consistency(method):
    frontend = ImageFrontend(SR, method, size=(40, 56), **METHOD_PARAMS[method])
    windows = torch.from_numpy(np.stack([signal(300, 2, seed=s) for s in range(3)]))
    images = frontend(windows)
    assert images.shape == (3, 3, 40, 56) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    # batch == stacked items, exactly: no reshape mixes windows or channels
    items = torch.cat([frontend(windows[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(images, items, rtol=0, atol=0)
    # (batch, n_times) is one channel
    assert frontend(windows[:, 0]).shape == (3, 3, 40, 56)
    # float64 windows give float64 images
    assert frontend(windows.double()).dtype == torch.float64


def test_frontend_each_and_channel_order():
    frontend = ImageFrontend(SR, "stft", size=32, channels="each", n_fft=64)
    windows = torch.from_numpy(np.stack([signal(300, 3, seed=s) for s in range(2)]))
    images = frontend(windows)
    assert images.shape == (2, 3, 3, 32, 32)
    single = ImageFrontend(SR, "stft", size=32, n_fft=64)
    for b in range(2):
        for c in range(3):
            torch.testing.assert_close(images[b, c], single(windows[b : b + 1, c : c + 1])[0])


def test_frontend_splits_parameters_and_is_a_module():
    frontend = ImageFrontend(
        173.61, "stft", n_fft=256, fmax=40.0, size=100, colormap="magma", top_db=60.0
    )
    assert frontend.sample_rate == pytest.approx(173.61)
    assert frontend.transform.n_fft == 256 and frontend.transform.fmax == 40.0
    assert frontend.render.size == (100, 100) and frontend.render.top_db == 60.0
    assert frontend.render.power == frontend.transform.power
    mel = ImageFrontend(8000.0, "mel", n_fft=256, n_mels=32)
    assert mel.render.power == 2.0  # the transform's power reaches the dB scaling
    seq = torch.nn.Sequential(frontend.transform, frontend.render)
    x = torch.from_numpy(signal(1000)).reshape(1, 1, -1)
    torch.testing.assert_close(seq(x), frontend(x))


@pytest.mark.parametrize("method", ["cwt", "hilbert"])
def test_frontend_caps_sample_grid_columns_at_twice_the_width(method):
    frontend = (
        ImageFrontend(SR, method, size=(30, 50), n_freqs=8)
        if method == "cwt"
        else ImageFrontend(SR, method, size=(30, 50), n_bands=8)
    )
    assert frontend.transform.max_frames == 100
    n_times = 1000
    assert frontend.transform.output_shape(n_times)[1] <= 100
    explicit = ImageFrontend(
        SR,
        method,
        size=(30, 50),
        hop_length=1,
        **({"n_freqs": 8} if method == "cwt" else {"n_bands": 8}),
    )
    assert explicit.transform.max_frames is None
    assert explicit.transform.output_shape(n_times)[1] == n_times


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("method", METHODS)
def test_frontend_stays_on_the_device(method, device):
    frontend = ImageFrontend(SR, method, size=48, **METHOD_PARAMS[method])
    windows = torch.from_numpy(np.stack([signal(400, 2, seed=s) for s in range(2)]))
    ref = frontend(windows)
    got = frontend.to(device)(windows.to(device))
    assert got.device.type == device and got.dtype == torch.float32
    # CPU/GPU parity: images within one 8-bit level per pixel (float32 FFT differences can
    # move a value across a colour level boundary, by at most one level)
    assert (got.cpu() - ref).abs().max() <= 1 / 255 + 1e-6
    # and the one-call API accepts device=
    image = spectrogram(
        signal(400), SR, method=method, size=48, device=device, **METHOD_PARAMS[method]
    )
    assert image.shape == (48, 48, 3)


# --------------------------------------------------------------------------------------------
# bad input → ParameterError naming the parameter and its value
# --------------------------------------------------------------------------------------------


def nan_signal():
    x = signal(300)
    x[17] = np.nan
    return x


def inf_signal():
    x = signal(300)
    x[5] = -np.inf
    return x


@pytest.mark.parametrize(
    ("sig", "sample_rate", "params", "pattern"),
    [
        (
            nan_signal(),
            SR,
            {},
            r"signal has 1 non-finite value\(s\) \(NaN\), first at index \(17,\)",
        ),
        (inf_signal(), SR, {}, r"non-finite.*inf.*\(5,\)"),
        (np.array([], dtype=np.float32), SR, {}, "signal is empty"),
        (np.zeros((3, 0), dtype=np.float32), SR, {}, "signal is empty"),
        (np.zeros(100, dtype=np.float32), SR, dict(n_fft=256), r"too short.*n_times=100.*256"),
        (np.zeros(1, dtype=np.float32), SR, dict(method="hilbert"), r"too short.*n_times=1"),
        (np.zeros((2, 3, 300), dtype=np.float32), SR, {}, r"1-D.*2-D.*\(2, 3, 300\)"),
        (np.float32(1.0), SR, {}, "scalar"),
        (np.zeros(300, dtype=complex), SR, {}, "real numbers.*complex"),
        (np.array(["a", "b"]), SR, {}, "real numbers"),
        (signal(), 0.0, {}, r"sample_rate=0\.0"),
        (signal(), -100.0, {}, r"sample_rate=-100\.0"),
        (signal(), float("nan"), {}, r"sample_rate=nan"),
        (signal(), float("inf"), {}, r"sample_rate=inf"),
        (signal(), "128", {}, r"sample_rate='128'"),
        (signal(), True, {}, r"sample_rate=True"),
        (signal(), SR, dict(hop_length=0), r"hop_length=0"),
        (signal(), SR, dict(hop_length=-3), r"hop_length=-3"),
        (signal(), SR, dict(hop_length=2.5), r"hop_length=2\.5"),
        (signal(), SR, dict(method="cwt", hop_length=0), r"hop_length=0"),
        (signal(), SR, dict(method="hilbert", hop_length=0), r"hop_length=0"),
        (signal(), SR, dict(n_fft=1), r"n_fft=1"),
        (signal(), SR, dict(n_fft=64, win_length=100), r"win_length=100.*n_fft=64"),
        (signal(), SR, dict(fmax=100.0), r"fmax=100 Hz.*Nyquist.*64 Hz"),
        (signal(), SR, dict(method="mel", fmax=65.0, n_fft=64), r"fmax=65 Hz.*Nyquist"),
        (signal(), SR, dict(method="cwt", fmax=80.0), r"fmax=80 Hz.*Nyquist"),
        (signal(), SR, dict(method="hilbert", fmax=64.0), r"fmax=64 Hz.*Nyquist"),
        (signal(), SR, dict(fmin=30.0, fmax=10.0), r"fmin=30 Hz.*fmax=10 Hz"),
        (signal(), SR, dict(fmin=10.0, fmax=10.0), r"fmin=10 Hz.*fmax=10 Hz"),
        (signal(), SR, dict(fmin=-1.0), r"fmin=-1\.0"),
        (signal(), SR, dict(method="cwt", fmin=0.0), r"fmin=0\.0"),
        (signal(), SR, dict(method="cwt", n_freqs=0), r"n_freqs=0"),
        (signal(), SR, dict(method="mel", n_mels=0), r"n_mels=0"),
        (
            signal(),
            SR,
            dict(method="cwt", spacing="loglog"),
            r"spacing 'loglog'.*available: linear, log",
        ),
        (signal(), SR, dict(method="cwt", bandwidth=0.0), r"bandwidth=0\.0"),
        (
            signal(),
            SR,
            dict(method="hilbert", output="phase"),
            r"output 'phase'.*envelope, frequency",
        ),
        (signal(), SR, dict(window="hanning-ish"), r"window 'hanning-ish'"),
        (signal(), SR, dict(pad_mode="wrap"), r"pad_mode 'wrap'.*circular"),
        (signal(), SR, dict(power=0.0), r"power=0\.0"),
        (
            signal(),
            SR,
            dict(method="cwtt"),
            r"transform 'cwtt' \(did you mean 'cwt'\?\); available: cwt, hilbert, mel, stft",
        ),
        (
            signal(),
            SR,
            dict(method="STFT"),
            r"transform 'STFT'.*available: cwt, hilbert, mel, stft",
        ),
        (signal(), SR, dict(colormap="virdis"), r"colormap 'virdis'.*did you mean 'viridis'"),
        (
            signal(),
            SR,
            dict(n_ftt=256),
            r"unknown parameter\(s\) n_ftt for transform 'stft'; accepted: n_fft",
        ),
        (signal(), SR, dict(normalize="fixed"), r"vmin=None, vmax=None"),
        (signal(), SR, dict(normalize="fixed", vmin=0.0, vmax=-1.0), r"vmax=-1\.0.*vmin=0\.0"),
        (
            signal(),
            SR,
            dict(normalize="percentile", percentiles=(50.0, 50.0)),
            r"percentiles=\(50\.0, 50\.0\)",
        ),
        (signal(), SR, dict(size=0), r"size=0"),
        (signal(), SR, dict(size=(227,)), r"size=\(227,\)"),
        (signal(), SR, dict(channels="max"), r"channels 'max'.*each, mean, tile"),
    ],
)
def test_bad_input_raises_parameter_error_naming_it(sig, sample_rate, params, pattern):
    with pytest.raises(ParameterError, match=pattern) as err:
        spectrogram(sig, sample_rate, **params)
    assert isinstance(err.value, ValueError) and isinstance(err.value, sigalex.SigalexError)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("method", METHODS)
def test_each_transform_checks_the_signal(method):
    fn = getattr(sigalex.transforms, method)
    for bad, pattern in [(nan_signal(), "NaN"), (inf_signal(), "inf"), (np.array([]), "empty")]:
        with pytest.raises(ParameterError, match=pattern):
            fn(bad, SR, **METHOD_PARAMS[method])
    with pytest.raises(ParameterError, match="sample_rate=0"):
        fn(signal(), 0, **METHOD_PARAMS[method])
    with pytest.raises(ParameterError, match="signal must have a time axis"):
        build_transform(method, SR, **METHOD_PARAMS[method])(torch.tensor(1.0))


def test_frontend_rejects_bad_window_shapes():
    frontend = ImageFrontend(SR, "stft", n_fft=64, size=32)
    with pytest.raises(ParameterError, match=r"\(batch, n_channels, n_times\).*\(2, 1, 1, 300\)"):
        frontend(torch.zeros(2, 1, 1, 300))
    with pytest.raises(ParameterError, match=r"too short.*n_times=10"):
        frontend(torch.zeros(2, 1, 10))


def test_parameter_error_is_a_value_error():
    assert issubclass(ParameterError, ValueError)
    with pytest.raises(ValueError):
        spectrogram([], SR)


# --------------------------------------------------------------------------------------------
# property tests
# --------------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def transform_case(draw):
    method = draw(st.sampled_from(METHODS))
    sample_rate = draw(st.sampled_from([100.0, 173.61, 256.0, 8000.0]))
    nyq = sample_rate / 2
    if method in ("stft", "mel"):
        n_fft = draw(st.integers(2, 128))
        win_length = draw(st.integers(1, n_fft))
        params = dict(
            n_fft=n_fft,
            win_length=win_length,
            hop_length=draw(st.integers(1, 64)),
            center=draw(st.booleans()),
            window=draw(st.sampled_from(["hann", "hamming", "boxcar", "blackman"])),
        )
        if method == "mel":
            params["n_mels"] = draw(st.integers(1, 12))
            params["fmax"] = nyq * draw(st.floats(0.3, 1.0))
        else:
            params["power"] = draw(st.sampled_from([1.0, 2.0]))
        min_len = n_fft
    else:
        lo = draw(st.floats(0.005, 0.2))
        hi = draw(st.floats(lo + 0.02, 0.45))
        params = dict(
            fmin=lo * sample_rate, fmax=hi * sample_rate, hop_length=draw(st.integers(1, 9))
        )
        params["spacing"] = draw(st.sampled_from(["log", "linear"]))
        if method == "cwt":
            params["n_freqs"] = draw(st.integers(1, 12))
            params["bandwidth"] = draw(st.sampled_from([0.5, 1.5, 4.0]))
        else:
            params["n_bands"] = draw(st.integers(1, 8))
        min_len = 2
    n_times = draw(st.integers(min_len, 600))
    lead = draw(st.sampled_from([(), (2,), (1, 2)]))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    return method, sample_rate, params, n_times, lead, dtype


@PROPERTY
@given(case=transform_case(), seed=st.integers(0, 2**16))
def test_property_transform_shapes_and_values(case, seed):
    method, sample_rate, params, n_times, lead, dtype = case
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # empty mel filters at tiny n_fft
        module = build_transform(method, sample_rate, **params)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((*lead, n_times))).to(dtype)
    out = module(x)
    assert tuple(out.shape) == (*lead, *module.output_shape(n_times))
    assert out.dtype == dtype
    assert bool(torch.isfinite(out).all()) and bool((out >= 0).all())
    freqs = module.frequencies
    assert bool(torch.all(freqs[1:] > freqs[:-1])) and freqs[-1] <= sample_rate / 2 + 1e-6
    assert len(module.times(n_times)) == out.shape[-1]


@PROPERTY
@given(
    case=transform_case(),
    size=st.one_of(st.integers(2, 80), st.tuples(st.integers(2, 80), st.integers(2, 80))),
    colormap=st.sampled_from(["viridis", "jet", "magma", "inferno", "gray"]),
    normalize=st.sampled_from(["minmax", "percentile"]),
    scale=st.sampled_from(["db", "log", "linear"]),
    n_channels=st.integers(1, 3),
    channels=st.sampled_from(["mean", "tile", "each"]),
)
def test_property_images_in_unit_range(
    case, size, colormap, normalize, scale, n_channels, channels
):
    method, sample_rate, params, n_times, _, dtype = case
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        frontend = ImageFrontend(
            sample_rate,
            method,
            size=size,
            colormap=colormap,
            normalize=normalize,
            scale=scale,
            channels=channels,
            **params,
        )
    x = torch.from_numpy(
        np.random.default_rng(n_times).standard_normal((2, n_channels, n_times))
    ).to(dtype)
    images = frontend(x)
    h, w = (size, size) if isinstance(size, int) else size
    expected = (2, n_channels, 3, h, w) if channels == "each" else (2, 3, h, w)
    assert tuple(images.shape) == expected and images.dtype == dtype
    assert bool(torch.isfinite(images).all())
    assert images.min() >= 0 and images.max() <= 1


@PROPERTY
@given(
    n_freqs=st.integers(2, 40),
    n_frames=st.integers(2, 40),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from(["db", "log", "linear"]),
)
def test_property_minmax_uses_the_full_range(n_freqs, n_frames, seed, scale):
    # Without a resize (size = map shape) a non-constant map's min and max become exactly
    # black and white in gray: minmax uses the full uint8 range.
    maps = torch.from_numpy(np.random.default_rng(seed).random((1, 1, n_freqs, n_frames)) + 1e-3)
    image = Render(size=(n_freqs, n_frames), colormap="gray", scale=scale, image_dtype="uint8")(
        maps
    )
    assert image.dtype == torch.uint8
    assert int(image.min()) == 0 and int(image.max()) == 255


@PROPERTY
@given(n_times=st.integers(64, 2000), sample_rate=st.floats(50.0, 20000.0), size=st.integers(8, 64))
def test_property_spectrogram_api_shape(n_times, sample_rate, size):
    x = np.random.default_rng(n_times).standard_normal(n_times).astype(np.float32)
    image = spectrogram(x, sample_rate, size=size, n_fft=64)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    # a noise spectrogram spans the colormap: both ends of viridis within a few levels
    assert not math.isclose(float(image.std()), 0.0)
