"""``sigalex.models.AlexNet`` against torchvision's own ``AlexNet``: same state-dict layout,
same logits, and ``build_model`` / ``load_pretrained`` take a torchvision state dict — which is
what ``alexnet-owt-7be5be79.pth`` (``AlexNet_Weights.IMAGENET1K_V1``) is.

torchvision is a test-only dependency (the ``test`` extra pins ``torchvision==0.28.0``, the
release built against torch 2.13.0); the library itself never imports it.

How torchvision's class is obtained:

1. ``import torchvision`` and ``torchvision.models.alexnet(num_classes=...)`` when that works.
2. PyPI's torchvision 0.28.0 wheel is a CUDA build: next to a CPU-only torch its compiled
   extension (``_C.so``, linked against ``libtorch_cuda.so``) does not load, and
   ``import torchvision`` fails with ``RuntimeError: operator torchvision::nms does not exist``.
   AlexNet needs none of the compiled operators, so the test then finds the installed package
   *without importing it* (``importlib.util.find_spec("torchvision")``), reads
   ``models/alexnet.py``, takes the ``AlexNet`` class definition out of it with ``ast``
   (torchvision's code, unmodified) and executes it in a namespace holding ``torch``, ``nn``
   and a no-op ``_log_api_usage_once`` (the only names the class uses).
3. When torchvision is not installed at all, the tests are skipped with that reason.

Our model normalises with the ImageNet mean and std inside ``forward``; torchvision's expects
normalised input. So ours gets ``x`` and torchvision's gets ``(x - mean) / std``.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from sigalex.models import IMAGENET_MEAN, IMAGENET_STD, AlexNet, build_model, load_pretrained

SIGALEX = Path(__file__).resolve().parents[1] / "sigalex"


@functools.cache
def _torchvision_alexnet() -> tuple[Callable[[int], nn.Module], str]:
    """``(make, how)``: ``make(num_classes)`` builds torchvision's AlexNet with random
    weights; ``how`` says whether it came from the imported package or from its source."""
    try:
        import torchvision
    except Exception as exc:  # missing, or the CUDA wheel's RuntimeError next to a CPU torch
        import_error = exc
    else:
        return (
            lambda n: torchvision.models.alexnet(weights=None, num_classes=n),
            f"import torchvision {torchvision.__version__}",
        )
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"torchvision is not installed (pip install torchvision): {import_error}")
    source_path = Path(next(iter(spec.submodule_search_locations))) / "models" / "alexnet.py"
    source = source_path.read_text()
    class_defs = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef) and node.name == "AlexNet"
    ]
    assert len(class_defs) == 1, f"no single AlexNet class in {source_path}"
    class_source = ast.get_source_segment(source, class_defs[0])
    namespace = {"torch": torch, "nn": nn, "_log_api_usage_once": lambda _obj: None}
    exec(compile(class_source, str(source_path), "exec"), namespace)
    cls = namespace["AlexNet"]
    how = f"AlexNet class from {source_path} (import torchvision failed: {import_error!r})"
    return (lambda n: cls(num_classes=n)), how


@pytest.fixture(scope="module")
def torchvision_model() -> nn.Module:
    """torchvision's AlexNet, 1000 classes (the ImageNet head), seeded random weights, eval."""
    make, _how = _torchvision_alexnet()
    torch.manual_seed(0)
    return make(1000).eval()


def _normalised(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _images() -> torch.Tensor:
    return torch.rand(2, 3, 227, 227, generator=torch.Generator().manual_seed(1))


def test_torchvision_state_dict_loads_strictly_and_gives_the_same_logits(torchvision_model):
    state = torchvision_model.state_dict()
    ours = AlexNet(1000).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in state.items()
    }
    ours.load_state_dict(state, strict=True)  # same names, same shapes, nothing left over
    x = _images()
    with torch.no_grad():
        expected = torchvision_model(_normalised(x))
        got = ours(x)
    assert got.shape == (2, 1000)
    assert expected.abs().max() > 1e-3  # logits worth comparing, not all ~0
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_build_model_loads_a_torchvision_file_and_drops_the_head(torchvision_model, tmp_path):
    path = tmp_path / "torchvision-alexnet.pth"
    torch.save(torchvision_model.state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to random weights would warn
        model, used = build_model(
            num_classes=2, weights=path, weights_required=True, progress=False
        )
    assert path.name in used and "sha256" in used
    assert model.head.out_features == 2
    state = torchvision_model.state_dict()
    for k, v in model.state_dict().items():
        if not k.startswith("classifier.6."):
            assert torch.equal(v, state[k]), k
    # Up to the new head, the 2-class model computes what torchvision's does.
    model.eval()
    x = _images()
    with torch.no_grad():
        ours = model.classifier[:-1](
            torch.flatten(model.avgpool(model.features(model.normalize(x))), 1)
        )
        tv = torchvision_model
        theirs = tv.classifier[:-1](torch.flatten(tv.avgpool(tv.features(_normalised(x))), 1))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    # load_pretrained on its own: the same, in memory
    direct = AlexNet(2)
    load_pretrained(direct, state, source="torchvision")
    for k, v in direct.state_dict().items():
        if not k.startswith("classifier.6."):
            assert torch.equal(v, state[k]), k


def test_the_library_never_imports_torchvision():
    """torchvision is for these tests only: no import statement in ``sigalex`` names it."""
    offenders = []
    for path in sorted(SIGALEX.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(n == "torchvision" or n.startswith("torchvision.") for n in names):
                offenders.append(f"{path.relative_to(SIGALEX.parent)}:{node.lineno}")
    assert not offenders, offenders
