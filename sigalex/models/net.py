"""The model unit: the image front end and the network as one ``nn.Module``.

:class:`SignalClassifier` takes raw windows and gives logits. Training, evaluation, prediction,
and later compilation, DistributedDataParallel, export and explanations all use this one
module, so a window becomes an image the same way everywhere: on the CPU the renderer's 8-bit
colours go to the network as uint8 (its ImageNet normalisation makes the only float copy), on a
GPU as floats under bf16 autocast; both channels-last.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import ConfigError, ParameterError
from ..frontend import ImageFrontend
from ..transforms.augment import Augment
from .spec import ModelSpec


def build_frontend(cfg, sample_rate: float) -> ImageFrontend:
    """The ``[transform]`` + ``[render]`` of a recipe at ``sample_rate`` Hz.

    Raises
    ------
    ConfigError
        A bad parameter, naming the section.
    """
    r = cfg.render
    render = dict(
        size=r.size, colormap=r.colormap, channels=r.channels, scale=r.scale, top_db=r.top_db,
        normalize=r.normalize, percentiles=r.percentiles,
    )  # fmt: skip
    if r.normalize == "fixed":
        render.update(vmin=r.vmin, vmax=r.vmax)
    try:
        return ImageFrontend(
            sample_rate, cfg.transform.method, **dict(cfg.transform.params), **render
        )
    except ParameterError as exc:
        raise ConfigError(f"[transform]/[render] at {sample_rate:g} Hz: {exc}") from exc


class SignalClassifier(nn.Module):
    """Raw windows → logits: front end (transform + render) and network as one module.

    Parameters
    ----------
    frontend : ImageFrontend
        Windows ``(batch, n_channels, n_times)`` at ``spec.sample_rate`` → images.
    network : torch.nn.Module
        Images ``(batch, 3, H, W)`` (float in [0, 1] or uint8) → logits ``(batch, n_classes)``.
    spec : ModelSpec
        The contract: classes, rate, window, channels (see :class:`ModelSpec`).
    channels_last : bool
        Images and the network's weights in channels-last layout (faster convolutions on CPU
        and GPU, the same results).
    amp : bool
        bf16 autocast for the network on CUDA (ignored elsewhere).

    The front end has no learnable parameters and runs without gradients.
    """

    # Set with object.__setattr__ (not a registered submodule), so declared here for the checker.
    _call_network: Callable[[torch.Tensor], torch.Tensor]

    def __init__(
        self,
        frontend: ImageFrontend,
        network: nn.Module,
        spec: ModelSpec,
        *,
        channels_last: bool = True,
        amp: bool = True,
    ):
        super().__init__()
        self.frontend = frontend
        self.network = network
        self.spec = spec
        self.channels_last = bool(channels_last)
        self.amp = bool(amp)
        if self.channels_last:
            # Module.to(memory_format=...) is documented but missing from torch's overloads.
            self.network.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
        # What forward calls: the network, or its compiled wrapper (compile_network). Kept out of
        # the registered submodules, so that the weights appear once in state_dict().
        object.__setattr__(self, "_call_network", self.network)
        self.compiled = False

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    #: On the CPU, hand the network uint8 images (False: float images of the same levels).
    uint8_on_cpu: bool = True

    def _uint8_images(self, device: torch.device) -> bool:
        """On the CPU the renderer's colours are 8-bit levels already, and the network's
        normalisation divides uint8 by 255: the same input without a float copy of each image."""
        return (
            self.uint8_on_cpu
            and device.type == "cpu"
            and isinstance(self.frontend, ImageFrontend)
            and self.frontend.render.uint8_on_cpu
            and hasattr(self.network, "normalize")
        )

    @torch.no_grad()
    def images(self, windows: torch.Tensor, *, augment: Augment | None = None) -> torch.Tensor:
        """The images the network sees: ``(batch, 3, size, size)``, uint8 on the CPU, float in
        [0, 1] elsewhere, channels-last when asked; ``augment`` randomises them (training)."""
        x = windows.to(self.device, non_blocking=True)
        if x.ndim == 2:
            x = x[:, None]
        options = {"image_dtype": "uint8"} if self._uint8_images(x.device) else {}
        if augment is None:
            images = self.frontend(x, **options)
        else:
            maps = augment.maps(self.frontend.transform(augment.windows(x)))
            images = self.frontend.render(maps, **options)
        interleaved_uint8 = images.dtype == torch.uint8 and images.stride(-3) == 1
        if self.channels_last and not interleaved_uint8:
            # (uint8 images with RGB interleaved become channels-last floats in the network's
            # normalisation, which keeps their layout: no copy of them here.)
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def forward(self, windows: torch.Tensor, *, augment: Augment | None = None) -> torch.Tensor:
        """Logits ``(batch, n_classes)`` (float32) of windows ``(batch, n_channels, n_times)``."""
        images = self.images(windows, augment=augment)
        if self.amp and images.is_cuda:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self._call_network(images).float()
        return self._call_network(images).float()

    @torch.no_grad()
    def probabilities(self, windows: torch.Tensor) -> torch.Tensor:
        """Softmax of the logits, float32 ``(batch, n_classes)`` (the model must be in eval mode
        for reproducible answers: dropout)."""
        return torch.softmax(self(windows), dim=1)

    def compile_network(self) -> None:
        """Run the network through ``torch.compile`` from now on (weights stay on
        :attr:`network`; the first batch waits for the compiler)."""
        object.__setattr__(self, "_call_network", torch.compile(self.network))
        self.compiled = True

    def check_windows(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as float32 ``(batch, n_channels, n_times)`` matching the spec, or ParameterError."""
        return check_windows(self.spec, x)


def check_windows(spec: ModelSpec, x) -> torch.Tensor:
    """``x`` as float32 ``(batch, n_channels, n_times)`` matching ``spec``, or ParameterError
    (the check of every model unit: :class:`SignalClassifier`, an exported model)."""
    x = torch.as_tensor(x).to(torch.float32)
    if x.ndim == 2:
        x = x[:, None]
    shape = (spec.n_channels, spec.n_times)
    if x.ndim != 3 or tuple(x.shape[1:]) != shape:
        raise ParameterError(
            f"windows must be (batch, {shape[0]}, {shape[1]}); got {tuple(x.shape)}"
        )
    return x


__all__ = ["SignalClassifier", "build_frontend", "check_windows"]
