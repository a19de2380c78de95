"""Time-frequency maps → RGB images: scaling, normalisation, channel fusion, colormap, resize.

Everything runs on the tensor's device in its dtype; a batch never leaves the device. Images
are float in [0, 1], shape ``(batch, 3, height, width)``, low frequencies at the bottom row.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from ._checks import choice, positive_float, positive_int
from ._files import atomic_path
from .errors import ParameterError

SCALES = ("db", "log", "linear")
NORMALIZATIONS = ("minmax", "percentile", "fixed")
CHANNEL_MODES = ("mean", "tile", "each")
#: Colormaps listed in errors and docs; any other matplotlib colormap name works as well.
COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "jet", "turbo", "gray", "hot")
#: Entries in a colormap lookup table; a value in [0, 1] takes the nearest entry, so the
#: quantisation step (1/1023) is well under one 8-bit level of any colormap's channels.
LUT_SIZE = 1024


def available_colormaps() -> list[str]:
    """Every colormap name accepted (those of matplotlib)."""
    import matplotlib

    return sorted(matplotlib.colormaps)


@functools.lru_cache(maxsize=32)
def _lut_numpy(name: str) -> np.ndarray:
    import matplotlib

    if not isinstance(name, str) or name not in matplotlib.colormaps:
        choice("colormap", name, COLORMAPS)  # raises, listing the common ones
    cmap = matplotlib.colormaps[name]
    return cmap(np.linspace(0.0, 1.0, LUT_SIZE))[:, :3].astype(np.float64)


def colormap_lut(name: str, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """The colormap ``name`` sampled at :data:`LUT_SIZE` levels: ``(1024, 3)`` RGB in [0, 1]."""
    return torch.from_numpy(_lut_numpy(name)).to(device=device, dtype=dtype)


#: The largest image side accepted, in pixels (AlexNet takes 227; a 100000-pixel side would
#: fill memory before failing).
MAX_SIZE = 4096


def _size(size) -> tuple[int, int]:
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ParameterError(f"size={size!r} must be an int or (height, width)")
        sides = positive_int("size", size[0], minimum=2), positive_int("size", size[1], minimum=2)
    else:
        s = positive_int("size", size, minimum=2)
        sides = s, s
    if max(sides) > MAX_SIZE:
        raise ParameterError(f"size={size!r}: at most {MAX_SIZE} pixels a side")
    return sides


def scale_map(
    values: torch.Tensor,
    *,
    scale: str = "db",
    power: float = 1.0,
    top_db: float | None = 80.0,
    amin: float = 1e-10,
) -> torch.Tensor:
    """Put a non-negative map on a display scale.

    ``"db"``: ``20 / power * log10(max(values, amin))`` dB, i.e. ``20 log10`` of a magnitude
    (``power=1``) and ``10 log10`` of a power (``power=2``) as librosa's ``amplitude_to_db`` /
    ``power_to_db``, so both give the same picture; floored at ``top_db`` below each image's
    maximum over its last two axes;
    ``"log"``: ``log1p(values)``; ``"linear"``: unchanged.
    """
    scale = choice("scale", scale, SCALES)
    if top_db is not None:
        top_db = positive_float("top_db", top_db)
    return _scale_map(values, scale, power, top_db, amin, inplace=False)


def _scale_map(values, scale, power, top_db, amin, *, inplace: bool) -> torch.Tensor:
    """:func:`scale_map` with checked arguments; ``inplace`` overwrites ``values`` (one pass
    over a batch of maps fewer per operator: they are tens of MB for multichannel tiles)."""
    if scale == "linear":
        return values
    if scale == "log":
        x = values.clamp_min_(0) if inplace else values.clamp_min(0)
        return x.log1p_()
    x = values.clamp_min_(amin) if inplace else values.clamp_min(amin)
    x = x.log10_().mul_(20.0 / power)
    if top_db is not None:
        x = x.clamp_min_(x.amax(dim=(-2, -1), keepdim=True) - top_db)
    return x


def normalize_map(
    values: torch.Tensor,
    *,
    normalize: str = "minmax",
    dims: int = 2,
    vmin: float | None = None,
    vmax: float | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> torch.Tensor:
    """Map each image (the last ``dims`` axes) to [0, 1].

    ``"minmax"``: per-image min → 0, max → 1 (a constant image becomes 0);
    ``"percentile"``: per-image ``percentiles`` (in %) → 0 and 1, values beyond are clipped;
    ``"fixed"``: ``vmin`` → 0 and ``vmax`` → 1 for every image, so amplitudes stay comparable
    across windows (in the units of the scale, e.g. dB).
    """
    normalize = choice("normalize", normalize, NORMALIZATIONS)
    if normalize == "fixed":
        if vmin is None or vmax is None:
            raise ParameterError(
                f"normalize='fixed' needs both vmin and vmax; got {vmin=}, {vmax=}"
            )
        if not vmax > vmin:
            raise ParameterError(f"vmax={vmax!r} must be greater than vmin={vmin!r}")
    elif normalize == "percentile":
        p_lo, p_hi = percentiles
        if not (0.0 <= p_lo < p_hi <= 100.0):
            raise ParameterError(f"percentiles={percentiles!r} must satisfy 0 <= low < high <= 100")
    return _normalize_map(values, normalize, dims, vmin, vmax, percentiles, inplace=False)


def _normalize_map(values, normalize, dims, vmin, vmax, percentiles, *, inplace: bool):
    """:func:`normalize_map` with checked arguments; ``inplace`` overwrites ``values``."""
    if normalize == "fixed":
        lo, span = vmin, vmax - vmin
    else:
        flat = values.flatten(start_dim=values.ndim - dims)
        if normalize == "minmax":
            lo, hi = flat.amin(-1), flat.amax(-1)
        else:
            p_lo, p_hi = percentiles
            q = torch.tensor([p_lo / 100.0, p_hi / 100.0], device=values.device, dtype=flat.dtype)
            lo, hi = torch.quantile(flat, q, dim=-1)
        shape = (*lo.shape, *([1] * dims))
        lo, hi = lo.reshape(shape), hi.reshape(shape)
        span = hi - lo
        span = torch.where(span > 0, span, torch.ones_like(span))
    out = values.sub_(lo) if inplace else values.sub(lo)
    return out.div_(span).clamp_(0.0, 1.0)


def tile_channels(images: torch.Tensor, *, fill: float = 0.0) -> torch.Tensor:
    """Arrange channel maps in a near-square grid, row-major in channel order.

    ``(..., n_channels, H, W)`` → ``(..., rows * H, cols * W)`` with
    ``cols = ceil(sqrt(n_channels))``; unused cells hold ``fill``.
    """
    *lead, n_channels, h, w = images.shape
    cols = math.ceil(math.sqrt(n_channels))
    rows = math.ceil(n_channels / cols)
    full, rest = divmod(n_channels, cols)
    # One copy into the grid: whole rows of tiles, then the last, partial row and its fill.
    grid = images.new_empty((*lead, rows, h, cols, w))
    whole = images[..., : full * cols, :, :].unflatten(-3, (full, cols))
    grid[..., :full, :, :, :] = whole.transpose(-3, -2)
    if rest:
        grid[..., full, :, :rest, :] = images[..., full * cols :, :, :].transpose(-3, -2)
        grid[..., full, :, rest:, :] = fill
    return grid.reshape(*lead, rows * h, cols * w)


def apply_colormap(unit: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Colour a [0, 1] tensor ``(..., H, W)`` through ``lut`` ``(L, 3)`` → ``(..., 3, H, W)``.

    Each value takes the nearest of the ``L`` entries (``round(value * (L - 1))``); the result
    has ``lut``'s dtype (float in [0, 1], or uint8 for the fast CPU path).
    """
    idx = _lut_index(unit, lut.shape[0])
    lut_t = lut.t().contiguous()
    return torch.stack([torch.take(lut_t[c], idx) for c in range(3)], dim=-3)


