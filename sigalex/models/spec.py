"""What a trained model expects and gives (:class:`ModelSpec`), and how a recording is cut for it.

The spec is the model's input contract, as braindecode's models carry ``n_chans``,
``n_times`` and ``sfreq``: the classes and the positive class, the sample rate, the channels,
the window and the stride, and how a clip is fitted to the window. It is written into every
checkpoint, so prediction needs nothing else, and it decides how any recording is cut
(:meth:`ModelSpec.plan`): training's windows and prediction's windows come from the same grid
(:func:`sigalex.windows.window_starts`) and the same resample-then-fit (:func:`sigalex.windows.conform`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .._checks import positive_float
from ..errors import DataError, ParameterError
from ..resample import resampled_length
from ..windows import FIT_MODES, conform, window_starts

_GENERIC = re.compile(r"ch\d+")


def _is_generic(names: Sequence[str]) -> bool:
    """Names a reader made up (``ch0``, ``ch1``…) for a file that names no channels."""
    return all(_GENERIC.fullmatch(n) for n in names)


CHANNEL_MAPPINGS = ("each", "mean")
"""How a multichannel recording meets a single-channel model (:meth:`ModelSpec.channel_plan`)."""


@dataclass(frozen=True)
class ChannelGroup:
    """Rows of a recording that become one input of the model.

    Attributes
    ----------
    rows : list of int
        The recording's rows, in the model's channel order.
    average : bool
        Average the rows into one channel (``channels="mean"``).
    channel : str or None
        The channel's name when each channel is classified on its own (``channels="each"``).
    """

    rows: list[int]
    average: bool = False
    channel: str | None = None


@dataclass(frozen=True)
class WindowPlan:
    """The windows a model classifies in one recording, in the recording's own samples.

    Attributes
    ----------
    starts : numpy.ndarray, int64 [shape=(n_windows,)]
        First sample of each window read from the recording.
    length : int
        Samples read per window, at the recording's rate.
    fit : str
        How each resampled window is brought to the model's ``n_times``
        (:func:`sigalex.windows.fit_length`).
    start_s, end_s : numpy.ndarray, float64 [shape=(n_windows,)]
        The span of the recording each window's image shows, in seconds (a clip cropped to the
        window reports its centre, a padded one its real samples): never more than was seen.
    notes : tuple of str
        What a user should know (a recording padded to the window, say).
    """

    starts: np.ndarray
    length: int
    fit: str
    start_s: np.ndarray
    end_s: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def n_windows(self) -> int:
        return len(self.starts)


@dataclass(frozen=True)
class ModelSpec:
    """A trained model's contract: what goes in, what comes out.

    Attributes
    ----------
    classes : tuple of str
        Output order of the logits.
    sample_rate : float
        Hz of the windows the model sees.
    n_channels : int
        Channels per window (1 after averaging, for single-channel models).
    n_times : int
        Samples per window at ``sample_rate``.
    channel_names : tuple of str
        The channels, picked by name from recordings (generic ``ch0``… names: by position).
    positive_class : str or None
        The class events are made of and sensitivity is measured for
        (:func:`sigalex.metrics.positive_class_of`); ``None`` for tasks without one.
    window_s, stride_s : float
        Seconds. ``window_s = 0``: the model was trained on whole recordings (clips) fitted to
        ``n_times`` samples; ``stride_s = 0``: the window itself.
    fit : {"pad_or_crop", "pad", "crop"}
        How a clip was brought to ``n_times`` in training (``windows.fit``).
    max_clip_s : float
        Whole-recording models: the longest recording trained on, in seconds. A recording up to
        this long is classified whole, fitted as in training; a longer one is slid over with the
        model's window.
    architecture : str
        The network (``alexnet`` or ``alexnet2012``).
    """

    classes: tuple[str, ...]
    sample_rate: float
    n_channels: int
    n_times: int
    channel_names: tuple[str, ...] = ()
    positive_class: str | None = None
    window_s: float = 0.0
    stride_s: float = 0.0
    fit: str = "pad_or_crop"
    max_clip_s: float = 0.0
    architecture: str = "alexnet"

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        names = tuple(str(c) for c in self.channel_names)
        object.__setattr__(self, "channel_names", names if len(names) == self.n_channels else ())
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ParameterError(f"classes={list(self.classes)} must be at least 2 distinct names")
        if self.positive_class is not None and self.positive_class not in self.classes:
            raise ParameterError(
                f"positive_class={self.positive_class!r} is not one of {self.classes}"
            )
        positive_float("sample_rate", self.sample_rate)
        if self.n_times < 1 or self.n_channels < 1:
            raise ParameterError(
                f"n_times={self.n_times} and n_channels={self.n_channels} must be >= 1"
            )
        if self.fit not in FIT_MODES:
            raise ParameterError(f"fit={self.fit!r} must be one of {FIT_MODES}")

    # -- plain values, for checkpoints and summaries --------------------------------------------
    def to_dict(self) -> dict:
        """Plain values (lists, floats, str), as stored in a checkpoint."""
        out = asdict(self)
        out["classes"] = list(self.classes)
        out["channel_names"] = list(self.channel_names)
        return out

    @classmethod
    def from_dict(cls, values: Mapping) -> ModelSpec:
        """The inverse of :meth:`to_dict`; unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"unknown model spec keys {unknown}")
        return cls(**dict(values))

    # -- windows --------------------------------------------------------------------------------
    @property
    def window_length_s(self) -> float:
        """The model's window in seconds (a whole-recording model's: ``n_times / sample_rate``)."""
        return self.window_s or self.n_times / self.sample_rate

    @property
    def default_stride_s(self) -> float:
        """The stride prediction slides with by default: training's, or the window itself."""
        return (self.stride_s or self.window_s) or self.window_length_s

    def plan(
        self, n_times: int, sample_rate: float, *, stride_s: float | None = None, where: str = ""
    ) -> WindowPlan:
        """The windows to classify in a recording of ``n_times`` samples at ``sample_rate`` Hz.

        - A whole-recording model given a recording no longer than ``max_clip_s``: one window,
          the whole recording, fitted as in training (``fit``).
        - Otherwise windows of the model's length, ``stride_s`` apart (default
          :attr:`default_stride_s`), cut on training's grid from the first sample, plus one window
          ending at the last sample when the grid leaves a tail: every sample is classified.
        - A recording shorter than one window: one window, padded (``notes`` says so); shorter
          than half a window, an error.

        Raises
        ------
        DataError
            An empty recording, or one shorter than half a window.
        ParameterError
            A bad ``stride_s`` or ``sample_rate``.
        """
        rate = positive_float("sample_rate", sample_rate)
        stride = self.default_stride_s if stride_s is None else positive_float("stride_s", stride_s)
        prefix = f"{where}: " if where else ""
        n = int(n_times)
        if n < 1:
            raise DataError(f"{prefix}the recording holds no samples")
        duration = n / rate
        if not self.window_s and duration <= self.max_clip_s + 0.5 / rate:
            return self._clip_plan(n, rate)
        length = max(1, round(self.window_length_s * rate))
        if 2 * n < length:
            raise DataError(
                f"{prefix}{duration:.3g} s is shorter than one window of "
                f"{self.window_length_s:.3g} s, and less than half of it: too little signal to "
                "classify"
            )
        if n < length:
            note = (
                f"{duration:.3g} s is shorter than the model's {self.window_length_s:.3g} s "
                "window: padded"
            )
            return WindowPlan(
                np.zeros(1, np.int64), n, "pad", np.zeros(1), np.array([duration]), (note,)
            )
        step = max(1, round(stride * rate))
        starts = window_starts(n, window_samples=length, stride_samples=step, cover_end=True)
        return WindowPlan(starts, length, "pad_or_crop", starts / rate, (starts + length) / rate)

    def _clip_plan(self, n: int, rate: float) -> WindowPlan:
        """One window, the whole recording, fitted as training fitted clips."""
        resampled = resampled_length(n, rate, self.sample_rate)
        start_s, end_s, notes = 0.0, n / rate, ()
        window = self.n_times / self.sample_rate
        if resampled > self.n_times and self.fit != "pad":
            start_s = (resampled - self.n_times) // 2 / self.sample_rate
            end_s = start_s + window
        elif resampled < self.n_times and self.fit != "crop":
            notes = (f"{n / rate:.3g} s is shorter than the model's {window:.3g} s window: padded",)
        return WindowPlan(
            np.zeros(1, np.int64), n, self.fit, np.array([start_s]), np.array([end_s]), notes
        )

    def conform(self, windows: np.ndarray, sample_rate: float, plan: WindowPlan) -> np.ndarray:
        """Windows read at ``sample_rate`` → the model's input ``(k, n_channels, n_times)``."""
        try:
            return conform(
                windows, sample_rate, sample_rate=self.sample_rate, n_times=self.n_times,
                fit=plan.fit,
            )  # fmt: skip
        except ParameterError as exc:
            raise DataError(f"{exc} (windows.fit = {plan.fit!r})") from None

    # -- channels -------------------------------------------------------------------------------
    def channel_plan(
        self, names: Sequence[str], where: str = "", *, mapping: str | None = None
    ) -> list[ChannelGroup]:
        """How a recording with channels ``names`` meets the model: one or more groups of rows.

        The model's channels are picked by name (case-insensitively) when it has real names;
        a recording with generic names (a ``.npy``) and the right count is taken by position.
        A single-channel model meets a multichannel recording only as the user says
        (``mapping``): ``"mean"`` averages the channels into one, ``"each"`` classifies every
        channel on its own (one group per channel, named).

        Raises
        ------
        DataError
            The recording lacks the model's channels, has another count, or has several channels
            for a single-channel model without a ``mapping``.
        ParameterError
            An unknown ``mapping``, or one given to a multichannel model.
        """
        if mapping is not None and mapping not in CHANNEL_MAPPINGS:
            raise ParameterError(
                f"channels={mapping!r} must be one of {', '.join(CHANNEL_MAPPINGS)}"
            )
        if mapping is not None and self.n_channels != 1:
            raise ParameterError(
                f"channels={mapping!r} maps a multichannel recording onto a single-channel model; "
                f"this model takes {self.n_channels} channels, picked by name"
            )
        names = list(names)
        prefix = f"{where}: " if where else ""
        if mapping == "each":
            return [ChannelGroup([i], channel=name) for i, name in enumerate(names)]
        if mapping == "mean":
            return [ChannelGroup(list(range(len(names))), average=len(names) > 1)]
        if self.channel_names and not _is_generic(self.channel_names):
            lower = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
            missing = [c for c in self.channel_names if c.lower() not in lower]
            if not missing:
                return [ChannelGroup([lower[c.lower()] for c in self.channel_names])]
            if not (_is_generic(names) and len(names) == self.n_channels):
                raise DataError(
                    f"{prefix}lacks the model's channel(s) {', '.join(missing)} "
                    f"(it has: {', '.join(names) or 'none'})"
                )
        if len(names) == self.n_channels:
            return [ChannelGroup(list(range(len(names))))]
        if self.n_channels == 1:
            raise DataError(
                f"{prefix}{len(names)} channels, and the model takes 1: choose --channels mean "
                '(average them into one, channels="mean") or --channels each (classify every '
                'channel on its own, channels="each")'
            )
        raise DataError(
            f"{prefix}{len(names)} channel(s) ({', '.join(names)}); the model takes "
            f"{self.n_channels}"
        )

    def describe(self) -> dict:
        """Plain values for summaries: the spec plus the window actually used."""
        out = self.to_dict()
        out["window_length_s"] = self.window_length_s
        out["default_stride_s"] = self.default_stride_s
        return out


__all__ = ["CHANNEL_MAPPINGS", "ChannelGroup", "ModelSpec", "WindowPlan"]
