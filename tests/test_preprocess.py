"""Preprocessing: filter properties (pass band, stop band, zero phase), resampling, montages."""

from __future__ import annotations

import numpy as np
import pytest

from sigalex.errors import ParameterError
from sigalex.io import Annotation, Recording, open_recording, write_edf
from sigalex.preprocess import DOUBLE_BANANA, bandpass, bipolar, notch, pick_channels, resample

SR = 256.0
T = np.arange(int(SR * 20)) / SR
MIDDLE = slice(int(2 * SR), -int(2 * SR))  # away from the edges


def _tones(*freqs: float) -> Recording:
    data = np.stack([np.sin(2 * np.pi * f * T) for f in freqs])
    return Recording(data, SR, [f"{f:g}Hz" for f in freqs], [Annotation(1.0, 2.0, "x")])


def _gain_db(out: np.ndarray, ref: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(out[MIDDLE] ** 2)) / np.sqrt(np.mean(ref[MIDDLE] ** 2)))


def test_bandpass_keeps_the_pass_band_and_attenuates_outside():
    rec = _tones(10, 0.1, 80, 120)
    out = bandpass(rec, low_hz=1, high_hz=40, order=4)
    assert out.data.shape == rec.data.shape and out.data.dtype == np.float32
    assert abs(_gain_db(out.data[0], rec.data[0])) < 0.01  # 10 Hz: in band, < 0.01 dB
    for row in (1, 2, 3):  # 0.1, 80 and 120 Hz: more than 30 dB down
        assert _gain_db(out.data[row], rec.data[row]) < -30, rec.channel_names[row]
    assert out.annotations == rec.annotations and out.channel_names == rec.channel_names
    # zero phase: the 10 Hz tone comes out in step with the input (0.005 of its amplitude)
    np.testing.assert_allclose(out.data[0][MIDDLE], rec.data[0][MIDDLE], atol=5e-3)


def test_bandpass_is_zero_phase_impulse_response_is_symmetric():
    x = np.zeros(2049)
    x[1024] = 1.0
    out = bandpass(Recording(x, SR, ["imp"]), low_hz=2, high_hz=30).data[0].astype(np.float64)
    peak = np.abs(out).max()
    assert np.argmax(out) == 1024
    np.testing.assert_allclose(out[1024:], out[1024::-1], atol=1e-6 * peak)


def test_highpass_and_lowpass_with_one_cutoff():
    rec = _tones(0.2, 10, 100)
    hp = bandpass(rec, low_hz=1, high_hz=None)
    lp = bandpass(rec, low_hz=None, high_hz=40)
    assert _gain_db(hp.data[0], rec.data[0]) < -30
    assert abs(_gain_db(hp.data[1], rec.data[1])) < 0.01
    assert abs(_gain_db(hp.data[2], rec.data[2])) < 0.01
    assert _gain_db(lp.data[2], rec.data[2]) < -30
    assert abs(_gain_db(lp.data[1], rec.data[1])) < 0.01


