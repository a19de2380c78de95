"""Windows: sample arithmetic, streaming = in memory, overlap labels, fit_length, WindowDataset."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sigalex.errors import DataError, ParameterError
from sigalex.io import Annotation, Recording, load_recording
from sigalex.windows import (
    Window,
    WindowDataset,
    annotation_label,
    fit_length,
    iter_windows,
    make_windows,
    n_windows,
    whole_window,
    window_array,
    window_samples,
)

DATA = Path(os.environ.get("SIGALEX_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


class CountingSource:
    """A source that only offers ``read`` and records every span it was asked for."""

    def __init__(self, data, sample_rate, path=None):
        self._data = data
        self.sample_rate = sample_rate
        self.n_times = data.shape[-1]
        self.n_channels = data.shape[0]
        self.path = path
        self.annotations = []
        self.spans = []

    def read(self, start, stop):
        self.spans.append((start, stop))
        return self._data[:, start:stop]


def _rec(n_channels=3, n_times=1000, sample_rate=100.0, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return Recording(rng.standard_normal((n_channels, n_times)), sample_rate, [], **kw)


def test_window_samples_rounds_seconds_to_samples():
    assert window_samples(window_s=23.6, stride_s=None, sample_rate=173.61) == (4097, 4097)
    assert window_samples(window_s=2.0, stride_s=0.5, sample_rate=256.0) == (512, 128)
    with pytest.raises(ParameterError, match=r"window_s"):
        window_samples(window_s=0, stride_s=None, sample_rate=256)
    with pytest.raises(ParameterError, match=r"stride_s"):
        window_samples(window_s=1, stride_s=-1, sample_rate=256)
    with pytest.raises(ParameterError, match=r"at least one sample"):
        window_samples(window_s=0.001, stride_s=None, sample_rate=100)


def test_make_windows_bounds_and_drops_the_tail():
    rec = _rec(n_times=1050, sample_rate=100.0, path=Path("x.npy"))
    ws = make_windows(rec, window_s=2.0, stride_s=1.0, label="a")
    assert len(ws) == n_windows(1050, window_samples=200, stride_samples=100) == 9
    assert (ws[0].start, ws[0].stop) == (0, 200)
    assert (ws[-1].start, ws[-1].stop) == (800, 1000)
    assert ws[3].start_s == 3.0 and ws[3].end_s == 5.0
    assert all(w.label == "a" and w.group == "x.npy" and w.recording == "x.npy" for w in ws)


def test_short_recording_raises_naming_the_file():
    rec = _rec(n_times=150, sample_rate=100.0, path=Path("/data/short_clip.wav"))
    with pytest.raises(DataError, match=r"short_clip\.wav.*shorter than one window"):
        make_windows(rec, window_s=2.0)


@settings(max_examples=60, deadline=None)
@given(
    n_times=st.integers(50, 2000),
    window=st.integers(1, 300),
    stride=st.integers(1, 300),
    n_channels=st.integers(1, 4),
)
def test_streaming_windows_equal_in_memory_windows(n_times, window, stride, n_channels):
    rate = 100.0
    rec = _rec(n_channels=n_channels, n_times=n_times, sample_rate=rate)
    if n_times < window:
        with pytest.raises(DataError):
            make_windows(rec, window_s=window / rate, stride_s=stride / rate)
        return
    src = CountingSource(rec.data, rate)
    streamed = list(iter_windows(src, window_s=window / rate, stride_s=stride / rate))
    stacked, ws = window_array(rec, window_s=window / rate, stride_s=stride / rate)
    assert stacked.shape == (len(ws), n_channels, window)
    assert len(streamed) == len(ws) == (n_times - window) // stride + 1
    for k, (x, w) in enumerate(streamed):
        assert x.dtype == np.float32 and x.shape == (n_channels, window)
        np.testing.assert_array_equal(x, stacked[k])
        np.testing.assert_array_equal(x, rec.data[:, k * stride : k * stride + window])
        assert w == ws[k]
    # streaming reads exactly one window span per window, never the whole recording
    assert all(b - a == window for a, b in src.spans)


def test_streamed_windows_are_copies():
    rec = _rec()
    (x, _), *_ = iter_windows(rec, window_s=1.0)
    x[:] = 0
    assert np.any(rec.data[:, :100] != 0)


def test_truncated_source_is_a_data_error():
    class Truncated(CountingSource):
        def read(self, start, stop):
            return self._data[:, start : min(stop, 250)]

    src = Truncated(np.zeros((1, 1000), np.float32), 100.0, path=Path("cut.edf"))
    src.n_times = 1000
    with pytest.raises(DataError, match=r"cut\.edf.*truncated"):
        list(iter_windows(src, window_s=1.0))


def test_annotation_label_overlap_threshold():
    sz = [Annotation(10.0, 5.0, "seizure")]
    assert annotation_label(sz, start_s=8, end_s=12, min_overlap=0.5) == "seizure"  # 2/4
    assert annotation_label(sz, start_s=7, end_s=11, min_overlap=0.5) == "background"  # 1/4
    assert annotation_label(sz, start_s=7, end_s=11, min_overlap=0.25) == "seizure"
    assert annotation_label(sz, start_s=0, end_s=4, default_label=None) is None
    # overlapping events of one label count once (union), not twice
    twice = [Annotation(0, 1, "sz"), Annotation(0, 1, "sz")]
    assert annotation_label(twice, start_s=0, end_s=4, min_overlap=0.5) == "background"
    # the better-covered label wins; filtered labels do not count
    mixed = [Annotation(0, 3, "artifact"), Annotation(2, 2, "seizure")]
    assert annotation_label(mixed, start_s=0, end_s=4, min_overlap=0.5) == "artifact"
    only = annotation_label(mixed, start_s=0, end_s=4, annotation_labels={"seizure"})
    assert only == "seizure"
    with pytest.raises(ParameterError, match=r"min_overlap"):
        annotation_label(sz, start_s=0, end_s=1, min_overlap=1.5)


def test_make_windows_labels_from_recording_annotations():
    rec = _rec(n_times=3000, sample_rate=100.0, annotations=[Annotation(10.0, 6.0, "seizure")])
    ws = make_windows(rec, window_s=2.0, stride_s=1.0, min_overlap=0.5)
    labelled = [w.start_s for w in ws if w.label == "seizure"]
    # windows [s, s+2) with at least 1 s inside [10, 16): s = 9 … 15
    assert labelled == [9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    with pytest.raises(ParameterError, match=r"not both"):
        make_windows(rec, window_s=2.0, label="x", annotations=[])


def test_segment_onset_offset():
    rec = _rec(n_times=1000, sample_rate=100.0)
    ws = make_windows(rec, window_s=1.0, label="a", onset_s=2.5, offset_s=6.0)
    assert [(w.start, w.stop) for w in ws] == [(250, 350), (350, 450), (450, 550)]


def test_fit_length_rule():
    x = np.arange(1, 6, dtype=np.float32)  # 5 samples
    np.testing.assert_array_equal(fit_length(x, 8, mode="pad"), [0, 1, 2, 3, 4, 5, 0, 0])
    np.testing.assert_array_equal(fit_length(x, 7), [0, 1, 2, 3, 4, 5, 0])
    np.testing.assert_array_equal(fit_length(x, 3, mode="crop"), [2, 3, 4])
    np.testing.assert_array_equal(fit_length(x, 2), [2, 3])
    assert fit_length(x, 5) is x
    two_ch = np.ones((2, 3), np.float32)
    assert fit_length(two_ch, 6).shape == (2, 6)
    with pytest.raises(ParameterError, match=r"longer"):
        fit_length(x, 3, mode="pad")
    with pytest.raises(ParameterError, match=r"shorter"):
        fit_length(x, 9, mode="crop")
    with pytest.raises(ParameterError, match=r"unknown fit mode 'padd'.*did you mean 'pad'"):
        fit_length(x, 9, mode="padd")
    with pytest.raises(ParameterError, match=r"n_times"):
        fit_length(x, 0)


@given(n=st.integers(1, 400), target=st.integers(1, 400))
def test_fit_length_keeps_the_centre(n, target):
    x = np.arange(1, n + 1, dtype=np.float64)
    y = fit_length(x, target)
    assert y.shape == (target,)
    if n <= target:
        nz = np.flatnonzero(y)
        np.testing.assert_array_equal(y[nz], x)
        assert nz[0] == (target - n) // 2
    else:
        assert y[0] == 1 + (n - target) // 2
    if n <= target:  # cropping a padded clip back restores it
        np.testing.assert_array_equal(fit_length(y, n, mode="crop"), x)


def test_window_dataset_reads_cuts_and_labels(tmp_path):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 500)), rng.standard_normal((2, 300))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    ra = load_recording(tmp_path / "a.npy", sample_rate=100.0)
    rb = load_recording(tmp_path / "b.npy", sample_rate=100.0)
    ws = make_windows(ra, window_s=1.0, label="yes") + make_windows(rb, window_s=1.0, label="no")
    ds = WindowDataset(ws, classes=["no", "yes"])
    assert len(ds) == 8
    x, y = ds[0]
    assert x.dtype == torch.float32 and x.shape == (2, 100) and y == 1
    np.testing.assert_allclose(x.numpy(), a[:, :100].astype(np.float32))
    x, y = ds[7]
    np.testing.assert_allclose(x.numpy(), b[:, 200:300].astype(np.float32))
    assert y == 0
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    batches = list(loader)
    assert [tuple(bx.shape) for bx, _ in batches] == [(4, 2, 100), (4, 2, 100)]
    assert torch.equal(torch.cat([by for _, by in batches]), torch.tensor([1] * 5 + [0] * 3))


def test_window_dataset_fits_clips_and_checks_labels():
    rec = Recording(np.ones((1, 30)), 10.0, [])
    ws = [whole_window(rec, label="c", recording="r")]
    ds = WindowDataset(ws, n_times=50, sources={"r": rec})
    x, y = ds[0]
    assert y == 0 and x.shape == (1, 50) and float(x.sum()) == 30 and x[0, 10] == 1 and x[0, 9] == 0
    with pytest.raises(ParameterError, match=r"labels \['c'\] are not in"):
        WindowDataset(ws, classes=["a", "b"])
    unlabelled = [Window("r", 0, 30, 10.0)]
    with pytest.raises(ParameterError, match=r"no label"):
        WindowDataset(unlabelled)


@pytest.mark.needs_data
def test_chbmit_excerpts_window_as_23_channels():
    folder = DATA / "chbmit" / "chb01" / "ictal"
    if not folder.is_dir():
        pytest.skip(f"CHB-MIT excerpts not found under {folder} (set SIGALEX_DATA)")
    rec = load_recording(folder / "chb01_03_ictal.npy", sample_rate=256.0)
    assert rec.data.shape == (23, 2561)
    got = list(iter_windows(rec, window_s=2.0, stride_s=1.0, label="ictal"))
    assert len(got) == 9
    for k, (x, w) in enumerate(got):
        assert x.shape == (23, 512) and w.label == "ictal"
        np.testing.assert_array_equal(x, rec.data[:, 256 * k : 256 * k + 512])


def test_streaming_a_lazy_edf_equals_windows_of_the_loaded_recording(tmp_path):
    from sigalex.io import open_recording, write_edf

    rec = _rec(n_channels=3, n_times=256 * 30, sample_rate=256.0, seed=5)
    write_edf(tmp_path / "r.edf", rec)
    lazy = open_recording(tmp_path / "r.edf")
    loaded = lazy.load()
    streamed = list(iter_windows(lazy, window_s=2.0, stride_s=1.5))
    stacked, ws = window_array(loaded, window_s=2.0, stride_s=1.5)
    assert len(streamed) == len(ws) == 19
    for (x, w), y, w2 in zip(streamed, stacked, ws, strict=True):
        np.testing.assert_array_equal(x, y)
        assert (w.start, w.stop, w.recording) == (w2.start, w2.stop, str(tmp_path / "r.edf"))
