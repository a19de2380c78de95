"""``sigalex predict`` and :class:`sigalex.Predictor`: checkpoints rebuilt alone, streaming and
batching across files, resampling, channel picking, bad files, events, resume, exit codes.

AlexNet is slow on a shared 2-core CPU, so the models here use 64×64 images and 4-channel
synthetic EEG. The seizure detector is trained once per session in seconds: its convolutional
layers keep their random initialisation and only the last layer is fitted on the features of
synthetic windows (spike-and-wave at ~200 µV against ~30 µV background separate easily).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import sigalex
from sigalex import cli
from sigalex.checkpoint import new_checkpoint, save_checkpoint
from sigalex.config import from_dict
from sigalex.errors import DataError, ParameterError
from sigalex.inference import (
    ERROR_COLUMNS,
    EXIT_ALL_FAILED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    RECORDING_COLUMNS,
    WINDOW_COLUMNS,
    Predictor,
    find_inputs,
    predict_to_dir,
    windows_to_events,
)
from sigalex.io import Recording, write_edf
from sigalex.models import ModelSpec, SignalClassifier, build_frontend, build_model
from sigalex.synthetic import make_synthetic_recording

RATE = 256.0
N_CHANNELS = 4
SEIZURE_RECIPE = {
    "windows": {"window_s": 4.0, "stride_s": 4.0},
    "transform": {"method": "stft", "n_fft": 128, "hop_length": 32, "fmax": 40.0},
    "render": {"size": 64},
    "model": {"weights": "none"},
    "eval": {"positive_class": "seizure"},
}
CLIP_RECIPE = {
    "data": {"dataset": "folder"},
    "windows": {"window_s": 0.0, "length_s": 1.0, "fit": "pad_or_crop"},
    "transform": {"method": "stft", "n_fft": 256, "hop_length": 128},
    "render": {"size": 64},
    "model": {"weights": "none"},
}


def _save(path: Path, network, recipe: dict, spec: ModelSpec) -> Path:
    """A checkpoint written the one way training writes them (:func:`new_checkpoint`)."""
    cfg = from_dict(recipe)
    model = SignalClassifier(build_frontend(cfg, spec.sample_rate), network, spec)
    return save_checkpoint(path, new_checkpoint(model, cfg, training={"weights_used": "random"}))


@pytest.fixture(scope="session")
def detector(tmp_path_factory) -> Path:
    """A checkpoint that finds synthetic seizures (4 channels, 4 s windows at 256 Hz)."""
    torch.manual_seed(0)
    cfg = from_dict(SEIZURE_RECIPE)
    xs, ys = [], []
    for i in range(3):
        rec = make_synthetic_recording(
            120, n_channels=N_CHANNELS, seizures=[(10 + 7 * i, 30), (70, 25)], seed=i
        )
        for s in range(0, rec.n_times - 1024 + 1, 256):
            t = s / RATE
            cover = sum(max(0, min(t + 4, a.offset) - max(t, a.onset)) for a in rec.annotations)
            if 0 < cover < 4:
                continue  # windows straddling an edge teach nothing clear
            xs.append(rec.data[:, s : s + 1024])
            ys.append(int(cover >= 4))
    x, y = torch.from_numpy(np.stack(xs)), torch.tensor(ys)
    model, _ = build_model("alexnet", num_classes=2, weights=None)
    model.eval()
    with torch.no_grad():
        images = build_frontend(cfg, RATE)(x)
        feats = model.classifier[:-1](
            torch.flatten(model.avgpool(model.features(model.normalize(images))), 1)
        )
    head = model.classifier[-1]
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(head(feats), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    spec = ModelSpec(
        classes=("background", "seizure"), sample_rate=RATE, n_channels=N_CHANNELS, n_times=1024,
        channel_names=tuple(rec.channel_names), positive_class="seizure", window_s=4.0,
        stride_s=4.0,
    )  # fmt: skip
    return _save(tmp_path_factory.mktemp("detector") / "checkpoint.pt", model, SEIZURE_RECIPE, spec)


@pytest.fixture(scope="session")
def clip_model(tmp_path_factory) -> Path:
    """An untrained one-channel clip classifier (1 s at 8 kHz, whole recordings)."""
    torch.manual_seed(1)
    model, _ = build_model("alexnet", num_classes=3, weights=None)
    spec = ModelSpec(
        classes=("one", "two", "three"), sample_rate=8000.0, n_channels=1, n_times=8000,
        channel_names=("ch0",), max_clip_s=2.0,
    )  # fmt: skip
    return _save(tmp_path_factory.mktemp("clip") / "checkpoint.pt", model, CLIP_RECIPE, spec)


def _edf(path: Path, duration_s: float, *, seizures=(), rate=RATE, seed=0, n_channels=N_CHANNELS):
    rec = make_synthetic_recording(
        duration_s, sample_rate=rate, n_channels=n_channels, seizures=seizures, seed=seed
    )
    return write_edf(path, rec)


def _same_windows(a: Path, b: Path) -> None:
    """Same rows in the same order; probabilities within float noise (batches differ)."""
    ha, ra = _tsv(a)
    hb, rb = _tsv(b)
    assert ha == hb and len(ra) == len(rb)
    n = len(WINDOW_COLUMNS)
    for x, y in zip(ra, rb, strict=True):
        assert [x[k] for k in ha[:n]] == [y[k] for k in hb[:n]]
        np.testing.assert_allclose(
            [float(x[k]) for k in ha[n:]], [float(y[k]) for k in hb[n:]], atol=1e-5
        )


def _tsv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """Good EDFs, one at 200 Hz, a corrupt EDF, an empty wav, a too-short EDF, a txt file
    of garbage, and an EDF lacking the model's channels."""
    folder = tmp_path_factory.mktemp("mixed")
    _edf(folder / "good_a_eeg.edf", 40, seizures=[(12, 14)], seed=1)
    _edf(folder / "sub" / "good_b_eeg.edf", 40, seed=2)
    _edf(folder / "other_rate_eeg.edf", 40, seizures=[(10, 12)], rate=200.0, seed=3)
    (folder / "corrupt.edf").write_bytes(b"0       " + b"\x07" * 300)
    (folder / "empty.wav").write_bytes(b"")
    _edf(folder / "short_eeg.edf", 1.5, seed=4)
    rec = make_synthetic_recording(40, n_channels=N_CHANNELS, seed=5)
    rec.channel_names = ["A1", "A2", "FP1-F7", "F7-T7"]
    write_edf(folder / "wrong_channels.edf", rec)
    (folder / "notes.md").write_text("not a recording")  # not a readable extension: ignored
    return folder


