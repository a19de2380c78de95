"""An exported sigalex model run by ONNX Runtime, and the metadata every export carries.

:class:`OnnxClassifier` has the small interface :class:`sigalex.Predictor` uses of the model
unit (:class:`sigalex.models.SignalClassifier`): ``spec``, ``probabilities(windows)``,
``check_windows``, ``to(device)``, ``eval()``, ``compiled``. So windowing, streaming, events and
every output of ``sigalex predict`` stay one code path whichever file ``--checkpoint`` names.
A whole-pipeline export takes raw windows; a model-only export takes images, which the front
end rebuilt from the recipe in the file's metadata renders in PyTorch first.

``onnxruntime`` is imported when a model is opened, not before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from ..errors import DataError, ParameterError, SigalexError
from ..models.spec import ModelSpec

FORMAT = "sigalex-onnx"
FORMAT_VERSION = 1
"""Version 1: the metadata keys of :data:`METADATA_KEYS`; input ``windows`` ``(batch,
n_channels, n_times)`` float32 (``graph = "pipeline"``) or ``images`` ``(batch, 3, H, W)``
float32 in [0, 1] (``"model-only"``); output ``probabilities`` ``(batch, n_classes)``."""

#: The ``metadata_props`` of an export: everything needed to use the file on its own.
METADATA_KEYS = {
    "sigalex.format": f"{FORMAT!r}",
    "sigalex.format_version": "an integer",
    "sigalex.version": "the sigalex that exported it",
    "sigalex.graph": '"pipeline" (windows → probabilities) or "model-only" (images →)',
    "sigalex.spec": "the ModelSpec (JSON): classes, positive class, rate, window, stride, channels",
    "sigalex.recipe": "the full recipe (JSON), as in the checkpoint",
    "sigalex.checkpoint_sha256": "sha256 of the source checkpoint",
    "sigalex.checkpoint": "the source checkpoint (JSON): name, format, trained version, training",
    "sigalex.precision": '"fp32", "int8" or "fp16"',
    "sigalex.quantization": "how it was quantised (JSON; {} for fp32)",
    "sigalex.export": "exporter, opset, torch version, the check against PyTorch (JSON)",
}

INPUT_NAMES = {"pipeline": "windows", "model-only": "images"}
OUTPUT_NAME = "probabilities"


def looks_like_onnx(path) -> bool:
    """``path`` names an ONNX file: a ``.onnx`` suffix, or a protobuf that starts as a
    ``ModelProto`` does (field 1, ``ir_version``) where a PyTorch checkpoint is a zip or pickle."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(1) == b"\x08"
    except OSError:
        return False


def import_onnxruntime():
    """``onnxruntime``, or a one-line SigalexError saying what to install."""
    try:
        import onnxruntime
    except ImportError:
        raise SigalexError("ONNX models need onnxruntime: pip install 'sigalex[export]'") from None
    return onnxruntime


def read_metadata(props: Mapping[str, str], where: str) -> dict:
    """The metadata of an export (``metadata_props`` as a dict) as plain values.

    Raises
    ------
    DataError
        A foreign ONNX file (no sigalex metadata), a newer format, or damaged values.
    """
    if props.get("sigalex.format") != FORMAT:
        raise DataError(
            f"{where}: an ONNX model without sigalex's metadata (sigalex.format = {FORMAT!r}); "
            "export it from a checkpoint with sigalex export"
        )
    try:
        version = int(props.get("sigalex.format_version", ""))
        meta = {
            "format_version": version,
            "version": props.get("sigalex.version", "?"),
            "graph": props["sigalex.graph"],
            "spec": ModelSpec.from_dict(json.loads(props["sigalex.spec"])),
            "recipe": json.loads(props["sigalex.recipe"]),
            "checkpoint_sha256": props.get("sigalex.checkpoint_sha256", ""),
            "checkpoint": json.loads(props.get("sigalex.checkpoint", "{}")),
            "precision": props.get("sigalex.precision", "fp32"),
            "quantization": json.loads(props.get("sigalex.quantization", "{}")),
            "export": json.loads(props.get("sigalex.export", "{}")),
        }
    except (KeyError, ValueError, TypeError, ParameterError) as exc:
        raise DataError(
            f"{where}: damaged sigalex metadata ({type(exc).__name__}: {exc})"
        ) from None
    if version > FORMAT_VERSION:
        raise DataError(
            f"{where}: export format {version} was written by sigalex {meta['version']}, newer "
            f"than this sigalex ({__version__}, format {FORMAT_VERSION}); upgrade sigalex"
        )
    if meta["graph"] not in INPUT_NAMES:
        raise DataError(f"{where}: unknown sigalex.graph {meta['graph']!r}")
    return meta


