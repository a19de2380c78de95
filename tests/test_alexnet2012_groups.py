"""``model.groups = 2``: the 2012 paper's two-GPU AlexNet as grouped convolutions.

Krizhevsky, Sutskever & Hinton (2012), figure 2: the network's kernels are split between two
GPUs; conv2, conv4 and conv5 see only the kernel maps of their own GPU, conv1 (on the image),
conv3 and the fully connected layers see everything. Here the "GPUs" are the first and second
halves of each layer's channels. The parameter count is checked against the paper's figures
written out layer by layer, the halves' separation by perturbing one half of a layer's input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sigalex.checkpoint import (
    initial_model,
    load_model,
    new_checkpoint,
    resolve_parent,
    save_checkpoint,
)
from sigalex.config import from_dict
from sigalex.errors import ConfigError, ParameterError
from sigalex.models import AlexNet2012, ModelSpec, build_network

RATE = 256.0
SIZE = 67  # the smallest image alexnet2012 takes: small networks, fast tests
CONV = (0, 4, 8, 10, 12)  # conv1..conv5 in ``features``


def _conv(kernels: int, k: int, depth: int) -> int:
    """``kernels`` kernels of k×k×depth, and a bias each."""
    return kernels * k * k * depth + kernels


def _fc(inputs: int, units: int) -> int:
    return inputs * units + units


def _paper_layers(groups: int, classes: int) -> list[int]:
    """Parameters per layer of figure 2, written from the paper's kernel shapes."""
    if groups == 2:  # each GPU's kernels see the maps of their own GPU (48 or 192 deep)
        conv2, conv4, conv5 = _conv(256, 5, 48), _conv(384, 3, 192), _conv(256, 3, 192)
    else:  # one device: every kernel sees every map of the layer below
        conv2, conv4, conv5 = _conv(256, 5, 96), _conv(384, 3, 384), _conv(256, 3, 384)
    return [
        _conv(96, 11, 3),  # conv1: 48 kernels per GPU, each on the 3 colour channels
        conv2,
        _conv(384, 3, 256),  # conv3: "connected to all kernel maps in the second layer"
        conv4,
        conv5,
        _fc(256 * 6 * 6, 4096),
        _fc(4096, 4096),
        _fc(4096, classes),
    ]


