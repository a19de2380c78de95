"""Batch classification of recordings with a trained checkpoint: ``sigalex predict``.

:class:`Predictor` rebuilds everything from a ``checkpoint.pt`` alone (model, windows, channel
selection, transform and render) and classifies one recording (:meth:`Predictor.predict`) or
streams windows from many files into fixed-size batches (:meth:`Predictor.predict_files`).
:func:`predict_to_dir` is the command: it writes these files into the output folder ``DIR``,
each atomically (temporary file + rename):

``windows.tsv``
    ``recording, start_s, end_s, predicted, prob_<class>...``: one row per window (seconds
    from the recording start; end exclusive).
``recordings.tsv``
    ``recording, status, duration_s, n_windows, label, confidence, n_events, events_file``:
    one row per input. ``status`` is ``ok`` or ``error``; ``label`` is the class with the
    highest mean window probability and ``confidence`` that mean (clip tasks: the clip's
    class). ``n_events``/``events_file`` are ``n/a`` for models without a positive class.
``events/<stem>_events.tsv``
    For seizure models (a positive class: ``eval.positive_class`` or a class named
    ``seizure``, with fixed-length windows): windows whose positive probability is at least
    ``threshold`` merged into events (windows that overlap, touch or lie at most
    ``merge_gap_s`` apart join; events shorter than ``min_duration_s`` are dropped), in the
    BIDS / SzCORE layout ``onset, duration, eventType, confidence, channels,
    recordingDuration``. ``confidence`` is the mean positive probability of the event's
    windows, ``channels`` is ``n/a`` (the model does not localise). A recording without events
    gets one ``bckg`` row spanning it, as SzCORE asks. ``<stem>`` is the file name without its
    extension and a trailing ``_eeg`` (``sub-01_run-01_eeg.edf`` → ``sub-01_run-01_events.tsv``,
    beside-named like the reference files ``sigalex score`` matches by name); stems shared by two
    inputs get ``__<hash>`` appended.
``errors.tsv``
    ``recording, reason``: every input that could not be classified (missing, corrupt, empty,
    too short, lacking the model's channels) and why.
``summary.json``
    Counts, timings (seconds, windows/s, time in the model), model, classes, device,
    checkpoint (path and sha256), settings, sigalex version and the exit status.
``parts/``
    One JSON file per finished recording (its window probabilities, or its error). The TSVs
    are assembled from these at the end (and on Ctrl-C), so a killed run never leaves a
    half-written TSV and ``--resume`` skips the recordings whose part says ``ok``.

Exit status of ``sigalex predict``: :data:`EXIT_OK` (0) when every input was classified,
:data:`EXIT_SOME_FAILED` (3) when some were not, :data:`EXIT_ALL_FAILED` (4) when none was.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ._checks import resolve_device
from ._files import atomic_write_text, sha256_file
from .errors import ConfigError, DataError, ParameterError, SigalexError
from .frontend import ImageFrontend
from .io import Annotation, Recording

EXIT_OK = 0
EXIT_SOME_FAILED = 3
EXIT_ALL_FAILED = 4

WINDOW_COLUMNS = ("recording", "start_s", "end_s", "predicted")
"""First columns of ``windows.tsv``; ``prob_<class>`` follows for every class."""
RECORDING_COLUMNS = (
    "recording", "status", "duration_s", "n_windows", "label", "confidence", "n_events",
    "events_file",
)  # fmt: skip
ERROR_COLUMNS = ("recording", "reason")
BACKGROUND_EVENT = "bckg"
_GENERIC = re.compile(r"ch\d+")
_RATELESS = (".txt", ".csv", ".npy")

__all__ = [
    "ERROR_COLUMNS",
    "EXIT_ALL_FAILED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "RECORDING_COLUMNS",
    "WINDOW_COLUMNS",
    "FileResult",
    "Prediction",
    "Predictor",
    "find_inputs",
    "predict_to_dir",
    "windows_to_events",
]


# ---------------------------------------------------------------------------------------------
# Results


def windows_to_events(
    start_s,
    end_s,
    scores,
    *,
    threshold: float = 0.5,
    min_duration_s: float = 0.0,
    merge_gap_s: float = 0.0,
    label: str = "seizure",
) -> list[Annotation]:
    """Merge positive windows into events.

    A window is positive when its score is ``>= threshold``. Positive windows (taken in order
    of start) join the current event when they start at most ``merge_gap_s`` after its end
    (overlapping and touching windows always join); an event spans its first window's start to
    its last window's end. Events shorter than ``min_duration_s`` are dropped.

    Parameters
    ----------
    start_s, end_s : array_like of float [shape=(n_windows,)]
        Window bounds in seconds, sorted by start.
    scores : array_like of float [shape=(n_windows,)]
        Probability of the positive class per window.
    threshold : float
        In [0, 1].
    min_duration_s, merge_gap_s : float
        Seconds, >= 0.
    label : str
        ``eventType`` of the events.

    Returns
    -------
    list of Annotation
        ``confidence`` is the mean score of the event's positive windows; ``channels`` empty.
    """
    start = np.asarray(start_s, dtype=np.float64)
    end = np.asarray(end_s, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    if not (start.shape == end.shape == p.shape and start.ndim == 1):
        raise ParameterError(
            f"start_s, end_s and scores must be 1-D of one length; got {start.shape}, "
            f"{end.shape}, {p.shape}"
        )
    _check_event_options(threshold, min_duration_s, merge_gap_s)
    events: list[list] = []
    for s, e, score in zip(start, end, p, strict=True):
        if score < threshold:
            continue
        if events and s - events[-1][1] <= merge_gap_s + 1e-9:
            events[-1][1] = max(events[-1][1], e)
            events[-1][2].append(score)
        else:
            events.append([s, e, [score]])
    return [
        Annotation(float(on), float(off - on), label, (), float(np.mean(ps)))
        for on, off, ps in events
        if off - on >= min_duration_s - 1e-9
    ]


def _check_event_options(threshold, min_duration_s, merge_gap_s) -> None:
    if not (isinstance(threshold, int | float) and 0 <= threshold <= 1):
        raise ParameterError(f"{threshold=} must be a probability in [0, 1]")
    for name, value in (("min_duration_s", min_duration_s), ("merge_gap_s", merge_gap_s)):
        if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
            raise ParameterError(f"{name}={value!r} must be a number of seconds >= 0")


@dataclass
class Prediction:
    """Per-window class probabilities of one recording.

    Attributes
    ----------
    recording : str
        The file (as given) or a name for in-memory signals.
    classes : list of str
    start_s, end_s : numpy.ndarray, float64 [shape=(n_windows,)]
        Window bounds in seconds from the recording start (end exclusive).
    probabilities : numpy.ndarray, float32 [shape=(n_windows, n_classes)]
        Softmax of the model's logits; rows sum to 1.
    duration_s : float
        Length of the recording in seconds.
    positive_class : str or None
        The class :meth:`events` looks for (``"seizure"`` models), else ``None``.
    """

    recording: str
    classes: list[str]
    start_s: np.ndarray
    end_s: np.ndarray
    probabilities: np.ndarray
    duration_s: float
    positive_class: str | None = None

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
                f"classes {self.classes} have no positive class (no 'seizure' and no "
                "eval.positive_class): this model finds no events"
            )
        k = self.classes.index(self.positive_class)
        return windows_to_events(
            self.start_s, self.end_s, self.probabilities[:, k], threshold=threshold,
            min_duration_s=min_duration_s, merge_gap_s=merge_gap_s, label=self.positive_class,
        )  # fmt: skip

    def records(self) -> list[dict]:
        """One dict per window: ``recording, start_s, end_s, predicted, prob_<class>...``."""
        out = []
        for i, name in enumerate(self.predicted):
            row = {
                "recording": self.recording,
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


# ---------------------------------------------------------------------------------------------
# Sources


@dataclass
class _Source:
    """A recording ready to be windowed: ``reader.read(start, stop)`` at ``rate`` Hz."""

    name: str
    reader: object
    rate: float
    n_times: int
    downmix: bool = False


def _resample(x: np.ndarray, from_rate: float, to_rate: float) -> np.ndarray:
    """Polyphase resampling along the last axis (the ratio as a fraction, denominator <= 1000;
    the same as training's)."""
    import scipy.signal

    frac = Fraction(to_rate / from_rate).limit_denominator(1000)
    y = scipy.signal.resample_poly(x, frac.numerator, frac.denominator, axis=-1)
    return y.astype(np.float32, copy=False)


def _is_generic(names: Sequence[str]) -> bool:
    return all(_GENERIC.fullmatch(n) for n in names)


# ---------------------------------------------------------------------------------------------
# The predictor


class Predictor:
    """A trained model with its front end: raw recordings in, window probabilities out.

    Build it with :meth:`from_checkpoint`. Windows are cut as the recipe cut them in training
    (``windows.window_s`` / ``stride_s``; ``window_s = 0``: one example per recording, fitted to
    ``n_times`` samples with ``windows.fit``), at the model's ``sample_rate``: other rates are
    resampled (whole in-memory recordings at once; lazily read EDF/BDF window by window, as
    training does), and the model's channels are picked by name.

    Parameters
    ----------
    model : torch.nn.Module
        Images ``(batch, 3, size, size)`` → logits ``(batch, n_classes)``.
    frontend : sigalex.ImageFrontend
        Windows ``(batch, n_channels, n_times)`` → images, at ``sample_rate``.
    classes : sequence of str
    sample_rate : float
        Hz of the windows the model sees.
    n_times, n_channels : int
        Samples per window, channels per window.
    channel_names : sequence of str, optional
        The model's channels, picked by name from files (generic ``ch0``… names: by position).
    window_s, stride_s : float
        Seconds; ``window_s = 0``: whole recordings; ``stride_s = 0``: ``window_s``.
    fit : {"pad_or_crop", "pad", "crop"}
        Whole recordings: how clips are brought to ``n_times``.
    positive_class : str, optional
        The class events are made of (seizure models).
    device : str or torch.device, optional
        ``None``/``"auto"``: CUDA when available.
    batch_size : int
        Windows per forward pass.
    amp, channels_last : bool
        bf16 autocast on CUDA; channels-last images on any device, as in training (AlexNet's
        convolutions are up to 1.5x faster that way on a CPU too, with the same results).
    compile : bool
        Run the model through ``torch.compile``: the first batch waits for the compiler
        (5 s for AlexNet on a 2-core CPU, longer on CUDA) and the first batch of another size
        once more (3 s); afterwards the model alone was 1.04x as fast on that CPU. The same
        probabilities to float rounding.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        frontend: torch.nn.Module,
        *,
        classes: Sequence[str],
        sample_rate: float,
        n_times: int,
        n_channels: int,
        channel_names: Sequence[str] | None = None,
        window_s: float = 0.0,
        stride_s: float = 0.0,
        fit: str = "pad_or_crop",
        positive_class: str | None = None,
        device=None,
        batch_size: int = 64,
        amp: bool = True,
        channels_last: bool = True,
        compile: bool = False,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError(f"{batch_size=} must be a positive integer")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.frontend = frontend.to(self.device).eval()
        self.classes = list(classes)
        self.sample_rate = float(sample_rate)
        self.n_times = int(n_times)
        self.n_channels = int(n_channels)
        names = list(channel_names or [])
        self.channel_names = names if len(names) == self.n_channels else []
        self.window_s = float(window_s)
        self.stride_s = float(stride_s) or self.window_s
        self.fit = fit
        if positive_class is not None and positive_class not in self.classes:
            raise ParameterError(f"{positive_class=} is not one of {self.classes}")
        self.positive_class = positive_class
        self.batch_size = batch_size
        self.amp = amp and self.device.type == "cuda"
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.compiled = bool(compile)
        # The module the forward pass calls; ``self.model`` stays the plain one (weights).
        self._net = torch.compile(self.model) if self.compiled else self.model
        # On the CPU the renderer's colours are 8-bit levels already; the model takes them as
        # uint8 (AlexNet's normalize divides by 255): the same input, without a float copy of
        # every image.
        cpu_uint8 = (
            self.device.type == "cpu"
            and isinstance(self.frontend, ImageFrontend)
            and self.frontend.render.uint8_on_cpu
            and hasattr(self.model, "normalize")
        )
        self._image_options = {"image_dtype": "uint8"} if cpu_uint8 else {}
        self.checkpoint: Path | None = None
        self.info: dict = {}

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls, path, *, device=None, batch_size: int = 64, compile: bool = False
    ) -> Predictor:
        """Rebuild a predictor from a ``checkpoint.pt`` written by ``sigalex run``
        (``compile``: see the class).

        Raises
        ------
        DataError
            Missing, corrupt or foreign checkpoint, or one whose recipe or weights do not fit.
        ParameterError
            Bad ``device`` or ``batch_size``.
        """
        from .config import from_dict
        from .models import build_model
        from .train import build_frontend, load_checkpoint

        path = Path(path)
        ckpt = load_checkpoint(path)
        missing = [k for k in ("sample_rate", "n_times", "n_channels") if k not in ckpt]
        if missing:
            raise DataError(f"{path}: the checkpoint lacks {missing}; retrain with this sigalex")
        try:
            cfg = from_dict(ckpt["config"])
            frontend = build_frontend(cfg, float(ckpt["sample_rate"]))
        except ConfigError as exc:
            raise DataError(f"{path}: the checkpoint's recipe is not valid here: {exc}") from exc
        classes = [str(c) for c in ckpt["classes"]]
        arch = ckpt.get("architecture", cfg.model.architecture)
        model, _ = build_model(
            arch, num_classes=len(classes), weights=None, dropout=cfg.model.dropout
        )
        try:
            model.load_state_dict(ckpt["state_dict"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise DataError(f"{path}: the weights do not fit a {arch} model: {exc}") from exc
        positive = cfg.eval.positive_class or ("seizure" if "seizure" in classes else None)
        if positive not in classes:
            positive = None
        w = cfg.windows
        pred = cls(
            model,
            frontend,
            classes=classes,
            sample_rate=float(ckpt["sample_rate"]),
            n_times=int(ckpt["n_times"]),
            n_channels=int(ckpt["n_channels"]),
            channel_names=list(ckpt.get("channel_names") or []),
            window_s=w.window_s,
            stride_s=w.stride_s,
            fit=w.fit,
            positive_class=positive if w.window_s else None,
            device=device,
            batch_size=batch_size,
            amp=cfg.train.amp,
            channels_last=cfg.train.channels_last,
            compile=compile,
        )
        pred.checkpoint = path
        pred.info = {
            "architecture": arch,
            "transform": dict(ckpt["config"].get("transform", {})),
            "trained_version": ckpt.get("version"),
            "epoch": ckpt.get("epoch"),
            "weights_used": ckpt.get("weights_used"),
        }
        return pred

    def describe(self) -> dict:
        """The model's inputs and outputs as plain values (for ``summary.json``)."""
        return {
            **self.info,
            "classes": self.classes,
            "positive_class": self.positive_class,
            "sample_rate": self.sample_rate,
            "n_channels": self.n_channels,
            "channel_names": self.channel_names,
            "n_times": self.n_times,
            "window_s": self.window_s or None,
            "stride_s": self.stride_s or None,
        }

    # -- the model --------------------------------------------------------------------------
    @torch.no_grad()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        images = self.frontend(x, **self._image_options)
        interleaved_uint8 = images.dtype == torch.uint8 and images.stride(-3) == 1
        if self.channels_last and not interleaved_uint8:
            # (uint8 images with RGB interleaved become channels-last floats in the model's
            # normalisation, which keeps their layout: no copy of them here.)
            images = images.contiguous(memory_format=torch.channels_last)
        if self.amp:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = self._net(images)
        else:
            logits = self._net(images)
        return torch.softmax(logits.float(), dim=1)

    def predict_windows(self, windows) -> np.ndarray:
        """Class probabilities of raw windows at the model's rate.

        Parameters
        ----------
        windows : array or torch.Tensor [shape=(batch, n_channels, n_times) or (batch, n_times)]

        Returns
        -------
        numpy.ndarray, float32 [shape=(batch, n_classes)]
        """
        x = torch.as_tensor(np.asarray(windows) if not torch.is_tensor(windows) else windows)
        x = x.to(torch.float32)
        if x.ndim == 2:
            x = x[:, None]
        if x.ndim != 3 or x.shape[1:] != (self.n_channels, self.n_times):
            raise ParameterError(
                f"windows must be (batch, {self.n_channels}, {self.n_times}); got {tuple(x.shape)}"
            )
        out = [
            self._forward(x[i : i + self.batch_size]).cpu()
            for i in range(0, len(x), self.batch_size)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes)), np.float32)

    # -- channels and sources ---------------------------------------------------------------
    def _channel_plan(self, names: Sequence[str], where: str) -> tuple[list[int], bool]:
        """``(rows to keep, downmix to one channel)`` for a recording with ``names``."""
        names = list(names)
        if self.channel_names and not _is_generic(self.channel_names):
            lower = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
            missing = [c for c in self.channel_names if c.lower() not in lower]
            if not missing:
                return [lower[c.lower()] for c in self.channel_names], False
            if not (_is_generic(names) and len(names) == self.n_channels):
                raise DataError(
                    f"{where}: lacks the model's channel(s) {', '.join(missing)} "
                    f"(it has: {', '.join(names) or 'none'})"
                )
        if len(names) == self.n_channels:
            return list(range(len(names))), False
        if self.n_channels == 1:
            return list(range(len(names))), True
        raise DataError(
            f"{where}: {len(names)} channel(s) ({', '.join(names)}); the model expects "
            f"{self.n_channels}"
        )

    def _memory_source(self, data, rate: float, names: Sequence[str], name: str) -> _Source:
        from ._checks import as_signal, sample_rate_hz

        rate = sample_rate_hz(rate)
        x = as_signal(data, name=f"{name}: signal").numpy()
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2:
            raise ParameterError(f"{name}: signal must be (n_channels, n_times); got {x.shape}")
        names = list(names) if names else [f"ch{i}" for i in range(x.shape[0])]
        rows, downmix = self._channel_plan(names, name)
        x = np.asarray(x[rows], dtype=np.float32)
        if downmix:
            x = x.mean(0, keepdims=True)
        if rate != self.sample_rate:
            x = _resample(x, rate, self.sample_rate)
        rec = Recording(x, self.sample_rate, [])
        return _Source(name, rec, self.sample_rate, rec.n_times)

    def _open(self, path: Path, sample_rate: float | None, name: str | None = None) -> _Source:
        from .io import load_recording, open_recording

        name = str(path) if name is None else name
        ext = path.suffix.lower()
        if ext in (".edf", ".bdf"):
            lazy = open_recording(path)
            rows, downmix = self._channel_plan(lazy.channel_names, name)
            if not downmix and rows != list(range(lazy.n_channels)):
                lazy = open_recording(path, channels=[lazy.channel_names[i] for i in rows])
                if lazy.n_channels != len(rows):  # a pattern matched more than one name
                    raise DataError(f"{name}: ambiguous channel names {lazy.channel_names}")
            return _Source(name, lazy, lazy.sample_rate, lazy.n_times, downmix)
        options = {}
        if ext in _RATELESS:
            options["sample_rate"] = sample_rate or self.sample_rate
        elif ext == ".npz" and sample_rate:
            options["sample_rate"] = sample_rate
        try:
            rec = load_recording(path, **options)
        except DataError as exc:
            if ext != ".npz" or "carries no sample rate" not in str(exc):
                raise
            rec = load_recording(path, sample_rate=self.sample_rate)
        return self._memory_source(rec.data, rec.sample_rate, rec.channel_names, name)

    def _source(self, source, sample_rate, name) -> _Source:
        if isinstance(source, str | os.PathLike):
            return self._open(Path(source), sample_rate, name)
        if isinstance(source, Recording):
            rate = source.sample_rate if sample_rate is None else sample_rate
            label = name or (str(source.path) if source.path else "<in-memory recording>")
            return self._memory_source(source.data, rate, source.channel_names, label)
        if hasattr(source, "read") and hasattr(source, "channel_names"):  # EdfRecording
            rows, downmix = self._channel_plan(source.channel_names, str(source.path))
            if rows != list(range(source.n_channels)) and not downmix:
                return self._memory_source(
                    source.read()[rows], source.sample_rate,
                    [source.channel_names[i] for i in rows], name or str(source.path),
                )  # fmt: skip
            return _Source(
                name or str(source.path), source, source.sample_rate, source.n_times, downmix
            )
        rate = self.sample_rate if sample_rate is None else sample_rate
        return self._memory_source(source, rate, [], name or "<in-memory signal>")

    # -- windows ----------------------------------------------------------------------------
    def _blocks(self, src: _Source) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield ``(windows (k, n_channels, n_times) float32, start_s (k,), end_s (k,))``.

        Reads ``batch_size`` windows' span at a time: memory stays bounded on long files.
        """
        from .windows import fit_length, n_windows, window_samples

        def rows(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x, dtype=np.float32)
            if x.ndim == 1:
                x = x[None]
            return x.mean(-2, keepdims=True) if src.downmix else x

        def to_model(x: np.ndarray, mode: str) -> np.ndarray:
            if src.rate != self.sample_rate:
                x = _resample(x, src.rate, self.sample_rate)
            try:
                return fit_length(x, self.n_times, mode=mode)
            except ParameterError as exc:
                raise DataError(f"{src.name}: {exc} (windows.fit = {mode!r})") from None

        if not self.window_s:
            x = rows(src.reader.read(0, None))
            if x.shape[-1] < 2:
                raise DataError(f"{src.name}: {x.shape[-1]} sample(s) is too short to classify")
            x = to_model(x, self.fit)
            yield x[None], np.zeros(1), np.array([src.n_times / src.rate])
            return
        n_win, n_stride = window_samples(
            window_s=self.window_s, stride_s=self.stride_s, sample_rate=src.rate
        )
        n = n_windows(src.n_times, window_samples=n_win, stride_samples=n_stride)
        if n == 0:
            raise DataError(
                f"{src.name}: {src.n_times / src.rate:.3f} s is shorter than one window of "
                f"{self.window_s:g} s"
            )
        for k0 in range(0, n, self.batch_size):
            k1 = min(n, k0 + self.batch_size)
            a, b = k0 * n_stride, (k1 - 1) * n_stride + n_win
            chunk = rows(src.reader.read(a, b))
            if chunk.shape[-1] != b - a:
                raise DataError(
                    f"{src.name}: read {chunk.shape[-1]} samples at {a}:{b}; the file ends early"
                )
            view = np.lib.stride_tricks.sliding_window_view(chunk, n_win, axis=-1)
            x = np.array(view[:, ::n_stride][:, : k1 - k0].transpose(1, 0, 2), order="C")
            starts = np.arange(k0, k1) * n_stride / src.rate
            yield to_model(x, "pad_or_crop"), starts, starts + n_win / src.rate

    # -- one recording ----------------------------------------------------------------------
    def predict(self, source, sample_rate: float | None = None, *, name: str | None = None):
        """Classify every window of one recording.

        Parameters
        ----------
        source : path, Recording, EdfRecording or array [shape=(n_times,) or (n_channels, n_times)]
            A file (any format :func:`sigalex.load_recording` reads; EDF/BDF are streamed), a
            recording or raw samples.
        sample_rate : float, optional
            Hz of ``source``: needed for arrays and rate-less files (``.txt``, ``.csv``,
            ``.npy``), where it defaults to the model's rate; overrides a Recording's rate.
        name : str, optional
            The recording's name in the result (default: the path).

        Returns
        -------
        Prediction

        Raises
        ------
        DataError
            Unreadable, empty or too-short recording, or one lacking the model's channels.
        ParameterError
            Bad array (NaN/inf, wrong shape) or sample rate.
        """
        src = self._source(source, sample_rate, name)
        starts, ends, probs = [], [], []
        for x, s, e in self._blocks(src):
            probs.append(self._forward(torch.from_numpy(x)).cpu().numpy())
            starts.append(s)
            ends.append(e)
        return Prediction(
            src.name,
            self.classes,
            np.concatenate(starts),
            np.concatenate(ends),
            np.concatenate(probs),
            src.n_times / src.rate,
            self.positive_class,
        )

    # -- many files -------------------------------------------------------------------------
    def _produce(self, paths: Sequence[Path], names: Sequence[str], sample_rate):
        """Stream windows from files, one after another, into fixed-size batches.

        Yields ``("open", i, duration_s)``, ``("batch", tensor, owners)`` with ``owners`` a list
        of ``(i, start_s, end_s)`` runs in batch order, ``("done", i)`` once all of file ``i``'s
        windows are in earlier batches, and ``("error", i, reason)``.
        """
        shape = (self.batch_size, self.n_channels, self.n_times)
        buf = np.empty(shape, np.float32)
        fill, owners, finished = 0, [], []
        pin = self.device.type == "cuda"

        def flush():
            nonlocal buf, fill, owners, finished
            x = torch.from_numpy(buf[:fill])
            out = [("batch", x.pin_memory() if pin else x, owners)]
            out += [("done", i) for i in finished]
            buf, fill, owners, finished = np.empty(shape, np.float32), 0, [], []
            return out

        for i, path in enumerate(paths):
            try:
                src = self._open(path, sample_rate, names[i])
                yield ("open", i, src.n_times / src.rate)
                for x, s, e in self._blocks(src):
                    j = 0
                    while j < len(x):
                        take = min(len(x) - j, self.batch_size - fill)
                        buf[fill : fill + take] = x[j : j + take]
                        owners.append((i, s[j : j + take], e[j : j + take]))
                        fill, j = fill + take, j + take
                        if fill == self.batch_size:
                            yield from flush()
            except (SigalexError, OSError, ValueError, RuntimeError, EOFError) as exc:
                reason = (
                    str(exc) if isinstance(exc, SigalexError) else f"{type(exc).__name__}: {exc}"
                )
                yield ("error", i, reason)
                continue
            finished.append(i)
            if fill == 0:
                yield from [("done", k) for k in finished]
                finished = []
        if fill or finished:
            yield from flush()

    def predict_files(
        self,
        paths: Iterable,
        *,
        sample_rate: float | None = None,
        names: Sequence[str] | None = None,
        prefetch: int = 2,
        on_batch: Callable[[int], None] | None = None,
    ) -> Iterator[FileResult]:
        """Classify many files, batching windows across them; yields a result per file.

        Reading, channel picking and resampling run in a background thread, up to
        ``prefetch`` batches ahead of the model (``0``: no thread). A file that cannot be read
        gives a :class:`FileResult` with ``error`` set, and the others go on.

        Parameters
        ----------
        paths : iterable of path
        sample_rate : float, optional
            Hz of rate-less files (``.txt``, ``.csv``, ``.npy``); default: the model's.
        names : sequence of str, optional
            Names for the results (default: the paths as given).
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
        events = self._produce(paths, names, sample_rate)
        if prefetch > 0:
            events = _threaded(events, prefetch)
        acc: dict[int, dict] = {}
        started: dict[int, float] = {}
        next_start = time.perf_counter()
        try:
            for event in events:
                kind = event[0]
                if kind == "open":
                    _, i, duration = event
                    acc[i] = {"duration": duration, "s": [], "e": [], "p": []}
                    started[i] = next_start
                elif kind == "batch":
                    _, x, owners = event
                    probs = self._forward(x).cpu().numpy()
                    pos = 0
                    for i, s, e in owners:
                        if i in acc:
                            acc[i]["s"].append(s)
                            acc[i]["e"].append(e)
                            acc[i]["p"].append(probs[pos : pos + len(s)])
                        pos += len(s)
                    if on_batch is not None:
                        on_batch(len(x))
                elif kind == "done":
                    i = event[1]
                    a = acc.pop(i)
                    pred = Prediction(
                        names[i], self.classes, np.concatenate(a["s"]), np.concatenate(a["e"]),
                        np.concatenate(a["p"]), a["duration"], self.positive_class,
                    )  # fmt: skip
                    now = time.perf_counter()
                    yield FileResult(paths[i], pred, None, now - started.pop(i, now))
                    next_start = now
                elif kind == "error":
                    _, i, reason = event
                    acc.pop(i, None)
                    now = time.perf_counter()
                    yield FileResult(paths[i], None, reason, now - started.pop(i, now))
                    next_start = now
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()