def _providers(ort, device: torch.device, where: str) -> list[str]:
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ParameterError(
        f"device={str(device)!r}: this onnxruntime has no provider for it (it has "
        f"{', '.join(ort.get_available_providers())}); run {where} on the cpu, or install "
        "onnxruntime-gpu"
    )


class OnnxClassifier:
    """An exported sigalex model (``sigalex export``) run by ONNX Runtime.

    Parameters
    ----------
    path : path
        The ``.onnx`` file; its metadata is all that is needed.
    device : str or torch.device
        ``"cpu"``, or ``"cuda"`` with ``onnxruntime-gpu``.

    Raises
    ------
    DataError
        A missing, corrupt or foreign file, or one onnxruntime cannot run.
    SigalexError
        onnxruntime is not installed.
    """

    #: Graphs are optimised by ONNX Runtime when the session opens; there is no compile step.
    compiled = False

    def __init__(self, path, *, device: str | torch.device = "cpu"):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such file")
        ort = import_onnxruntime()
        self._ort = ort
        self.device = torch.device(device)
        self._session = self._open(_providers(ort, self.device, str(self.path)))
        where = str(self.path)
        meta = read_metadata(self._session.get_modelmeta().custom_metadata_map, where)
        self.meta = meta
        self.spec: ModelSpec = meta["spec"]
        self.graph: str = meta["graph"]
        self.input_name = INPUT_NAMES[self.graph]
        names = [i.name for i in self._session.get_inputs()]
        if names != [self.input_name]:
            raise DataError(
                f"{where}: inputs {names}; a {self.graph} export has {self.input_name!r}"
            )
        self.frontend = None
        if self.graph == "model-only":
            from ..config import from_dict
            from ..errors import ConfigError
            from ..models.net import build_frontend

            try:
                self.frontend = build_frontend(from_dict(meta["recipe"]), self.spec.sample_rate)
            except ConfigError as exc:
                raise DataError(
                    f"{where}: the recipe in its metadata is not valid here: {exc}"
                ) from None
        if self.frontend is not None:
            self.frontend.to(self.device)

    def _open(self, providers: list[str]):
        options = self._ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no warnings about unused initialisers
        try:
            return self._ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own types for a damaged file
            text = " ".join(str(exc).split())
            raise DataError(f"{self.path}: not a readable ONNX model ({text[:200]})") from None

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def describe(self) -> dict:
        """Plain values for ``summary.json``."""
        return {
            "runtime": f"onnxruntime {self._ort.__version__} ({', '.join(self.providers)})",
            "graph": self.graph,
            "precision": self.meta["precision"],
            "exported_version": self.meta["version"],
            "opset": self.meta["export"].get("opset"),
        }

    # -- the model unit's interface -------------------------------------------------------------
    def to(self, device) -> OnnxClassifier:
        device = torch.device(device)
        if device != self.device:
            self._session = self._open(_providers(self._ort, device, str(self.path)))
        self.device = device
        if self.frontend is not None:
            self.frontend.to(device)
        return self

    def eval(self) -> OnnxClassifier:
        return self

    def compile_network(self) -> None:
        raise ParameterError(
            f"compile applies to PyTorch checkpoints; ONNX Runtime optimises {self.path.name} "
            "itself when it opens it"
        )

    def check_windows(self, x) -> torch.Tensor:
        from ..models.net import check_windows

        return check_windows(self.spec, x)

    @torch.no_grad()
    def images(self, windows: torch.Tensor) -> torch.Tensor:
        """A model-only export's input: the recipe's images, float in [0, 1]."""
        if self.frontend is None:
            raise ParameterError(f"{self.path.name} takes windows, not images")
        x = windows.to(self.device)
        return self.frontend(x[:, None] if x.ndim == 2 else x).float()

    @torch.no_grad()
    def probabilities(self, windows: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(batch, n_classes)`` float32 (on the CPU) of raw windows
        ``(batch, n_channels, n_times)`` at the model's rate."""
        x = self.images(windows) if self.frontend is not None else windows
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        if len(arr) == 0:
            return torch.zeros(0, len(self.spec.classes))
        (out,) = self._session.run([OUTPUT_NAME], {self.input_name: arr})
        return torch.from_numpy(np.asarray(out, dtype=np.float32))

    def __call__(self, windows: torch.Tensor) -> torch.Tensor:
        return self.probabilities(windows)


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "INPUT_NAMES",
    "METADATA_KEYS",
    "OUTPUT_NAME",
    "OnnxClassifier",
    "import_onnxruntime",
    "looks_like_onnx",
    "read_metadata",
]
