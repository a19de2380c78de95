"""Window probabilities → events: positive windows merged into seizure-like events.

One rule for every model with a positive class (:attr:`sigalex.models.ModelSpec.positive_class`),
whole-recording models included: a window is positive when the positive class's probability is
at least ``threshold``; positive windows that overlap, touch or lie at most ``merge_gap_s``
apart join; events shorter than ``min_duration_s`` are dropped.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..recording import Annotation


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
    check_event_options(threshold, min_duration_s, merge_gap_s)
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


def check_event_options(threshold, min_duration_s, merge_gap_s) -> None:
    if not (isinstance(threshold, int | float) and 0 <= threshold <= 1):
        raise ParameterError(f"{threshold=} must be a probability in [0, 1]")
    for name, value in (("min_duration_s", min_duration_s), ("merge_gap_s", merge_gap_s)):
        if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
            raise ParameterError(f"{name}={value!r} must be a number of seconds >= 0")


__all__ = ["check_event_options", "windows_to_events"]
