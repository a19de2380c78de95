"""What a recording is: :class:`Recording` (samples in memory), :class:`Annotation` (an event in
seconds) and :func:`select_channels` (channel names and patterns → rows).

Every source of samples sigalex reads from (an in-memory :class:`Recording`, a lazily opened
EDF, an MNE ``Raw``; see :mod:`sigalex.sources`) has the same small interface: ``sample_rate``
(Hz), ``channel_names``, ``n_channels``, ``n_times`` and ``read(start, stop)`` →
float32 ``(n_channels, stop - start)``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError, ParameterError


@dataclass(frozen=True)
class Annotation:
    """One annotated event: ``onset`` and ``duration`` in seconds from the recording start.

    ``channels`` names the channels involved (empty: all or unknown); ``confidence`` is a
    detector's score in [0, 1] (``None`` for human annotations), as in SzCORE event files.
    """

    onset: float
    duration: float
    label: str
    channels: tuple[str, ...] = ()
    confidence: float | None = None

    @property
    def offset(self) -> float:
        return self.onset + self.duration


@dataclass
class Recording:
    """A multichannel recording in memory.

    Attributes
    ----------
    data : numpy.ndarray, float32 [shape=(n_channels, n_times)]
    sample_rate : float
        Hz.
    channel_names : list of str
        One per row of ``data``.
    annotations : list of Annotation
        Events (seizures, labels) with times in seconds.
    path : pathlib.Path or None
        The file it was read from.
    """

    data: np.ndarray
    sample_rate: float
    channel_names: list[str]
    annotations: list[Annotation] = field(default_factory=list)
    path: Path | None = None

    def __post_init__(self):
        data = np.asarray(self.data)
        if data.ndim == 1:
            data = data[None]
        if data.ndim != 2:
            raise DataError(f"{self._where()}data must be (n_channels, n_times); got {data.shape}")
        self.data = data.astype(np.float32, copy=False)
        if not self.channel_names:
            self.channel_names = [f"ch{i}" for i in range(data.shape[0])]
        if len(self.channel_names) != data.shape[0]:
            raise DataError(
                f"{self._where()}{len(self.channel_names)} channel names for {data.shape[0]} channels"
            )

    def _where(self) -> str:
        return f"{self.path}: " if self.path else ""

    @property
    def n_channels(self) -> int:
        return self.data.shape[0]

    @property
    def n_times(self) -> int:
        return self.data.shape[1]

    @property
    def duration_s(self) -> float:
        return self.n_times / self.sample_rate

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start:stop`` of every channel, float32 ``(n_channels, stop - start)``.

        The same call works on lazily opened recordings (EDF), so windowing code can stream
        any source through ``read``.
        """
        return self.data[:, start:stop]


def select_channels(available: Sequence[str], channels: str | Iterable[str]) -> list[int]:
    """Indices of the channels that ``channels`` asks for, in the order asked.

    Each item is matched against ``available`` case-insensitively: first as an exact name,
    then as a glob pattern (``"FP*"``, ``"T[78]-P[78]"``), then as a regular expression
    matched in full (``"(FP|F)[0-9]-.*"``). A channel matched by several items is kept once.

    Parameters
    ----------
    available : sequence of str
        The recording's channel names.
    channels : str or iterable of str
        Names or patterns.

    Raises
    ------
    ParameterError
        An item that matches no channel; the message lists the available channels.
    """
    if isinstance(channels, str):
        channels = [channels]
    channels = list(channels)
    if not channels:
        raise ParameterError(f"{channels=} must name at least one channel")
    lower = [name.lower() for name in available]
    picked: list[int] = []
    unmatched: list[str] = []
    for item in channels:
        if not isinstance(item, str):
            raise ParameterError(f"channel {item!r} must be a name or pattern (str)")
        key = item.lower()
        hits = [i for i, name in enumerate(lower) if name == key]
        if not hits and any(c in item for c in "*?["):
            hits = [i for i, name in enumerate(lower) if fnmatch.fnmatchcase(name, key)]
        if not hits:
            try:
                rx = re.compile(item, re.IGNORECASE)
            except re.error:
                rx = None
            if rx is not None:
                hits = [i for i, name in enumerate(available) if rx.fullmatch(name)]
        if not hits:
            unmatched.append(item)
        picked.extend(i for i in hits if i not in picked)
    if unmatched:
        raise ParameterError(
            f"no channel matches {', '.join(map(repr, unmatched))}; available: "
            f"{', '.join(available) or '(none)'}"
        )
    return picked


def pick_rows(rec: Recording, idx: Sequence[int]) -> Recording:
    """A recording of rows ``idx`` of ``rec`` (names, annotations and path kept)."""
    idx = list(idx)
    return Recording(
        rec.data[idx],
        rec.sample_rate,
        [rec.channel_names[i] for i in idx],
        list(rec.annotations),
        rec.path,
    )


__all__ = ["Annotation", "Recording", "pick_rows", "select_channels"]