# ---------------------------------------------------------------------------------------------
# The API


def test_predictor_rebuilds_from_checkpoint_alone(detector):
    p = sigalex.Predictor.from_checkpoint(detector, device="cpu", batch_size=8)
    assert p.classes == ["background", "seizure"] and p.positive_class == "seizure"
    spec = p.spec
    assert (spec.sample_rate, spec.n_times, spec.n_channels, spec.window_s) == (RATE, 1024, 4, 4.0)
    assert spec.channel_names == ("FP1-F7", "F7-T7", "T7-P7", "P7-O1")
    rec = make_synthetic_recording(40, n_channels=N_CHANNELS, seizures=[(10, 20)], seed=7)
    pred = p.predict(rec)
    assert pred.n_windows == 10
    np.testing.assert_allclose(pred.start_s, np.arange(10) * 4.0)
    np.testing.assert_allclose(pred.end_s, np.arange(1, 11) * 4.0)
    assert pred.probabilities.shape == (10, 2) and pred.probabilities.dtype == np.float32
    np.testing.assert_allclose(pred.probabilities.sum(1), 1, atol=1e-5)
    assert pred.predicted[3] == "seizure" and pred.predicted[0] == "background"  # 12-16 s vs 0-4 s
    rows = pred.records()
    assert list(rows[0]) == ["recording", "channel", "start_s", "end_s", "predicted",
                             "prob_background", "prob_seizure"]  # fmt: skip


def test_lazy_edf_equals_in_memory_and_batching_across_files(detector, tmp_path):
    p = Predictor.from_checkpoint(detector, device="cpu", batch_size=7)
    a = _edf(tmp_path / "a.edf", 44, seizures=[(8, 12)], seed=11)
    b = _edf(tmp_path / "b.edf", 20, seed=12)
    lazy = p.predict(a)
    memory = p.predict(sigalex.load_recording(a))
    np.testing.assert_allclose(lazy.probabilities, memory.probabilities, atol=1e-5)
    # windows of a and b share batches (11 + 5 windows in batches of 7): same results
    results = list(p.predict_files([a, b]))
    assert [r.ok for r in results] == [True, True]
    np.testing.assert_allclose(results[0].prediction.probabilities, lazy.probabilities, atol=1e-5)
    np.testing.assert_allclose(
        results[1].prediction.probabilities, p.predict(b).probabilities, atol=1e-5
    )


