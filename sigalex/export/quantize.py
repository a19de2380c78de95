"""Smaller, faster exports: static int8 quantisation of the network.

**int8** (:func:`quantize_int8`): ONNX Runtime's static post-training quantisation in the QDQ
format, per-channel int8 weights and uint8 activations (ONNX Runtime's advice for x86 CPUs;
``reduce_range`` for CPUs without VNNI), calibrated with min/max ranges on windows drawn from
the **training** side of the checkpoint's own split (:func:`calibration_windows`: the recipe's
data and split rebuilt with :func:`sigalex.train.prepare_data`, the run's fold found by its
description; never the test set). Only the network's convolutions, fully connected layers and
the operators between them are quantised (the nodes under ``/network/`` except its ImageNet
normalisation); the front end (DFT and bank products, scaling, colormap, resize), the
normalisation and the softmax stay float32: 96% of AlexNet's weights and 92% of its compute
are in the network's convolutions and fully connected layers, and the front end's dB scale
and normalisation would lose whole colour levels in 8 bits.

fp16 networks for GPUs are exported directly from PyTorch
(:func:`sigalex.export.onnx.export_onnx` with ``precision="fp16"``).

This module reads training data; inference never imports it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..checkpoint import Checkpoint
from ..errors import ParameterError
from .onnx import ExportResult, _doc, import_onnx, write_metadata
from .runtime import INPUT_NAMES, OUTPUT_NAME, import_onnxruntime, read_metadata

#: Node-name prefixes of the network in a sigalex export (scopes of ``ExportGraph``).
NETWORK_PREFIX = "/network/"
FLOAT_IN_NETWORK = ("/network/normalize/",)


def network_nodes(proto) -> tuple[list[str], list[str]]:
    """``(network, the rest)``: node names of an export, the network's without its
    normalisation (what :func:`quantize_int8` quantises) and everything else."""
    inside, outside = [], []
    for node in proto.graph.node:
        net = node.name.startswith(NETWORK_PREFIX) and not node.name.startswith(FLOAT_IN_NETWORK)
        (inside if net else outside).append(node.name)
    return inside, outside


def calibration_windows(ckpt: Checkpoint, n: int, *, seed: int = 0) -> tuple[np.ndarray, dict]:
    """``n`` raw windows ``(n, n_channels, n_times)`` float32 from the training side of the
    checkpoint's split, at random (``seed``), and a description of where they came from.

    The recipe's data and split are rebuilt (:func:`sigalex.train.prepare_data`, no download)
    and the run's fold found by its description; the test and validation sides are never
    read.

    Raises
    ------
    DataError
        The data is missing or is not what the model was trained on (another contract or
        split).
    """
    from ..train.data import split_side

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"calibration={n!r} must be a positive number of windows")
    train = split_side(ckpt, "train", n, seed=seed)
    windows = train.windows
    info = {
        "side": "train",
        "n_windows": len(train.indices),
        "of_train_windows": train.n_side,
        "split": train.split.description,
        "fold": train.fold + 1,
        "dataset": ckpt.recipe.data.dataset,
        "seed": seed,
    }
    return windows, info


class _Batches:
    """ONNX Runtime's calibration reader: the calibration inputs in batches."""

    def __init__(self, name: str, inputs: np.ndarray, batch_size: int):
        self._batches = iter(
            [{name: inputs[i : i + batch_size]} for i in range(0, len(inputs), batch_size)]
        )

    def get_next(self):
        return next(self._batches, None)


def _model_inputs(fp32: Path, windows: np.ndarray, graph: str) -> np.ndarray:
    """What the graph takes: the windows, or (model-only) their images from the recipe's
    front end in PyTorch, rebuilt from the file's metadata."""
    if graph == "pipeline":
        return windows
    import torch

    from .runtime import OnnxClassifier

    model = OnnxClassifier(fp32)
    return model.images(torch.from_numpy(windows)).numpy()


