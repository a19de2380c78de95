"""Real signals → images: a Bonn seizure segment (S001) against a healthy one (Z001), and an FSDD
spoken digit. The PNGs are written under ``tmp_path`` and, when ``SIGALEX_TEST_ARTIFACTS`` is
set, also there for a person to look at.

"The seizure's rhythmic activity and the digit's formants are visible" is checked quantitatively,
each with a negative control that must fail the same check (Z001 for the seizure, white noise for
the digit), so the checks cannot pass on any picture whatsoever.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch

import sigalex
from sigalex.render import save_png
from sigalex.transforms import STFT, Mel

pytestmark = pytest.mark.needs_data

BONN_SR = 173.61
DIGIT = "7_george_0.wav"  # "seven": two voiced syllables, silence at both ends


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> list[Path]:
    """Folders to write PNGs to: a temporary one, plus $SIGALEX_TEST_ARTIFACTS when set."""
    dirs = [tmp_path_factory.mktemp("real_images")]
    extra = os.environ.get("SIGALEX_TEST_ARTIFACTS")
    if extra:
        dirs.append(Path(extra))
    return dirs


def write(artifacts, name: str, image: np.ndarray) -> Path:
    paths = [save_png(image, d / name) for d in artifacts]
    with open(paths[0], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    return paths[0]


def bonn(data_dir: Path, name: str) -> np.ndarray:
    path = data_dir / "bonn" / name[0] / f"{name}.txt"
    if not path.is_file():
        pytest.skip(f"needs_data: {path} not found")
    rec = sigalex.load_recording(path, sample_rate=BONN_SR)
    assert rec.data.shape == (1, 4097)
    return rec.data[0].astype(np.float64)


def digit(data_dir: Path) -> tuple[np.ndarray, float]:
    path = data_dir / "fsdd" / "recordings" / DIGIT
    if not path.is_file():
        pytest.skip(f"needs_data: {path} not found")
    rec = sigalex.load_recording(path)
    assert rec.sample_rate == 8000
    return rec.data[0].astype(np.float64), rec.sample_rate


# --------------------------------------------------------------------------------------------
# Bonn: seizure vs healthy
# --------------------------------------------------------------------------------------------


def eeg_spectrum_db(x: np.ndarray):
    """Time-frequency power (dB) at 0.34 Hz resolution, 0.5-40 Hz, and its time average."""
    module = STFT(BONN_SR, n_fft=512, hop_length=64, fmin=0.5, fmax=40.0, power=2.0)
    power = module(torch.from_numpy(x)).numpy()
    freqs = module.frequencies.numpy()
    return freqs, 10 * np.log10(power), 10 * np.log10(power.mean(-1))


def best_peak(profile: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """(frequency, prominence) of the most prominent local maximum of ``profile`` in [lo, hi]."""
    peaks, props = scipy.signal.find_peaks(profile, prominence=0)
    inside = (freqs[peaks] >= lo) & (freqs[peaks] <= hi)
    if not inside.any():
        return float("nan"), 0.0
    k = np.argmax(np.where(inside, props["prominences"], -1))
    return float(freqs[peaks[k]]), float(props["prominences"][k])


def image_row_profile(image: np.ndarray, n_bins: int, bin_hz: float):
    """Mean grey level per image row, bottom row first, with each row's frequency in Hz."""
    height = image.shape[0]
    profile = image[::-1, :, 0].astype(float).mean(axis=1)
    bins = (np.arange(height) + 0.5) * n_bins / height - 0.5  # row centre in STFT-bin units
    return profile, bins * bin_hz


def test_bonn_seizure_rhythm_is_visible(data_dir, artifacts):
    seizure, healthy = bonn(data_dir, "S001"), bonn(data_dir, "Z001")

    # the images a user sees (defaults: STFT, viridis, 227 x 227), plus CWT and a shared fixed
    # dB range that shows the seizure's amplitude against the healthy segment
    for name, x in (("S001", seizure), ("Z001", healthy)):
        write(artifacts, f"bonn_{name}_stft.png", sigalex.spectrogram(x, BONN_SR, fmax=40.0))
        write(
            artifacts,
            f"bonn_{name}_cwt.png",
            sigalex.spectrogram(x, BONN_SR, method="cwt", fmin=0.5, fmax=40.0, n_freqs=96),
        )
        write(
            artifacts,
            f"bonn_{name}_stft_fixed.png",
            sigalex.spectrogram(x, BONN_SR, fmax=40.0, normalize="fixed", vmin=30.0, vmax=100.0),
        )

    # 1. The time-averaged spectrum of S001 has a distinct peak in the ictal 2-6 Hz range
    #    (measured: 3.4 Hz, 9.9 dB prominence); Z001's best peak there is weak (2.3 dB).
    freqs, tf_s, avg_s = eeg_spectrum_db(seizure)
    _, _, avg_z = eeg_spectrum_db(healthy)
    f_s, prom_s = best_peak(avg_s, freqs, 2.0, 6.0)
    _, prom_z = best_peak(avg_z, freqs, 2.0, 6.0)
    assert 2.5 <= f_s <= 4.5
    assert prom_s >= 6.0
    assert prom_s - prom_z >= 4.0

    # 2. It is rhythmic: that band stands above each frame's median power for most of the
    #    segment (measured: >= 9.3 dB in 80% of frames).
    band = np.abs(freqs - f_s) <= 1.0
    contrast = tf_s[band].mean(0) - np.median(tf_s, axis=0)
    assert np.percentile(contrast, 20) >= 6.0

    # 3. And strong: on a common dB scale the seizure band carries >= 15 dB more power than the
    #    healthy segment at the same frequencies (measured ~25 dB).
    assert avg_s[band].mean() - avg_z[band].mean() >= 15.0

    # 4. In the rendered (grey) images the band is a bright row: its prominence over the
    #    neighbouring rows is large in S001 (measured 34 levels) and small in Z001 (6 levels).
    n_bins, bin_hz = 59, BONN_SR / 256  # default n_fft=256: bins 0..58 lie below 40 Hz
    rows = {}
    for name, x in (("S001", seizure), ("Z001", healthy)):
        grey = sigalex.spectrogram(x, BONN_SR, fmax=40.0, colormap="gray")
        assert grey.shape == (227, 227, 3)
        profile, row_hz = image_row_profile(grey, n_bins, bin_hz)
        rows[name] = best_peak(profile, row_hz, 2.0, 6.0), np.median(profile), profile
    (row_f, row_prom_s), median_s, profile_s = rows["S001"]
    (_, row_prom_z), _, _ = rows["Z001"]
    assert 2.5 <= row_f <= 4.5
    assert row_prom_s >= 20.0 and row_prom_s >= 2.5 * row_prom_z
    # the peak row is much brighter than the median row (measured 37 levels)
    peak_row = int(np.argmin(np.abs(row_hz - row_f)))
    assert profile_s[peak_row] - median_s >= 25.0


