"""Synthetic EEG with annotated seizure-like events, so the pipeline runs with no data.

The background is 1/f ("pink") noise with a waxing and waning ~10 Hz alpha rhythm, strongest
over the occipital channels, at tens of µV. A seizure is a run of 3 Hz spike-and-wave
discharges at about 200 µV whose rate slows slightly (≈3.5 → 2.5 Hz) as it goes on, with a
smooth build-up and end, on all or some of the channels. Nothing here claims clinical
realism: it is a test signal whose seizures are visible in time-frequency images and whose
labels are exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .annotations import events_file_name, write_events_tsv
from .errors import ParameterError
from .io import Annotation, Recording, write_edf

__all__ = ["make_synthetic_recording", "write_synthetic_dataset"]

# Bipolar channel names in CHB-MIT's order: the double banana, then CHB-MIT's 5 extras.
_CHANNELS = (
    "FP1-F7 F7-T7 T7-P7 P7-O1 FP1-F3 F3-C3 C3-P3 P3-O1 FP2-F4 F4-C4 C4-P4 P4-O2 "
    "FP2-F8 F8-T8 T8-P8 P8-O2 FZ-CZ CZ-PZ P7-T7 T7-FT9 FT9-FT10 FT10-T8 T8-P8-1"
).split()

SEIZURE = "seizure"


def _channel_names(n_channels: int) -> list[str]:
    if n_channels <= len(_CHANNELS):
        return list(_CHANNELS[:n_channels])
    return [f"EEG{i + 1:03d}" for i in range(n_channels)]


def _pink(rng: np.random.Generator, n_channels: int, n_times: int, sample_rate: float):
    """Unit-variance noise with a 1/f power spectrum above 0.5 Hz, ``(n_channels, n_times)``."""
    spectrum = np.fft.rfft(rng.standard_normal((n_channels, n_times)), axis=-1)
    freqs = np.fft.rfftfreq(n_times, 1 / sample_rate)
    spectrum *= 1 / np.sqrt(np.maximum(freqs, 0.5))
    spectrum[:, 0] = 0
    x = np.fft.irfft(spectrum, n=n_times, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def _spike_wave(phase_cycles: np.ndarray) -> np.ndarray:
    """One spike-and-wave complex per cycle, peak about 1: a sharp spike (≈25 ms at 3 Hz)
    then a slow wave of opposite sign over the rest of the cycle."""
    u = np.mod(phase_cycles, 1.0)
    spike = np.exp(-0.5 * ((u - 0.12) / 0.025) ** 2)
    wave = np.where(u > 0.25, np.sin(np.pi * (u - 0.25) / 0.75), 0.0)
    return spike - 0.6 * wave


def make_synthetic_recording(
    duration_s: float,
    *,
    sample_rate: float = 256.0,
    n_channels: int = 18,
    seizures: Sequence[tuple[float, float]] = (),
    seizure_channels: float = 1.0,
    background_uv: float = 20.0,
    alpha_uv: float = 15.0,
    seizure_uv: float = 200.0,
    seed: int = 0,
) -> Recording:
    """An EEG-like recording with seizure-like events and their annotations.

    Parameters
    ----------
    duration_s : float
        Length in seconds.
    sample_rate : float
        Hz.
    n_channels : int
        Up to 23 get CHB-MIT's bipolar names (``"FP1-F7"``…); more get ``"EEG001"``….
    seizures : sequence of (onset_s, duration_s)
        Events in seconds, inside the recording and not overlapping.
    seizure_channels : float
        Fraction of channels (0, 1] that each seizure involves; below 1 a seizure covers a
        random, seed-determined subset and its annotation names those channels.
    background_uv, alpha_uv, seizure_uv : float
        Standard deviation of the pink background, amplitude of the alpha rhythm, and peak
        amplitude of the spike-and-wave discharges, in µV.
    seed : int
        Same seed, same recording.

    Returns
    -------
    Recording
        ``data`` ``(n_channels, round(duration_s * sample_rate))`` float32 in µV, one
        ``Annotation(onset_s, duration_s, "seizure", channels)`` per event.

    Raises
    ------
    ParameterError
        Bad sizes, events outside the recording or overlapping.
    """
    if not (
        isinstance(sample_rate, int | float) and math.isfinite(sample_rate) and sample_rate > 0
    ):
        raise ParameterError(f"{sample_rate=} must be a positive number of Hz")
    if not (isinstance(duration_s, int | float) and math.isfinite(duration_s) and duration_s > 0):
        raise ParameterError(f"{duration_s=} must be a positive number of seconds")
    n_times = round(duration_s * sample_rate)
    if n_times < 2:
        raise ParameterError(f"{duration_s=} at {sample_rate=} gives fewer than 2 samples")
    if not isinstance(n_channels, int) or n_channels < 1:
        raise ParameterError(f"{n_channels=} must be a positive integer")
    if not (0 < seizure_channels <= 1):
        raise ParameterError(f"{seizure_channels=} must be a fraction in (0, 1]")
    events = sorted((float(o), float(d)) for o, d in seizures)
    for i, (onset, dur) in enumerate(events):
        if onset < 0 or dur <= 0 or onset + dur > duration_s:
            raise ParameterError(
                f"seizure (onset_s={onset}, duration_s={dur}) must lie inside 0..{duration_s} s"
            )
        if i and onset < events[i - 1][0] + events[i - 1][1]:
            raise ParameterError(f"seizures overlap at onset_s={onset}")

    rng = np.random.default_rng(seed)
    names = _channel_names(n_channels)
    t = np.arange(n_times) / sample_rate

    # background: pink noise, partly shared between channels (volume conduction)
    common = _pink(rng, 1, n_times, sample_rate)
    own = _pink(rng, n_channels, n_times, sample_rate)
    data = background_uv * (0.4 * common + np.sqrt(1 - 0.4**2) * own)

    # alpha: ~10 Hz, waxing and waning over seconds, strongest over occipital channels
    alpha_hz = rng.uniform(9.0, 11.0)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.05, 0.15) * t + rng.uniform(0, 6.3))
    posterior = np.array([1.0 if ("O1" in n or "O2" in n) else 0.3 for n in names])
    phases = rng.uniform(0, 2 * np.pi, n_channels)[:, None]
    data += alpha_uv * posterior[:, None] * envelope * np.sin(2 * np.pi * alpha_hz * t + phases)

    annotations = []
    for onset, dur in events:
        i0 = round(onset * sample_rate)
        i1 = min(round((onset + dur) * sample_rate), n_times)
        tau = np.arange(i1 - i0) / sample_rate
        # rate slows from f0 to f1 over the event: integrate it for the phase
        f0, f1 = rng.uniform(3.3, 3.7), rng.uniform(2.4, 2.8)
        rate = f0 + (f1 - f0) * tau / dur
        cycles = np.cumsum(rate) / sample_rate
        ramp_s = min(2.0, dur / 4)
        build = np.clip(tau / ramp_s, 0, 1) * np.clip((dur - tau) / ramp_s, 0, 1)
        shape = build * _spike_wave(cycles + rng.uniform(0, 1))
        n_inv = (
            n_channels if seizure_channels >= 1 else max(1, round(seizure_channels * n_channels))
        )
        involved = np.sort(rng.choice(n_channels, size=n_inv, replace=False))
        gains = rng.uniform(0.7, 1.0, n_inv)
        lags = rng.integers(0, max(1, round(0.02 * sample_rate)), n_inv)  # up to 20 ms
        for ch, gain, lag in zip(involved, gains, lags, strict=True):
            sign = 1.0 if rng.random() < 0.8 else -1.0  # bipolar chains flip polarity
            data[ch, i0 + lag : i1] += sign * gain * seizure_uv * shape[: i1 - i0 - lag]
        channels = () if n_inv == n_channels else tuple(names[c] for c in involved)
        annotations.append(Annotation(onset, dur, SEIZURE, channels))
    return Recording(data.astype(np.float32), float(sample_rate), names, annotations)


def write_synthetic_dataset(
    folder,
    n_recordings: int,
    *,
    n_subjects: int | None = None,
    duration_s: float = 120.0,
    sample_rate: float = 256.0,
    n_channels: int = 18,
    n_seizures: tuple[int, int] = (1, 2),
    seizure_duration_s: tuple[float, float] = (10.0, 30.0),
    seizure_channels: float = 1.0,
    seed: int = 0,
) -> list[Path]:
    """Write synthetic recordings as EDF+ files with a BIDS/SzCORE events TSV beside each.

    Files are named ``sub-SS_run-RR_eeg.edf`` and ``sub-SS_run-RR_events.tsv``; recordings
    are dealt to ``n_subjects`` subjects in turn, so grouped splits have groups to keep
    apart. Each recording depends only on ``seed`` and its index, so the same call writes
    the same files (a larger ``n_recordings`` adds files without changing the first ones).

    Parameters
    ----------
    folder : str or Path
        Created if missing.
    n_recordings : int
    n_subjects : int, optional
        Default: ``min(n_recordings, 4)``.
    duration_s, sample_rate, n_channels, seizure_channels
        As in :func:`make_synthetic_recording`.
    n_seizures : (int, int)
        Inclusive range of events per recording.
    seizure_duration_s : (float, float)
        Range of event lengths in seconds.
    seed : int

    Returns
    -------
    list of pathlib.Path
        The EDF files, in index order. The events TSV of ``p`` is
        ``p.with_name(sigalex.annotations.events_file_name(p))``.
    """
    if not isinstance(n_recordings, int) or n_recordings < 1:
        raise ParameterError(f"{n_recordings=} must be a positive integer")
    n_subjects = min(n_recordings, 4) if n_subjects is None else n_subjects
    if not isinstance(n_subjects, int) or not (1 <= n_subjects <= n_recordings):
        raise ParameterError(f"{n_subjects=} must be between 1 and {n_recordings=}")
    lo, hi = n_seizures
    if not (0 <= lo <= hi):
        raise ParameterError(f"{n_seizures=} must be (min, max) with 0 <= min <= max")
    d_lo, d_hi = seizure_duration_s
    if not (0 < d_lo <= d_hi):
        raise ParameterError(f"{seizure_duration_s=} must be (min, max) with 0 < min <= max")
    # room for the events with gaps: each needs its length plus 5 s on either side
    if hi * (d_hi + 10) > duration_s:
        raise ParameterError(
            f"{duration_s=} is too short for up to {hi} seizures of up to {d_hi} s "
            f"(needs {hi * (d_hi + 10)} s)"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(n_recordings):
        rng = np.random.default_rng([seed, index])
        count = int(rng.integers(lo, hi + 1))
        lengths = np.round(rng.uniform(d_lo, d_hi, count), 1)
        # place events in order with at least 5 s of background around each
        slack = duration_s - float(np.sum(lengths + 10))
        cuts = np.sort(rng.uniform(0, slack, count))
        events, before = [], 0.0
        for length, cut in zip(lengths, cuts, strict=True):
            events.append((round(5 + cut + before, 1), float(length)))
            before += float(length) + 10
        rec = make_synthetic_recording(
            duration_s,
            sample_rate=sample_rate,
            n_channels=n_channels,
            seizures=events,
            seizure_channels=seizure_channels,
            seed=int(rng.integers(2**31)),
        )
        subject, run = index % n_subjects + 1, index // n_subjects + 1
        stem = f"sub-{subject:02d}_run-{run:02d}"
        path = write_edf(folder / f"{stem}_eeg.edf", rec)
        write_events_tsv(
            folder / events_file_name(path), rec.annotations, recording_duration_s=duration_s
        )
        paths.append(path)
    return paths
