"""Classifying recordings with a trained model: :class:`Predictor`, :class:`Prediction`.

A :class:`Predictor` holds the model unit (:class:`sigalex.models.SignalClassifier`) rebuilt
from a checkpoint alone, or an ONNX export of it run by ONNX Runtime
(:class:`sigalex.export.runtime.OnnxClassifier`, the same small interface), and cuts any
recording the way its :class:`~sigalex.models.ModelSpec` says: the model's window slid over the whole recording (a whole-recording model's clips, as in
training, fitted whole), at the recording's rate, resampled and fitted to the model's input.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._checks import resolve_device
from ..checkpoint import load_checkpoint, load_model
from ..errors import ParameterError
from ..export.runtime import OnnxClassifier, looks_like_onnx
from ..models.net import SignalClassifier
from ..recording import Annotation
from ..sources import open_source, select_rows, source_name
from .events import windows_to_events
from .stream import OpenRecording, batches_across, error_reason, read_windows, threaded


@dataclass
class Prediction:
    """Per-window class probabilities of one recording.

    Attributes
    ----------
    recording : str
        The file (as given) or a name for in-memory signals.
    classes : list of str
    start_s, end_s : numpy.ndarray, float64 [shape=(n_windows,)]
        The span of the recording each window's image shows, in seconds from its start.
    probabilities : numpy.ndarray, float32 [shape=(n_windows, n_classes)]
        Softmax of the model's logits; rows sum to 1.
    duration_s : float
        Length of the recording in seconds.
    positive_class : str or None
        The class :meth:`events` looks for, else ``None``.
    sample_rate : float or None
        Hz the recording was read at (before resampling to the model's rate).
    notes : list of str
        What a user should know (an assumed sample rate, a recording padded to the window,
        flat windows).
    channel : str or None
        The one channel classified (``channels="each"``), else ``None``.
    """

    recording: str
    classes: list[str]
    start_s: np.ndarray
    end_s: np.ndarray
    probabilities: np.ndarray
    duration_s: float
    positive_class: str | None = None
    sample_rate: float | None = None
    notes: list[str] = field(default_factory=list)
    channel: str | None = None

    @property
    def n_windows(self) -> int:
        return len(self.start_s)

    @property
    def predicted(self) -> list[str]:
        """The most probable class of each window."""
        return [self.classes[i] for i in self.probabilities.argmax(1)]

    @property
    def mean_probabilities(self) -> np.ndarray:
        """Mean window probability per class, float64 ``(n_classes,)`` (the clip's scores)."""
        return self.probabilities.astype(np.float64).mean(0)

    @property
    def label(self) -> str:
        """The class with the highest mean probability."""
        return self.classes[int(self.mean_probabilities.argmax())]

    @property
    def confidence(self) -> float:
        """The mean probability of :attr:`label`."""
        return float(self.mean_probabilities.max())

    def events(
        self, *, threshold: float = 0.5, min_duration_s: float = 0.0, merge_gap_s: float = 0.0
    ) -> list[Annotation]:
        """Events of :attr:`positive_class` (see :func:`windows_to_events`)."""
        if self.positive_class is None:
            raise ParameterError(
                f"classes {self.classes} have no positive class: this model finds no events"
            )
        k = self.classes.index(self.positive_class)
        events = windows_to_events(
            self.start_s, self.end_s, self.probabilities[:, k], threshold=threshold,
            min_duration_s=min_duration_s, merge_gap_s=merge_gap_s, label=self.positive_class,
        )  # fmt: skip
        if self.channel is None:
            return events
        return [dataclasses.replace(e, channels=(self.channel,)) for e in events]

    def records(self) -> list[dict]:
        """One dict per window: ``recording, channel, start_s, end_s, predicted,
        prob_<class>...``."""
        out = []
        for i, name in enumerate(self.predicted):
            row = {
                "recording": self.recording,
                "channel": self.channel,
                "start_s": float(self.start_s[i]),
                "end_s": float(self.end_s[i]),
                "predicted": name,
            }
            row.update(
                {f"prob_{c}": float(self.probabilities[i, k]) for k, c in enumerate(self.classes)}
            )
            out.append(row)
        return out


@dataclass
class FileResult:
    """What :meth:`Predictor.predict_files` gives for each input file."""

    path: Path
    prediction: Prediction | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class Predictor:
    """A trained model unit: recordings in, window probabilities out.

    Build it with :meth:`from_checkpoint`. Windows are cut as the model's spec says
    (:meth:`sigalex.models.ModelSpec.plan`): the model's window slid over the whole recording
    with ``stride_s`` (default: training's stride, or the window), plus one window ending at the
    recording's end; a whole-recording model classifies recordings as long as those it was
    trained on whole, fitted as in training. Windows are cut at the recording's own rate, then
    resampled to the model's and fitted, exactly as training did; the model's channels are
    picked by name.

    Parameters
    ----------
    model : SignalClassifier or OnnxClassifier
        The model unit (front end + network + spec), or an ONNX export of one.
    device : str or torch.device, optional
        ``None``/``"auto"``: CUDA when available.
    batch_size : int
        Windows per forward pass.
    compile : bool
        Run the network through ``torch.compile``: the first batch waits for the compiler
        (5 s for AlexNet on a 2-core CPU, longer on CUDA) and the first batch of another size
        once more (3 s); afterwards the network alone was 1.04x as fast on that CPU. The same
        probabilities to float rounding.
    channels : {None, "mean", "each"}
        How a single-channel model meets a multichannel recording: not at all (``None``: an
        error naming both channel counts), the channels averaged into one (``"mean"``), or every
        channel classified on its own (``"each"``: one :class:`Prediction` per channel, the way
        a single-channel model is used on multichannel EEG).
    """

    def __init__(
        self,
        model: SignalClassifier | OnnxClassifier,
        *,
        device: str | torch.device | None = None,
        batch_size: int = 64,
        compile: bool = False,
        channels: str | None = None,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError(f"{batch_size=} must be a positive integer")
        if not isinstance(model, SignalClassifier | OnnxClassifier):
            raise ParameterError(
                "model must be a sigalex.models.SignalClassifier or an OnnxClassifier; got "
                f"{type(model).__name__}"
            )
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.spec = model.spec
        if channels is not None:
            self.spec.channel_plan([], mapping=channels)  # checks the mapping fits the model
        self.channels = channels
        self.batch_size = batch_size
        if compile:
            self.model.compile_network()
        self.checkpoint: Path | None = None
        self.info: dict = {}

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls,
        path,
        *,
        device=None,
        batch_size: int = 64,
        compile: bool = False,
        channels: str | None = None,
    ) -> Predictor:
        """Rebuild a predictor from a ``checkpoint.pt`` written by ``sigalex run``, or open a
        ``.onnx`` file written by ``sigalex export`` (:meth:`from_onnx`; ``compile``,
        ``channels``: see the class).

        Raises
        ------
        DataError
            Missing, corrupt, foreign or newer-format checkpoint, or one whose recipe or weights
            do not fit.
        ParameterError
            Bad ``device`` or ``batch_size``.
        """
        if looks_like_onnx(path):
            return cls.from_onnx(
                path, device=device, batch_size=batch_size, compile=compile, channels=channels
            )
        ckpt = load_checkpoint(path)
        pred = cls(
            load_model(ckpt), device=device, batch_size=batch_size, compile=compile,
            channels=channels,
        )  # fmt: skip
        pred.checkpoint = Path(path)
        pred.info = {
            "architecture": ckpt.spec.architecture,
            "transform": dict(ckpt.config.get("transform", {})),
            "trained_version": ckpt.sigalex_version,
            "checkpoint_format": ckpt.format_version,
            "epoch": ckpt.training.get("epoch"),
            "weights_used": ckpt.training.get("weights_used"),
            "parent": ckpt.parent,
        }
        return pred

    @classmethod
    def from_onnx(
        cls,
        path,
        *,
        device=None,
        batch_size: int = 64,
        compile: bool = False,
        channels: str | None = None,
    ) -> Predictor:
        """A predictor running an export of ``sigalex export`` through ONNX Runtime: the
        same windows, outputs and options as a checkpoint's (``compile`` does not apply).
        ``device`` ``None``/``"auto"``: CUDA when both PyTorch and onnxruntime have it.

        Raises
        ------
        DataError
            Missing, corrupt or foreign ONNX file (not written by ``sigalex export``).
        ParameterError
            ``compile``, a device onnxruntime has no provider for, bad ``batch_size``.
        SigalexError
            onnxruntime is not installed.
        """
        if device is None or device == "auto":
            from ..export.runtime import import_onnxruntime

            cuda = "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()
            device = "cuda" if cuda and torch.cuda.is_available() else "cpu"
        if compile:
            raise ParameterError(
                f"compile applies to PyTorch checkpoints; ONNX Runtime optimises "
                f"{Path(path).name} itself when it opens it"
            )
        model = OnnxClassifier(path, device=resolve_device(device))
        pred = cls(model, device=model.device, batch_size=batch_size, channels=channels)
        pred.checkpoint = Path(path)
        meta = model.meta
        pred.info = {
            "architecture": model.spec.architecture,
            "transform": dict(meta["recipe"].get("transform", {})),
            "trained_version": meta["checkpoint"].get("trained_version"),
            "checkpoint_format": f"onnx (sigalex export format {meta['format_version']})",
            "epoch": (meta["checkpoint"].get("training") or {}).get("epoch"),
            "weights_used": (meta["checkpoint"].get("training") or {}).get("weights_used"),
            "parent": meta["checkpoint"].get("parent"),
            "source_checkpoint_sha256": meta["checkpoint_sha256"],
            **model.describe(),
        }
        return pred

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    @property
    def positive_class(self) -> str | None:
        return self.spec.positive_class

    @property
    def sample_rate(self) -> float:
        return self.spec.sample_rate

    @property
    def compiled(self) -> bool:
        return self.model.compiled

    def describe(self) -> dict:
        """The model's inputs and outputs as plain values (for ``summary.json``)."""
        return {**self.info, **self.spec.describe()}

    # -- windows in memory ------------------------------------------------------------------
    @torch.no_grad()
    def predict_windows(self, windows) -> np.ndarray:
        """Class probabilities of raw windows at the model's rate.

        Parameters
        ----------
        windows : array or torch.Tensor [shape=(batch, n_channels, n_times) or (batch, n_times)]

        Returns
        -------
        numpy.ndarray, float32 [shape=(batch, n_classes)]
        """
        if not torch.is_tensor(windows):
            windows = torch.from_numpy(np.asarray(windows, dtype=np.float32))
        x = self.model.check_windows(windows)
        out = [
            self.model.probabilities(x[i : i + self.batch_size]).cpu()
            for i in range(0, len(x), self.batch_size)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes)), np.float32)

    # -- explanations -----------------------------------------------------------------------
    def explain(
        self,
        windows_or_recording,
        *,
        target: str | Sequence[str] | None = None,
        method: str = "gradcam",
        sample_rate: float | None = None,
        name: str | None = None,
    ):
        """Heat maps of the model's decision on the transform's (frequency, time) grid.

        ``windows_or_recording``: windows ``(n, n_channels, n_times)`` at the model's rate (a
        3-D array or tensor), or a recording cut as :meth:`predict` cuts it (``sample_rate``,
        ``name`` as there). ``target``: the class to explain (a name, or one per window);
        default the positive class, else each window's most probable class. ``method``:
        ``"gradcam"`` (the network's last convolution) or ``"integrated-gradients"`` (the
        image). Returns a :class:`sigalex.explain.Explanation` (``.maps`` ``(n, F, T)``, or
        ``(n, n_channels, F, T)`` for tiles; ``.frequencies_hz``, ``.times_s``,
        ``.probabilities``, ``.target``). Needs Captum (``pip install 'sigalex[explain]'``).
        """
        from ..explain.run import explain_source  # explanations stand on inference, not in it

        return explain_source(
            self, windows_or_recording, target=target, method=method, sample_rate=sample_rate,
            name=name,
        )  # fmt: skip

    # -- recordings -------------------------------------------------------------------------
    def open(
        self,
        source,
        sample_rate: float | None = None,
        *,
        name: str | None = None,
        stride_s: float | None = None,
    ) -> list[OpenRecording]:
        """Open a recording for this model: its channels picked (one recording per channel with
        ``channels="each"``), its windows planned.

        Raises
        ------
        DataError
            Unreadable, empty, or lacking the model's channels.
        ParameterError
            A bad array, sample rate or stride.
        """
        label = source_name(source, name)
        notes: list[str] = []
        src = open_source(
            source, sample_rate=sample_rate, default_sample_rate=self.sample_rate, notes=notes
        )
        groups = self.spec.channel_plan(src.channel_names, label, mapping=self.channels)
        plan = self.spec.plan(src.n_times, src.sample_rate, stride_s=stride_s, where=label)
        notes += list(plan.notes)
        return [
            OpenRecording(
                label,
                src if g.average else select_rows(src, g.rows),
                g.average,
                plan,
                list(notes),
                g.channel,
            )
            for g in groups
        ]

    def predict(
        self,
        source,
        sample_rate: float | None = None,
        *,
        name: str | None = None,
        stride_s: float | None = None,
    ) -> Prediction:
        """Classify every window of one recording.

        Parameters
        ----------
        source : path, Recording, EdfRecording, mne.io.Raw or array [shape=(n_times,) or (n_channels, n_times)]
            A file (EDF/BDF are streamed), a recording, an MNE ``Raw``, or raw samples.
        sample_rate : float, optional
            Hz of a source that carries no rate (arrays, ``.txt``, ``.csv``, ``.npy``); without
            it the model's rate is assumed, and the prediction's ``notes`` say so.
        name : str, optional
            The recording's name in the result (default: the path).
        stride_s : float, optional
            Seconds between window starts (default: training's stride, or the window); finer
            strides give finer event timing.

        Returns
        -------
        Prediction
            With ``channels="each"`` use :meth:`predict_channels` (one per channel).

        Raises
        ------
        DataError
            Unreadable or empty recording, or one lacking the model's channels.
        ParameterError
            Bad array (NaN/inf, wrong shape), sample rate or stride.
        """
        predictions = self.predict_channels(source, sample_rate, name=name, stride_s=stride_s)
        if len(predictions) != 1:
            raise ParameterError(
                f"channels={self.channels!r} gives {len(predictions)} predictions, one per "
                "channel: use predict_channels()"
            )
        return predictions[0]

    def predict_channels(
        self,
        source,
        sample_rate: float | None = None,
        *,
        name: str | None = None,
        stride_s: float | None = None,
    ) -> list[Prediction]:
        """:meth:`predict`, one :class:`Prediction` per channel with ``channels="each"`` (one
        in all with the other settings)."""
        out = []
        for rec in self.open(source, sample_rate, name=name, stride_s=stride_s):
            starts, ends, probs = [], [], []
            for x, s, e in read_windows(rec, self.spec, self.batch_size):
                probs.append(self.model.probabilities(torch.from_numpy(x)).cpu().numpy())
                starts.append(s)
                ends.append(e)
            out.append(self._prediction(rec, starts, ends, probs))
        return out

    def _prediction(self, rec: OpenRecording, starts, ends, probs) -> Prediction:
        return Prediction(
            rec.name, self.classes, np.concatenate(starts), np.concatenate(ends),
            np.concatenate(probs), rec.duration_s, self.positive_class, rec.sample_rate,
            rec.all_notes(), rec.channel,
        )  # fmt: skip

    def predict_files(
        self,
        paths: Iterable,
        *,
        sample_rate: float | None = None,
        names: Sequence[str] | None = None,
        stride_s: float | None = None,
        prefetch: int = 2,
        on_batch: Callable[[int], None] | None = None,
    ) -> Iterator[FileResult]:
        """Classify many files, batching windows across them; yields a result per file (per
        file and channel with ``channels="each"``).

        Reading, channel picking and cutting run in a background thread, up to ``prefetch``
        batches ahead of the model (``0``: no thread). A file that cannot be read gives a
        :class:`FileResult` with ``error`` set, and the others go on.

        Parameters
        ----------
        paths : iterable of path
        sample_rate : float, optional
            Hz of rate-less files (``.txt``, ``.csv``, ``.npy``); default: the model's (noted).
        names : sequence of str, optional
            Names for the results (default: the paths as given).
        stride_s : float, optional
            Seconds between window starts (see :meth:`predict`).
        prefetch : int
            Batches prepared ahead.
        on_batch : callable(n_windows), optional
            Called after every forward pass (progress bars).

        Yields
        ------
        FileResult
            In input order.
        """
        paths = [Path(p) for p in paths]
        names = [str(p) for p in paths] if names is None else list(names)

        owner: dict[int, int] = {}  # stream index → file index (several with channels="each")

        def opened():
            k = 0
            for i, path in enumerate(paths):
                try:
                    recordings = self.open(path, sample_rate, name=names[i], stride_s=stride_s)
                except Exception as exc:  # reported per file by batches_across
                    owner[k] = i
                    yield k, exc
                    k += 1
                    continue
                for rec in recordings:
                    owner[k] = i
                    yield k, rec
                    k += 1

        events = batches_across(
            opened(), self.spec, self.batch_size, pin=self.device.type == "cuda"
        )
        if prefetch > 0:
            events = threaded(events, prefetch)
        acc: dict[int, dict] = {}
        started: dict[int, float] = {}
        next_start = time.perf_counter()
        try:
            for event in events:
                if event[0] == "open":
                    _, i, rec = event
                    acc[i] = {"rec": rec, "s": [], "e": [], "p": []}
                    started[i] = next_start
                elif event[0] == "batch":
                    _, x, owners = event
                    probs = self.model.probabilities(x).cpu().numpy()
                    pos = 0
                    for i, s, e in owners:
                        if i in acc:
                            acc[i]["s"].append(s)
                            acc[i]["e"].append(e)
                            acc[i]["p"].append(probs[pos : pos + len(s)])
                        pos += len(s)
                    if on_batch is not None:
                        on_batch(len(x))
                elif event[0] == "done":
                    i = event[1]
                    a = acc.pop(i)
                    pred = self._prediction(a["rec"], a["s"], a["e"], a["p"])
                    now = time.perf_counter()
                    yield FileResult(paths[owner[i]], pred, None, now - started.pop(i, now))
                    next_start = now
                elif event[0] == "error":
                    _, i, reason = event
                    acc.pop(i, None)
                    now = time.perf_counter()
                    yield FileResult(paths[owner[i]], None, reason, now - started.pop(i, now))
                    next_start = now
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


__all__ = ["FileResult", "Prediction", "Predictor", "error_reason"]
