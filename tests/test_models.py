"""AlexNet layouts, pretrained-weights loading (local file, download with hash check, offline)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
import warnings
from pathlib import Path

import pytest
import torch

from sigalex import models
from sigalex.errors import ConfigError, DataError
from sigalex.models import AlexNet, AlexNet2012, Weights, build_model, load_pretrained

# The key layout of torchvision's alexnet-owt-7be5be79.pth (names and shapes).
TORCHVISION_SHAPES = {
    "features.0.weight": (64, 3, 11, 11),
    "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5),
    "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3),
    "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3),
    "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3),
    "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216),
    "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096),
    "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}


@functools.cache
def _imagenet_like_state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=gen) * 0.01 for k, s in TORCHVISION_SHAPES.items()}


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    """A state dict in torchvision's layout, named with its own sha256 prefix like the real one."""
    folder = tmp_path_factory.mktemp("weights")
    tmp = folder / "tmp.pth"
    torch.save(_imagenet_like_state(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = folder / f"alexnet-owt-{digest[:8]}.pth"
    tmp.rename(path)
    return path


def test_alexnet_matches_torchvision_layout_and_size():
    model = AlexNet()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == TORCHVISION_SHAPES
    assert sum(p.numel() for p in model.parameters()) == 61_100_840


@pytest.mark.parametrize("cls", [AlexNet, AlexNet2012])
def test_forward_shapes_at_227_float_and_uint8(cls):
    model = cls(3).eval()
    x = torch.rand(2, 3, 227, 227)
    out = model(x)
    assert out.shape == (2, 3)
    # uint8 input is scaled to [0, 1] before the ImageNet normalisation: same logits.
    x8 = (x * 255).round().to(torch.uint8)
    torch.testing.assert_close(model(x8), model(x8.float() / 255), rtol=1e-4, atol=1e-5)


def test_paper_network_structure():
    model = AlexNet2012(10)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in model.features) == 2
    pools = [m for m in model.features if isinstance(m, torch.nn.MaxPool2d)]
    assert all(p.kernel_size == 3 and p.stride == 2 for p in pools)  # overlapping pooling
    # conv1 on 227x227 without padding gives 55x55, as in the paper
    assert model.features[0](torch.zeros(1, 3, 227, 227)).shape[-1] == 55
    assert float(convs[1].bias.detach().mean()) == 1.0
    assert float(convs[0].bias.detach().mean()) == 0.0


def test_normalisation_belongs_to_the_model():
    model = AlexNet(2)
    assert "normalize.mean" not in model.state_dict()  # non-persistent: torchvision layout kept
    gray = torch.full((1, 3, 4, 4), 0.5)
    out = model.normalize(gray)
    expected = (0.5 - torch.tensor(models.IMAGENET_MEAN)) / torch.tensor(models.IMAGENET_STD)
    torch.testing.assert_close(out[0, :, 0, 0], expected)
    # uint8 levels and float images, against (x - mean) / std in float64; input untouched,
    # memory layout kept
    mean = torch.tensor(models.IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(models.IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    levels = torch.randint(0, 256, (2, 3, 9, 7), dtype=torch.uint8)
    for x in (levels, levels.float() / 255, levels.contiguous(memory_format=torch.channels_last)):
        before = x.clone()
        out = model.normalize(x)
        assert out.dtype == torch.float32 and torch.equal(x, before)
        ref = (levels.double() / 255 - mean) / std
        torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-6)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_local_weights_file_loads_and_head_is_replaced(weights_file):
    model, used = build_model(num_classes=2, weights=str(weights_file), progress=False)
    state = _imagenet_like_state()
    torch.testing.assert_close(model.features[0].weight, state["features.0.weight"])
    torch.testing.assert_close(model.classifier[4].weight, state["classifier.4.weight"])
    assert model.head.out_features == 2
    assert weights_file.name in used and "sha256" in used


def test_weights_with_wrong_layout_are_rejected(tmp_path):
    state = dict(_imagenet_like_state())
    state["features.3.weight"] = torch.zeros(10, 64, 5, 5)
    del state["features.8.bias"]
    with pytest.raises(DataError, match=r"shape mismatch.*features\.3\.weight|missing"):
        load_pretrained(AlexNet(2), state, source="bad.pth")


def test_corrupt_weights_file_is_a_data_error(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"bad\.pth"):
        build_model(num_classes=2, weights=str(bad), weights_required=True)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def http_root(tmp_path):
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _use_spec(monkeypatch, hub_dir: Path, url: str, file_name: str):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub_dir))
    monkeypatch.setitem(models.WEIGHTS, "imagenet", Weights(url=url, file_name=file_name))


def test_download_checks_hash_and_caches(weights_file, http_root, tmp_path, monkeypatch):
    served, base = http_root
    (served / weights_file.name).write_bytes(weights_file.read_bytes())
    hub = tmp_path / "hub"
    _use_spec(monkeypatch, hub, f"{base}/{weights_file.name}", weights_file.name)
    model, used = build_model(num_classes=3, weights="imagenet", progress=False)
    assert used.startswith("imagenet") and (hub / "checkpoints" / weights_file.name).is_file()
    torch.testing.assert_close(
        model.features[0].weight, _imagenet_like_state()["features.0.weight"]
    )
    # second time: from the cache, even with the server gone
    (served / weights_file.name).unlink()
    _, used_again = build_model(num_classes=3, weights="imagenet", progress=False)
    assert used_again == used


def test_download_with_wrong_hash_is_refused(weights_file, http_root, tmp_path, monkeypatch):
    served, base = http_root
    wrong_name = "alexnet-owt-00000000.pth"
    (served / wrong_name).write_bytes(weights_file.read_bytes())
    _use_spec(monkeypatch, tmp_path / "hub", f"{base}/{wrong_name}", wrong_name)
    with pytest.raises(DataError, match="put it at"):
        build_model(num_classes=2, weights="imagenet", weights_required=True, progress=False)
    assert not (tmp_path / "hub" / "checkpoints" / wrong_name).exists()


def test_offline_falls_back_loudly_or_fails_when_required(tmp_path, monkeypatch):
    _use_spec(
        monkeypatch,
        tmp_path / "hub",
        "http://127.0.0.1:9/alexnet-owt-7be5be79.pth",
        "alexnet-owt-7be5be79.pth",
    )
    with pytest.warns(UserWarning, match="PRETRAINED WEIGHTS UNAVAILABLE"):
        _model, used = build_model(num_classes=2, weights="imagenet", progress=False)
    assert used == "random"
    with pytest.raises(DataError, match=r"put it at .*alexnet-owt-7be5be79\.pth"):
        build_model(num_classes=2, weights="imagenet", weights_required=True, progress=False)


def test_freeze_options(weights_file):
    model, _ = build_model(num_classes=2, weights=str(weights_file), freeze="features")
    assert not any(p.requires_grad for p in model.features.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    model, _ = build_model(num_classes=2, weights=str(weights_file), freeze="all_but_head")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.6.weight", "classifier.6.bias"}


def test_paper_network_refuses_pretrained_weights():
    with pytest.raises(ConfigError, match="alexnet2012"):
        build_model("alexnet2012", num_classes=2, weights="imagenet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, used = build_model("alexnet2012", num_classes=2, weights=None)
    assert used == "random" and isinstance(model, AlexNet2012)
