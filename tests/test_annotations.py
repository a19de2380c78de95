"""Annotation files: CHB-MIT summary and WFDB seizures (on the real files), events TSV."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from sigalex.annotations import (
    read_chbmit_seizures,
    read_chbmit_summary,
    read_events_tsv,
    read_wfdb_annotations,
    write_events_tsv,
)
from sigalex.errors import DataError
from sigalex.io import Annotation

DATA = Path(os.environ.get("SIGALEX_DATA", Path(__file__).parents[2] / "shared" / "data"))
CHB01 = DATA / "chbmit" / "chb01"
needs_chb01 = pytest.mark.skipif(
    not (CHB01 / "chb01-summary.txt").is_file(), reason=f"CHB-MIT chb01 not found in {CHB01}"
)

# chbmit/SOURCE.md: the intervals in the summary equal those decoded from the
# checksum-verified .seizures files.
EXPECTED = {
    "chb01_03.edf": (2996, 3036),
    "chb01_04.edf": (1467, 1494),
    "chb01_15.edf": (1732, 1772),
    "chb01_16.edf": (1015, 1066),
    "chb01_18.edf": (1720, 1810),
    "chb01_21.edf": (327, 420),
    "chb01_26.edf": (1862, 1963),
}


@pytest.mark.needs_data
@needs_chb01
def test_chbmit_summary_on_real_file():
    files = read_chbmit_summary(CHB01 / "chb01-summary.txt")
    assert len(files) == 42
    assert {name: f.seizures for name, f in files.items() if f.seizures} == {
        name: ((float(a), float(b)),) for name, (a, b) in EXPECTED.items()
    }
    f = files["chb01_03.edf"]
    assert f.sample_rate == 256.0
    assert (f.start_time, f.end_time) == ("13:43:04", "14:43:04")
    assert len(f.channels) == 23
    assert f.channels[:3] == ("FP1-F7", "F7-T7", "T7-P7")
    assert f.channels[-1] == "T8-P8"
    assert f.annotations == [Annotation(2996.0, 40.0, "seizure")]
    assert files["chb01_01.edf"].seizures == ()


@pytest.mark.needs_data
@needs_chb01
def test_chbmit_wfdb_seizures_equal_summary_for_all_7_files():
    files = read_chbmit_summary(CHB01 / "chb01-summary.txt")
    paths = sorted(CHB01.glob("*.edf.seizures"))
    assert len(paths) == 7
    for path in paths:
        name = path.name.removesuffix(".seizures")
        from_wfdb = read_chbmit_seizures(path)
        assert from_wfdb == files[name].annotations, name
        onset, offset = EXPECTED[name]
        assert [(a.onset, a.offset) for a in from_wfdb] == [(onset, offset)]


@pytest.mark.needs_data
@needs_chb01
def test_wfdb_decoder_on_real_file_sees_note_and_markers():
    events = read_wfdb_annotations(CHB01 / "chb01_03.edf.seizures")
    assert [(e.sample, e.symbol) for e in events] == [(0, '"'), (766976, "["), (777216, "]")]
    assert events[0].aux == "## time resolution: 256"
    # sample numbers are at 256 Hz: a different rate scales the times
    assert read_chbmit_seizures(CHB01 / "chb01_03.edf.seizures", sample_rate=512)[0].onset == 1498


def _word(code: int, interval: int) -> bytes:
    return struct.pack("<H", (code << 10) | interval)


def _skip(n: int) -> bytes:
    n &= 0xFFFFFFFF
    return _word(59, 0) + struct.pack("<HH", n >> 16, n & 0xFFFF)


def test_wfdb_decoder_on_synthetic_stream(tmp_path):
    aux = b"## time resolution: 100"
    stream = (
        _word(22, 0)
        + _word(63, len(aux))
        + aux
        + b"\0"  # padded to even
        + _word(32, 500)  # onset at 500 samples (interval in the word)
        + _word(61, 3)  # SUB for the onset
        + _skip(70000)
        + _word(33, 0)  # offset at 70500
        + _word(32, 1000)  # second seizure, 71500
        + _word(62, 2)  # CHN
        + _skip(-200)
        + _word(33, 300)  # offset at 71600
        + _word(0, 0)
    )
    path = tmp_path / "x.seizures"
    path.write_bytes(stream)
    events = read_wfdb_annotations(path)
    assert [(e.sample, e.code) for e in events] == [
        (0, 22),
        (500, 32),
        (70500, 33),
        (71500, 32),
        (71600, 33),
    ]
    assert events[1].subtype == 3 and events[3].channel == 2
    seizures = read_chbmit_seizures(path)  # rate 100 Hz from the note
    assert seizures == [Annotation(5.0, 700.0, "seizure"), Annotation(715.0, 1.0, "seizure")]
    path.write_bytes(stream[:-6])  # cut inside the SKIP
    with pytest.raises(DataError, match=r"x\.seizures: SKIP at byte \d+ cut off"):
        read_wfdb_annotations(path)
    path.write_bytes(_word(33, 10) + _word(0, 0))
    with pytest.raises(DataError, match="offset at sample 10 without an onset"):
        read_chbmit_seizures(path)


def test_summary_with_numbered_seizures_and_montage_change(tmp_path):
    text = """Data Sampling Rate: 256 Hz
