"""Attribution of a model unit's decision to its time-frequency map, with Captum.

The network sees an image ``(3, H, W)`` made from a map ``(n_channels, F, T)``: Render flips the
frequency axis (low frequencies at the bottom), lays channels out in tiles when asked, and
resizes bilinearly to ``H × W``. The attribution is computed on the float image (Grad-CAM on the
network's last convolution, upsampled to the image; or Integrated Gradients on the image's
pixels) and brought back onto the map's own ``(frequency, time)`` grid through the adjoint of
that resize (each map cell receives the attribution of the pixels it was drawn into, weighted as
the resize weighted it: the total is kept), the flip undone and the tiles cut apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import ParameterError, SigalexError
from ..models.net import SignalClassifier
from ..render import _resize_matrices, to_uint8

METHODS = ("gradcam", "integrated-gradients")

#: Steps of the Integrated Gradients path integral, and images per network pass inside it.
IG_STEPS = 32
IG_BATCH = 64


def import_captum():
    """``captum.attr``, or a one-line error naming the extra to install."""
    try:
        import captum.attr as attr
    except ImportError:
        raise SigalexError(
            "explanations need Captum, which is not installed: pip install 'sigalex[explain]'"
        ) from None
    return attr


@dataclass
class Explanation:
    """Heat maps of windows on the transform's ``(frequency, time)`` grid.

    Attributes
    ----------
    maps : numpy.ndarray, float32 [shape=(n, F, T), or (n, n_channels, F, T) for tiles]
        Non-negative attribution of each window's target class per map cell (frequency rows
        ascending, as the transform's ``frequencies``).
    frequencies_hz : numpy.ndarray, float64 [shape=(F,)]
        The transform's row frequencies (linear for STFT, mel-spaced for mel, log for CWT).
    times_s : numpy.ndarray, float64 [shape=(n, T)]
        The centre of each column in seconds: from the recording's start for windows of a
        recording, from the window's start for windows given as arrays.
    start_s, end_s : numpy.ndarray, float64 [shape=(n,)]
        The span of each window.
    probabilities : numpy.ndarray, float32 [shape=(n, n_classes)]
    target : list of str
        The class explained in each window.
    classes : list of str
    method : str
        ``"gradcam"`` or ``"integrated-gradients"``.
    images : numpy.ndarray, uint8 [shape=(n, H, W, 3)]
        The images the network saw.
    image_maps : numpy.ndarray, float32 [shape=(n, H, W)]
        The attribution on the image's pixels (what is drawn over the image).
    channel_names : list of str
        Names of the tiles (``render.channels == "tile"``), else empty.
    recording : str
        The recording's name, or ``""`` for windows given as arrays.
    """

    maps: np.ndarray
    frequencies_hz: np.ndarray
    times_s: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    probabilities: np.ndarray
    target: list[str]
    classes: list[str]
    method: str
    images: np.ndarray
    image_maps: np.ndarray
    channel_names: list[str] = field(default_factory=list)
    recording: str = ""

    def __len__(self) -> int:
        return len(self.maps)

    @property
    def tiled(self) -> bool:
        return self.maps.ndim == 4

    def peaks(self) -> list[tuple[float, float]]:
        """``(peak_hz, peak_s)`` of each window: the cell of largest attribution (tiles
        summed)."""
        out = []
        for i in range(len(self)):
            m = self.maps[i].sum(0) if self.tiled else self.maps[i]
            f, t = np.unravel_index(int(np.argmax(m)), m.shape)
            out.append((float(self.frequencies_hz[f]), float(self.times_s[i, t])))
        return out

    def band_profile(self) -> np.ndarray:
        """Attribution per frequency row, ``(n, F)``: each window's map (tiles summed) scaled to
        a total of 1, then summed over time."""
        m = self.maps.sum(1) if self.tiled else self.maps
        total = m.sum(axis=(1, 2), keepdims=True)
        m = m / np.where(total > 0, total, 1.0)
        return m.sum(-1)

    def select(self, idx) -> Explanation:
        """The explanations of the windows ``idx`` (a list or array of indices)."""
        idx = np.asarray(idx, dtype=np.int64)
        return Explanation(
            self.maps[idx], self.frequencies_hz, self.times_s[idx], self.start_s[idx],
            self.end_s[idx], self.probabilities[idx], [self.target[i] for i in idx],
            self.classes, self.method, self.images[idx], self.image_maps[idx],
            self.channel_names, self.recording,
        )  # fmt: skip


def concatenate(parts: list[Explanation]) -> Explanation:
    """One :class:`Explanation` of the windows of several (of one model and method)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    return Explanation(
        cat("maps"), first.frequencies_hz, cat("times_s"), cat("start_s"), cat("end_s"),
        cat("probabilities"), [t for p in parts for t in p.target], first.classes,
        first.method, cat("images"), cat("image_maps"), first.channel_names, first.recording,
    )  # fmt: skip