def test_notch_removes_mains_and_keeps_neighbours():
    rec = _tones(50, 10, 40, 70)
    out = notch(rec, freq_hz=50, quality=30)
    assert _gain_db(out.data[0], rec.data[0]) < -30
    for row in (1, 2, 3):
        assert abs(_gain_db(out.data[row], rec.data[row])) < 0.1
    np.testing.assert_allclose(out.data[1][MIDDLE], rec.data[1][MIDDLE], atol=1e-3)
    both = notch(_tones(60, 120, 90), freq_hz=[60, 120])
    assert _gain_db(both.data[0], np.sin(2 * np.pi * 60 * T)) < -30
    assert _gain_db(both.data[1], np.sin(2 * np.pi * 120 * T)) < -30
    assert abs(_gain_db(both.data[2], np.sin(2 * np.pi * 90 * T))) < 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"low_hz": 1, "high_hz": 200}, r"high_hz=200 must be between 0 and Nyquist \(128.0 Hz\)"),
        ({"low_hz": 0, "high_hz": 40}, "low_hz=0 must be between 0 and Nyquist"),
        ({"low_hz": 40, "high_hz": 10}, "low_hz=40 must be below high_hz=10"),
        ({"low_hz": None, "high_hz": None}, "give at least one cut-off"),
        ({"low_hz": 1, "high_hz": 40, "order": 0}, "order=0 must be a positive integer"),
    ],
)
def test_bandpass_bad_parameters(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        bandpass(_tones(10), **kwargs)


def test_filters_reject_bad_input():
    with pytest.raises(ParameterError, match=r"freq_hz=130 must be between 0 and Nyquist"):
        notch(_tones(10), freq_hz=130)
    with pytest.raises(ParameterError, match="quality=0 must be a positive number"):
        notch(_tones(10), freq_hz=50, quality=0)
    short = Recording(np.zeros((1, 20)), SR, ["x"])
    with pytest.raises(ParameterError, match="n_times=20 is too short"):
        bandpass(short, low_hz=1, high_hz=40)


def test_resample_keeps_tones_and_annotations():
    rec = _tones(10)
    out = resample(rec, sample_rate=128)
    assert out.sample_rate == 128 and out.data.shape == (1, rec.n_times // 2)
    assert out.annotations == rec.annotations
    t = np.arange(out.n_times) / 128
    np.testing.assert_allclose(
        out.data[0][256:-256], np.sin(2 * np.pi * 10 * t)[256:-256], atol=1e-3
    )
    with pytest.raises(ParameterError, match="sample_rate=-1 must be a positive"):
        resample(rec, sample_rate=-1)


def test_pick_channels_by_name_and_pattern():
    rec = Recording(np.arange(12.0).reshape(4, 3), 10, ["FP1", "FP2", "C3", "O1"])
    out = pick_channels(rec, ["O1", "fp*"])
    assert out.channel_names == ["O1", "FP1", "FP2"]
    np.testing.assert_array_equal(out.data, rec.data[[3, 0, 1]])
    with pytest.raises(
        ParameterError, match=r"no channel matches 'CZ'; available: FP1, FP2, C3, O1"
    ):
        pick_channels(rec, ["CZ"])


def test_pick_channels_on_a_lazy_edf(tmp_path):
    rec = Recording(np.random.default_rng(0).normal(size=(3, 512)), 256, ["A", "B", "C"])
    lazy = open_recording(write_edf(tmp_path / "x.edf", rec))
    out = pick_channels(lazy, ["C"])
    assert out.channel_names == ["C"] and out.data.shape == (1, 512)


def test_bipolar_double_banana_from_referential_names():
    electrodes = sorted({e for pair in DOUBLE_BANANA for e in pair})
    names = [f"EEG {e.capitalize()}-REF" for e in electrodes]  # "EEG Fp1-REF", ...
    names = [n.replace("T7", "T3") for n in names]  # old name for T7
    data = np.random.default_rng(0).normal(size=(len(names), 100))
    rec = Recording(data, SR, names, [Annotation(0.0, 1.0, "sz")])
    out = bipolar(rec, "double-banana")
    assert out.channel_names[:3] == ["FP1-F7", "F7-T7", "T7-P7"]
    assert out.data.shape == (18, 100) and out.annotations == rec.annotations
    row = {e: data[i] for i, e in enumerate(electrodes)}
    for k, (a, c) in enumerate(DOUBLE_BANANA):
        np.testing.assert_allclose(out.data[k], row[a] - row[c], rtol=1e-6, atol=1e-6)


def test_bipolar_custom_pairs_and_errors():
    rec = Recording(np.array([[1.0, 2.0], [0.5, 0.5], [3.0, 3.0]]), SR, ["Cz", "Pz", "Fz"])
    out = bipolar(rec, ["FZ-CZ", ("Cz", "Pz")])
    assert out.channel_names == ["FZ-CZ", "Cz-Pz"]
    np.testing.assert_allclose(out.data, [[2.0, 1.0], [0.5, 1.5]])
    with pytest.raises(ParameterError, match=r"bipolar pair FP1-F7: no channel 'FP1', 'F7'"):
        bipolar(rec, ["FP1-F7"])
    with pytest.raises(ParameterError, match="unknown montage 'tcp'"):
        bipolar(rec, "tcp")
    with pytest.raises(ParameterError, match="must look like 'FP1-F7'"):
        bipolar(rec, ["FZ"])
