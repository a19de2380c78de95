"""A checkpoint → one ONNX file that needs nothing else: :func:`export_onnx`.

The default graph is the whole pipeline, raw windows ``(batch, n_channels, n_times)`` float32
→ class probabilities: the transform, scaling, normalisation, channel fusion, colormap and
resize on export-safe operators (:meth:`sigalex.frontend.ImageFrontend.export_safe`: real
matrix products and gathers, no complex tensors, FFTs or sparse products), then the network and
a softmax. ``model_only`` exports the network alone, images ``(batch, 3, H, W)`` float in
[0, 1] → probabilities (the front end then runs in PyTorch, rebuilt from the metadata).

Exporter: PyTorch's TorchScript-based ``torch.onnx.export(..., dynamo=False)``. It needs no
package beyond ``onnx`` and traces this graph (fixed signal length, a dynamic batch axis) as
it is; the dynamo exporter needs ``onnxscript`` besides. The batch axis is dynamic and the
opset is :data:`OPSET` unless asked otherwise (at least 17). Every export is checked three
ways before it is written: ``onnx.checker.check_model``, ONNX Runtime opening it, and its
probabilities on a batch of another size than the one traced against PyTorch's
(export-safe) forward pass (:data:`VERIFY_ATOL`).
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from .._checks import choice
from .._files import atomic_path, sha256_file
from .._version import __version__
from ..checkpoint import Checkpoint, load_checkpoint, load_model
from ..errors import DataError, ParameterError, SigalexError
from ..models.net import SignalClassifier
from .runtime import FORMAT, FORMAT_VERSION, INPUT_NAMES, OUTPUT_NAME, import_onnxruntime

#: The opset written by default: the lowest with everything the graph needs, and the first
#: with ONNX's STFT/DFT operators (which the graph does not use: it has its own DFT matrices).
OPSET = 17
#: Largest difference in any probability between ONNX Runtime and PyTorch accepted at export:
#: a check for gross errors (a wrong graph differs by tenths). The images are the same 8-bit
#: levels but where float32 rounding in a transform (ONNX Runtime's products against
#: PyTorch's) moves a map value across one of the colormap's 1024 boundaries: one level on one
#: pixel in 10^4 (STFT, mel, CWT) to 10^3 (Hilbert), which moves a probability of a sharp
#: model by up to ~1e-4 (~5e-3 for Hilbert). ``benchmarks/bench_export.py`` measures the
#: agreement on real windows.
VERIFY_ATOL = 1e-2
#: The same for an fp16 network against the fp32 graph (float16 keeps ~3 decimal digits).
VERIFY_ATOL_FP16 = 5e-2


def import_onnx():
    """``onnx``, or a one-line SigalexError saying what to install."""
    try:
        import onnx
    except ImportError:
        raise SigalexError(
            "sigalex export needs onnx and onnxruntime: pip install 'sigalex[export]'"
        ) from None
    import_onnxruntime()
    return onnx


class FixedAdaptivePool(nn.Module):
    """``AdaptiveAvgPool2d`` for one known input size, as two matrix products (the
    TorchScript exporter needs the input size, which a traced front end's reshapes hide;
    an adaptive average pool is separable: each output cell is the mean of a rectangle)."""

    def __init__(self, in_size: tuple[int, int], out_size: tuple[int, int]):
        super().__init__()
        mats = []
        for n_in, n_out in zip(in_size, out_size, strict=True):
            eye = torch.eye(n_in, dtype=torch.float64)[:, None, :]  # (n_in, 1, n_in)
            pooled = nn.functional.adaptive_avg_pool1d(eye, n_out)  # (n_in, 1, n_out)
            mats.append(pooled[:, 0].t().float().contiguous())  # (n_out, n_in)
        self.identity = tuple(in_size) == tuple(out_size)
        self.register_buffer("rows", mats[0], persistent=False)
        self.register_buffer("cols_t", mats[1].t().contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        rows, cols_t = cast(torch.Tensor, self.rows), cast(torch.Tensor, self.cols_t)
        return torch.matmul(torch.matmul(rows, x), cols_t)


class ExportNetwork(nn.Module):
    """An AlexNet-layout network (``normalize``, ``features``, ``avgpool``, ``classifier``,
    the same modules and weights) with its adaptive pool as a :class:`FixedAdaptivePool` for
    the images it is given."""

    def __init__(self, network: nn.Module, image_size: tuple[int, int]):
        super().__init__()
        self.normalize = cast(nn.Module, network.normalize)
        self.features = cast(nn.Module, network.features)
        self.classifier = cast(nn.Module, network.classifier)
        avgpool = network.avgpool
        assert isinstance(avgpool, nn.AdaptiveAvgPool2d)  # supports() checked it
        with torch.no_grad():
            h, w = (int(n) for n in self.features(torch.zeros(1, 3, *image_size)).shape[-2:])
        out = avgpool.output_size
        oh, ow = (out, out) if not isinstance(out, tuple) else out
        self.pool = FixedAdaptivePool((h, w), (h if oh is None else oh, w if ow is None else ow))

    @staticmethod
    def supports(network: nn.Module) -> bool:
        parts = ("normalize", "features", "avgpool", "classifier")
        return all(hasattr(network, p) for p in parts) and isinstance(
            network.avgpool, nn.AdaptiveAvgPool2d
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(self.normalize(x)))
        return self.classifier(torch.flatten(x, 1))


class ExportGraph(nn.Module):
    """What is exported: windows → probabilities (``model_only=False``) or images →
    probabilities, as one module whose forward pass is the graph (the front end on its
    export-safe operators, so PyTorch runs the very graph that is traced). Node names follow
    the modules: ``/frontend/…``, ``/network/…`` (an AlexNet-layout network as an
    :class:`ExportNetwork`), ``/Softmax``. ``half``: the network's weights and arithmetic in
    float16 (a copy; the front end, the input and the probabilities stay float32).
    """

    def __init__(self, model: SignalClassifier, *, model_only: bool = False, half: bool = False):
        super().__init__()
        self.model_only = bool(model_only)
        self.fp16 = bool(half)
        self.frontend = None if model_only else model.frontend
        network = model.network
        if ExportNetwork.supports(network):
            network = ExportNetwork(network, model.frontend.render.size)
        self.network = copy.deepcopy(network).half() if half else network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frontend is not None:
            with self.frontend.export_safe():
                x = self.frontend(x)
        if self.fp16:
            return torch.softmax(self.network(x.half()).float(), dim=1)
        return torch.softmax(self.network(x), dim=1)


@dataclass
class ExportResult:
    """What :func:`export_onnx` (and quantisation) wrote."""

    path: Path
    graph: str
    precision: str
    opset: int
    size_bytes: int
    max_abs_diff: float
    seconds: float
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the command's output."""
        return (
            f"{self.path} ({self.size_bytes / 1e6:.1f} MB, {self.graph}, {self.precision}, opset "
            f"{self.opset}; max |ONNX Runtime - PyTorch| = {self.max_abs_diff:.2g} on the "
            f"probabilities; {self.seconds:.1f} s)"
        )


