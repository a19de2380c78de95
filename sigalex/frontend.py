"""Signals → images: the batched front end used for training, and the one-call public API."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ._checks import as_signal
from .errors import ParameterError
from .render import Render, to_pil, to_uint8
from .sources import open_source
from .transforms import build_transform, transform_parameters

#: Keyword arguments that configure rendering; every other keyword goes to the transform.
#: ``power`` comes from the transform.
RENDER_PARAMETERS = tuple(
    p for p in inspect.signature(Render.__init__).parameters if p not in ("self", "power")
)


def split_parameters(params: dict) -> tuple[dict, dict]:
    """Split keyword arguments into ``(transform_params, render_params)``."""
    render = {k: v for k, v in params.items() if k in RENDER_PARAMETERS}
    transform = {k: v for k, v in params.items() if k not in RENDER_PARAMETERS}
    return transform, render


class ImageFrontend(nn.Module):
    """Windows ``(batch, n_channels, n_times)`` → images ``(batch, 3, size, size)`` in [0, 1].

    A transform (by ``method`` name) followed by :class:`~sigalex.render.Render`, all on the
    input's device: ``ImageFrontend(173.61, "stft", fmax=40).to("cuda")(windows)`` never copies
    to the host. Keywords are split between the two: :data:`RENDER_PARAMETERS` (``size``,
    ``colormap``, ``channels``, ``scale``, ``top_db``, ``normalize``, …) configure rendering,
    the rest the transform (``n_fft``, ``fmin``, ``fmax``, ``n_mels``, ``n_freqs``, …).
    With ``channels="each"`` the output is ``(batch, n_channels, 3, size, size)``.

    For transforms with a column per input sample (``cwt``, ``hilbert``) given neither
    ``hop_length`` nor ``max_frames``, ``max_frames`` defaults to twice the image width: the
    image cannot show more, and computing every sample would cost many times as much.
    """

    def __init__(self, sample_rate: float, method: str = "stft", **params):
        super().__init__()
        transform_params, render_params = split_parameters(params)
        if (
            "max_frames" in transform_parameters(method)
            and "hop_length" not in transform_params
            and "max_frames" not in transform_params
        ):
            width = Render(**render_params).size[1]
            transform_params["max_frames"] = 2 * width
        self.method = method
        self.transform = build_transform(method, sample_rate, **transform_params)
        self.render = Render(power=self.transform.power, **render_params)

    @property
    def sample_rate(self) -> float:
        return self.transform.sample_rate

    @contextmanager
    def export_safe(self) -> Iterator[ImageFrontend]:
        """Within the block, the transform and the renderer use export-safe operators only
        (real matrix products and gathers; :mod:`sigalex.transforms.dense`,
        :meth:`Render._export_forward`) and give float images: the graph ``sigalex export``
        traces. The images are those of the fast paths within one 8-bit level; the fast
        paths are back when the block ends."""
        before = (self.transform.export_safe, self.render.export_safe)
        self.transform.export_safe = self.render.export_safe = True
        try:
            yield self
        finally:
            self.transform.export_safe, self.render.export_safe = before

    def forward(self, windows: torch.Tensor, *, image_dtype: str | None = None) -> torch.Tensor:
        """``image_dtype="uint8"`` gives 8-bit images for this call (see :class:`Render`)."""
        if windows.ndim == 2:
            windows = windows[:, None]
        if windows.ndim != 3:
            raise ParameterError(
                "windows must have shape (batch, n_channels, n_times) or (batch, n_times); "
                f"got {tuple(windows.shape)}"
            )
        return self.render(self.transform(windows), image_dtype=image_dtype)


def spectrogram(
    signal,
    sample_rate: float | None = None,
    *,
    method: str = "stft",
    size=227,
    colormap: str = "viridis",
    device=None,
    **params,
) -> np.ndarray:
    """Render one signal as an RGB time-frequency image.

    Parameters
    ----------
    signal : array, torch.Tensor, Recording, mne.io.Raw or path
        Samples ``(n_times,)`` or ``(n_channels, n_times)``, real and finite (integers become
        float32); or a recording that carries its rate (a :class:`~sigalex.recording.Recording`,
        an MNE ``Raw``, an EDF or audio file: :func:`sigalex.sources.open_source`), read whole.
    sample_rate : float, optional
        Hz; needed for arrays and rate-less files, not for sources that carry their rate.
    method : {"cwt", "hilbert", "mel", "stft"}
        The transform.
    size : int or (int, int)
        Image size in pixels.
    colormap : str
        Any matplotlib colormap name.
    device : str or torch.device, optional
        Where to compute; default: the tensor's device, CPU for arrays.
    **params
        Transform parameters (``n_fft``, ``hop_length``, ``fmin``, ``fmax``, ``n_mels``,
        ``n_freqs``, ``n_bands``, …) and render parameters (``channels``, ``scale``, ``top_db``,
        ``normalize``, ``vmin``, ``vmax``, ``percentiles``).

    Returns
    -------
    numpy.ndarray, uint8 [shape=(height, width, 3)]
        Low frequencies at the bottom, time left to right. With ``channels="each"`` and 2-D
        input: ``(n_channels, height, width, 3)``.

    Raises
    ------
    ParameterError
        Bad signal (NaN/inf, empty, too short, more than 2 dimensions), non-positive sample rate,
        unknown method, colormap or parameter, or a parameter out of range.
    """
    if not isinstance(signal, np.ndarray | torch.Tensor | list | tuple):
        source = open_source(signal, sample_rate=sample_rate)  # carries its own rate
        signal, sample_rate = source.read(0, None), float(source.sample_rate)
    if sample_rate is None:
        raise ParameterError("sample_rate (Hz) is needed for an array or tensor of samples")
    x = as_signal(signal)
    if x.ndim > 2:
        raise ParameterError(
            f"signal must be 1-D (n_times,) or 2-D (n_channels, n_times); got shape {tuple(x.shape)}"
        )
    if device is not None:
        x = x.to(device)
    params.setdefault("image_dtype", "uint8")  # straight to 8-bit: no float round trip
    frontend = ImageFrontend(sample_rate, method, size=size, colormap=colormap, **params)
    frontend = frontend.to(x.device)
    if x.shape[-1] < frontend.transform.min_length():
        raise ParameterError(
            f"signal is too short for {method}: n_times={x.shape[-1]} samples, at least "
            f"{frontend.transform.min_length()} needed"
        )
    windows = x.reshape(1, -1, x.shape[-1])
    with torch.no_grad():
        images = frontend(windows)[0]
    return to_uint8(images)


def to_image(signal, sample_rate: float | None = None, **params):
    """:func:`spectrogram` as a ``PIL.Image`` (1-D signal, or 2-D with ``mean``/``tile``)."""
    arr = spectrogram(signal, sample_rate, **params)
    if arr.ndim != 3:
        raise ParameterError("to_image makes one image; use channels='mean' or 'tile'")
    return to_pil(arr)
