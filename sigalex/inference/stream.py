"""Windows streamed from recordings into fixed-size batches; reading runs ahead in a thread.

Only reading and cutting happen here (numpy, on the host); the model unit does the rest on the
device. Memory stays bounded on long files: a batch of windows' span is read at a time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar, cast

import numpy as np
import torch

from ..errors import DataError, SigalexError
from ..models.spec import ModelSpec, WindowPlan
from ..windows import cut

if TYPE_CHECKING:
    from ..sources import Source

_T = TypeVar("_T")


@dataclass
class OpenRecording:
    """A recording ready to be windowed for a model.

    Attributes
    ----------
    name : str
        The recording's name in results.
    source : sigalex.sources.Source
        With the model's channels selected (in the model's order).
    downmix : bool
        Average the channels into one (``channels="mean"``: a single-channel model on
        multichannel data).
    plan : WindowPlan
        The windows to classify.
    notes : list of str
        What a user should know about this recording (an assumed rate, padding).
    channel : str or None
        The one channel classified (``channels="each"``), else ``None``.
    flat_s : list of float
        Starts (s) of windows found constant (a disconnected or saturated channel gives
        confident nonsense): filled while the windows are read.
    """

    name: str
    source: Source
    downmix: bool
    plan: WindowPlan
    notes: list[str] = field(default_factory=list)
    channel: str | None = None
    flat_s: list[float] = field(default_factory=list)

    def all_notes(self) -> list[str]:
        """:attr:`notes`, plus the flat windows once read."""
        if not self.flat_s:
            return list(self.notes)
        n = len(self.flat_s)
        return [
            *self.notes,
            f"{n} of {self.plan.n_windows} window(s) flat (constant signal), first at "
            f"{self.flat_s[0]:.6g} s: their answers mean nothing",
        ]

    @property
    def sample_rate(self) -> float:
        return float(self.source.sample_rate)

    @property
    def duration_s(self) -> float:
        return self.source.n_times / self.sample_rate


Owner = tuple[int, np.ndarray, np.ndarray]
"""A run of one recording's windows in a batch: ``(i, start_s, end_s)``."""
OpenEvent = tuple[Literal["open"], int, OpenRecording]
BatchEvent = tuple[Literal["batch"], torch.Tensor, list[Owner]]
DoneEvent = tuple[Literal["done"], int]
ErrorEvent = tuple[Literal["error"], int, str]
StreamEvent = OpenEvent | BatchEvent | DoneEvent | ErrorEvent
"""What :func:`batches_across` yields (tuples told apart by their first item)."""


def read_windows(
    rec: OpenRecording, spec: ModelSpec, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(windows (k, n_channels, n_times) float32, start_s (k,), end_s (k,))``.

    Each block reads the span of up to ``batch_size`` windows once, cuts them at the recording's
    rate and conforms them to the model (:meth:`ModelSpec.conform`: resample, then fit).
    """
    plan, src = rec.plan, rec.source
    for k0 in range(0, plan.n_windows, batch_size):
        starts = plan.starts[k0 : k0 + batch_size]
        a, b = int(starts[0]), int(starts[-1]) + plan.length
        span = np.asarray(src.read(a, b), dtype=np.float32)
        if span.ndim == 1:
            span = span[None]
        if span.shape[-1] != b - a:
            raise DataError(
                f"{rec.name}: read {span.shape[-1]} samples at {a}:{b}; the file ends early"
            )
        if rec.downmix:
            span = span.mean(0, keepdims=True)
        x = cut(span, starts - a, plan.length)
        flat = np.ptp(x, axis=-1).max(axis=-1) == 0
        if flat.any():
            rec.flat_s.extend((starts[flat] / rec.sample_rate).tolist())
        try:
            x = spec.conform(x, rec.sample_rate, plan)
        except DataError as exc:
            raise DataError(f"{rec.name}: {exc}") from None
        k1 = k0 + len(starts)
        yield x, plan.start_s[k0:k1], plan.end_s[k0:k1]


def batches_across(
    recordings: Iterator[tuple[int, OpenRecording | Exception]],
    spec: ModelSpec,
    batch_size: int,
    *,
    pin: bool = False,
) -> Iterator[StreamEvent]:
    """Stream windows of many recordings, one after another, into fixed-size batches.

    ``recordings`` yields ``(i, opened)`` or ``(i, exception)`` (a recording that could not be
    opened). Yields events: ``("open", i, rec)``; ``("batch", tensor, owners)`` with ``owners`` a
    list of ``(i, start_s, end_s)`` runs in batch order; ``("done", i)`` once all of recording
    ``i``'s windows are in earlier batches; ``("error", i, reason)``.
    """
    shape = (batch_size, spec.n_channels, spec.n_times)
    buf = np.empty(shape, np.float32)
    fill = 0
    owners: list[Owner] = []
    finished: list[int] = []

    def flush() -> list[StreamEvent]:
        nonlocal buf, fill, owners, finished
        x = torch.from_numpy(buf[:fill])
        out: list[StreamEvent] = [("batch", x.pin_memory() if pin else x, owners)]
        out.extend(("done", i) for i in finished)
        buf, fill, owners, finished = np.empty(shape, np.float32), 0, [], []
        return out

    for i, rec in recordings:
        if isinstance(rec, Exception):
            yield ("error", i, error_reason(rec))
            continue
        try:
            yield ("open", i, rec)
            for x, s, e in read_windows(rec, spec, batch_size):
                j = 0
                while j < len(x):
                    take = min(len(x) - j, batch_size - fill)
                    buf[fill : fill + take] = x[j : j + take]
                    owners.append((i, s[j : j + take], e[j : j + take]))
                    fill, j = fill + take, j + take
                    if fill == batch_size:
                        yield from flush()
        except (SigalexError, OSError, ValueError, RuntimeError, EOFError) as exc:
            yield ("error", i, error_reason(exc))
            continue
        finished.append(i)
        if fill == 0:
            for k in finished:
                yield ("done", k)
            finished = []
    if fill or finished:
        yield from flush()


def error_reason(exc: BaseException) -> str:
    """One line for ``errors.tsv``: our messages as they are, others with their type."""
    text = str(exc) if isinstance(exc, SigalexError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def threaded(gen: Iterator[_T], maxsize: int) -> Iterator[_T]:
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
            yield cast(_T, item)  # any other item is gen's (the queue holds them untyped)
    finally:
        stop.set()
        thread.join(timeout=5)


__all__: Sequence[str] = [
    "OpenRecording",
    "batches_across",
    "error_reason",
    "read_windows",
    "threaded",
]
