"""Synthetic EEG: real EDF files that read back, events where they say, seizures visible."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.signal import welch

from sigalex import datasets as D
from sigalex.annotations import events_file_name, read_events_tsv
from sigalex.errors import ParameterError
from sigalex.io import Annotation, load_recording, open_recording
from sigalex.synthetic import make_synthetic_recording, write_synthetic_dataset

SR = 256


def _band_power(x: np.ndarray, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Power per channel in [lo_hz, hi_hz] from Welch (2 s segments), µV²."""
    f, p = welch(x, fs=SR, nperseg=2 * SR, axis=-1)
    band = (f >= lo_hz) & (f <= hi_hz)
    return p[:, band].sum(axis=-1) * (f[1] - f[0])


def test_recording_shape_units_and_annotations():
    rec = make_synthetic_recording(60, n_channels=18, seizures=[(20, 15)], seed=3)
    assert rec.data.shape == (18, 60 * SR) and rec.data.dtype == np.float32
    assert rec.sample_rate == SR
    assert rec.channel_names[:2] == ["FP1-F7", "F7-T7"]
    assert rec.annotations == [Annotation(20.0, 15.0, "seizure")]
    background = rec.data[:, : 18 * SR]
    assert 15 < background.std() < 50  # µV, EEG-like
    seizure = rec.data[:, 20 * SR : 35 * SR]
    assert 150 < np.abs(seizure).max() < 400  # ~200 µV discharges
    # alpha: a 8-12 Hz peak over the background's 1/f slope, strongest occipitally
    alpha = _band_power(background, 8, 12) / _band_power(background, 13, 17)
    assert alpha[rec.channel_names.index("P7-O1")] > 3


def test_seizures_have_much_more_2_to_4_hz_power_than_background():
    rec = make_synthetic_recording(90, seizures=[(30, 20), (70, 12)], seed=7)
    background = np.concatenate([rec.data[:, : 28 * SR], rec.data[:, 52 * SR : 68 * SR]], axis=1)
    for a in rec.annotations:
        ictal = rec.data[:, round(a.onset * SR) : round(a.offset * SR)]
        ratio = _band_power(ictal, 2, 4) / _band_power(background, 2, 4)
        assert np.all(ratio > 10), ratio.min()
        # the dominant frequency is the ~3 Hz discharge rate
        f, p = welch(ictal.mean(axis=0), fs=SR, nperseg=4 * SR)
        assert 2.3 <= f[np.argmax(p)] <= 3.8


def test_same_seed_same_recording_and_focal_seizures():
    a = make_synthetic_recording(20, n_channels=8, seizures=[(5, 8)], seed=1)
    b = make_synthetic_recording(20, n_channels=8, seizures=[(5, 8)], seed=1)
    c = make_synthetic_recording(20, n_channels=8, seizures=[(5, 8)], seed=2)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    focal = make_synthetic_recording(
        30, n_channels=10, seizures=[(10, 10)], seizure_channels=0.3, seed=4
    )
    (event,) = focal.annotations
    assert len(event.channels) == 3
    involved = [focal.channel_names.index(n) for n in event.channels]
    others = [i for i in range(10) if i not in involved]
    ictal = focal.data[:, 10 * SR : 20 * SR]
    power = _band_power(ictal, 2, 4)
    assert power[involved].min() > 10 * power[others].max()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seizures": [(50, 20)]}, "must lie inside 0..60"),
        ({"seizures": [(10, 10), (15, 5)]}, "seizures overlap at onset_s=15"),
        ({"n_channels": 0}, "n_channels=0 must be a positive integer"),
        ({"sample_rate": -1}, "sample_rate=-1 must be a positive"),
        ({"seizure_channels": 0}, r"seizure_channels=0 must be a fraction in \(0, 1\]"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        make_synthetic_recording(60, **kwargs)


def test_dataset_edf_and_tsv_read_back_and_are_deterministic(tmp_path):
    kwargs = dict(duration_s=60, n_channels=6, n_seizures=(1, 2), seizure_duration_s=(8, 15))
    paths = write_synthetic_dataset(tmp_path / "a", 5, n_subjects=2, seed=11, **kwargs)
    assert [p.name for p in paths] == [
        "sub-01_run-01_eeg.edf",
        "sub-02_run-01_eeg.edf",
        "sub-01_run-02_eeg.edf",
        "sub-02_run-02_eeg.edf",
        "sub-01_run-03_eeg.edf",
    ]
    again = write_synthetic_dataset(tmp_path / "b", 3, n_subjects=2, seed=11, **kwargs)
    for p, q in zip(paths, again, strict=False):
        assert p.read_bytes() == q.read_bytes()  # same seed, same files (prefix too)
    for path in paths:
        rec = load_recording(path)
        assert rec.data.shape == (6, 60 * SR) and rec.sample_rate == SR
        events = read_events_tsv(path.with_name(path.name.replace("_eeg.edf", "_events.tsv")))
        assert events == rec.annotations and 1 <= len(events) <= 2
        for a in events:
            assert 5 <= a.onset and a.offset <= 55 and 8 <= a.duration <= 15
        # the events are where the files say: ictal 2-4 Hz power well above the rest
        lazy = open_recording(path)
        mask = np.zeros(lazy.n_times, bool)
        for a in events:
            mask[round(a.onset * SR) : round(a.offset * SR)] = True
        data = lazy.read()
        for a in events:
            ictal = lazy.read(round(a.onset * SR), round(a.offset * SR))
            ratio = _band_power(ictal, 2, 4).mean() / _band_power(data[:, ~mask], 2, 4).mean()
            assert ratio > 10, (path.name, a, ratio)


def test_dataset_rejects_impossible_layouts(tmp_path):
    with pytest.raises(ParameterError, match="too short for up to 2 seizures"):
        write_synthetic_dataset(tmp_path, 1, duration_s=30, seizure_duration_s=(10, 20))
    with pytest.raises(ParameterError, match="n_subjects=5 must be between 1 and n_recordings=2"):
        write_synthetic_dataset(tmp_path, 2, n_subjects=5)


def test_synthetic_layout_writes_only_what_is_missing(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="sigalex.datasets"):
        D.synthetic(tmp_path, n_recordings=2, duration_s=90, seed=5)
        first = (tmp_path / "sub-01_run-01_eeg.edf").read_bytes()
        three = D.synthetic(tmp_path, n_recordings=3, duration_s=90, seed=5)  # one missing
        one = D.synthetic(tmp_path, n_recordings=1, duration_s=90, seed=5)  # all there
    assert [r.getMessage().split(" of ")[0] for r in caplog.records] == [
        "writing 2 synthetic EDF recordings",
        "writing 3 synthetic EDF recordings",
    ]
    assert (tmp_path / "sub-01_run-01_eeg.edf").read_bytes() == first  # same seed, same file
    assert len(three) == 3 and one.items == three.items[:1]
    assert three.classes == ["background", "seizure"] and three.group_by == "subject"
    for it in three.items:
        assert list(it.annotations) == read_events_tsv(it.path.with_name(events_file_name(it.path)))
    assert D.synthetic(tmp_path, n_recordings=1, default_label="normal").classes == [
        "normal",
        "seizure",
    ]
    with pytest.raises(ParameterError, match="default_label='seizure'"):
        D.synthetic(tmp_path, default_label="seizure")
