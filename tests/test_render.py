"""Rendering: scaling, normalisation, channel fusion and order, colormaps, resize, PNG output."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from conftest import cpu_and_cuda
from PIL import Image

import sigalex
from sigalex.frontend import ImageFrontend
from sigalex.render import (
    Render,
    apply_colormap,
    colormap_lut,
    normalize_map,
    save_png,
    scale_map,
    tile_channels,
    to_pil,
    to_uint8,
)

# One 8-bit level, plus float slack for the division by 255.
LEVEL = 1 / 255 + 1e-9


def ramp_maps(n_freqs: int = 8, n_frames: int = 256) -> torch.Tensor:
    """(1, 1, n_freqs, n_frames) with values at the centres of matplotlib's 256 colormap bins
    along time: (k + 0.5) / 256, so a nearest-entry lookup never crosses a bin boundary."""
    v = (torch.arange(n_frames, dtype=torch.float64) + 0.5) / n_frames
    return v.expand(n_freqs, n_frames)[None, None].clone()


def identity_render(shape, **kw) -> Render:
    """A Render that shows values in [0, 1] as they are, with no resize (size = map shape)."""
    return Render(size=shape, scale="linear", normalize="fixed", vmin=0.0, vmax=1.0, **kw)


# --------------------------------------------------------------------------------------------
# scaling
# --------------------------------------------------------------------------------------------


def test_db_scale_and_top_db_per_image():
    values = torch.tensor([[[1.0, 10.0], [100.0, 1e-12]], [[1e4, 1e3], [1e2, 1e-3]]])
    db = scale_map(values, scale="db", power=2.0, top_db=None)
    torch.testing.assert_close(db[0, 0], torch.tensor([0.0, 10.0]))
    # 10/power * log10, with amin = 1e-10 as the floor before the log
    assert db[0, 1, 1].item() == pytest.approx(-100.0)
    mag = scale_map(values, scale="db", power=1.0, top_db=None)
    torch.testing.assert_close(mag, 2 * db)  # magnitude dB = 20 log10
    floored = scale_map(values, scale="db", power=2.0, top_db=30.0)
    # the floor is relative to EACH image's own peak (20 dB and 40 dB here)
    assert floored[0].min().item() == pytest.approx(20.0 - 30.0)
    assert floored[1].min().item() == pytest.approx(40.0 - 30.0)
    assert floored[1, 0, 0].item() == pytest.approx(40.0)


def test_db_matches_librosa(rng):
    import librosa

    mag = rng.random((30, 40)) ** 6 + 1e-9
    got = scale_map(torch.from_numpy(mag)[None], scale="db", power=1.0, top_db=80.0)[0]
    ref = librosa.amplitude_to_db(mag, ref=1.0, amin=1e-10, top_db=80.0)
    # same float64 formula: rounding only
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-9)
    got = scale_map(torch.from_numpy(mag**2)[None], scale="db", power=2.0, top_db=80.0)[0]
    ref = librosa.power_to_db(mag**2, ref=1.0, amin=1e-10, top_db=80.0)
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-9)


def test_magnitude_and_power_give_the_same_picture(rng):
    mag = torch.from_numpy(rng.random((2, 1, 20, 30)) + 0.01)
    a = Render(size=40, power=1.0)(mag)
    b = Render(size=40, power=2.0)(mag**2)
    assert (a - b).abs().max() <= LEVEL


def test_log_and_linear_scales():
    values = torch.tensor([[0.0, 1.0], [3.0, 7.0]])
    torch.testing.assert_close(scale_map(values, scale="log"), torch.log1p(values))
    assert scale_map(values, scale="linear") is values
    with pytest.raises(sigalex.ParameterError, match="scale 'dB'"):
        scale_map(values, scale="dB")


# --------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------


def test_minmax_is_per_image(rng):
    values = torch.from_numpy(rng.standard_normal((3, 2, 5, 7)) * 10 + 3)
    unit = normalize_map(values, normalize="minmax")
    torch.testing.assert_close(unit.amin(dim=(-2, -1)), torch.zeros(3, 2, dtype=torch.float64))
    torch.testing.assert_close(unit.amax(dim=(-2, -1)), torch.ones(3, 2, dtype=torch.float64))
    # affine: the order and ratios of differences are kept
    lo = values.amin(dim=(-2, -1), keepdim=True)
    hi = values.amax(dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(unit, (values - lo) / (hi - lo))
    # a constant image becomes 0, not NaN
    assert normalize_map(torch.full((1, 4, 4), 5.0)).eq(0).all()


def test_percentile_clips_to_the_requested_quantiles(rng):
    values = torch.from_numpy(rng.standard_normal((2, 50, 40)))
    unit = normalize_map(values, normalize="percentile", percentiles=(5.0, 95.0))
    for i in range(2):
        lo, hi = np.percentile(values[i].numpy(), [5, 95])
        expected = np.clip((values[i].numpy() - lo) / (hi - lo), 0, 1)
        np.testing.assert_allclose(unit[i].numpy(), expected, atol=1e-12)
        # about 5% at each end is clipped
        assert 0.03 < (unit[i] == 0).double().mean() < 0.07
        assert 0.03 < (unit[i] == 1).double().mean() < 0.07


def test_fixed_range_keeps_colours_comparable_across_images():
    quiet = torch.full((1, 1, 8, 8), 1e-3)
    loud = torch.full((1, 1, 8, 8), 1e-3)
    loud[..., 4:] = 1.0
    maps = torch.cat([quiet, loud])
    fixed = Render(size=8, normalize="fixed", vmin=-80.0, vmax=0.0, power=1.0)(maps)
    # the same value (1e-3 = -60 dB) has the same colour in both images
    torch.testing.assert_close(fixed[0, :, 0, 0], fixed[1, :, 0, 0])
    expected = colormap_lut("viridis")[round(20 / 80 * 1023)]
    assert (fixed[0, :, 0, 0] - expected).abs().max() <= LEVEL
    # with per-image minmax the constant quiet image is all colour 0 instead
    minmax = Render(size=8, normalize="minmax")(maps)
    assert not torch.equal(minmax[0, :, 0, 0], fixed[0, :, 0, 0])
    # values beyond the range clip
    unit = normalize_map(
        torch.tensor([[[-100.0, -40.0, 10.0]]]), normalize="fixed", vmin=-80, vmax=0
    )
    torch.testing.assert_close(unit, torch.tensor([[[0.0, 0.5, 1.0]]]))


# --------------------------------------------------------------------------------------------
# colormaps, orientation, size
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["viridis", "jet", "magma", "inferno", "gray"])
@pytest.mark.parametrize("fast", [True, False])
def test_colormap_matches_matplotlib(name, fast, monkeypatch):
    monkeypatch.setattr(Render, "uint8_on_cpu", fast)
    maps = ramp_maps()
    image = identity_render((8, 256), colormap=name)(maps)[0]  # (3, 8, 256)
    v = maps[0, 0, 0].numpy()
    expected = matplotlib.colormaps[name](v)[:, :3]  # (256, 3)
    got = image[:, 0, :].T.numpy()
    # Values sit at matplotlib's bin centres, so the 1024-entry LUT picks the same colour:
    # the only difference is rounding to 8-bit levels (at most half a level).
    np.testing.assert_allclose(got, expected, rtol=0, atol=0.5 / 255 + 1e-9)
    # a wrong colormap is far outside that
    other = matplotlib.colormaps["plasma" if name != "plasma" else "viridis"](v)[:, :3]
    assert np.abs(got - other).max() > 10 / 255


def test_colormap_lut_and_apply():
    lut = colormap_lut("viridis", dtype=torch.float64)
    assert lut.shape == (1024, 3) and lut.min() >= 0 and lut.max() <= 1
    np.testing.assert_allclose(lut[0].numpy(), matplotlib.colormaps["viridis"](0.0)[:3])
    np.testing.assert_allclose(lut[-1].numpy(), matplotlib.colormaps["viridis"](1.0)[:3])
    unit = torch.tensor([[0.0, 1.0], [0.5, 2.0]])  # 2.0 clamps to 1
    rgb = apply_colormap(unit, lut)
    assert rgb.shape == (3, 2, 2)
    torch.testing.assert_close(rgb[:, 1, 1], lut[-1])
    torch.testing.assert_close(rgb[:, 1, 0], lut[round(0.5 * 1023)])


def test_any_matplotlib_colormap_and_unknown_colormap():
    Render(colormap="twilight")  # any matplotlib name is accepted
    with pytest.raises(sigalex.ParameterError) as err:
        Render(colormap="viridiss")
    msg = str(err.value)
    assert "'viridiss'" in msg and "viridis" in msg and "did you mean" in msg
    with pytest.raises(sigalex.ParameterError, match="colormap"):
        Render(colormap=None)


def test_low_frequencies_at_the_bottom():
    maps = torch.zeros(1, 1, 10, 12, dtype=torch.float64)
    maps[0, 0, 0] = 1.0  # energy only in the lowest-frequency row
    image = identity_render((10, 12), colormap="gray")(maps)[0]
    assert torch.all(image[:, -1] == 1.0)  # bottom row white
    assert torch.all(image[:, :-1] == 0.0)
    # time runs left to right
    maps = torch.zeros(1, 1, 10, 12, dtype=torch.float64)
    maps[..., 0] = 1.0
    image = identity_render((10, 12), colormap="gray")(maps)[0]
    assert torch.all(image[:, :, 0] == 1.0) and torch.all(image[:, :, 1:] == 0.0)


@pytest.mark.parametrize("size", [227, (100, 300), (300, 64), 2])
def test_size_is_configurable(size, rng):
    maps = torch.from_numpy(rng.random((2, 1, 33, 50)))
    out = Render(size=size)(maps)
    h, w = (size, size) if isinstance(size, int) else size
    assert out.shape == (2, 3, h, w)
    assert out.dtype == torch.float64 and out.min() >= 0 and out.max() <= 1


def test_resize_has_antialiasing():
    # a 1-pixel checkerboard squeezed 8x averages to mid-grey instead of aliasing to black or
    # white (bilinear without antialias would sample it)
    board = (torch.arange(64)[:, None] + torch.arange(64)[None]) % 2
    maps = board.double()[None, None]
    image = identity_render((8, 8), colormap="gray")(maps)
    full = identity_render((64, 64), colormap="gray")(maps)
    assert full.min() == 0 and full.max() == 1
    assert (image - 0.5).abs().max() <= 2 / 255


def test_render_output_uint8_and_float_path_agree(rng, monkeypatch):
    maps = torch.from_numpy(rng.random((2, 3, 65, 150)) ** 4)
    for channels in ("mean", "tile", "each"):
        for size in (227, (50, 90)):
            fast = Render(size=size, channels=channels)(maps)
            as_uint8 = Render(size=size, channels=channels, image_dtype="uint8")(maps)
            assert as_uint8.dtype == torch.uint8
            # a per-call image_dtype (what Predictor uses on the CPU) is the same image
            per_call = Render(size=size, channels=channels)(maps, image_dtype="uint8")
            assert torch.equal(per_call, as_uint8)
            torch.testing.assert_close(fast, as_uint8.double() / 255, rtol=0, atol=1e-12)
            # The float path (used on GPUs) must agree with the uint8 CPU path within one 8-bit
            # level: the guarantee CPU/GPU parity relies on.
            monkeypatch.setattr(Render, "uint8_on_cpu", False)
            slow = Render(size=size, channels=channels)(maps)
            slow8 = Render(size=size, channels=channels, image_dtype="uint8")(maps)
            monkeypatch.setattr(Render, "uint8_on_cpu", True)
            assert (fast - slow).abs().max() <= LEVEL
            assert (as_uint8.int() - slow8.int()).abs().max() <= 1
            # float images hold exact 8-bit levels either way
            assert torch.equal((slow * 255).round(), slow * 255)


@pytest.mark.parametrize("device", cpu_and_cuda())
def test_render_device_parity(device, rng):
    maps = torch.from_numpy(rng.random((2, 3, 40, 90))).float()
    for channels in ("mean", "tile", "each"):
        render = Render(size=(64, 80), channels=channels)
        ref = render(maps)
        got = render.to(device)(maps.to(device))
        assert got.device.type == device
        # images within one 8-bit level per pixel
        assert (got.cpu() - ref).abs().max() <= LEVEL


# --------------------------------------------------------------------------------------------
# multichannel: mean, tile, each
# --------------------------------------------------------------------------------------------


def level_maps(levels, shape=(4, 6)) -> torch.Tensor:
    """(1, n_channels, *shape) with channel i constant at levels[i]."""
    return (
        torch.tensor(levels, dtype=torch.float64)[None, :, None, None]
        .expand(1, len(levels), *shape)
        .clone()
    )


def test_tile_puts_channel_zero_top_left_row_major():
    levels = [0.1, 0.3, 0.5, 0.7, 0.9]  # 5 channels → 3 columns, 2 rows, one empty cell
    h, w = 4, 6
    maps = level_maps(levels, (h, w))
    image = identity_render((2 * h, 3 * w), colormap="gray", channels="tile")(maps)[0, 0]
    cells = image.reshape(2, h, 3, w).permute(0, 2, 1, 3)  # (row, col, h, w)
    for i, level in enumerate(levels):
        r, c = divmod(i, 3)
        assert (cells[r, c] - level).abs().max() <= 0.5 / 255 + 1e-9, (i, r, c)
    assert cells[1, 2].eq(0).all()  # the unused cell


def test_tile_keeps_each_channels_frequency_orientation():
    maps = torch.zeros(1, 4, 5, 3, dtype=torch.float64)
    maps[:, :, 0] = 1.0  # lowest row of every channel
    image = identity_render((10, 6), colormap="gray", channels="tile")(maps)[0, 0]
    bright_rows = image.eq(1).all(dim=1).nonzero().flatten().tolist()
    assert bright_rows == [4, 9]  # the bottom row of each cell


def test_tile_normalises_channels_together(rng):
    maps = torch.ones(1, 2, 6, 6, dtype=torch.float64)
    maps[0, 1] *= 100.0  # channel 1 is 20 dB louder
    maps[0, 0, 0, 0] = 1e-2  # so channel 0 has a range of its own
    image = Render(size=(6, 12), channels="tile", colormap="gray")(maps)[0]
    # channel 1's cell (right) is brighter than channel 0's (left): amplitudes compare
    assert image[0, :, 6:].mean() > image[0, 1:, :6].max()
    each = Render(size=6, channels="each", colormap="gray")(maps)[0]
    assert each.shape == (2, 3, 6, 6)


def test_tile_channels_places_each_channel_row_major_and_fills_the_rest():
    images = torch.arange(5 * 2 * 3, dtype=torch.float32).reshape(1, 5, 2, 3)
    grid = tile_channels(images, fill=-1.0)[0]  # 5 channels: 2 rows × 3 columns of 2×3 cells
    assert grid.shape == (4, 9)
    for c in range(5):
        r, k = divmod(c, 3)
        torch.testing.assert_close(grid[2 * r : 2 * r + 2, 3 * k : 3 * k + 3], images[0, c])
    assert grid[2:, 6:].eq(-1.0).all()


@pytest.mark.parametrize("channels", ["mean", "tile", "each"])
@pytest.mark.parametrize(
    "options",
    [{}, {"scale": "log"}, {"normalize": "fixed", "vmin": -40.0, "vmax": 0.0},
     {"normalize": "percentile"}],
)  # fmt: skip
@pytest.mark.parametrize("image_dtype", ["uint8", "float"])
def test_render_leaves_the_maps_it_is_given_alone(channels, options, image_dtype):
    # Render scales and normalises in place, on its own copy: never on the caller's maps.
    maps = torch.rand(2, 3, 8, 10)
    before = maps.clone()
    Render(size=16, channels=channels, image_dtype=image_dtype, **options)(maps)
    assert torch.equal(maps, before)


def test_scale_and_normalize_map_return_new_tensors():
    values = torch.rand(2, 4, 5) + 0.1
    before = values.clone()
    for scale in ("db", "log"):
        scale_map(values, scale=scale)
    normalize_map(values)
    normalize_map(values, normalize="fixed", vmin=0.0, vmax=2.0)
    assert torch.equal(values, before)


def test_tile_channels_grid_shapes():
    for n, (rows, cols) in {
        1: (1, 1),
        2: (1, 2),
        3: (2, 2),
        4: (2, 2),
        5: (2, 3),
        23: (5, 5),
    }.items():
        out = tile_channels(torch.zeros(2, n, 3, 4))
        assert out.shape == (2, rows * 3, cols * 4)


def test_each_keeps_channel_order_and_mean_averages():
    levels = [0.2, 0.8, 0.5]
    maps = level_maps(levels)
    each = identity_render((4, 6), colormap="gray", channels="each")(maps)
    assert each.shape == (1, 3, 3, 4, 6)
    for i, level in enumerate(levels):
        assert (each[0, i] - level).abs().max() <= 0.5 / 255 + 1e-9
    mean = identity_render((4, 6), colormap="gray", channels="mean")(maps)
    assert mean.shape == (1, 3, 4, 6)
    assert (mean - 0.5).abs().max() <= 0.5 / 255 + 1e-9


def test_mean_averages_linear_values_before_scaling():
    a = torch.full((1, 1, 4, 4), 1.0, dtype=torch.float64)
    a[..., :2] = 100.0
    b = torch.full((1, 1, 4, 4), 1.0, dtype=torch.float64)
    maps = torch.cat([a, b], dim=1)
    fused = Render(size=4, channels="mean", scale="linear")(maps)
    direct = Render(size=4, channels="mean", scale="linear")((a + b) / 2)
    torch.testing.assert_close(fused, direct)


def test_batch_consistency_of_render(rng):
    maps = torch.from_numpy(rng.random((4, 3, 30, 40)))
    for channels in ("mean", "tile", "each"):
        render = Render(size=(50, 60), channels=channels, normalize="percentile")
        batch = render(maps)
        items = torch.cat([render(maps[i : i + 1]) for i in range(4)])
        torch.testing.assert_close(batch, items, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# bad parameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(normalize="fixed"), "vmin"),
        (dict(normalize="fixed", vmin=0.0), r"vmax=None"),
        (dict(normalize="fixed", vmin=1.0, vmax=1.0), r"vmax=1\.0.*vmin=1\.0"),
        (dict(normalize="percentile", percentiles=(99.0, 1.0)), r"percentiles=\(99\.0, 1\.0\)"),
        (dict(normalize="percentile", percentiles=(-1.0, 50.0)), r"percentiles"),
        (dict(normalize="percentile", percentiles=(1.0, 101.0)), r"percentiles"),
        (dict(normalize="zscore"), "normalize 'zscore'"),
        (dict(size=0), "size=0"),
        (dict(size=-5), "size=-5"),
        (dict(size=(10, 20, 30)), r"size=\(10, 20, 30\)"),
        (dict(size=(10, 1.5)), "size=1.5"),
        (dict(size="227"), "size='227'"),
        (dict(channels="stack"), "channels 'stack'"),
        (dict(scale="decibel"), "scale 'decibel'"),
        (dict(top_db=-10.0), "top_db=-10"),
        (dict(image_dtype="png"), "image_dtype 'png'"),
    ],
)
def test_render_rejects_bad_parameters(kwargs, pattern):
    with pytest.raises(sigalex.ParameterError, match=pattern):
        Render(**kwargs)


def test_render_rejects_wrong_map_rank():
    with pytest.raises(sigalex.ParameterError, match=r"\(batch, n_channels, n_freqs, n_frames\)"):
        Render()(torch.zeros(5, 6))


# --------------------------------------------------------------------------------------------
# PIL / PNG
# --------------------------------------------------------------------------------------------


def test_to_uint8_and_to_pil(rng):
    images = torch.from_numpy(rng.random((2, 3, 5, 7)))
    arr = to_uint8(images)
    assert arr.shape == (2, 5, 7, 3) and arr.dtype == np.uint8
    np.testing.assert_array_equal(
        arr, np.round(images.numpy() * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    )
    pil = to_pil(images[0])
    assert pil.mode == "RGB" and pil.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(pil), arr[0])
    assert to_pil(arr[1]).size == (7, 5)
    with pytest.raises(sigalex.ParameterError, match=r"\(2, 5, 7, 3\)"):
        to_pil(arr)


def test_save_png_is_atomic_and_overwrites(tmp_path, rng):
    first = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
    second = 255 - first
    path = tmp_path / "sub" / "dir" / "image.png"
    assert save_png(first, path) == path
    with path.open("rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(np.asarray(Image.open(path)), first)
    save_png(torch.from_numpy(second).permute(2, 0, 1).double() / 255, path)  # overwrite
    np.testing.assert_array_equal(np.asarray(Image.open(path)), second)
    assert sorted(p.name for p in path.parent.iterdir()) == ["image.png"]  # no temp file left
    # a failure leaves neither a temp file nor a partial PNG behind
    with pytest.raises(sigalex.ParameterError):
        save_png(np.zeros((4, 4), np.uint8), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["sub"]


def test_render_per_call_image_dtype_is_checked():
    with pytest.raises(sigalex.ParameterError, match="image_dtype"):
        Render()(torch.ones(1, 1, 4, 4), image_dtype="int8")


# --------------------------------------------------------------------------------------------
# float and uint8 images: the same picture in every combination
# --------------------------------------------------------------------------------------------

# Small maps, each method's own shape: the resize to (40, 56) enlarges some axes and shrinks
# others (tiles of 3 channels are 2 × 2 maps), so both the plain and the antialiased kernel run.
IDENTITY_METHODS = {
    "stft": {"n_fft": 64, "hop_length": 8},  # 33 × 49 per channel
    "mel": {"n_fft": 128, "hop_length": 16, "n_mels": 24},  # 24 × 25
    "cwt": {"n_freqs": 24},  # 24 × 96 (max_frames = twice the width)
    "hilbert": {"n_bands": 16},  # 16 × 96
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("method", list(IDENTITY_METHODS))
def test_uint8_and_float_images_are_bit_identical_in_every_combination(method, dtype):
    """``frontend(x, image_dtype="uint8")`` and ``frontend(x)`` hold the same 8-bit picture:
    the float image is exactly the uint8 one over 255, so ``round(float * 255)`` gives it back
    bit for bit. On the CPU the two go different ways after normalisation (packed RGBA gather +
    4-channel uint8 resize, against a 3-channel colormap gather + 3-channel uint8 resize).

    Checked: 4 methods (stft, mel, cwt, hilbert) × 3 channel modes (mean, tile, each) × 3 scales
    (db, log, linear) × 3 normalisations (minmax, percentile, fixed) × 2 input dtypes (float32,
    float64) = 216 combinations (parametrised by method and dtype, 27 each), on two 3-channel
    windows of 1.5 s at 256 Hz rendered at 40 × 56. ``fixed`` takes vmin / vmax at the 5th and
    95th percentiles of the method's scaled maps, so pixels clip at both ends and the image in
    between is not flat. (BENCHMARKS' "240 combinations" is a different check: images before
    and after Render's in-place rewrite, commit a82260c.)
    """
    gen = torch.Generator().manual_seed(7)
    gains = torch.tensor([1.0, 3.0, 0.3], dtype=torch.float64).view(1, 3, 1)
    t = torch.arange(384, dtype=torch.float64) / 256.0
    x = torch.randn(2, 3, 384, generator=gen, dtype=torch.float64) * gains
    x = (x + 2.0 * torch.sin(2 * torch.pi * 10.0 * t)).to(dtype)
    params = IDENTITY_METHODS[method]
    transform = ImageFrontend(256.0, method, size=(40, 56), **params).transform
    maps, power = transform(x), transform.power
    mismatches = []
    for channels in ("mean", "tile", "each"):
        for scale in ("db", "log", "linear"):
            scaled = scale_map(maps.mean(1, keepdim=True) if channels == "mean" else maps,
                               scale=scale, power=power)  # fmt: skip
            lo, hi = torch.quantile(scaled.double().flatten(), torch.tensor([0.05, 0.95]).double())
            for normalize in ("minmax", "percentile", "fixed"):
                fixed = {"vmin": float(lo), "vmax": float(hi)} if normalize == "fixed" else {}
                frontend = ImageFrontend(
                    256.0, method, size=(40, 56), channels=channels, scale=scale,
                    normalize=normalize, **fixed, **params,
                )  # fmt: skip
                with torch.no_grad():
                    as_float = frontend(x)
                    as_uint8 = frontend(x, image_dtype="uint8")
                case = f"{method}/{channels}/{scale}/{normalize}/{dtype}"
                assert as_float.dtype == dtype and as_uint8.dtype == torch.uint8, case
                assert as_float.shape == as_uint8.shape, case
                n_images = as_uint8.shape[0] * (as_uint8.shape[1] if channels == "each" else 1)
                assert as_uint8.unique().numel() > 10, f"{case}: nearly flat images"
                back = (as_float * 255).round().to(torch.uint8)
                exact = torch.equal(as_float, as_uint8.to(dtype) / 255)
                if not (exact and torch.equal(back, as_uint8)):
                    diff = (back.int() - as_uint8.int()).abs()
                    mismatches.append(
                        f"{case}: {int((diff > 0).sum())} of {diff.numel()} values differ "
                        f"(max {int(diff.max())} levels, {n_images} images); "
                        f"float == uint8 / 255 exactly: {exact}"
                    )
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(
    "shape, size",
    [((59, 129), 227), ((17, 33), 64), ((300, 500), 227), ((2000, 3000), 227), ((500, 100), 227),
     ((227, 227), 227)],
)  # fmt: skip
def test_resize_levels_gives_the_uint8_cpu_resize_exactly(shape, size):
    """The export-safe resize (matrix products and floors) reproduces PyTorch's uint8 CPU
    resize bit for bit: upsampling (float32 products), mild and strong downsampling with
    antialiasing (float64 where float32 could not hold the sums), and no resize at all."""
    from sigalex.render import resize, resize_levels

    g = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (2, 4, *shape), generator=g, dtype=torch.uint8)
    want = resize(x8.contiguous(memory_format=torch.channels_last), size).float()
    got = resize_levels(x8.float(), size)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert torch.equal(got, want)