def test_other_sample_rate_is_resampled(detector):
    p = Predictor.from_checkpoint(detector, device="cpu")
    rec = make_synthetic_recording(40, n_channels=N_CHANNELS, seizures=[(12, 16)], seed=8)
    import scipy.signal

    at_512 = scipy.signal.resample_poly(rec.data, 2, 1, axis=-1)
    a = p.predict(rec)
    b = p.predict(Recording(at_512, 512.0, rec.channel_names))
    assert b.n_windows == a.n_windows
    np.testing.assert_allclose(b.end_s, a.end_s)
    assert b.predicted == a.predicted
    np.testing.assert_allclose(b.probabilities, a.probabilities, atol=0.05)


def test_missing_channels_are_listed(detector):
    p = Predictor.from_checkpoint(detector, device="cpu")
    rec = make_synthetic_recording(20, n_channels=N_CHANNELS, seed=9)
    rec.channel_names = ["FP1-F7", "X1", "T7-P7", "X2"]
    with pytest.raises(DataError, match=r"lacks the model's channel\(s\) F7-T7, P7-O1"):
        p.predict(rec)
    # more channels than needed, in another order: picked by name
    full = make_synthetic_recording(20, n_channels=6, seed=9)
    reordered = Recording(full.data[::-1].copy(), RATE, full.channel_names[::-1])
    pred = p.predict(reordered)
    direct = p.predict(Recording(full.data[:4], RATE, full.channel_names[:4]))
    np.testing.assert_allclose(pred.probabilities, direct.probabilities, atol=1e-6)


def test_bad_arguments(detector):
    p = Predictor.from_checkpoint(detector, device="cpu")
    with pytest.raises(ParameterError, match="windows must be"):
        p.predict_windows(np.zeros((2, 3, 1024), np.float32))
    with pytest.raises(ParameterError, match="non-finite"):
        p.predict(np.full((4, 2048), np.nan, np.float32))
    with pytest.raises(DataError, match="shorter than one window of 4 s, and less than half"):
        p.predict(np.zeros((4, 500), np.float32), RATE)
    padded = p.predict(np.zeros((4, 700), np.float32), RATE)  # 2.7 s of a 4 s window
    assert padded.n_windows == 1 and padded.end_s[0] == pytest.approx(700 / RATE)
    assert any("padded" in note for note in padded.notes)
    with pytest.raises(ParameterError, match="batch_size"):
        Predictor.from_checkpoint(detector, batch_size=0)
    with pytest.raises(ParameterError, match="threshold"):
        windows_to_events([0], [4], [0.9], threshold=1.5)


def test_windows_to_events_rules():
    start = np.arange(10) * 4.0
    end = start + 4
    p = np.array([0.1, 0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.1, 0.6, 0.1])
    ev = windows_to_events(start, end, p, threshold=0.5)
    assert [(e.onset, e.duration) for e in ev] == [(4, 8), (16, 4), (32, 4)]
    assert ev[0].confidence == pytest.approx(0.85) and ev[0].label == "seizure"
    ev = windows_to_events(start, end, p, threshold=0.5, merge_gap_s=4)
    assert [(e.onset, e.duration) for e in ev] == [(4, 16), (32, 4)]
    ev = windows_to_events(start, end, p, threshold=0.5, min_duration_s=8)
    assert [(e.onset, e.duration) for e in ev] == [(4, 8)]
    # overlapping windows (stride 2 s) merge
    ev = windows_to_events([0, 2, 4], [4, 6, 8], [0.9, 0.9, 0.9])
    assert [(e.onset, e.duration) for e in ev] == [(0, 8)]
    assert windows_to_events(start, end, np.zeros(10)) == []