def example_input(model: SignalClassifier, graph: str, batch: int, *, seed: int = 0):
    """A batch of the graph's input: EEG-like noise windows, or their images."""
    spec = model.spec
    g = torch.Generator().manual_seed(seed)
    windows = 50.0 * torch.randn(batch, spec.n_channels, spec.n_times, generator=g)
    if graph == "pipeline":
        return windows
    with torch.no_grad():
        return model.frontend(windows).float()


def metadata(
    ckpt: Checkpoint, sha256: str, graph: str, *, precision: str = "fp32",
    quantization: dict | None = None, export: dict | None = None,
) -> dict[str, str]:  # fmt: skip
    """The ``metadata_props`` of an export (:data:`~sigalex.export.runtime.METADATA_KEYS`)."""
    training = {
        k: ckpt.training.get(k)
        for k in ("epoch", "best_epoch", "best_metric", "split", "weights_used")
    }
    return {
        "sigalex.format": FORMAT,
        "sigalex.format_version": str(FORMAT_VERSION),
        "sigalex.version": __version__,
        "sigalex.graph": graph,
        "sigalex.spec": json.dumps(ckpt.spec.to_dict()),
        "sigalex.recipe": json.dumps(ckpt.config),
        "sigalex.checkpoint_sha256": sha256,
        "sigalex.checkpoint": json.dumps(
            {
                "name": ckpt.path.name if ckpt.path else None,
                "sha256": sha256,
                "format_version": ckpt.format_version,
                "trained_version": ckpt.sigalex_version,
                "parent": ckpt.parent,
                "training": training,
            },
            default=str,
        ),
        "sigalex.precision": precision,
        "sigalex.quantization": json.dumps(quantization or {}),
        "sigalex.export": json.dumps(export or {}),
    }


