"""``sigalex score``: SzCORE event scoring and per-second window scoring on hand-computed cases.

Defaults: onset tolerance 30 s, offset tolerance 60 s, events over 300 s split, events under
90 s apart merged; false alarms per 24 h = FP / (duration_s / 86400).
"""

from __future__ import annotations

import json

import pytest

from sigalex import cli
from sigalex.annotations import write_events_tsv
from sigalex.errors import DataError, ParameterError
from sigalex.io import Annotation
from sigalex.scoring import score_events, score_files


def ev(*spans, label="seizure"):
    return [Annotation(a, b - a, label) for a, b in spans]


def event_score(ref, hyp, duration_s=3600.0, **kw):
    return score_events(ev(*ref), ev(*hyp), duration_s=duration_s, **kw)["event"]


def test_detection_inside_the_event():
    e = event_score([(100, 150)], [(120, 140)])
    assert (e["tp"], e["fp"], e["fn"]) == (1, 0, 0)
    assert e["sensitivity"] == e["precision"] == e["f1"] == 1.0 and e["fp_per_24h"] == 0


def test_onset_tolerance_30_s_and_offset_60_s():
    # 25 s early: inside [100 - 30, 150 + 60]
    assert event_score([(100, 150)], [(75, 90)])["tp"] == 1
    # ends 5 s before the widened onset (70 s): a miss and a false alarm
    e = event_score([(100, 150)], [(60, 65)])
    assert (e["tp"], e["fp"], e["fn"]) == (0, 1, 1)
    assert e["fp_per_24h"] == pytest.approx(24.0)  # 1 FP in 1 h
    assert e["sensitivity"] == 0 and e["precision"] == 0 and e["f1"] == 0
    # 55 s after the end: inside the 60 s offset tolerance
    assert event_score([(100, 150)], [(205, 230)])["tp"] == 1
    assert event_score([(100, 150)], [(215, 230)])["tp"] == 0


def test_merge_gap_90_s_and_split_300_s():
    # two false alarms 40 s apart merge into one; 190 s apart stay two
    assert event_score([(100, 150)], [(1000, 1010), (1050, 1060)])["fp"] == 1
    assert event_score([(100, 150)], [(1000, 1010), (1200, 1210)])["fp"] == 2
    # a 700 s false alarm is split into 300 + 300 + 100 s: three false alarms
    e = event_score([], [(2000, 2700)], duration_s=7200)
    assert e["fp"] == 3 and e["sensitivity"] is None and e["precision"] == 0
    assert e["fp_per_24h"] == pytest.approx(36.0)


def test_precision_and_f1_by_hand():
    # 3 reference events, 2 found, 1 false alarm: P = 2/3, S = 2/3, F1 = 4 / (4 + 1 + 1)
    e = event_score(
        [(100, 130), (1000, 1030), (2000, 2030)], [(105, 125), (1010, 1020), (3000, 3010)]
    )
    assert (e["tp"], e["fp"], e["fn"]) == (2, 1, 1)
    assert e["sensitivity"] == pytest.approx(2 / 3) and e["precision"] == pytest.approx(2 / 3)
    assert e["f1"] == pytest.approx(4 / 6)


def test_window_scoring_per_second_and_background_rows():
    ref = [*ev((100, 200)), Annotation(0, 1000, "bckg")]
    hyp = ev((150, 250))
    w = score_events(ref, hyp, duration_s=1000)["window"]
    assert (w["tp_s"], w["fp_s"], w["fn_s"], w["tn_s"]) == (50, 50, 50, 850)
    assert w["sensitivity"] == 0.5 and w["specificity"] == pytest.approx(850 / 900)
    only_bckg = score_events([Annotation(0, 1000, "bckg")], [], duration_s=1000)
    assert only_bckg["event"]["n_reference"] == 0 and only_bckg["window"]["specificity"] == 1


def test_bad_parameters():
    with pytest.raises(ParameterError, match="duration_s"):
        score_events([], [], duration_s=0)
    with pytest.raises(ParameterError, match="onset_tolerance_s"):
        score_events([], [], duration_s=10, onset_tolerance_s=-1)


def test_folders_matched_by_name_and_summed(tmp_path, capsys):
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    # recording a: 1 h, event found + 1 false alarm; b: 2 h, event missed (no hypothesis file)
    write_events_tsv(ref / "a_events.tsv", ev((100, 150)), recording_duration_s=3600)
    write_events_tsv(ref / "b_events.tsv", ev((500, 560)), recording_duration_s=7200)
    write_events_tsv(hyp / "a_events.tsv", ev((110, 130), (2000, 2010)), recording_duration_s=3600)
    result = score_files(ref, hyp)
    assert set(result["recordings"]) == {"a", "b"} and result["missing_hypothesis"] == ["b"]
    t = result["total"]["event"]
    assert (t["n_reference"], t["tp"], t["fp"], t["fn"]) == (2, 1, 1, 1)
    assert t["sensitivity"] == 0.5 and t["precision"] == 0.5 and t["f1"] == 0.5
    assert t["fp_per_24h"] == pytest.approx(1 / (3 * 3600 / 86400))  # 8 per day
    assert result["total"]["duration_s"] == 10800

    out = tmp_path / "scores.json"
    args = ["score", "--reference", str(ref), "--hypothesis", str(hyp), "--json", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "TOTAL" in printed and "8.00" in printed and "onset tolerance 30 s" in printed
    assert json.loads(out.read_text())["total"]["event"]["tp"] == 1

    # a single pair of files, and --duration-s overriding the column
    one = score_files(ref / "a_events.tsv", hyp / "a_events.tsv", duration_s=86400)
    assert one["total"]["event"]["fp_per_24h"] == pytest.approx(1.0)


def test_unmatched_hypothesis_and_missing_paths(tmp_path, capsys):
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    write_events_tsv(ref / "a_events.tsv", ev((1, 2)), recording_duration_s=10)
    write_events_tsv(hyp / "z_events.tsv", ev((1, 2)), recording_duration_s=10)
    with pytest.raises(DataError, match="no reference"):
        score_files(ref, hyp)
    code = cli.main(["score", "--reference", str(tmp_path / "x"), "--hypothesis", str(hyp)])
    assert code == 1 and "no such file" in capsys.readouterr().err