def last_conv(network: nn.Module) -> nn.Conv2d:
    """The network's last 2-D convolution (Grad-CAM's layer)."""
    convs = [m for m in network.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ParameterError(f"{type(network).__name__} has no convolution for Grad-CAM")
    return convs[-1]


def target_indices(classes: list[str], target, probabilities: np.ndarray) -> np.ndarray:
    """Class index per window: ``target`` (a name, or a name per window), else the most
    probable class of each window."""
    n = len(probabilities)
    if target is None:
        return probabilities.argmax(1).astype(np.int64)
    names = [target] * n if isinstance(target, str) else list(target)
    if len(names) != n:
        raise ParameterError(f"{len(names)} targets for {n} windows")
    unknown = sorted({t for t in names if t not in classes})
    if unknown:
        raise ParameterError(
            f"unknown class {unknown[0]!r}; the model's classes: {', '.join(classes)}"
        )
    return np.array([classes.index(t) for t in names], dtype=np.int64)


def _attribute(model: SignalClassifier, images: torch.Tensor, targets: torch.Tensor, method):
    """Attribution of ``targets`` on the image grid ``(n, H, W)``, non-negative (evidence for
    the class)."""
    attr = import_captum()
    network = model.network
    images = images.detach().clone().requires_grad_(True)
    if method == "gradcam":
        cam = attr.LayerGradCam(network, last_conv(network))
        coarse = cam.attribute(images, target=targets, relu_attributions=True)
        assert isinstance(coarse, torch.Tensor)  # one layer, one attribution
        heat = attr.LayerAttribution.interpolate(
            coarse.detach().float(), tuple(images.shape[-2:]), interpolate_mode="bilinear"
        )[:, 0]
    else:
        ig = attr.IntegratedGradients(network)
        grads = ig.attribute(
            images, baselines=torch.zeros_like(images), target=targets, n_steps=IG_STEPS,
            internal_batch_size=IG_BATCH,
        )  # fmt: skip
        assert isinstance(grads, torch.Tensor)  # one input, one attribution
        heat = grads.detach().float().sum(1)
    return heat.clamp_min(0)


def image_to_map(heat: torch.Tensor, grid: tuple[int, int], tiles: tuple[int, int, int]):
    """Attribution on the image ``(n, H, W)`` → on the map grid ``(n, n_tiles, F, T)``.

    The adjoint of Render's resize from the tile grid ``(rows * F, cols * T)`` to ``(H, W)``
    (attribution kept in total), the frequency flip undone per tile, the tiles cut apart in
    channel order (``tiles = (n_channels, rows, cols)``; ``(1, 1, 1)`` for one image).
    """
    n, height, width = heat.shape
    n_channels, rows, cols = tiles
    f, t = grid
    r, c = _resize_matrices(rows * f, cols * t, height, width)  # (H, rows*F), (W, cols*T)
    r_t = torch.from_numpy(r).to(heat.device, torch.float64)
    c_t = torch.from_numpy(c).to(heat.device, torch.float64)
    back = r_t.t() @ heat.to(torch.float64) @ c_t  # (n, rows*F, cols*T)
    cells = back.reshape(n, rows, f, cols, t).permute(0, 1, 3, 2, 4).reshape(n, -1, f, t)
    return cells[:, :n_channels].flip(-2).float()


def explain_windows(
    model,
    windows,
    *,
    target=None,
    method: str = "gradcam",
    start_s=None,
    end_s=None,
    batch_size: int = 16,
) -> Explanation:
    """Attribute each window's ``target`` class (see :meth:`sigalex.Predictor.explain`).

    ``windows`` ``(n, n_channels, n_times)`` at the model's rate; ``start_s``/``end_s`` place
    them in a recording (default: each from 0 to the window's length).
    """
    if not isinstance(model, SignalClassifier):
        raise ParameterError(
            f"explanations need a PyTorch checkpoint's model, not {type(model).__name__} "
            "(an ONNX export has no gradients here)"
        )
    if method not in METHODS:
        raise ParameterError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    import_captum()
    render = model.frontend.render
    if render.channels == "each":
        raise ParameterError("explanations of channels='each' models are not supported")
    x = model.check_windows(windows)
    n = len(x)
    spec, transform = model.spec, model.frontend.transform
    if start_s is None:
        start_s = np.zeros(n)
    start_s = np.asarray(start_s, dtype=np.float64)
    end_s = start_s + spec.n_times / spec.sample_rate if end_s is None else np.asarray(end_s)
    model.eval()
    device = model.device
    f, t = transform.output_shape(spec.n_times)
    n_tiles = spec.n_channels if render.channels == "tile" else 1
    cols = math.ceil(math.sqrt(n_tiles))
    tiles = (n_tiles, math.ceil(n_tiles / cols), cols)
    probs, targets, maps, pictures, heats = [], [], [], [], []
    for i in range(0, n, batch_size):
        xb = x[i : i + batch_size].to(device)
        with torch.no_grad():
            images = model.frontend(xb, image_dtype="float").float()
            p = torch.softmax(model.network(images).float(), 1).cpu().numpy()
        k = target_indices(model.classes, _slice(target, i, batch_size), p)
        with torch.enable_grad():
            heat = _attribute(model, images, torch.from_numpy(k).to(device), method)
        maps.append(image_to_map(heat, (f, t), tiles).cpu().numpy())
        heats.append(heat.cpu().numpy())
        pictures.append(to_uint8(images))
        probs.append(p)
        targets += [model.classes[j] for j in k]
    rel = transform.times(spec.n_times).numpy()
    all_maps = np.concatenate(maps) if maps else np.zeros((0, n_tiles, f, t), np.float32)
    return Explanation(
        maps=all_maps if n_tiles > 1 or render.channels == "tile" else all_maps[:, 0],
        frequencies_hz=transform.frequencies.double().cpu().numpy(),
        times_s=start_s[:, None] + rel[None, :],
        start_s=start_s,
        end_s=end_s,
        probabilities=np.concatenate(probs) if probs else np.zeros((0, len(model.classes))),
        target=targets,
        classes=model.classes,
        method=method,
        images=np.concatenate(pictures) if pictures else np.zeros((0, 1, 1, 3), np.uint8),
        image_maps=np.concatenate(heats) if heats else np.zeros((0, 1, 1), np.float32),
        channel_names=list(spec.channel_names) if render.channels == "tile" else [],
    )


def _slice(target, i: int, size: int):
    if target is None or isinstance(target, str):
        return target
    return list(target)[i : i + size]


__all__ = ["METHODS", "Explanation", "concatenate", "explain_windows", "import_captum"]