def _layers(network: nn.Module) -> list[int]:
    layers = [m for m in network.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    return [sum(p.numel() for p in m.parameters()) for m in layers]


@pytest.mark.parametrize(
    "groups, classes, total",
    [(2, 1000, 60_965_224), (1, 1000, 62_378_344), (2, 2, 56_876_418), (1, 2, 58_289_538)],
)
def test_parameter_count_is_the_paper_s(groups, classes, total):
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        network = build_network("alexnet2012", num_classes=classes, groups=groups)
    assert _layers(network) == _paper_layers(groups, classes)
    assert sum(p.numel() for p in network.parameters()) == sum(_paper_layers(groups, classes))
    assert sum(_paper_layers(groups, classes)) == total  # the figures in AlexNet2012's docstring
    convs = [network.features[i] for i in CONV]
    shapes = [tuple(c.weight.shape) for c in convs]
    if groups == 2:
        assert shapes == [
            (96, 3, 11, 11), (256, 48, 5, 5), (384, 256, 3, 3), (384, 192, 3, 3), (256, 192, 3, 3)
        ]  # fmt: skip
    assert [c.groups for c in convs] == ([1, 2, 1, 2, 2] if groups == 2 else [1] * 5)
    # the same layers but for the normalisation, per half at groups=2 (no parameters either way)
    kinds = [type(m).__name__ for m in network.features if not isinstance(m, nn.Conv2d)]
    dense = build_network("alexnet2012", num_classes=classes, groups=1, width=0.1)
    lrn = "SplitLocalResponseNorm" if groups == 2 else "LocalResponseNorm"
    assert kinds == [
        lrn if k == "LocalResponseNorm" else k
        for k in (type(m).__name__ for m in dense.features if not isinstance(m, nn.Conv2d))
    ]


@pytest.fixture(scope="module")
def paper_network():
    torch.manual_seed(0)
    return build_network("alexnet2012", num_classes=2, groups=2).eval()


@pytest.mark.parametrize("layer, split", [(4, True), (8, False), (10, True), (12, True)])
def test_the_halves_mix_only_where_the_paper_says(paper_network, layer, split):
    """Perturbing the first half of a layer's input maps: conv2, conv4, conv5 leave the second
    half of their output unchanged (to the bit); conv3 (dense) changes all of it."""
    conv = paper_network.features[layer]
    x = torch.rand(2, conv.in_channels, 13, 13)
    y = x.clone()
    y[:, : conv.in_channels // 2] += torch.randn_like(y[:, : conv.in_channels // 2])
    with torch.no_grad():
        a, b = conv(x), conv(y)
    half = conv.out_channels // 2
    changed = (a != b).flatten(2).any(-1).all(0)  # per output map
    assert bool(changed[:half].all())
    if split:
        assert not bool(changed[half:].any())
        torch.testing.assert_close(a[:, half:], b[:, half:], rtol=0, atol=0)
    else:
        assert bool(changed[half:].all())


def test_the_whole_network_keeps_its_halves_apart_up_to_conv3(paper_network):
    """conv1 to conv2's normalisation and pooling (ReLUs, LRN per half, pooling): conv2's second
    half never sees conv1's first half, as on the paper's second GPU; with the normalisation
    across all maps it would, at the border."""
    stack = paper_network.features[3:8]  # pool1, conv2, ReLU, LRN2, pool2
    x = torch.rand(1, 96, 27, 27)
    y = x.clone()
    y[:, :48] = torch.rand(1, 48, 27, 27) * 5  # the first GPU's conv1 maps
    with torch.no_grad():
        a, b = stack(x), stack(y)
    torch.testing.assert_close(a[:, 128:], b[:, 128:], rtol=0, atol=0)
    assert not torch.equal(a[:, :128], b[:, :128])
    # the normalisation itself: one half's maps do not change the other's
    lrn = paper_network.features[2]
    m = torch.rand(1, 96, 5, 5)
    n = m.clone()
    n[:, 40:48] *= 10  # maps at the border of the first half
    with torch.no_grad():
        torch.testing.assert_close(lrn(m)[:, 48:], lrn(n)[:, 48:], rtol=0, atol=0)
        assert not torch.equal(nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)(m)[:, 48:50],
                               nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0)(n)[:, 48:50])  # fmt: skip


def test_whole_feature_stack_keeps_the_halves_between_conv3_and_conv5(paper_network):
    """From conv4's input to conv5's output (ReLUs between, no LRN): the second GPU's maps never
    see the first GPU's."""
    stack = paper_network.features[10:14]  # conv4, ReLU, conv5, ReLU
    x = torch.rand(1, 384, 13, 13)
    y = x.clone()
    y[:, :192] = torch.rand(1, 192, 13, 13)
    with torch.no_grad():
        a, b = stack(x), stack(y)
    torch.testing.assert_close(a[:, 128:], b[:, 128:], rtol=0, atol=0)
    assert not torch.equal(a[:, :128], b[:, :128])


def test_width_rounds_grouped_kernels_to_even_counts():
    def kernels(groups: int, width: float) -> list[int]:
        with torch.device("meta"):
            net = build_network("alexnet2012", num_classes=2, groups=groups, width=width)
        return [net.features[i].out_channels for i in CONV]

    assert kernels(1, 0.3) == [29, 77, 115, 115, 77]  # dense: as before
    assert kernels(2, 0.3) == [28, 76, 116, 116, 76]
    assert kernels(2, 0.25) == kernels(1, 0.25) == [24, 64, 96, 96, 64]
    assert kernels(2, 0.01) == [2, 2, 4, 4, 2]  # the least: one map per half


# ---------------------------------------------------------------------------------------------
# Recipes and checkpoints


def _recipe(**model) -> dict:
    return {
        "transform": {"method": "stft", "n_fft": 128, "hop_length": 32, "fmax": 40.0},
        "render": {"size": SIZE, "normalize": "fixed", "vmin": 0.0, "vmax": 80.0},
        "model": {"architecture": "alexnet2012", "weights": "none", "width": 0.25, **model},
    }