# --------------------------------------------------------------------------------------------
# FSDD: a spoken digit
# --------------------------------------------------------------------------------------------

MEL = dict(n_fft=512, hop_length=64, n_mels=64)


def mel_structure(x: np.ndarray, sr: float) -> dict:
    """Voiced frames (within 10 dB of the loudest) and measures of the structure inside them."""
    power = Mel(sr, **MEL)(torch.from_numpy(x)).numpy()
    db = 10 * np.log10(np.maximum(power, 1e-10))
    frame_db = 10 * np.log10(power.sum(0))
    voiced = frame_db >= frame_db.max() - 10
    edge = max(3, len(frame_db) // 10)
    edges = np.r_[frame_db[:edge], frame_db[-edge:]]
    voiced_db = db[:, voiced]
    return dict(
        voiced=voiced,
        # a few rows much brighter than the typical row: 90th percentile row − median row
        spread=float(
            np.median(np.percentile(voiced_db, 90, axis=0) - np.median(voiced_db, axis=0))
        ),
        # harmonics / formants: prominent spectral peaks per voiced frame
        n_peaks=float(
            np.median([len(scipy.signal.find_peaks(col, prominence=6)[0]) for col in voiced_db.T])
        ),
        voiced_minus_edges=float(frame_db[voiced].mean() - edges.mean()),
    )


def test_fsdd_digit_harmonics_and_formants_are_visible(data_dir, artifacts):
    x, sr = digit(data_dir)
    image = sigalex.spectrogram(x, sr, method="mel", **MEL)
    assert image.shape == (227, 227, 3) and image.dtype == np.uint8
    write(artifacts, f"fsdd_{Path(DIGIT).stem}_mel.png", image)
    write(
        artifacts,
        f"fsdd_{Path(DIGIT).stem}_stft.png",
        sigalex.spectrogram(x, sr, n_fft=512, hop_length=32),
    )

    speech = mel_structure(x, sr)
    # control: white noise of the same length and level must NOT show this structure
    noise = np.random.default_rng(0).standard_normal(len(x)) * x.std()
    control = mel_structure(noise, sr)

    # voiced frames stand >= 20 dB above the silence at the clip's ends (measured 31 dB)
    assert 0.15 <= speech["voiced"].mean() <= 0.8
    assert speech["voiced_minus_edges"] >= 20.0
    # within voiced frames a few mel rows (harmonics, formants) are much brighter than the
    # rest: measured 14.5 dB for the digit, 3 dB for noise
    assert speech["spread"] >= 10.0 and control["spread"] <= 6.0
    # and the spectrum of a voiced frame has many prominent peaks (measured 12; noise 4)
    assert speech["n_peaks"] >= 8 and control["n_peaks"] <= 6

    # the same in the picture: voiced columns are brighter than the edge columns (measured 77
    # grey levels), and within them the brightest rows stand far above the median row
    # (measured 58 levels; 42 for the noise control, which min-max stretches to full contrast)
    def grey_image(signal):
        return sigalex.spectrogram(signal, sr, method="mel", colormap="gray", **MEL)[..., 0].astype(
            float
        )

    def row_spread(columns):
        return float(np.median(np.percentile(columns, 95, axis=0) - np.median(columns, axis=0)))

    grey = grey_image(x)
    n_frames = len(speech["voiced"])
    cols = np.clip(
        ((np.arange(227) + 0.5) * n_frames / 227 - 0.5).round().astype(int), 0, n_frames - 1
    )
    voiced_cols = grey[:, speech["voiced"][cols]]
    edge_cols = np.c_[grey[:, :15], grey[:, -15:]]
    assert voiced_cols.mean() - edge_cols.mean() >= 40.0
    assert row_spread(voiced_cols) >= 50.0
    assert row_spread(voiced_cols) >= row_spread(grey_image(noise)) + 8.0
