"""Shared test helpers: device parametrisation, the ``needs_cuda`` / ``needs_data`` markers,
the real-data directory and a few small signals.

- ``@pytest.mark.needs_cuda``: skipped, with a reason, when ``torch.cuda.is_available()`` is
  false, so GPU cases show up as skipped in the report instead of silently vanishing.
- ``cpu_and_cuda()``: ``@pytest.mark.parametrize("device", cpu_and_cuda())`` runs a test on the
  CPU and (marked ``needs_cuda``) on the GPU, as torchvision's test-suite does.
- ``@pytest.mark.needs_data``: skipped, with a reason, when the data folder is missing.
- ``data_dir``: the real datasets (``$SIGALEX_DATA``, else ``<repo>/../shared/data``); tests
  that use it are skipped with a clear reason when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def cuda_available() -> bool:
    return torch.cuda.is_available()


def cpu_and_cuda():
    """Device parameters: ``"cpu"`` and ``"cuda"`` (the latter marked ``needs_cuda``)."""
    return ("cpu", pytest.param("cuda", marks=pytest.mark.needs_cuda))


def pytest_collection_modifyitems(config, items):
    skips = {}
    if not cuda_available():
        skips["needs_cuda"] = pytest.mark.skip(
            reason="needs_cuda: no CUDA device (torch.cuda.is_available() is False)"
        )
    if not _data_root().is_dir():
        skips["needs_data"] = pytest.mark.skip(
            reason=f"needs_data: real data not found at {_data_root()}; set SIGALEX_DATA"
        )
    for item in items:
        for marker, skip in skips.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)


def _data_root() -> Path:
    env = os.environ.get("SIGALEX_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets; skips the test (with where it looked) when they are missing."""
    root = _data_root()
    if not root.is_dir():
        how = "SIGALEX_DATA" if os.environ.get("SIGALEX_DATA") else "default ../shared/data"
        pytest.skip(f"needs_data: real data not found at {root} ({how}); set SIGALEX_DATA")
    return root


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    """Four 40 s synthetic EEG recordings (EDF+, one annotated seizure of 10-14 s each): the
    tiny dataset of the training, distributed and report tests (written once per module)."""
    from sigalex.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(
        root, 4, duration_s=40.0, n_seizures=(1, 1), seizure_duration_s=(10, 14)
    )
    return root


def untrained_seizure_checkpoint(path: Path, seed: int | None = None) -> Path:
    """A random-weight single-channel seizure model (4 s windows at 256 Hz, 64 px STFT images),
    written the one way training writes checkpoints: the model of the prediction-plumbing tests.
    ``seed`` seeds torch first (two seeds: two models that answer differently)."""
    from sigalex.checkpoint import initial_model, new_checkpoint, save_checkpoint
    from sigalex.config import from_dict
    from sigalex.models import ModelSpec

    if seed is not None:
        torch.manual_seed(seed)
    cfg = from_dict({
        "data": {"dataset": "folder", "root": "."},
        "windows": {"window_s": 4.0, "stride_s": 4.0},
        "transform": {"method": "stft", "n_fft": 128, "hop_length": 32, "fmax": 40.0},
        "render": {"size": 64},
        "model": {"weights": "none"},
    })  # fmt: skip
    spec = ModelSpec(
        classes=("background", "seizure"), sample_rate=256.0, n_channels=1, n_times=1024,
        positive_class="seizure", window_s=4.0, stride_s=4.0,
    )  # fmt: skip
    model, _, _ = initial_model(cfg, spec)
    return save_checkpoint(path, new_checkpoint(model, cfg))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def tones(sample_rate: float, n_times: int, components, *, noise: float = 0.0, seed: int = 0):
    """Sum of sines ``[(freq_hz, amplitude), ...]`` plus optional white noise, float64."""
    t = np.arange(n_times) / sample_rate
    x = np.zeros(n_times)
    for i, (f, a) in enumerate(components):
        x += a * np.sin(2 * np.pi * f * t + 0.7 * i)
    if noise:
        x += noise * np.random.default_rng(seed).standard_normal(n_times)
    return x