@pytest.mark.parametrize(
    "model, message",
    [
        ({"groups": 3}, r"model\.groups = 3: must be 1 .* or 2 "),
        ({"groups": 0}, r"model\.groups = 0: must be 1 .* or 2 "),
        ({"groups": 2.0}, r"model\.groups = 2\.0: must be an integer"),
        ({"groups": True}, r"model\.groups = True: must be an integer"),
        (
            {"architecture": "alexnet", "groups": 2},
            r"model\.groups = 2 with model\.architecture = 'alexnet'.*dense",
        ),
    ],
)
def test_bad_groups_are_config_errors_naming_the_keys(model, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(_recipe(**model))


def test_the_network_refuses_other_groups():
    with pytest.raises(ConfigError, match=r"model\.groups = 2 with model\.architecture"):
        build_network("alexnet", num_classes=2, groups=2)
    for bad in (3, 2.0, True):
        with pytest.raises(ParameterError, match="groups="):
            AlexNet2012(2, groups=bad)  # type: ignore[arg-type]


def _windows(n: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(1024) / RATE
    x = 30 * rng.standard_normal((n, 1, 1024))
    for i in range(0, n, 2):
        x[i] += 200 * np.sign(np.sin(2 * np.pi * 3 * t + i)) * np.exp(-((t - 2) ** 2))
    return torch.from_numpy(x.astype(np.float32))


@pytest.fixture(scope="module")
def grouped_checkpoint(tmp_path_factory):
    """A groups=2 compact alexnet2012 whose probabilities spread over (0, 1), saved by the real
    writer: ``(path, model)``."""
    cfg = from_dict(_recipe(groups=2))
    spec = ModelSpec(
        classes=("a", "b"), sample_rate=RATE, n_channels=1, n_times=1024, architecture="alexnet2012"
    )
    torch.manual_seed(0)
    model, used, _ = initial_model(cfg, spec)
    assert used == "random" and model.network.groups == 2
    for m in model.network.modules():  # the paper's N(0, 0.01) gives near-constant outputs
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    model.eval()
    with torch.no_grad():
        logits = model(_windows(8))
        d = logits[:, 1] - logits[:, 0]
        head = model.network.head
        head.weight.mul_(2.0 / float(d.std()))
        head.bias.mul_(0).add_(torch.tensor([0.5, -0.5]) * float(d.mean()) * 2.0 / float(d.std()))
    folder = tmp_path_factory.mktemp("groups")
    return save_checkpoint(folder / "c.pt", new_checkpoint(model, cfg)), model


def test_a_grouped_checkpoint_reloads_and_predicts_the_same(grouped_checkpoint):
    path, model = grouped_checkpoint
    again = load_model(path)
    assert again.network.groups == 2
    assert [again.network.features[i].groups for i in CONV] == [1, 2, 1, 2, 2]
    x = _windows(6, seed=1)
    p = model.probabilities(x)
    assert float(p[:, 1].std()) > 0.05  # the comparison means something
    np.testing.assert_allclose(again.probabilities(x), p, atol=1e-6)


def test_fine_tuning_a_grouped_parent_needs_the_same_groups(grouped_checkpoint):
    path, model = grouped_checkpoint
    with pytest.raises(ConfigError, match=r"model\.groups = 2 network; the recipe builds model\.groups = 1"):  # fmt: skip
        resolve_parent(from_dict(_recipe(weights=str(path))))
    cfg, parent = resolve_parent(from_dict(_recipe(weights=str(path), groups=2)))
    assert parent is not None
    child, used, info = initial_model(cfg, model.spec, parent=parent)
    assert used.startswith("checkpoint") and info is not None and info["head_kept"]
    x = _windows(3, seed=2)
    np.testing.assert_allclose(child.eval().probabilities(x), model.probabilities(x), atol=1e-6)


def test_a_grouped_network_exports_to_onnx(grouped_checkpoint, tmp_path):
    onnx = pytest.importorskip("onnx", reason="needs the export extra")
    pytest.importorskip("onnxruntime", reason="needs the export extra")
    from sigalex.export.onnx import export_onnx
    from sigalex.export.runtime import OnnxClassifier

    path, model = grouped_checkpoint
    out = export_onnx(path, tmp_path / "net.onnx", model_only=True).path
    proto = onnx.load(str(out), load_external_data=False)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    groups = [next((a.i for a in n.attribute if a.name == "group"), 1) for n in convs]
    assert groups == [1, 2, 1, 2, 2]  # grouped Conv exports natively
    x = _windows(4, seed=3)
    got = OnnxClassifier(out).probabilities(x).numpy()
    np.testing.assert_allclose(got, model.probabilities(x).numpy(), atol=1e-4)
