"""Reading recordings: EDF/BDF (lazy and in memory), EDF writing, channel selection, bad files."""

from __future__ import annotations

import os
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from sigalex.errors import DataError, ParameterError
from sigalex.io import (
    Annotation,
    EdfRecording,
    Recording,
    load_recording,
    open_recording,
    select_channels,
    write_edf,
)

DATA = Path(os.environ.get("SIGALEX_DATA", Path(__file__).parents[2] / "shared" / "data"))
CHBMIT = DATA / "chbmit"

NAMES = ["FP1", "F7", "T7", "P7", "O1"]


def _recording(n_seconds=8, sample_rate=256.0, seed=0, annotations=None) -> Recording:
    rng = np.random.default_rng(seed)
    n = int(n_seconds * sample_rate)
    t = np.arange(n) / sample_rate
    data = 30 * rng.standard_normal((len(NAMES), n)) + 50 * np.sin(2 * np.pi * 10 * t)
    if annotations is None:
        annotations = [
            Annotation(1.5, 2.25, "seizure"),
            Annotation(4.0, 0.0, "marker"),
            Annotation(5.123456, 1.0, "eyes closed"),
        ]
    return Recording(data.astype(np.float32), sample_rate, list(NAMES), annotations)


def _quantum(data: np.ndarray) -> np.ndarray:
    """One 16-bit EDF step per channel: (max - min) / 65535 (µV)."""
    return (data.max(axis=1) - data.min(axis=1)) / 65535


@pytest.fixture
def edf_path(tmp_path) -> Path:
    return write_edf(tmp_path / "rec.edf", _recording())


# --- write + read back -------------------------------------------------------------------


def test_edf_round_trip_is_identical_within_16_bit_quantisation(edf_path):
    original = _recording()
    rec = load_recording(edf_path)
    assert isinstance(rec, Recording)
    assert rec.channel_names == NAMES
    assert rec.sample_rate == 256.0
    assert rec.data.dtype == np.float32
    assert rec.data.shape == original.data.shape
    assert rec.path == edf_path
    # Stated tolerance: the writer scales each channel over its own range to 16 bits and
    # rounds, so the error is at most half a step; allow one step for the range's rounding
    # into the 8-character header field and float32.
    err = np.abs(rec.data.astype(np.float64) - original.data).max(axis=1)
    assert np.all(err <= _quantum(original.data)), err / _quantum(original.data)
    assert rec.annotations == original.annotations  # exact onsets, durations, labels


def test_edf_values_are_in_microvolts(tmp_path):
    t = np.arange(2560) / 256
    data = np.stack([100 * np.sin(2 * np.pi * 5 * t), np.full(2560, 42.0)]).astype(np.float32)
    path = write_edf(tmp_path / "uv.edf", Recording(data, 256, ["A", "B"]))
    rec = load_recording(path)
    np.testing.assert_allclose(rec.data[0].max(), 100, atol=0.01)
    np.testing.assert_allclose(rec.data[1], 42.0, atol=0.01)


def test_write_edf_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = write_edf(tmp_path / "sub" / "x.edf", _recording(n_seconds=2))
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.edf"]
    bad = _recording(n_seconds=2)
    bad.data[0, 5] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        write_edf(tmp_path / "sub" / "x.edf", bad)
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.edf"]  # old file untouched
    assert load_recording(path).n_times == 512


def test_write_edf_non_integer_rate_pads_with_warning(tmp_path):
    data = np.random.default_rng(1).normal(size=(1, 4097)).astype(np.float32)
    with pytest.warns(UserWarning, match="padded"):
        path = write_edf(tmp_path / "bonn.edf", Recording(data, 173.61, ["EEG"]))
    rec = load_recording(path)
    assert rec.sample_rate == 173.61
    np.testing.assert_allclose(rec.data[:, :4097], data, atol=float(_quantum(data)[0]))


def test_bdf_reads_lazily_in_microvolts_and_truncation_is_caught(tmp_path):
    edfio = pytest.importorskip("edfio")
    data = np.random.default_rng(2).normal(0, 30, (2, 512))
    signals = [
        edfio.BdfSignal(row, 256, label=name, physical_dimension="uV")
        for row, name in zip(data, ["C3", "C4"], strict=True)
    ]
    path = tmp_path / "x.bdf"
    edfio.Bdf(signals, annotations=[edfio.EdfAnnotation(1.0, 0.5, "sz")]).write(path)
    lazy = open_recording(path, channels=["C4"])
    assert isinstance(lazy, EdfRecording) and lazy.channel_names == ["C4"]
    assert lazy.annotations == [Annotation(1.0, 0.5, "sz")]
    # 24-bit: one step is (max - min) / (2**24 - 1)
    step = float(_quantum(data[1:]).max()) * 65535 / (2**24 - 1)
    np.testing.assert_allclose(lazy.read(), data[1:], atol=step)
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 10)
    with pytest.raises(DataError, match=r"x\.bdf: truncated BDF file"):
        load_recording(path)