def agreement(path_a: Path, path_b: Path, inputs: np.ndarray, name: str) -> dict:
    """How two exports agree on ``inputs``: the share of the same predicted class, and the
    largest difference in any probability."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    out = []
    for path in (path_a, path_b):
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        out.append(session.run([OUTPUT_NAME], {name: inputs})[0])
    return {
        "n_windows": len(inputs),
        "same_class": float((out[0].argmax(1) == out[1].argmax(1)).mean()),
        "max_abs_diff": float(np.abs(out[0] - out[1]).max()),
    }


def quantize_static_int8(
    fp32: Path, out: Path, inputs: np.ndarray, *, batch_size: int = 16,
    reduce_range: bool = False,
) -> int:  # fmt: skip
    """ONNX Runtime's static quantisation of the network nodes of ``fp32`` into ``out``,
    calibrated on ``inputs`` (the graph's input: windows, or images for a model-only export):
    the model is pre-processed (shape inference, graph optimisation) as ONNX Runtime advises,
    then quantised in the QDQ format with per-channel int8 weights and uint8 activations.
    Returns the number of nodes quantised. No metadata is written (see :func:`quantize_int8`).
    """
    import logging

    onnx = import_onnx()
    import_onnxruntime()
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    meta = read_metadata(
        {p.key: p.value for p in onnx.load(str(fp32), load_external_data=False).metadata_props},
        str(fp32),
    )
    name = INPUT_NAMES[meta["graph"]]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the tools log their advice on the root logger
    try:
        pre = Path(out).with_name(f".{Path(out).name}.pre.onnx")
        try:
            quant_pre_process(str(fp32), str(pre))
            inside, outside = network_nodes(onnx.load(str(pre), load_external_data=False))
            quantize_static(
                str(pre), str(out), _Batches(name, inputs, batch_size),  # type: ignore[arg-type]
                quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=outside, calibrate_method=CalibrationMethod.MinMax,
            )  # fmt: skip
        finally:
            pre.unlink(missing_ok=True)
    finally:
        root.setLevel(level)
    return len(inside)


def quantize_int8(
    fp32: Path, out: Path, ckpt: Checkpoint, *, calibration: int = 256, seed: int = 0,
    batch_size: int = 16, reduce_range: bool = False, check: int = 64,
) -> tuple[ExportResult, dict]:  # fmt: skip
    """Static int8 quantisation of an fp32 export ``fp32`` into ``out`` (module docs).

    ``calibration`` windows of the training side set the activation ranges; ``check`` more
    (also from the training side, not used for calibration) measure the agreement with the
    fp32 export, reported in the metadata and returned.
    """
    onnx = import_onnx()
    from .._files import atomic_path

    started = time.perf_counter()
    proto = onnx.load(str(fp32))
    meta = read_metadata({p.key: p.value for p in proto.metadata_props}, str(fp32))
    graph = meta["graph"]
    windows, source = calibration_windows(ckpt, calibration + check, seed=seed)
    n_cal = min(calibration, len(windows) - min(check, len(windows) // 4))
    inputs = _model_inputs(fp32, windows, graph)
    name = INPUT_NAMES[graph]
    with atomic_path(out) as tmp:
        n_quantized = quantize_static_int8(
            fp32, tmp, inputs[:n_cal], batch_size=batch_size, reduce_range=reduce_range
        )
        held_out = inputs[n_cal:] if len(inputs) > n_cal else inputs[:check]
        agree = agreement(fp32, tmp, held_out, name)
        quantization = {
            "method": "onnxruntime.quantization.quantize_static",
            "format": "QDQ",
            "weights": "int8, per channel",
            "activations": "uint8",
            "reduce_range": reduce_range,
            "calibrate_method": "MinMax",
            "calibration": {**source, "n_windows": int(n_cal)},
            "quantized": f"{n_quantized} network nodes (convolutions, fully connected, between)",
            "kept_float": "front end, ImageNet normalisation, softmax",
            "agreement_with_fp32": {**agree, "windows": "training side, not used to calibrate"},
        }
        q = onnx.load(str(tmp))
        props = {p.key: p.value for p in proto.metadata_props}
        props["sigalex.precision"] = "int8"
        props["sigalex.quantization"] = __import__("json").dumps(quantization)
        write_metadata(q, props, _doc(ckpt, graph, "int8"))
        onnx.save(q, str(tmp))
        onnx.checker.check_model(str(tmp))
    result = ExportResult(
        out, graph, "int8", int(meta["export"].get("opset", 0)), out.stat().st_size,
        agree["max_abs_diff"], time.perf_counter() - started,
        [f"int8 vs fp32 on {agree['n_windows']} held-out training windows: same class on "
         f"{agree['same_class']:.1%}, max |Δp| = {agree['max_abs_diff']:.3g}"],
    )  # fmt: skip
    return result, quantization


__all__ = [
    "NETWORK_PREFIX",
    "agreement",
    "calibration_windows",
    "network_nodes",
    "quantize_int8",
    "quantize_static_int8",
]
