"""AlexNet in torchvision's state-dict layout, the 2012 paper network, and ImageNet weights.

Models take images ``(batch, 3, H, W)`` — float in [0, 1] or uint8 — and normalise them with the
ImageNet mean and std themselves: normalisation belongs to the model's input, not to rendering.
"""

from __future__ import annotations

import os
import re
import urllib.error
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ._checks import choice, positive_int
from ._files import sha256_file
from .errors import ConfigError, DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Weights:
    """Pretrained weights as data (torchvision's ``AlexNet_Weights`` layout)."""

    url: str
    file_name: str
    meta: dict = field(default_factory=dict)

    @property
    def sha256_prefix(self) -> str:
        """The hash prefix in the file name (``alexnet-owt-7be5be79.pth`` → ``7be5be79``)."""
        match = re.search(r"-([a-f0-9]{8,})\.", self.file_name)
        return match.group(1) if match else ""


WEIGHTS = {
    "imagenet": Weights(
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        file_name="alexnet-owt-7be5be79.pth",
        meta={
            "source": "torchvision AlexNet_Weights.IMAGENET1K_V1",
            "num_params": 61_100_840,
            "acc@1": 56.522,
            "acc@5": 79.066,
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
        },
    )
}


class ImageNetNormalize(nn.Module):
    """``(x - mean) / std`` per RGB channel; uint8 input is first scaled to [0, 1]."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x * (1 / std) - mean / std on one new tensor, scaled in place: each operator on a
        # batch of images is a pass over tens of MB, and (x - mean) / std makes two (three from
        # uint8); the same values to float rounding (< 1e-6). The new tensor takes the input's
        # layout: a channels-last uint8 view (RGB of an RGBA image) gives channels-last floats.
        # (A fused addcmul was 1 ms a batch of 32 faster on a CPU, but it rounds differently,
        # and that alone moved a recipe's test result by one segment: not worth it.)
        if x.dtype == torch.uint8:
            y = x.to(self.mean.dtype).mul_(1.0 / (self.std * 255))
        else:
            y = x.mul((1.0 / self.std).to(x.dtype))
        return y.add_((-self.mean / self.std).to(y.dtype))


def _classifier(num_classes: int, dropout: float) -> nn.Sequential:
    """The fully connected part both variants share (torchvision's indices: 1, 4, 6)."""
    return nn.Sequential(
        nn.Dropout(p=dropout),
        nn.Linear(256 * 6 * 6, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(p=dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )


class _AlexNetBase(nn.Module):
    """ImageNet normalisation → ``features`` → 6×6 average pool → ``classifier``."""

    normalize: nn.Module
    features: nn.Sequential
    classifier: nn.Sequential

    @property
    def head(self) -> nn.Linear:
        """The last layer, replaced for a task's classes."""
        return self.classifier[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.normalize(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


class AlexNet(_AlexNetBase):
    """AlexNet as torchvision defines it (the "one weird trick" variant, 61.1 M parameters).

    ``features`` / ``avgpool`` / ``classifier`` carry torchvision's names and indices, so
    ``alexnet-owt-7be5be79.pth`` loads unchanged. Input ``(batch, 3, H, W)`` images, H and W ≥ 63
    (227 by default); output logits ``(batch, num_classes)``.
    """

    def __init__(self, num_classes: int = 1000, *, dropout: float = 0.5):
        super().__init__()
        self.normalize = ImageNetNormalize()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = _classifier(num_classes, dropout)


class AlexNet2012(_AlexNetBase):
    """The network of Krizhevsky, Sutskever & Hinton (2012), on one device, for training from scratch.

    96-256-384-384-256 kernels, local response normalisation after conv1 and conv2 (size 5,
    alpha 1e-4, beta 0.75, k 2), overlapping 3×3 stride-2 max-pooling, two 4096-unit layers with
    dropout 0.5; weights N(0, 0.01), biases 1 in conv2, conv4, conv5 and the hidden fully
    connected layers, 0 elsewhere. Input ``(batch, 3, 227, 227)``.
    """

    def __init__(self, num_classes: int = 1000, *, dropout: float = 0.5):
        super().__init__()
        self.normalize = ImageNetNormalize()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = _classifier(num_classes, dropout)
        self._init_paper()

    def _init_paper(self) -> None:
        ones = {4, 10, 12}  # conv2, conv4, conv5 in ``features``
        for i, m in enumerate(self.features):
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.constant_(m.bias, 1.0 if i in ones else 0.0)
        linears = [m for m in self.classifier if isinstance(m, nn.Linear)]
        for j, m in enumerate(linears):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.constant_(m.bias, 0.0 if j == len(linears) - 1 else 1.0)


ARCHITECTURES = {"alexnet": AlexNet, "alexnet2012": AlexNet2012}


def weights_cache_dir() -> Path:
    """Where downloaded weights are kept: torch hub's ``checkpoints`` folder."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights_file(
    weights: str | os.PathLike, *, download: bool = True, progress: bool = True
) -> Path:
    """Path of a local weights file for ``weights`` (a name in :data:`WEIGHTS` or a path).

    A named file is looked up in :func:`weights_cache_dir` and downloaded there with its SHA-256
    prefix checked when missing. Raises ``DataError`` saying where to put the file when it can
    be neither found nor downloaded.
    """
    if str(weights) not in WEIGHTS:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise DataError(
                f"weights file {path} not found; give a path to a state dict or one of "
                f"{', '.join(sorted(WEIGHTS))}"
            )
        return path
    spec = WEIGHTS[str(weights)]
    cached = weights_cache_dir() / spec.file_name
    if cached.is_file():
        return cached
    how = f"download {spec.url} and put it at {cached} (or give its path as model.weights)"
    if not download:
        raise DataError(f"{spec.file_name} is not in {cached.parent}; {how}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(spec.url, str(cached), spec.sha256_prefix, progress=progress)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        raise DataError(f"could not download {spec.file_name} ({exc}); {how}") from exc
    return cached


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)``; a corrupt file is a ``DataError``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise DataError(f"{path}: not a readable PyTorch state dict ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DataError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def build_model(
    architecture: str = "alexnet",
    *,
    num_classes: int,
    weights: str | os.PathLike | None = "imagenet",
    weights_required: bool = False,
    dropout: float = 0.5,
    freeze: str = "none",
    progress: bool = True,
) -> tuple[nn.Module, str]:
    """Build a classifier and load pretrained weights; returns ``(model, weights_used)``.

    Parameters
    ----------
    architecture : {"alexnet", "alexnet2012"}
        torchvision's AlexNet (pretrained weights load into it) or the 2012 paper network.
    num_classes : int
        Classes of the task; the pretrained head is dropped (timm-style) when it differs.
    weights : "imagenet", a path, or None
        Pretrained weights for ``alexnet``. ``None`` starts from random initialisation.
    weights_required : bool
        When the weights cannot be had: raise (True) or warn loudly and go on from random
        initialisation (False).
    freeze : {"none", "features", "all_but_head"}
        Which pretrained parameters stop learning.

    Returns
    -------
    model, weights_used
        ``weights_used`` says what the model really started from: ``"imagenet (<sha256>)"``,
        a file path with its hash, or ``"random"``.
    """
    arch = choice("model.architecture", architecture, ARCHITECTURES)
    num_classes = positive_int("num_classes", num_classes, minimum=2)
    freeze = choice("model.freeze", freeze, ("none", "features", "all_but_head"))
    model = ARCHITECTURES[arch](num_classes, dropout=dropout)
    used = "random"
    if weights is not None and str(weights).lower() not in ("", "none", "random"):
        if arch != "alexnet":
            raise ConfigError(
                f"model.weights={weights!r}: pretrained weights exist for 'alexnet' only; "
                f'{arch!r} trains from scratch (set model.weights = "none")'
            )
        try:
            path = resolve_weights_file(weights, progress=progress)
            state = load_state_dict(path)
            load_pretrained(model, state, source=str(path))
            used = f"{weights} ({path.name}, sha256 {sha256_file(path)[:16]})"
        except DataError as exc:
            if weights_required:
                raise
            warnings.warn(
                f"PRETRAINED WEIGHTS UNAVAILABLE — training from random initialisation. {exc}",
                UserWarning,
                stacklevel=2,
            )
    if freeze != "none":
        if used == "random":
            warnings.warn(
                f"model.freeze={freeze!r} with random weights freezes untrained layers",
                UserWarning,
                stacklevel=2,
            )
        frozen = (
            model.features
            if freeze == "features"
            else nn.ModuleList([model.features, *list(model.classifier)[:-1]])
        )
        for p in frozen.parameters():
            p.requires_grad_(False)
    return model, used


def load_pretrained(model: nn.Module, state: dict[str, torch.Tensor], *, source: str = "") -> None:
    """Load ``state`` (torchvision layout) into ``model``, dropping a head of another size.

    Every other key must match in name and shape; otherwise ``DataError`` lists the mismatches.
    """
    own = model.state_dict()
    head_keys = [k for k in own if k.startswith("classifier.6.")]
    state = dict(state)
    for k in head_keys:
        if k in state and state[k].shape != own[k].shape:
            del state[k]
    bad = [
        f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state and k not in head_keys]
    if bad or unexpected or missing:
        details = "; ".join(
            part
            for part in (
                f"shape mismatch {bad[:3]}" if bad else "",
                f"unexpected keys {unexpected[:5]}" if unexpected else "",
                f"missing keys {missing[:5]}" if missing else "",
            )
            if part
        )
        raise DataError(f"{source or 'state dict'} does not fit AlexNet: {details}")
    model.load_state_dict(state, strict=False)