# --- lazy opening and streaming ----------------------------------------------------------


def test_open_recording_is_lazy_and_read_matches_load(edf_path):
    lazy = open_recording(edf_path)
    assert isinstance(lazy, EdfRecording)
    assert not lazy._raw.preload
    full = lazy.load()
    assert (lazy.n_channels, lazy.n_times) == full.data.shape == (5, 2048)
    assert lazy.duration_s == 8.0
    assert lazy.annotations == full.annotations
    for start, stop in [(0, 256), (100, 1000), (2000, 2048), (2000, None), (5, 5)]:
        chunk = lazy.read(start, stop)
        assert chunk.dtype == np.float32
        np.testing.assert_array_equal(chunk, full.read(start, stop))


def test_open_recording_other_formats_returns_recording(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((2, 100), np.float32))
    rec = open_recording(path, sample_rate=100)
    assert isinstance(rec, Recording) and rec.data.shape == (2, 100)


def test_open_recording_rejects_lazy_resampling(edf_path):
    with pytest.raises(ParameterError, match="sample_rate"):
        open_recording(edf_path, sample_rate=128)
    assert open_recording(edf_path, sample_rate=256).sample_rate == 256


def test_load_recording_resamples_edf(edf_path):
    rec = load_recording(edf_path, sample_rate=128)
    assert rec.sample_rate == 128 and rec.data.shape == (5, 1024)


