"""Pretrained weights as data (torchvision's ``AlexNet_Weights`` layout), their verified download,
loading a state dict into a network, and :func:`build_model` (architecture + starting weights)."""

from __future__ import annotations

import os
import re
import urllib.error
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
from torch import nn

from .._checks import choice, positive_int
from .._files import read_weights_file, sha256_file
from ..errors import ConfigError, DataError
from .alexnet import ARCHITECTURES, IMAGENET_MEAN, IMAGENET_STD


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
    """A state dict from a file (``torch.load(..., weights_only=True)``; a dict with a
    ``state_dict`` entry, as checkpoints hold, gives that). ``DataError`` for a missing, corrupt
    or foreign file, or one that holds code."""
    state = read_weights_file(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DataError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def build_network(
    architecture: str = "alexnet",
    *,
    num_classes: int,
    dropout: float = 0.5,
    width: float = 1.0,
    groups: int = 1,
):
    """A network of ``architecture`` with ``num_classes`` outputs and ``width`` times the
    kernels and hidden units (the compact network below 1), randomly initialised. ``groups=2``
    splits conv2, conv4 and conv5 of ``alexnet2012`` in two halves as the paper's two GPUs did
    (``ConfigError`` for ``alexnet``: torchvision's layout, and its ImageNet weights, are dense)."""
    arch = choice("model.architecture", architecture, ARCHITECTURES)
    num_classes = positive_int("num_classes", num_classes, minimum=2)
    if arch == "alexnet2012":
        return ARCHITECTURES[arch](num_classes, dropout=dropout, width=width, groups=groups)
    if groups != 1:
        raise ConfigError(
            f"model.groups = {groups!r} with model.architecture = {arch!r}: grouped convolutions "
            'are the 2012 paper\'s network only (model.architecture = "alexnet2012"); '
            "torchvision's AlexNet and its ImageNet weights are dense (model.groups = 1)"
        )
    return ARCHITECTURES[arch](num_classes, dropout=dropout, width=width)


def build_model(
    architecture: str = "alexnet",
    *,
    num_classes: int,
    weights: str | os.PathLike | None = "imagenet",
    weights_required: bool = False,
    dropout: float = 0.5,
    freeze: str = "none",
    progress: bool = True,
    width: float = 1.0,
    groups: int = 1,
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
        When named weights (``"imagenet"``) cannot be had: raise (True) or warn loudly and go on
        from random initialisation (False). A path the user named is always required: missing,
        corrupt or refused, it is an error.
    freeze : {"none", "features", "all_but_head"}
        Which pretrained parameters stop learning.
    width : float
        Kernels and hidden units relative to the full network, in (0, 1]: the compact network
        below 1, which named weights (ImageNet's) do not fit (``ConfigError``); a state dict
        of the same width loads.
    groups : {1, 2}
        ``2``: the 2012 paper's two-GPU split of ``alexnet2012`` (:func:`build_network`).

    Returns
    -------
    model, weights_used
        ``weights_used`` says what the model really started from: ``"imagenet (<sha256>)"``,
        a file path with its hash, or ``"random"``.
    """
    model = build_network(
        architecture, num_classes=num_classes, dropout=dropout, width=width, groups=groups
    )
    arch = choice("model.architecture", architecture, ARCHITECTURES)
    freeze = choice("model.freeze", freeze, ("none", "features", "all_but_head"))
    used = "random"
    if weights is not None and str(weights).lower() not in ("", "none", "random"):
        if width != 1 and str(weights) in WEIGHTS:
            raise ConfigError(
                f"model.weights={weights!r}: {weights} weights fit the full network (width 1) "
                f'only; model.width = {width:g} trains from scratch (set model.weights = "none")'
            )
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
            if weights_required or str(weights) not in WEIGHTS:
                raise
            warnings.warn(
                f"PRETRAINED WEIGHTS UNAVAILABLE — training from random initialisation. {exc}",
                UserWarning,
                stacklevel=2,
            )
    freeze_layers(model, freeze, pretrained=used != "random")
    return model, used


def freeze_layers(model: nn.Module, freeze: str, *, pretrained: bool) -> None:
    """Stop ``"features"`` (the convolutions) or ``"all_but_head"`` from learning; ``"none"``
    leaves the model as it is. Freezing untrained (random) layers warns."""
    freeze = choice("model.freeze", freeze, ("none", "features", "all_but_head"))
    if freeze == "none":
        return
    if not pretrained:
        warnings.warn(
            f"model.freeze={freeze!r} with random weights freezes untrained layers",
            UserWarning,
            stacklevel=3,
        )
    # The AlexNet layout's parts (a Module's attributes are typed Tensor | Module by its
    # __getattr__; casts, not checks: any network with these parts works as before).
    features = cast(nn.Module, model.features)
    if freeze == "features":
        frozen = features
    else:
        classifier = cast(nn.Sequential, model.classifier)
        frozen = nn.ModuleList([features, *list(classifier)[:-1]])
    for p in frozen.parameters():
        p.requires_grad_(False)


def load_pretrained(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    source: str = "",
    keep_head: bool | None = None,
) -> None:
    """Load ``state`` (torchvision layout) into ``model``.

    The head (``classifier.6``) is kept when ``keep_head`` is true, dropped (left at its random
    initialisation) when false, and by default dropped only when its size differs (timm's rule
    for another class count). Every other key must match in name and shape; otherwise
    ``DataError`` lists the mismatches.
    """
    own = model.state_dict()
    head_keys = [k for k in own if k.startswith("classifier.6.")]
    state = dict(state)
    for k in head_keys:
        if k in state and (
            keep_head is False or (keep_head is None and state[k].shape != own[k].shape)
        ):
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


__all__ = [
    "WEIGHTS",
    "Weights",
    "build_model",
    "build_network",
    "freeze_layers",
    "load_pretrained",
    "load_state_dict",
    "resolve_weights_file",
    "weights_cache_dir",
]