def _lut_index(
    unit: torch.Tensor, size: int, *, inplace: bool = False, dtype=torch.int64
) -> torch.Tensor:
    """Nearest LUT entry for values in [0, 1]: ``round(value * (size - 1))``, int64 (or
    ``dtype``); ``inplace`` uses ``unit`` for the intermediate values."""
    x = unit.clamp_(0.0, 1.0) if inplace else unit.clamp(0.0, 1.0)
    return x.mul_(size - 1).round_().to(dtype, memory_format=torch.contiguous_format)


def _packed_rgba(lut8: torch.Tensor) -> torch.Tensor:
    """``(L, 3)`` uint8 colours as ``(L,)`` int32 words whose bytes in memory are R, G, B, 0."""
    rgba = torch.zeros(lut8.shape[0], 4, dtype=torch.uint8, device=lut8.device)
    rgba[:, :3] = lut8
    return rgba.view(torch.int32).squeeze(-1)


def resize(images: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize with antialiasing of ``(..., H, W)`` to ``size`` (int or (h, w)).

    Float or uint8 input; uint8 with channels-last layout takes PyTorch's SIMD path on CPU.
    """
    height, width = _size(size)
    *lead, h, w = images.shape
    if (h, w) == (height, width):
        return images
    if images.ndim == 4:
        flat = images
    else:
        flat = images.reshape(-1, 1, h, w)
    # Antialiasing only changes a downsampled axis (upsampling is plain bilinear either way), and
    # the plain kernel is faster: use it when both axes grow.
    antialias = height < h or width < w
    out = nn.functional.interpolate(
        flat, size=(height, width), mode="bilinear", align_corners=False, antialias=antialias
    )
    return out.reshape(*lead, height, width)


@functools.lru_cache(maxsize=8)
def _resize_matrices(h: int, w: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    # :func:`resize` as ``rows @ x @ cols.T``, float64 ``rows`` (height, h) and ``cols``
    # (width, w): bilinear resizing, with or without antialiasing, is separable, so each is the
    # 1-D resize of an identity by interpolate itself (the same kernel and antialiasing rule).
    # NumPy arrays: made inside a traced forward pass, they enter the graph as constants (a
    # tensor would bring the interpolation of the identity along as operators).
    antialias = height < h or width < w
    out = []
    for n_in, n_out in ((h, height), (w, width)):
        eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, 1, 1, n_in)
        line = nn.functional.interpolate(
            eye, size=(1, n_out), mode="bilinear", align_corners=False, antialias=antialias
        )
        out.append(line.reshape(n_in, n_out).t().contiguous().numpy())
    return out[0], out[1]


def _fixed_point(weights: np.ndarray) -> tuple[np.ndarray, int]:
    """``(integer weights, precision)`` of one axis of PyTorch's uint8 CPU resize: the float
    weights times ``2**precision``, rounded half away from zero, with the largest precision
    (at most 22) whose doubled largest weight stays under 2**15 (an int16 weight)."""
    peak = float(weights.max())
    precision = 0
    while precision < 22 and int(0.5 + peak * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    scaled = weights * (1 << precision)
    return np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)), precision


def resize_levels(levels: torch.Tensor, size) -> torch.Tensor:
    """:func:`resize` of 8-bit levels ``(..., h, w)`` held as floats, to the very levels the
    uint8 CPU path gives (:attr:`Render.uint8_on_cpu`), with export-safe operators only.

    PyTorch resizes uint8 images in two passes, width then height, each a sum of int16
    fixed-point weights (:func:`_fixed_point`) rounded down after adding half a unit and
    clamped to 0..255. Here each pass is a matrix product of those integer weights and a
    floor: the same integers. The product runs in float32 when every partial sum is an integer
    under 2**24 (exact: upsampling, mild downsampling), else in float64."""
    h, w = (int(n) for n in levels.shape[-2:])
    height, width = _size(size)
    rows, cols = _resize_matrices(h, w, height, width)
    x = levels
    if w != width:
        x = _fixed_point_pass(x, np.ascontiguousarray(cols.T), right=True)
    if h != height:
        x = _fixed_point_pass(x, rows, right=False)
    return x.to(levels.dtype)


def _fixed_point_pass(x: torch.Tensor, weights: np.ndarray, *, right: bool) -> torch.Tensor:
    """One pass of :func:`resize_levels`: ``x @ weights`` (``right``) or ``weights @ x`` in
    fixed point, rounded down after adding half a unit, clamped to levels."""
    ints, precision = _fixed_point(weights)
    sums = np.abs(ints).sum(axis=0 if right else 1) / (1 << precision)
    exact32 = 255 * sums.max() + 1 < 2**24 / (1 << precision)
    dtype = torch.float32 if exact32 else torch.float64
    # The weights divided by 2**precision (exact: a power of two), so every partial sum is an
    # integer times 2**-precision, as exact as the integer; the half unit of the rounding rides
    # in the product as the weight of a row (column) of ones, cheaper than adding it to the
    # larger output.
    half = np.full((1, ints.shape[1]) if right else (ints.shape[0], 1), 0.5)
    scaled = np.concatenate([ints / (1 << precision), half], axis=0 if right else 1)
    m = torch.from_numpy(np.ascontiguousarray(scaled)).to(device=x.device, dtype=dtype)
    x = x.to(dtype)
    if right:
        y = torch.matmul(torch.cat([x, torch.ones_like(x[..., :1])], dim=-1), m)
    else:
        y = torch.matmul(m, torch.cat([x, torch.ones_like(x[..., :1, :])], dim=-2))
    y = torch.floor(y)
    # Nonnegative weights summing to (nearly) one keep every level in 0..255 without a clamp.
    if (ints < 0).any() or 255 * sums.max() + 0.5 >= 256:
        y = y.clamp(0, 255)
    return y


def _quantile_sorted(flat: torch.Tensor, q: float) -> torch.Tensor:
    """``torch.quantile(flat, q, dim=-1)`` from a sort and two gathers, export-safe for a
    fixed last axis: the rank in float32 and the two-sided interpolation of ``torch.lerp`` as
    ``quantile`` computes them (equal to its result but for an occasional last bit: its
    kernel may fuse the multiply and add)."""
    n = int(flat.shape[-1])
    ordered = flat.sort(dim=-1).values
    rank = np.float32(np.float32(q) * np.float32(n - 1))
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    weight = float(np.float32(rank - np.float32(lo)))
    below, above = ordered[..., lo], ordered[..., hi]
    if weight < 0.5:
        return below + weight * (above - below)
    return above - (above - below) * (1 - weight)


class Render(nn.Module):
    """Maps ``(batch, n_channels, n_freqs, n_frames)`` → RGB images in [0, 1].

    Parameters
    ----------
    size : int or (int, int)
        Output height and width in pixels (AlexNet: 227).
    colormap : str
        Any matplotlib colormap; ``viridis`` by default (see :data:`COLORMAPS`).
    channels : {"mean", "tile", "each"}
        Multichannel fusion. ``mean`` averages the channel maps (linear values, before
        scaling) into one image; ``tile`` lays them out in a grid, normalised together so
        amplitudes compare across channels; ``each`` gives one image per channel.
    scale, power, top_db, amin
        See :func:`scale_map`. ``power`` is that of the transform (1 magnitude, 2 power).
    normalize, vmin, vmax, percentiles
        See :func:`normalize_map`.
    image_dtype : {"float", "uint8"}
        Float images in [0, 1] (for a model) or uint8 (for files).

    Returns ``(batch, 3, H, W)`` for ``mean``/``tile`` and ``(batch, n_channels, 3, H, W)`` for
    ``each``. The frequency axis is flipped so that low frequencies are at the bottom.
    """

    lut: torch.Tensor  # buffer (registered in __init__)

    def __init__(
        self,
        *,
        size=227,
        colormap: str = "viridis",
        channels: str = "mean",
        scale: str = "db",
        power: float = 1.0,
        top_db: float | None = 80.0,
        amin: float = 1e-10,
        normalize: str = "minmax",
        vmin: float | None = None,
        vmax: float | None = None,
        percentiles: tuple[float, float] = (1.0, 99.0),
        image_dtype: str = "float",
    ):
        super().__init__()
        self.size = _size(size)
        self.image_dtype = choice("image_dtype", image_dtype, ("float", "uint8"))
        self.colormap = colormap
        self.channels = choice("channels", channels, CHANNEL_MODES)
        self.scale = choice("scale", scale, SCALES)
        self.power = positive_float("power", power)
        self.top_db = None if top_db is None else positive_float("top_db", top_db)
        self.amin = positive_float("amin", amin)
        self.normalize = choice("normalize", normalize, NORMALIZATIONS)
        self.vmin, self.vmax = vmin, vmax
        # tuple() of a list from a recipe; it loses the pair's length to the checker (the length
        # is checked where percentiles are used, as before).
        self.percentiles = cast(tuple[float, float], tuple(percentiles))
        # Validate the combination now, not on the first batch.
        normalize_map(
            torch.zeros(1, 2, 2),
            normalize=self.normalize,
            vmin=vmin,
            vmax=vmax,
            percentiles=self.percentiles,
        )
        self.register_buffer("lut", colormap_lut(colormap), persistent=False)

    #: Colour and resize in uint8 on the CPU (fast); False forces the float path everywhere.
    uint8_on_cpu: bool = True

    #: Render with export-safe operators only, to float images (see :meth:`_export_forward`);
    #: set while a graph is exported (:meth:`sigalex.frontend.ImageFrontend.export_safe`).
    export_safe: bool = False

    def forward(self, maps: torch.Tensor, *, image_dtype: str | None = None) -> torch.Tensor:
        """``image_dtype`` overrides the module's for this call (``"uint8"``: 8-bit levels)."""
        if image_dtype is not None:
            image_dtype = choice("image_dtype", image_dtype, ("float", "uint8"))
        if maps.ndim != 4:
            raise ParameterError(
                f"Render expects maps of shape (batch, n_channels, n_freqs, n_frames); "
                f"got {tuple(maps.shape)}"
            )
        if self.export_safe:
            return self._export_forward(maps)
        if self.channels == "mean":
            maps = maps.mean(dim=1, keepdim=True)
        # One buffer of our own from here: the flip (low frequencies at the bottom) is the
        # copy, and scaling and normalising, which are per image and commute with it, run in
        # place on it (each operator is a pass over tens of MB for multichannel tiles).
        x = maps.flip(-2)
        x = _scale_map(x, self.scale, self.power, self.top_db, self.amin, inplace=True)
        tile = self.channels == "tile"  # tiles are normalised together: amplitudes compare
        unit = _normalize_map(
            x, self.normalize, 3 if tile else 2, self.vmin, self.vmax, self.percentiles,
            inplace=True,
        )  # fmt: skip
        if tile:
            unit = tile_channels(unit)[:, None]  # (batch, 1, H', W')
        return self._colour_and_resize(unit, image_dtype or self.image_dtype)

    def _colour_and_resize(self, unit: torch.Tensor, image_dtype: str) -> torch.Tensor:
        """``(batch, C', h, w)`` in [0, 1] → RGB at ``self.size``: colormap first, then resize.

        Colours are 8-bit levels (the LUT rounded to k/255) and the resized image is rounded
        to levels again, so float and uint8 outputs hold the same picture. On the CPU the
        resize runs in channels-last uint8 (PyTorch's SIMD path, several times faster than
        float); on other devices in float. The two agree to within one level. CPU images stay
        channels-last in memory (the layout a convolutional network wants); the shape is the
        usual ``(..., 3, H, W)``.
        """
        batch, n_images, h, w = unit.shape
        flat = unit.reshape(batch * n_images, h, w)
        lut8 = self.lut.mul(255).round_()
        if unit.device.type == "cpu" and self.uint8_on_cpu and image_dtype == "uint8":
            # One gather of packed RGBA words gives a channels-last (N, 4, h, w) uint8 image
            # directly, which PyTorch resizes with its 4-channel SIMD kernel; drop alpha after.
            # (``unit`` is this call's own buffer: the index is computed in it, in place.)
            idx = _lut_index(flat, len(lut8), inplace=True, dtype=torch.int32)
            rgba = _packed_rgba(lut8.to(torch.uint8)).index_select(0, idx.view(-1))
            rgba = rgba.view(torch.uint8).view(flat.shape[0], h, w, 4).permute(0, 3, 1, 2)
            rgb8 = resize(rgba, self.size)[:, :3]
        elif unit.device.type == "cpu" and self.uint8_on_cpu:
            rgb8 = apply_colormap(flat, lut8.to(torch.uint8))
            rgb8 = resize(rgb8.contiguous(memory_format=torch.channels_last), self.size)
        else:
            levels = resize(apply_colormap(flat, lut8.to(unit.dtype)), self.size)
            rgb8 = levels.round_().clamp_(0, 255)
            if image_dtype == "uint8":
                rgb8 = rgb8.to(torch.uint8)
        if image_dtype == "float":
            rgb = rgb8.to(unit.dtype).div_(255)
        else:
            rgb = rgb8
        rgb = rgb.unflatten(0, (batch, n_images))  # a view, whatever the memory layout
        return rgb if self.channels == "each" else rgb[:, 0]

    def _export_forward(self, maps: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` to float images with export-safe operators only: the flip as a
        gather, percentiles from a sort, the tile grid as a pad and a reshape, the colormap
        as a gather on the float LUT of 8-bit levels, the resize as the CPU's uint8 resize
        (:func:`resize_levels`: the same levels). Out of place throughout; one fixed map size
        (an exported model's)."""
        if self.channels == "mean":
            maps = maps.mean(dim=1, keepdim=True)
        n_freqs = int(maps.shape[-2])  # fixed in an export (a traced shape is a tensor)
        x = maps.index_select(-2, torch.arange(n_freqs - 1, -1, -1, device=maps.device))
        x = _scale_map(x, self.scale, self.power, self.top_db, self.amin, inplace=False)
        tile = self.channels == "tile"
        dims = 3 if tile else 2
        if self.normalize == "percentile":
            flat = x.flatten(start_dim=x.ndim - dims)
            lo, hi = (_quantile_sorted(flat, p / 100.0) for p in self.percentiles)
            shape = (*lo.shape, *([1] * dims))
            lo, hi = lo.reshape(shape), hi.reshape(shape)
            span = hi - lo
            span = torch.where(span > 0, span, torch.ones_like(span))
            unit = x.sub(lo).div(span).clamp(0.0, 1.0)
        else:
            unit = _normalize_map(
                x, self.normalize, dims, self.vmin, self.vmax, self.percentiles, inplace=False
            )
        if tile:
            n_channels, h, w = (int(n) for n in unit.shape[-3:])
            cols = math.ceil(math.sqrt(n_channels))
            rows = math.ceil(n_channels / cols)
            unit = nn.functional.pad(unit, (0, 0, 0, 0, 0, rows * cols - n_channels))
            unit = unit.reshape(-1, rows, cols, h, w).permute(0, 1, 3, 2, 4)
            unit = unit.reshape(-1, 1, rows * h, cols * w)
        n_images, h, w = (int(n) for n in unit.shape[-3:])
        idx = _lut_index(unit.reshape(-1, h * w), len(self.lut))
        lut8 = self.lut.mul(255).round().to(unit.dtype)
        rgb = lut8.index_select(0, idx.reshape(-1)).reshape(-1, h, w, 3).permute(0, 3, 1, 2)
        rgb = resize_levels(rgb, self.size).div(255)
        rgb = rgb.reshape(-1, n_images, 3, *self.size)
        return rgb if self.channels == "each" else rgb[:, 0]

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, colormap={self.colormap!r}, channels={self.channels!r}, "
            f"scale={self.scale!r}, normalize={self.normalize!r}"
        )


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images ``(..., 3, H, W)`` (float in [0, 1] or uint8) → uint8 arrays ``(..., H, W, 3)``."""
    images = images.detach()
    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return images.movedim(-3, -1).cpu().numpy()


def to_pil(image):
    """One image — ``(3, H, W)`` float tensor in [0, 1] or ``(H, W, 3)`` uint8 array — as PIL."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        image = to_uint8(image)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ParameterError(
            f"expected one uint8 image (H, W, 3) or a float tensor (3, H, W); got "
            f"{arr.shape} {arr.dtype}"
        )
    return Image.fromarray(arr, mode="RGB")


def save_png(image, path) -> Path:
    """Write one image as PNG atomically (a temporary file renamed into place)."""
    path = Path(path)
    pil = to_pil(image)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")
    return path