*************************

Channels in EDF Files:
**********************
Channel 1: FP1-F7
Channel 2: F7-T7

File Name: chb04_01.edf
File Start Time: 1:00:00
File End Time: 2:00:00
Number of Seizures in File: 2
Seizure 1 Start Time: 10 seconds
Seizure 1 End Time: 20 seconds
Seizure 2 Start Time: 100 seconds
Seizure 2 End Time: 150.5 seconds

Channels changed:
*****************
Channel 1: FP2-F8
Channel 2: -
Channel 3: F8-T8

File Name: chb04_02.edf
Number of Seizures in File: 0
"""
    path = tmp_path / "chb04-summary.txt"
    path.write_text(text)
    files = read_chbmit_summary(path)
    assert files["chb04_01.edf"].seizures == ((10.0, 20.0), (100.0, 150.5))
    assert files["chb04_01.edf"].channels == ("FP1-F7", "F7-T7")
    assert files["chb04_02.edf"].channels == ("FP2-F8", "-", "F8-T8")
    assert files["chb04_02.edf"].seizures == ()
    path.write_text(text.replace("Number of Seizures in File: 2", "Number of Seizures in File: 3"))
    with pytest.raises(DataError, match=r"chb04_01\.edf: 'Number of Seizures in File: 3'"):
        read_chbmit_summary(path)
    path.write_text(text.replace("Seizure 2 End Time: 150.5 seconds\n", ""))
    with pytest.raises(DataError, match=r"seizure start 100\.0 s has no end"):
        read_chbmit_summary(path)


def test_missing_annotation_files_are_data_errors(tmp_path):
    for fn in (read_chbmit_summary, read_wfdb_annotations, read_chbmit_seizures, read_events_tsv):
        with pytest.raises(DataError, match=r"nope\.x: annotation file not found"):
            fn(tmp_path / "nope.x")


# --- events TSV ----------------------------------------------------------------------------


def test_events_tsv_round_trip_is_exact(tmp_path):
    events = [
        Annotation(0.1, 12.345678901, "sz", ("FP1-F7", "F7-T7"), 0.87),
        Annotation(100.0, 0.0, "bckg"),
        Annotation(1 / 3, 2 / 7, "sz_foc_ia", (), 1.0),
    ]
    path = write_events_tsv(tmp_path / "sub-01_events.tsv", events, recording_duration_s=3600)
    assert read_events_tsv(path) == events
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == [
        "onset",
        "duration",
        "eventType",
        "confidence",
        "channels",
        "recordingDuration",
    ]
    assert lines[2].split("\t") == ["100.0", "0.0", "bckg", "n/a", "n/a", "3600.0"]
    assert [p.name for p in tmp_path.iterdir()] == ["sub-01_events.tsv"]  # no temp files


def test_read_events_tsv_from_szcore_layout(tmp_path):
    path = tmp_path / "events.tsv"
    path.write_text(
        "onset\tduration\teventType\tconfidence\tchannels\tdateTime\trecordingDuration\n"
        "296.0\t40.0\tsz\tn/a\tn/a\t2024-01-01 13:43:04\t3600\n"
        "\n"
        "10\t5\tsz\t0.5\tFP1-F7,F7-T7\t2024-01-01 13:43:04\t3600\n"
    )
    assert read_events_tsv(path) == [
        Annotation(296.0, 40.0, "sz"),
        Annotation(10.0, 5.0, "sz", ("FP1-F7", "F7-T7"), 0.5),
    ]


def test_bad_events_tsv_are_data_errors(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("start\tduration\n1\t2\n")
    with pytest.raises(DataError, match=r"bad\.tsv: missing column\(s\) \['onset'\]"):
        read_events_tsv(path)
    path.write_text("onset\tduration\n1\t2\nsoon\t2\n")
    with pytest.raises(DataError, match=r"bad\.tsv:3: could not convert"):
        read_events_tsv(path)
    path.write_text("onset\tduration\n1\t-2\n")
    with pytest.raises(DataError, match=r"bad\.tsv:2: bad onset=1.0 / duration=-2.0"):
        read_events_tsv(path)
    path.write_text("")
    with pytest.raises(DataError, match="empty events file"):
        read_events_tsv(path)


def test_events_file_naming_pairs_recordings_and_events():
    from sigalex.annotations import events_file_name, recording_key

    cases = {
        "sub-01_run-01_eeg.edf": ("sub-01_run-01", "sub-01_run-01_events.tsv"),
        "data/chb01_03.edf": ("chb01_03", "chb01_03_events.tsv"),
        "x/7_jackson_32.WAV": ("7_jackson_32", "7_jackson_32_events.tsv"),
        "rec.v2.npy": ("rec.v2", "rec.v2_events.tsv"),
        "chb01_03": ("chb01_03", "chb01_03_events.tsv"),  # a recording id
    }
    for recording, (key, events) in cases.items():
        assert recording_key(recording) == key
        assert events_file_name(recording) == events
        assert recording_key(events_file_name(recording)) == key  # the inverse
    assert recording_key("ref/sub-01_run-01_events.tsv") == "sub-01_run-01"
    assert recording_key("hyp.tsv") == "hyp"