def _doc(ckpt: Checkpoint, graph: str, precision: str) -> str:
    spec = ckpt.spec
    takes = (
        f"windows (batch, {spec.n_channels}, {spec.n_times}) float32 at {spec.sample_rate:g} Hz"
        if graph == "pipeline"
        else "images (batch, 3, H, W) float32 in [0, 1]"
    )
    return (
        f"sigalex {__version__} export ({graph}, {precision}): {takes} → probabilities of "
        f"{', '.join(spec.classes)}. The model's contract, recipe and source checkpoint are in "
        "the metadata (sigalex.*); sigalex predict --checkpoint this.onnx runs it."
    )


def write_metadata(onnx_model, props: dict[str, str], doc: str) -> None:
    """Replace ``onnx_model``'s sigalex metadata with ``props``; set its doc string."""
    keep = [p for p in onnx_model.metadata_props if not p.key.startswith("sigalex.")]
    del onnx_model.metadata_props[:]
    onnx_model.metadata_props.extend(keep)
    for key, value in props.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx_model.doc_string = doc
    onnx_model.producer_name = "sigalex"
    onnx_model.producer_version = __version__


def compare_with_torch(
    path: Path, graph: nn.Module, x: torch.Tensor, input_name: str
) -> tuple[float, np.ndarray, np.ndarray]:
    """``(max |ort - torch|, ort, torch)`` probabilities of ``x``: the file opened by ONNX
    Runtime on the CPU against ``graph``'s forward pass."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise DataError(
            f"{path}: ONNX Runtime cannot open the export ({' '.join(str(exc).split())[:300]})"
        ) from None
    got = np.asarray(session.run([OUTPUT_NAME], {input_name: x.numpy()})[0])
    with torch.no_grad():
        want = graph(x).numpy()
    return float(np.abs(got - want).max()), got, want


def export_onnx(
    checkpoint, out, *, model_only: bool = False, opset: int = OPSET, verify_batch: int = 3,
    precision: str = "fp32",
) -> ExportResult:  # fmt: skip
    """Export a checkpoint as an ONNX file (module docs); returns what was written.

    Parameters
    ----------
    checkpoint : path or Checkpoint
        A ``checkpoint.pt`` from ``sigalex run``.
    out : path
        The ``.onnx`` file (written atomically: a failed export leaves nothing).
    model_only : bool
        Export images → probabilities instead of the whole pipeline.
    opset : int
        ONNX opset, at least 17.
    verify_batch : int
        Batch size of the check against PyTorch (another size than the traced one: the
        batch axis must really be dynamic).
    precision : {"fp32", "fp16"}
        ``fp16``: the network's weights and arithmetic in float16, for GPUs (the front end,
        input and probabilities stay float32). It is checked against the fp32 graph within
        :data:`VERIFY_ATOL_FP16` where ONNX Runtime's CPU provider can run it (not every
        version has float16 convolutions); the result's notes say when it could not.

    Raises
    ------
    DataError
        An unreadable checkpoint, or an export that fails its checks.
    ParameterError
        An opset below 17, or a front end without an export-safe path.
    SigalexError
        onnx or onnxruntime is not installed.
    """
    onnx = import_onnx()
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 17:
        raise ParameterError(f"{opset=}: sigalex exports need opset 17 or later")
    started = time.perf_counter()
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    sha = sha256_file(ckpt.path) if ckpt.path else ""
    model = load_model(ckpt, device="cpu")
    precision = choice("precision", precision, ("fp32", "fp16"))
    graph_name = "model-only" if model_only else "pipeline"
    graph = ExportGraph(model, model_only=model_only).eval()
    traced = graph  # what is exported: the checked graph itself, or its fp16 twin
    if precision == "fp16":
        traced = ExportGraph(model, model_only=model_only, half=True).eval()
    notes: list[str] = []
    input_name = INPUT_NAMES[graph_name]
    traced_with = example_input(model, graph_name, 2)
    out = Path(out)
    with atomic_path(out) as tmp:
        with warnings.catch_warnings():
            # The legacy exporter is chosen on purpose (module docs); the tracer's notes on
            # Python ints are the fixed signal length, checked below on another batch size.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # pyright: ignore[reportPrivateImportUsage]
            warnings.filterwarnings("ignore", message=".*(constant folding|ONNX|onnx).*")
            torch.onnx.export(
                traced, (traced_with,), str(tmp), dynamo=False, opset_version=opset,
                input_names=[input_name], output_names=[OUTPUT_NAME],
                dynamic_axes={input_name: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
            )  # fmt: skip
        x = example_input(model, graph_name, verify_batch, seed=1)
        atol = VERIFY_ATOL if precision == "fp32" else VERIFY_ATOL_FP16
        try:
            diff = compare_with_torch(tmp, graph, x, input_name)[0]
        except DataError as exc:
            if precision == "fp32" or "implementation" not in str(exc).lower():
                raise
            diff = float("nan")
            notes.append(
                "not checked against PyTorch: this ONNX Runtime's CPU provider has no float16 "
                "kernels for it (fp16 is for GPUs: onnxruntime-gpu)"
            )
        if not (diff <= atol or notes):  # NaN fails, unless it could not be run
            raise DataError(
                f"{out}: the export's probabilities differ from PyTorch's by {diff:.3g} "
                f"(more than {atol:g}); not written"
            )
        proto = onnx.load(str(tmp))
        export_info = {
            "exporter": "torch.onnx.export (TorchScript-based, dynamo=False)",
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "opset": opset,
            "dynamic_axes": {input_name: "batch", OUTPUT_NAME: "batch"},
            "verified_max_abs_diff": None if diff != diff else diff,
            "verified_batch": verify_batch,
        }
        write_metadata(
            proto, metadata(ckpt, sha, graph_name, precision=precision, export=export_info),
            _doc(ckpt, graph_name, precision),
        )  # fmt: skip
        onnx.save(proto, str(tmp))
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except Exception as exc:  # onnx.checker.ValidationError and shape-inference errors
            raise DataError(f"{out}: onnx.checker rejects the export: {exc}") from None
    return ExportResult(
        out, graph_name, precision, opset, out.stat().st_size, diff,
        time.perf_counter() - started, notes,
    )  # fmt: skip


__all__ = [
    "OPSET",
    "VERIFY_ATOL",
    "VERIFY_ATOL_FP16",
    "ExportGraph",
    "ExportResult",
    "compare_with_torch",
    "example_input",
    "export_onnx",
    "import_onnx",
    "metadata",
    "write_metadata",
]