def test_long_edf_is_streamed_not_loaded(tmp_path):
    # 1 h, 32 channels at 256 Hz: 29.5 M samples, 236 MB as the float64 MNE would hold.
    import mne  # noqa: F401  (imported before measuring)

    freqs = np.arange(1, 33)
    one_second = 40 * np.sin(2 * np.pi * freqs[:, None] * np.arange(256) / 256)
    rows = np.tile(one_second.astype(np.float32), (1, 3600))
    names = [f"E{i}" for i in freqs]
    path = write_edf(tmp_path / "long.edf", Recording(rows, 256, names))
    whole_bytes = rows.size * 8
    del rows
    tracemalloc.start()
    try:
        lazy = open_recording(path)
        _, open_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        span = lazy.read(900 * 256, 910 * 256)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Opening reads the header and the EDF+ annotation channel (MNE walks the records with
    # a bounded buffer, about 20-30 MB here), never the signals.
    assert open_peak < whole_bytes / 5, f"open: peak {open_peak / 1e6:.1f} MB"
    # Reading 10 s touches about 10 data records (10 × 32 × 256 samples), not the file.
    assert read_peak - before < 2e6, f"read: peak {(read_peak - before) / 1e6:.1f} MB"
    assert span.shape == (32, 2560)
    expected = 40 * np.sin(2 * np.pi * 3 * (np.arange(900 * 256, 910 * 256) / 256))
    np.testing.assert_allclose(span[2], expected, atol=80 / 65535 * 1.01)


# --- channel selection -------------------------------------------------------------------


def test_select_channels_names_globs_and_regexes():
    names = ["FP1-F7", "F7-T7", "T7-P7", "FP2-F8", "T8-P8-0", "T8-P8-1"]
    assert select_channels(names, "fp1-f7") == [0]
    assert select_channels(names, ["FP*"]) == [0, 3]
    assert select_channels(names, ["T8-P8-[01]"]) == [4, 5]
    assert select_channels(names, [r"T\d-P\d(-\d)?"]) == [2, 4, 5]
    assert select_channels(names, ["FP2-F8", "FP*"]) == [3, 0]  # order asked, no repeats
    with pytest.raises(ParameterError, match=r"'CZ'.*available: FP1-F7, F7-T7"):
        select_channels(names, ["FP1-F7", "CZ"])
    with pytest.raises(ParameterError):
        select_channels(names, [])


def test_channels_option_on_edf_lazy_and_in_memory(edf_path):
    lazy = open_recording(edf_path, channels=["O1", "F*"])
    assert lazy.channel_names == ["O1", "FP1", "F7"]
    full = load_recording(edf_path)
    np.testing.assert_array_equal(lazy.read(10, 20), full.data[[4, 0, 1], 10:20])
    rec = load_recording(edf_path, channels="t7")
    assert rec.channel_names == ["T7"] and rec.data.shape == (1, 2048)
    with pytest.raises(DataError, match=r"rec\.edf.*'CZ'.*available: FP1, F7, T7, P7, O1"):
        open_recording(edf_path, channels=["CZ"])


def test_channels_option_on_other_formats(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n")
    rec = load_recording(path, sample_rate=10, channels=["c", "a"])
    assert rec.channel_names == ["c", "a"]
    np.testing.assert_array_equal(rec.data, [[3, 6], [1, 4]])
    with pytest.raises(DataError, match=r"x\.csv.*'z'"):
        load_recording(path, sample_rate=10, channels=["z"])


# --- bad files ---------------------------------------------------------------------------


def test_truncated_edf_is_a_data_error(edf_path):
    size = edf_path.stat().st_size
    with open(edf_path, "r+b") as fh:
        fh.truncate(size - 700)
    for fn in (load_recording, open_recording):
        with pytest.raises(DataError, match=r"rec\.edf: truncated EDF file.*promises 8 data"):
            fn(edf_path)


def test_edf_cut_inside_the_header_is_a_data_error(edf_path):
    with open(edf_path, "r+b") as fh:
        fh.truncate(300)
    with pytest.raises(DataError, match=r"rec\.edf: truncated EDF header"):
        open_recording(edf_path)
    with open(edf_path, "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(DataError, match=r"rec\.edf: 100 bytes is too short"):
        load_recording(edf_path)


@pytest.mark.parametrize(
    ("offset", "garbage", "message"),
    [
        (0, b"XYZ", "not an EDF/BDF file: version field"),
        (236, b"abcdefgh", "number of data records field is 'abcdefgh'"),
        (252, b"zz  ", "number of signals field"),
        (184, b"12      ", "header size 12 bytes does not match"),
    ],
)
def test_garbled_edf_header_is_a_data_error(edf_path, offset, garbage, message):
    raw = bytearray(edf_path.read_bytes())
    raw[offset : offset + len(garbage)] = garbage
    edf_path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=message) as info:
        open_recording(edf_path)
    assert str(edf_path) in str(info.value)


def test_garbled_signal_header_is_a_data_error(edf_path):
    raw = bytearray(edf_path.read_bytes())
    n_signals = int(raw[252:256])
    lo = 256 + 216 * n_signals  # samples per record of signal 0
    raw[lo : lo + 8] = b"??      "
    edf_path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="samples per record of signal 0 is '\\?\\?'"):
        load_recording(edf_path)


def test_empty_and_missing_edf_are_data_errors(tmp_path):
    empty = tmp_path / "empty.edf"
    empty.write_bytes(b"")
    for fn in (load_recording, open_recording):
        with pytest.raises(DataError, match=r"empty\.edf: the file is empty"):
            fn(empty)
        with pytest.raises(DataError, match=r"nope\.edf: no such file"):
            fn(tmp_path / "nope.edf")


def test_edf_with_trailing_bytes_warns_and_reads(edf_path):
    with open(edf_path, "ab") as fh:
        fh.write(b"\0" * 10)
    with pytest.warns(UserWarning, match="10 bytes after the last data record"):
        rec = load_recording(edf_path)
    assert rec.n_times == 2048


def test_format_override_reads_edf_without_extension(tmp_path):
    path = write_edf(tmp_path / "rec.edf", _recording(n_seconds=2))
    other = tmp_path / "rec.data"
    other.write_bytes(path.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_recording(other, format="edf").channel_names == NAMES
        assert open_recording(other, format="edf").n_times == 512


# --- real data -----------------------------------------------------------------------------


@pytest.mark.needs_data
@pytest.mark.skipif(not CHBMIT.is_dir(), reason=f"CHB-MIT excerpts not found in {CHBMIT}")
def test_chbmit_npy_excerpt_round_trips_through_edf(tmp_path):
    excerpt = np.load(CHBMIT / "chb01" / "ictal" / "chb01_03_ictal.npy")
    assert excerpt.shape == (23, 2561)
    names = [f"ch{i}" for i in range(23)]
    rec = Recording(excerpt[:, :2560], 256, names)  # whole 1 s records
    back = load_recording(write_edf(tmp_path / "chb.edf", rec), channels=["ch0", "ch2"])
    np.testing.assert_allclose(
        back.data, excerpt[[0, 2], :2560], atol=float(_quantum(excerpt[[0, 2]]).max())
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"samplerate": 100.0}, r"'samplerate' \(did you mean 'sample_rate'\?\)"),
        ({"channel": ["ch0"]}, r"'channel' \(did you mean 'channels'\?\)"),
    ],
)
def test_unknown_keywords_are_type_errors(tmp_path, options, message):
    """A typo such as ``samplerate=`` must not be ignored (and the default rate silently used)."""
    path = tmp_path / "x.txt"
    np.savetxt(path, np.arange(10.0))
    with pytest.raises(TypeError, match=message):
        load_recording(path, sample_rate=10.0, **options)
    with pytest.raises(TypeError, match="accepts: format, channels, key, sample_rate"):
        open_recording(path, **options)