def test_clip_model_resamples_and_aggregates(clip_model, tmp_path):
    p = Predictor.from_checkpoint(clip_model, device="cpu")
    assert p.spec.window_s == 0 and p.positive_class is None
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(6000)).astype(np.float32)  # 0.75 s: padded to 1 s
    soundfile.write(tmp_path / "a.wav", x, 8000)
    soundfile.write(tmp_path / "b.wav", np.repeat(x, 2) * 1.0, 16000)
    a, b = p.predict(tmp_path / "a.wav"), p.predict(tmp_path / "b.wav")
    assert a.n_windows == b.n_windows == 1 and a.end_s[0] == pytest.approx(0.75)
    assert any("padded" in note for note in a.notes)
    # the same clip at 16 kHz, resampled to the model's 8 kHz, gives the same answer
    np.testing.assert_allclose(b.probabilities, a.probabilities, atol=2e-3)
    assert a.label in p.classes and 0 < a.confidence <= 1
    with pytest.raises(ParameterError, match="no positive class"):
        a.events()
    out = tmp_path / "out"
    summary = predict_to_dir(clip_model, [tmp_path], out, device="cpu")
    assert summary["exit_status"] == EXIT_OK and summary["outputs"]["events"] is None
    header, rows = _tsv(out / "recordings.tsv")
    assert header == list(RECORDING_COLUMNS)
    assert {r["status"] for r in rows} == {"ok"} and {r["n_events"] for r in rows} == {"n/a"}
    assert not list((out / "events").glob("*.tsv")) if (out / "events").exists() else True


# ---------------------------------------------------------------------------------------------
# sigalex predict


def test_mixed_folder_goes_on_past_bad_files(detector, mixed, tmp_path):
    out = tmp_path / "out"
    summary = predict_to_dir(detector, [mixed], out, device="cpu", batch_size=8)
    assert summary["exit_status"] == EXIT_SOME_FAILED
    header, errors = _tsv(out / "errors.tsv")
    assert header == list(ERROR_COLUMNS)
    reasons = {Path(r["recording"]).name: r["reason"] for r in errors}
    assert set(reasons) == {"corrupt.edf", "empty.wav", "short_eeg.edf", "wrong_channels.edf"}
    assert "corrupt" in reasons["corrupt.edf"] or "EDF" in reasons["corrupt.edf"]
    assert "empty" in reasons["empty.wav"]
    assert "less than half" in reasons["short_eeg.edf"]
    assert "T7-P7, P7-O1" in reasons["wrong_channels.edf"]

    header, rows = _tsv(out / "windows.tsv")
    assert header == [*WINDOW_COLUMNS, "prob_background", "prob_seizure"]
    per_file = {}
    for r in rows:
        per_file.setdefault(Path(r["recording"]).name, []).append(r)
        assert r["predicted"] in ("background", "seizure")
        assert float(r["prob_background"]) + float(r["prob_seizure"]) == pytest.approx(1, abs=1e-5)
    assert {k: len(v) for k, v in per_file.items()} == {
        "good_a_eeg.edf": 10, "good_b_eeg.edf": 10, "other_rate_eeg.edf": 10,
    }  # fmt: skip
    # the 200 Hz file's seizure (10-22 s) is found in windows 12-16 and 16-20
    other = {float(r["start_s"]): r["predicted"] for r in per_file["other_rate_eeg.edf"]}
    assert other[12.0] == "seizure" and other[0.0] == "background"

    header, recs = _tsv(out / "recordings.tsv")
    assert header == list(RECORDING_COLUMNS)
    status = {Path(r["recording"]).name: r for r in recs}
    assert len(status) == 7
    assert status["good_a_eeg.edf"]["status"] == "ok"
    assert status["good_a_eeg.edf"]["duration_s"] == "40"
    assert status["corrupt.edf"]["status"] == "error"
    ev_file = out / status["good_a_eeg.edf"]["events_file"]
    assert ev_file.name == "good_a_events.tsv"
    ev_header, events = _tsv(ev_file)
    assert ev_header == ["onset", "duration", "eventType", "confidence", "channels",
                         "recordingDuration"]  # fmt: skip
    assert [e["eventType"] for e in events] == ["seizure"]
    assert abs(float(events[0]["onset"]) - 12) <= 4
    _, bckg = _tsv(out / "events" / "good_b_events.tsv")
    assert [(e["eventType"], e["onset"], e["duration"]) for e in bckg] == [("bckg", "0.0", "40.0")]

    s = json.loads((out / "summary.json").read_text())
    assert s["this_run"]["classified"] == 3 and s["this_run"]["failed"] == 4
    assert s["this_run"]["windows"] == 30 and s["this_run"]["windows_per_s"] > 0
    assert s["classes"] == ["background", "seizure"] and s["device"].startswith("cpu")
    assert s["checkpoint_sha256"] and s["sigalex_version"] == sigalex.__version__
    assert not list(out.rglob("*.tmp"))


