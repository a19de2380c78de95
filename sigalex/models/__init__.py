"""The network side: AlexNet architectures, pretrained weights, and the model unit.

- :mod:`~sigalex.models.alexnet`: :class:`AlexNet` (torchvision's layout) and
  :class:`AlexNet2012` (the paper's network);
- :mod:`~sigalex.models.weights`: weights as data, their verified download, :func:`build_model`;
- :mod:`~sigalex.models.spec`: :class:`ModelSpec`, what a trained model expects and gives
  (classes, positive class, rate, window, stride, channels) and how windows are cut for it;
- :mod:`~sigalex.models.net`: :class:`SignalClassifier`, front end + network as one module.
"""

from .alexnet import ARCHITECTURES, IMAGENET_MEAN, IMAGENET_STD, AlexNet, AlexNet2012
from .net import SignalClassifier, build_frontend
from .spec import ModelSpec, WindowPlan
from .weights import (
    WEIGHTS,
    Weights,
    build_model,
    build_network,
    freeze_layers,
    load_pretrained,
    load_state_dict,
    resolve_weights_file,
    weights_cache_dir,
)

__all__ = [
    "ARCHITECTURES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "WEIGHTS",
    "AlexNet",
    "AlexNet2012",
    "ModelSpec",
    "SignalClassifier",
    "Weights",
    "WindowPlan",
    "build_frontend",
    "build_model",
    "build_network",
    "freeze_layers",
    "load_pretrained",
    "load_state_dict",
    "resolve_weights_file",
    "weights_cache_dir",
]