def _threaded(gen: Iterator, maxsize: int) -> Iterator:
    """Run generator ``gen`` in a daemon thread, ``maxsize`` items ahead; re-raise its errors."""
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in gen:
                if not put(item):
                    return
            put(end)
        except BaseException as exc:  # handed to the consumer
            put(("raise", exc))

    thread = threading.Thread(target=work, name="sigalex-predict-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, tuple) and item[0] == "raise":
                raise item[1]
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# Inputs


def find_inputs(inputs: Iterable[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files, folders (recursively, readable extensions) and glob patterns.

    Returns
    -------
    files : list of Path
        In input order (folder contents and glob matches sorted), duplicates removed.
    problems : list of (input, reason)
        Inputs that name nothing: a missing path, a pattern that matches no file, a folder
        with no readable file.
    """
    from .io import readable_extensions

    exts = set(readable_extensions())

    def in_folder(folder: Path) -> list[Path]:
        return sorted(
            p
            for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in exts and not p.name.startswith(".")
        )

    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            found = in_folder(path)
            if not found:
                problems.append((text, f"no readable file ({', '.join(sorted(exts))}) in folder"))
            files += found
        elif path.is_file():
            files.append(path)
        elif glob.has_magic(text):
            found = []
            for match in sorted(glob.glob(text, recursive=True)):
                m = Path(match)
                found += in_folder(m) if m.is_dir() else [m] if m.is_file() else []
            if not found:
                problems.append((text, "no file matches the pattern"))
            files += found
        else:
            problems.append((text, "no such file or folder"))
    seen: set[str] = set()
    unique = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


# ---------------------------------------------------------------------------------------------
# The output folder


def _key(recording: str) -> str:
    return hashlib.sha1(os.path.realpath(recording).encode()).hexdigest()[:16]


def _cell(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else format(value, ".10g")
    return str(value).replace("\t", " ").replace("\n", " ")


def _write_tsv(path: Path, columns: Sequence[str], rows: Iterable[Sequence]) -> None:

    lines = ["\t".join(columns)]
    lines += ["\t".join(_cell(v) for v in row) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _stem(recording: str) -> str:
    name = Path(recording).name
    for ext in sorted({".edf", ".bdf", ".wav", ".flac", ".ogg", ".txt", ".csv", ".npy", ".npz"}):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    name = re.sub(r"_eeg$", "", name)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name) or "recording"


def _read_parts(parts_dir: Path) -> dict[str, dict]:
    out = {}
    for p in sorted(parts_dir.glob("*.json")):
        try:
            part = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged part is redone on resume
        if isinstance(part, dict) and "recording" in part and "status" in part:
            out[p.stem] = part
    return out


def _part_of(result: FileResult, name: str, checkpoint_sha: str) -> dict:
    part = {"recording": name, "path": os.path.realpath(result.path), "checkpoint": checkpoint_sha}
    if result.ok:
        pred = result.prediction
        part.update(
            status="ok",
            duration_s=pred.duration_s,
            start_s=pred.start_s.tolist(),
            end_s=pred.end_s.tolist(),
            probabilities=np.round(pred.probabilities.astype(np.float64), 7).tolist(),
            seconds=result.seconds,
        )
    else:
        part.update(status="error", reason=result.error, seconds=result.seconds)
    return part


def _assemble(
    out: Path,
    parts: dict[str, dict],
    predictor: Predictor,
    *,
    threshold: float,
    min_duration_s: float,
    merge_gap_s: float,
    extra_errors: Sequence[tuple[str, str]] = (),
) -> dict:
    """Write windows.tsv, recordings.tsv, errors.tsv and events/ from the parts."""
    from .annotations import write_events_tsv

    classes = predictor.classes
    order = sorted(parts.values(), key=lambda p: p["recording"])
    ok = [p for p in order if p["status"] == "ok"]
    errors = [(p["recording"], p.get("reason", "")) for p in order if p["status"] != "ok"]
    errors += list(extra_errors)
    events_dir = out / "events"
    positive = predictor.positive_class
    stems: dict[str, int] = {}
    for p in ok:
        stems[_stem(p["recording"])] = stems.get(_stem(p["recording"]), 0) + 1
    written = set()

    def window_rows():
        for p in ok:
            probs = np.asarray(p["probabilities"], dtype=np.float64).reshape(-1, len(classes))
            best = probs.argmax(1) if len(probs) else []
            for s, e, k, row in zip(p["start_s"], p["end_s"], best, probs, strict=True):
                yield [p["recording"], float(s), float(e), classes[k], *map(float, row)]

    _write_tsv(
        out / "windows.tsv", [*WINDOW_COLUMNS, *(f"prob_{c}" for c in classes)], window_rows()
    )
    rec_rows, n_windows, n_events = [], 0, 0
    for p in order:
        if p["status"] != "ok":
            rec_rows.append([p["recording"], "error", None, None, None, None, None, None])
            continue
        pred = Prediction(
            p["recording"], classes, np.asarray(p["start_s"], dtype=np.float64),
            np.asarray(p["end_s"], dtype=np.float64),
            np.asarray(p["probabilities"], dtype=np.float32).reshape(-1, len(classes)),
            float(p["duration_s"]), positive,
        )  # fmt: skip
        n_windows += pred.n_windows
        n_ev, events_file = None, None
        if positive is not None:
            events = pred.events(
                threshold=threshold, min_duration_s=min_duration_s, merge_gap_s=merge_gap_s
            )
            stem = _stem(p["recording"])
            if stems[stem] > 1:
                stem = f"{stem}__{_key(p['path'])[:8]}"
            name = f"{stem}_events.tsv"
            rows = events or [Annotation(0.0, pred.duration_s, BACKGROUND_EVENT, (), None)]
            write_events_tsv(events_dir / name, rows, recording_duration_s=pred.duration_s)
            written.add(name)
            n_ev, events_file = len(events), f"events/{name}"
            n_events += len(events)
        rec_rows.append(
            [
                p["recording"], "ok", float(pred.duration_s), pred.n_windows, pred.label,
                pred.confidence, n_ev, events_file,
            ]
        )  # fmt: skip
    rec_rows += [[name, "error", None, None, None, None, None, None] for name, _ in extra_errors]
    _write_tsv(out / "recordings.tsv", RECORDING_COLUMNS, rec_rows)
    _write_tsv(out / "errors.tsv", ERROR_COLUMNS, errors)
    if events_dir.is_dir():
        for stale in events_dir.glob("*_events.tsv"):
            if stale.name not in written:
                stale.unlink(missing_ok=True)
    return {
        "recordings": len(order) + len(extra_errors),
        "classified": len(ok),
        "failed": len(errors),
        "windows": n_windows,
        "events": n_events if positive is not None else None,
    }


def predict_to_dir(
    checkpoint,
    inputs: Sequence,
    out,
    *,
    batch_size: int = 64,
    device=None,
    threshold: float = 0.5,
    min_duration_s: float = 0.0,
    merge_gap_s: float = 0.0,
    resume: bool = False,
    sample_rate: float | None = None,
    progress: bool | None = None,
    compile: bool = False,
) -> dict:
    """``sigalex predict``: classify every input and write the output folder (module docs).

    Parameters
    ----------
    checkpoint : path
        ``checkpoint.pt`` from ``sigalex run``.
    inputs : sequence of str or path
        Files, folders (searched recursively for readable extensions) and glob patterns.
    out : path
        Output folder (created). Without ``resume``, earlier results in it are replaced.
    batch_size : int
        Windows per forward pass.
    device : str, optional
        ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N``.
    threshold, min_duration_s, merge_gap_s : float
        Event settings (see :func:`windows_to_events`); seizure models only.
    resume : bool
        Skip inputs whose results in ``out`` are complete (same checkpoint); the outputs hold
        the union of old and new results, one row set per recording.
    sample_rate : float, optional
        Hz of rate-less files (``.txt``, ``.csv``, ``.npy``); default: the model's.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal, or ``SIGALEX_PROGRESS=1``).
    compile : bool
        ``torch.compile`` the model (see :class:`Predictor`).

    Returns
    -------
    dict
        The summary written to ``summary.json``; ``summary["exit_status"]`` is 0, 3 or 4.

    Raises
    ------
    DataError
        Unreadable checkpoint; ``resume`` into results of another checkpoint; no inputs.
    """
    import sys

    from . import __version__
    from .train import _device_name

    _check_event_options(threshold, min_duration_s, merge_gap_s)
    started = time.perf_counter()
    checkpoint = Path(checkpoint)
    predictor = Predictor.from_checkpoint(
        checkpoint, device=device, batch_size=batch_size, compile=compile
    )
    sha = sha256_file(checkpoint)
    out = Path(out)
    parts_dir = out / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        parts = _read_parts(parts_dir)
        foreign = [p for p in parts.values() if p.get("checkpoint") != sha]
        if foreign:
            raise DataError(
                f"{out} holds results of another checkpoint (sha256 "
                f"{str(foreign[0].get('checkpoint'))[:12]}…, not {sha[:12]}… of {checkpoint}); "
                "use another --out, or drop --resume to replace them"
            )
    else:
        for old in parts_dir.glob("*.json"):
            old.unlink()
        parts = {}
    files, problems = find_inputs(inputs)
    if not files and not problems:
        raise DataError("no inputs given")
    todo, names, skipped = [], [], 0
    for f in files:
        key = _key(str(f))
        if resume and parts.get(key, {}).get("status") == "ok":
            skipped += 1
            continue
        todo.append(f)
        names.append(str(f))
    show = (
        progress
        if progress is not None
        else (sys.stderr.isatty() or os.environ.get("SIGALEX_PROGRESS") == "1")
    )
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), unit="file", desc="predict", disable=not show, dynamic_ncols=True)
    counted = {"windows": 0}
    t0 = time.perf_counter()

    def on_batch(n: int) -> None:
        counted["windows"] += n
        rate = counted["windows"] / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(windows=counted["windows"], win_per_s=f"{rate:.0f}", refresh=False)
        bar.refresh()

    new_ok = new_failed = 0
    interrupted = False
    try:
        for result in predictor.predict_files(
            todo, sample_rate=sample_rate, names=names, on_batch=on_batch
        ):
            name = str(result.path)
            key = _key(name)
            part = _part_of(result, name, sha)
            atomic_write_text(parts_dir / f"{key}.json", json.dumps(part))
            parts[key] = part
            new_ok += result.ok
            new_failed += not result.ok
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        elapsed = time.perf_counter() - t0
        counts = _assemble(
            out, parts, predictor, threshold=threshold, min_duration_s=min_duration_s,
            merge_gap_s=merge_gap_s, extra_errors=problems,
        )  # fmt: skip
        inputs_total = len(files) + len(problems)
        failed_now = new_failed + len(problems)
        if interrupted:
            status = None
        elif failed_now == 0:
            status = EXIT_OK
        elif failed_now == inputs_total:
            status = EXIT_ALL_FAILED
        else:
            status = EXIT_SOME_FAILED
        summary = {
            "sigalex_version": __version__,
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha,
            "model": predictor.describe(),
            "classes": predictor.classes,
            "device": _device_name(predictor.device),
            "batch_size": batch_size,
            "compiled": predictor.compiled,
            "events": {
                "threshold": threshold,
                "min_duration_s": min_duration_s,
                "merge_gap_s": merge_gap_s,
                "positive_class": predictor.positive_class,
            },
            "this_run": {
                "inputs": inputs_total,
                "classified": new_ok,
                "failed": failed_now,
                "skipped_complete": skipped,
                "windows": counted["windows"],
                "seconds": round(elapsed, 3),
                "windows_per_s": round(counted["windows"] / elapsed, 2) if elapsed > 0 else None,
                "total_seconds": round(time.perf_counter() - started, 3),
                "interrupted": interrupted,
                "resume": resume,
            },
            "outputs": counts,
            "exit_status": status,
        }
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