def test_cli_exit_codes(detector, mixed, tmp_path, capsys):
    good = str(mixed / "good_a_eeg.edf")
    args = ["predict", "--checkpoint", str(detector), "--device", "cpu", "--out"]
    assert cli.main([*args, str(tmp_path / "o1"), good]) == EXIT_OK
    assert "1 classified, 0 failed" in capsys.readouterr().out
    bad = [str(mixed / "corrupt.edf"), str(mixed / "empty.wav")]
    assert cli.main([*args, str(tmp_path / "o2"), good, *bad]) == EXIT_SOME_FAILED
    assert cli.main([*args, str(tmp_path / "o3"), *bad]) == EXIT_ALL_FAILED
    assert cli.main([*args, str(tmp_path / "o4"), str(tmp_path / "nope" / "*.edf")]) == 4
    _, errors = _tsv(tmp_path / "o4" / "errors.tsv")
    assert errors[0]["reason"] == "no file matches the pattern"
    code = cli.main(["predict", "--checkpoint", str(tmp_path / "x.pt"), "--out", "o", good])
    assert code == 1 and "x.pt: no such file" in capsys.readouterr().err
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["predict"].format_help()
    assert "3 some inputs failed" in " ".join(help_text.split())


def test_find_inputs_files_folders_globs(mixed):
    files, problems = find_inputs(
        [mixed / "sub", str(mixed / "good_*.edf"), mixed / "good_a_eeg.edf", mixed / "missing.edf"]
    )
    assert [f.name for f in files] == ["good_b_eeg.edf", "good_a_eeg.edf"]  # no duplicates
    assert problems == [(str(mixed / "missing.edf"), "no such file or folder")]


def test_resume_after_interrupted_run(detector, mixed, tmp_path, monkeypatch):
    inputs = [str(mixed / n) for n in ("good_a_eeg.edf", "other_rate_eeg.edf", "corrupt.edf")]
    inputs.append(str(mixed / "sub" / "good_b_eeg.edf"))
    full = tmp_path / "full"
    predict_to_dir(detector, inputs, full, device="cpu", batch_size=8)

    out = tmp_path / "out"
    calls = {"n": 0}
    original = SignalClassifier.probabilities

    def flaky(self, x):
        calls["n"] += 1
        if calls["n"] == 3:  # Ctrl-C during the second file's windows
            raise KeyboardInterrupt
        return original(self, x)

    monkeypatch.setattr(SignalClassifier, "probabilities", flaky)
    with pytest.raises(KeyboardInterrupt):
        predict_to_dir(detector, inputs, out, device="cpu", batch_size=8)
    monkeypatch.setattr(SignalClassifier, "probabilities", original)
    s = json.loads((out / "summary.json").read_text())
    assert s["this_run"]["interrupted"] and s["exit_status"] is None
    _, partial = _tsv(out / "windows.tsv")  # whole TSVs with the finished recordings only
    assert {Path(r["recording"]).name for r in partial} == {"good_a_eeg.edf"}
    assert not list(out.rglob("*.tmp"))

    s = predict_to_dir(detector, inputs, out, device="cpu", batch_size=8, resume=True)
    assert s["this_run"]["skipped_complete"] == 1 and s["exit_status"] == EXIT_SOME_FAILED
    _same_windows(out / "windows.tsv", full / "windows.tsv")
    assert len(_tsv(out / "recordings.tsv")[1]) == len(_tsv(full / "recordings.tsv")[1]) == 4
    # again: everything complete except the corrupt file, retried; no duplicate rows
    s = predict_to_dir(detector, inputs, out, device="cpu", batch_size=8, resume=True)
    assert s["this_run"]["skipped_complete"] == 3 and s["this_run"]["windows"] == 0
    _same_windows(out / "windows.tsv", full / "windows.tsv")


def test_resume_refuses_results_of_another_checkpoint(detector, clip_model, mixed, tmp_path):
    out = tmp_path / "out"
    predict_to_dir(detector, [mixed / "good_a_eeg.edf"], out, device="cpu")
    with pytest.raises(DataError, match="another checkpoint"):
        predict_to_dir(clip_model, [mixed / "good_a_eeg.edf"], out, device="cpu", resume=True)


