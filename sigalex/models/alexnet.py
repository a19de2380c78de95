"""AlexNet in torchvision's state-dict layout and the 2012 paper network.

Models take images ``(batch, 3, H, W)`` — float in [0, 1] or uint8 — and normalise them with the
ImageNet mean and std themselves: normalisation belongs to the model's input, not to rendering.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from ..errors import ParameterError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNetNormalize(nn.Module):
    """``(x - mean) / std`` per RGB channel; uint8 input is first scaled to [0, 1]."""

    mean: torch.Tensor  # buffers (registered in __init__)
    std: torch.Tensor

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


def scaled(channels: int, width: float, multiple: int = 1) -> int:
    """``channels`` times the width multiplier, rounded to a multiple of ``multiple`` (at least
    ``multiple``): grouped convolutions need channel counts their groups divide."""
    return multiple * max(1, round(channels * width / multiple))


def _check_width(width) -> float:
    if isinstance(width, bool) or not isinstance(width, int | float) or not 0 < width <= 1:
        raise ParameterError(f"{width=} must be a number in (0, 1] (1: the full network)")
    return float(width)


def _check_groups(groups) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int) or groups not in (1, 2):
        raise ParameterError(f"{groups=} must be 1 (dense) or 2 (the 2012 paper's two-GPU split)")
    return int(groups)


def _classifier(num_classes: int, dropout: float, in_features: int, hidden: int) -> nn.Sequential:
    """The fully connected part both variants share (torchvision's indices: 1, 4, 6)."""
    return nn.Sequential(
        nn.Dropout(p=dropout),
        nn.Linear(in_features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(p=dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes),
    )


class _AlexNetBase(nn.Module):
    """ImageNet normalisation → ``features`` → 6×6 average pool → ``classifier``."""

    normalize: nn.Module
    features: nn.Sequential
    avgpool: nn.Module
    classifier: nn.Sequential

    @property
    def head(self) -> nn.Linear:
        """The last layer, replaced for a task's classes."""
        # Sequential's items are typed Module; _classifier ends in a Linear (a cast, not a check:
        # a user's replacement head is returned as it is).
        return cast(nn.Linear, self.classifier[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.normalize(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


class AlexNet(_AlexNetBase):
    """AlexNet as torchvision defines it (the "one weird trick" variant, 61.1 M parameters).

    ``features`` / ``avgpool`` / ``classifier`` carry torchvision's names and indices, so
    ``alexnet-owt-7be5be79.pth`` loads unchanged. Input ``(batch, 3, H, W)`` images, H and W ≥ 63
    (227 by default); output logits ``(batch, num_classes)``.

    ``width`` scales every convolution's kernels and the hidden units of the classifier (the
    compact network: ``width=0.25`` has 16-48-96-64-64 kernels and 1024 hidden units, 3.6 M
    parameters instead of 57.0 M for two classes); ImageNet weights fit ``width=1`` only.
    """

    def __init__(self, num_classes: int = 1000, *, dropout: float = 0.5, width: float = 1.0):
        super().__init__()
        self.width = _check_width(width)
        c1, c2, c3, c4, c5 = (scaled(c, self.width) for c in (64, 192, 384, 256, 256))
        self.normalize = ImageNetNormalize()
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = _classifier(num_classes, dropout, c5 * 6 * 6, scaled(4096, self.width))


class SplitLocalResponseNorm(nn.Module):
    """Local response normalisation within each of ``groups`` equal blocks of channels (the
    2012 network's two GPUs each normalised their own kernel maps); no parameters."""

    def __init__(self, groups: int, **lrn):
        super().__init__()
        self.groups = groups
        self.lrn = nn.LocalResponseNorm(**lrn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.lrn(part) for part in x.chunk(self.groups, dim=1)], dim=1)


def _lrn(groups: int) -> nn.Module:
    """The paper's normalisation (size 5, alpha 1e-4, beta 0.75, k 2), per group of maps."""
    kw = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
    return nn.LocalResponseNorm(**kw) if groups == 1 else SplitLocalResponseNorm(groups, **kw)


class AlexNet2012(_AlexNetBase):
    """The network of Krizhevsky, Sutskever & Hinton (2012), on one device, for training from scratch.

    96-256-384-384-256 kernels, local response normalisation after conv1 and conv2 (size 5,
    alpha 1e-4, beta 0.75, k 2), overlapping 3×3 stride-2 max-pooling, two 4096-unit layers with
    dropout 0.5; weights N(0, 0.01), biases 1 in conv2, conv4, conv5 and the hidden fully
    connected layers, 0 elsewhere. Input ``(batch, 3, 227, 227)``. ``width`` scales the
    kernels and hidden units as in :class:`AlexNet`.

    ``groups=2`` is the paper's two-GPU network (its figure 2) as grouped convolutions: conv2,
    conv4 and conv5 see only the kernel maps of their own half ("GPU": the first or the second
    half of the channels), conv2's kernels are 5×5×48, conv4's and conv5's 3×3×192; conv1
    (11×11×3), conv3 (3×3×256: both halves) and the fully connected layers are dense.
    ``groups=1`` (default) is the same network with every convolution dense. At ``groups=2``
    the local response normalisation after conv1 and conv2 runs within each half
    (:class:`SplitLocalResponseNorm`), as each of the paper's GPUs normalised its own maps, so
    the halves meet only in conv3 and the fully connected layers. At ``groups=2`` each
    convolution's kernels are rounded to an even number after scaling by ``width`` (the halves
    stay equal; nothing changes at ``width=1``, nor at 0.25).

    Parameters (weights and biases), ``width=1``:

    ==========  ==============  ==============
    classes     ``groups=1``    ``groups=2``
    ==========  ==============  ==============
    1000        62,378,344      60,965,224
    2           58,289,538      56,876,418
    ==========  ==============  ==============

    ``groups=2`` has 1,413,120 fewer: conv2 307,200, conv4 663,552, conv5 442,368 weights
    (half of each dense layer's).
    """

    def __init__(
        self, num_classes: int = 1000, *, dropout: float = 0.5, width: float = 1.0, groups: int = 1
    ):
        super().__init__()
        self.width = _check_width(width)
        self.groups = g = _check_groups(groups)
        c1, c2, c3, c4, c5 = (scaled(c, self.width, g) for c in (96, 256, 384, 384, 256))
        self.normalize = ImageNetNormalize()
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            _lrn(g),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2, groups=g),
            nn.ReLU(inplace=True),
            _lrn(g),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1, groups=g),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1, groups=g),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = _classifier(num_classes, dropout, c5 * 6 * 6, scaled(4096, self.width))
        self._init_paper()

    def _init_paper(self) -> None:
        ones = {4, 10, 12}  # conv2, conv4, conv5 in ``features``
        for i, m in enumerate(self.features):
            if isinstance(m, nn.Conv2d):
                assert m.bias is not None  # every convolution here has a bias
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.constant_(m.bias, 1.0 if i in ones else 0.0)
        linears = [m for m in self.classifier if isinstance(m, nn.Linear)]
        for j, m in enumerate(linears):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.constant_(m.bias, 0.0 if j == len(linears) - 1 else 1.0)


ARCHITECTURES = {"alexnet": AlexNet, "alexnet2012": AlexNet2012}


__all__ = [
    "ARCHITECTURES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AlexNet",
    "AlexNet2012",
    "ImageNetNormalize",
]