def test_long_recording_events_are_found(detector, tmp_path):
    """15 minutes with three seizures: each is detected within SzCORE's 30 s onset tolerance,
    and the events file scores with ``sigalex score``."""
    from sigalex.annotations import write_events_tsv
    from sigalex.scoring import score_files

    seizures = [(130.0, 40.0), (455.0, 30.0), (760.0, 50.0)]
    rec = make_synthetic_recording(
        900, n_channels=N_CHANNELS, seizures=seizures, seed=21, seizure_channels=1.0
    )
    edf = write_edf(tmp_path / "data" / "sub-09_run-01_eeg.edf", rec)
    write_events_tsv(
        tmp_path / "data" / "sub-09_run-01_events.tsv", rec.annotations, recording_duration_s=900
    )
    out = tmp_path / "out"
    summary = predict_to_dir(
        detector, [edf], out, device="cpu", batch_size=32, min_duration_s=8, merge_gap_s=4
    )
    assert summary["exit_status"] == EXIT_OK and summary["this_run"]["windows"] == 225
    _, events = _tsv(out / "events" / "sub-09_run-01_events.tsv")
    onsets = [float(e["onset"]) for e in events if e["eventType"] == "seizure"]
    for onset, _ in seizures:
        assert any(abs(o - onset) <= 30 for o in onsets), (onset, onsets)
    assert len(onsets) <= len(seizures) + 2  # lenient: at most two false alarms
    result = score_files(tmp_path / "data", out / "events")
    total = result["total"]["event"]
    assert total["sensitivity"] == 1.0 and total["fp"] <= 2
    assert result["total"]["window"]["sensitivity"] > 0.6
    assert result["total"]["window"]["specificity"] > 0.9


def test_cpu_prediction_is_channels_last_uint8_with_the_same_probabilities(detector, monkeypatch):
    """On the CPU the model gets the renderer's 8-bit levels, channels-last (both faster there);
    neither may change a probability against float NCHW images."""
    rec = make_synthetic_recording(40, n_channels=N_CHANNELS, seizures=[(10, 20)], seed=7)
    fast = sigalex.Predictor.from_checkpoint(detector, device="cpu", batch_size=8)
    assert fast.model.channels_last
    network = fast.model.network
    assert network.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    original = type(network).forward
    monkeypatch.setattr(
        type(network), "forward", lambda self, x: seen.append(x.dtype) or original(self, x)
    )
    fast_probs = fast.predict(rec).probabilities
    assert seen and set(seen) == {torch.uint8}
    plain = sigalex.Predictor.from_checkpoint(detector, device="cpu", batch_size=8)
    plain.model.channels_last = False
    plain.model.uint8_on_cpu = False
    plain.model.network.to(memory_format=torch.contiguous_format)
    seen.clear()
    plain_probs = plain.predict(rec).probabilities
    assert set(seen) == {torch.float32}
    np.testing.assert_allclose(fast_probs, plain_probs, atol=1e-5)


@pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc")), reason="torch.compile needs a C compiler"
)
def test_compiled_predictor_gives_the_same_probabilities(detector):
    rec = make_synthetic_recording(32, n_channels=N_CHANNELS, seizures=[(10, 12)], seed=7)
    eager = sigalex.Predictor.from_checkpoint(detector, device="cpu", batch_size=8)
    compiled = sigalex.Predictor.from_checkpoint(detector, device="cpu", batch_size=8, compile=True)
    assert compiled.compiled and not eager.compiled
    # the compiled wrapper runs, the weights stay on the plain network
    assert compiled.model._call_network is not compiled.model.network
    got = compiled.predict(rec).probabilities  # 8 windows: one batch, one compilation
    np.testing.assert_allclose(got, eager.predict(rec).probabilities, atol=1e-5)


def test_cli_compile_flag_reaches_the_predictor_and_the_summary(
    detector, mixed, tmp_path, monkeypatch
):
    wrapped = []
    monkeypatch.setattr(torch, "compile", lambda model: wrapped.append(model) or model)
    args = ["predict", "--checkpoint", str(detector), "--device", "cpu", "--compile"]
    assert cli.main([*args, "--out", str(tmp_path / "o"), str(mixed / "good_a_eeg.edf")]) == 0
    assert len(wrapped) == 1
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["compiled"] is True


def test_unique_stems_part_recordings_that_share_a_name():
    from sigalex.inference.outputs import part_key, unique_stems

    stems = unique_stems({"a/rec.edf": "rec", "b/rec.edf": "rec", "c/other.edf": "other"})
    assert stems["c/other.edf"] == "other"
    assert stems["a/rec.edf"] == f"rec__{part_key('a/rec.edf')[:8]}"
    assert len(set(stems.values())) == 3
