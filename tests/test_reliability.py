"""Refuse what cannot be right, one line for every error, nothing lost (issue 12's cases).

The models here are untrained (random weights, 64×64 images): these tests check what is
refused, flagged, locked and written, not what is predicted.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import untrained_seizure_checkpoint

from sigalex import cli
from sigalex._files import FolderLock
from sigalex.errors import DataError, ParameterError
from sigalex.inference import Predictor, predict_to_dir
from sigalex.io import Recording, write_edf
from sigalex.models import ModelSpec
from sigalex.synthetic import make_synthetic_recording


def _tsv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """A single-channel seizure model (4 s windows at 256 Hz), as a checkpoint file."""
    return untrained_seizure_checkpoint(tmp_path_factory.mktemp("single") / "checkpoint.pt")


@pytest.fixture(scope="module")
def scalp(tmp_path_factory) -> Path:
    """A 20 s, 4-channel EDF."""
    rec = make_synthetic_recording(20, n_channels=4, seed=1)
    return write_edf(tmp_path_factory.mktemp("scalp") / "scalp_eeg.edf", rec)


# ---------------------------------------------------------------------------------------------
# Wrong answers with confidence


def test_a_channel_count_mismatch_is_an_error_until_the_user_says_how_to_map(single, scalp):
    p = Predictor.from_checkpoint(single, device="cpu")
    with pytest.raises(DataError, match=r"4 channels, and the model takes 1: choose --channels"):
        p.predict(scalp)
    mean = Predictor.from_checkpoint(single, device="cpu", channels="mean").predict(scalp)
    assert mean.n_windows == 5 and mean.channel is None
    each = Predictor.from_checkpoint(single, device="cpu", channels="each")
    with pytest.raises(ParameterError, match="predict_channels"):
        each.predict(scalp)
    per_channel = each.predict_channels(scalp)
    assert [q.channel for q in per_channel] == ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]
    rec = make_synthetic_recording(20, n_channels=4, seed=1)
    alone = Predictor.from_checkpoint(single, device="cpu").predict(
        Recording(rec.data[2:3], 256.0, ["T7-P7"])
    )
    np.testing.assert_allclose(per_channel[2].probabilities, alone.probabilities, atol=1e-3)


def test_channels_each_gives_rows_and_events_per_channel(single, scalp, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(single), "--device", "cpu", "--threshold", "0"]
    assert cli.main([*args, "--channels", "each", "--out", str(out), str(scalp)]) == 0
    recordings = _tsv(out / "recordings.tsv")
    assert [r["channel"] for r in recordings] == ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]
    assert {r["recording"] for r in recordings} == {str(scalp)}
    assert len(_tsv(out / "windows.tsv")) == 4 * 5
    events = sorted(p.name for p in (out / "events").iterdir())
    assert events == [f"scalp_ch-{c}_events.tsv" for c in ("F7-T7", "FP1-F7", "P7-O1", "T7-P7")]
    first = _tsv(out / "events" / "scalp_ch-FP1-F7_events.tsv")
    assert {e["channels"] for e in first} == {"FP1-F7"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["channels"] == "each" and summary["this_run"]["classified"] == 1


def test_a_multichannel_model_refuses_a_channel_mapping(single):
    spec = ModelSpec(classes=("a", "b"), sample_rate=256.0, n_channels=4, n_times=1024)
    with pytest.raises(ParameterError, match="takes 4 channels"):
        spec.channel_plan(["x"] * 4, mapping="mean")


def test_a_file_without_a_rate_is_read_at_the_model_s_and_says_so(single, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal(2048).astype("float32"))
    out = tmp_path / "out"
    predict_to_dir(single, [tmp_path / "x.npy"], out, device="cpu")
    (row,) = _tsv(out / "recordings.tsv")
    assert row["sample_rate"] == "256" and "assumed 256 Hz" in row["notes"]


def test_flat_windows_are_flagged(single):
    x = np.random.default_rng(0).standard_normal((1, 256 * 12)).astype(np.float32)
    x[:, 4 * 256 : 8 * 256] = 3.0  # a disconnected electrode: 4-8 s constant
    pred = Predictor.from_checkpoint(single, device="cpu").predict(x, 256.0)
    assert any("1 of 3 window(s) flat" in n and "first at 4 s" in n for n in pred.notes)


# ---------------------------------------------------------------------------------------------
# Nothing lost


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(single, scalp, tmp_path):
    out = tmp_path / "out"
    with FolderLock(out, "sigalex predict (someone else)"):
        with pytest.raises(DataError, match=r"in use by sigalex predict \(someone else\) \(pid"):
            predict_to_dir(single, [scalp], out, device="cpu", channels="mean")
    assert not (out / ".sigalex.lock").exists()
    # a lock left by a process that is gone is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    import socket

    (out / ".sigalex.lock").write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "what": "x"})
    )
    summary = predict_to_dir(single, [scalp], out, device="cpu", channels="mean")
    assert summary["exit_status"] == 0 and not (out / ".sigalex.lock").exists()


def test_a_new_run_removes_the_old_results_before_it_starts(single, scalp, tmp_path, monkeypatch):
    out = tmp_path / "out"
    other = tmp_path / "other_eeg.edf"
    write_edf(other, make_synthetic_recording(12, n_channels=4, seed=2))
    predict_to_dir(single, [scalp], out, device="cpu", channels="mean")
    assert (out / "events" / "scalp_events.tsv").is_file()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Predictor, "predict_files", killed)
    with pytest.raises(KeyboardInterrupt):
        predict_to_dir(single, [other], out, device="cpu", channels="mean")
    assert _tsv(out / "recordings.tsv") == []  # the first run's tables are gone, not stale
    assert not (out / "events" / "scalp_events.tsv").exists()


def test_unicode_recording_names_are_kept_in_events_files(single, tmp_path):
    rec = make_synthetic_recording(8, n_channels=1, seed=3)
    folder = tmp_path / "in"
    for name in ("patient_Müller.edf", "患者一.edf", "tab\tname.edf"):
        write_edf(folder / name, rec)
    out = tmp_path / "out"
    predict_to_dir(single, [folder], out, device="cpu")
    names = sorted(p.name for p in (out / "events").iterdir())
    assert names == sorted(
        ["patient_Müller_events.tsv", "患者一_events.tsv", "tab_name_events.tsv"]
    )
    rows = _tsv(out / "recordings.tsv")
    assert len(rows) == 3 and all(len(r) == len(rows[0]) for r in rows)  # a tab breaks no row


def test_an_output_folder_that_is_a_file_is_one_line(single, scalp, tmp_path, capsys):
    path = tmp_path / "taken"
    path.write_text("x")
    args = ["predict", "--checkpoint", str(single), "--device", "cpu", "--channels", "mean"]
    assert cli.main([*args, "--out", str(path), str(scalp)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_output_folder_is_one_line(single, scalp, tmp_path, capsys):
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    args = ["predict", "--checkpoint", str(single), "--device", "cpu", "--channels", "mean"]
    assert cli.main([*args, "--out", str(locked / "out"), str(scalp)]) == 1
    assert "cannot create" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sample-rate", "0"], "--sample-rate 0: must be a positive number"),
        (["--stride-s", "-1"], "--stride-s -1: must be a positive number"),
        (["--threshold", "2"], "--threshold 2: must be a probability"),
    ],
)
def test_predict_flags_are_checked_by_their_names(single, scalp, tmp_path, capsys, flags, message):
    args = ["predict", "--checkpoint", str(single), "--out", str(tmp_path / "o"), str(scalp)]
    assert cli.main([*args, *flags]) == 1
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# One line for every error


def test_score_refuses_an_edf_and_a_file_cut_mid_row(tmp_path, scalp, capsys):
    good = tmp_path / "a_events.tsv"
    good.write_text("onset\tduration\teventType\n10\t5\tsz\n")
    assert cli.main(["score", "--reference", str(scalp), "--hypothesis", str(good)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a UTF-8 text events file" in err[0]
    cut = tmp_path / "b_events.tsv"
    cut.write_text("onset\tduration\teventType\tconfidence\n10\t5\tsz\t0.9\n20\t5")
    assert cli.main(["score", "--reference", str(good), "--hypothesis", str(cut)]) == 1
    assert "b_events.tsv:3: 2 of 4 columns" in capsys.readouterr().err


def test_score_says_when_events_reach_past_the_end(tmp_path, capsys):
    ref = tmp_path / "ref_events.tsv"
    hyp = tmp_path / "hyp_events.tsv"
    ref.write_text("onset\tduration\teventType\trecordingDuration\n10\t5\tsz\t60\n")
    hyp.write_text("onset\tduration\teventType\trecordingDuration\n10\t5\tsz\t60\n70\t5\tsz\t60\n")
    assert cli.main(["score", "--reference", str(ref), "--hypothesis", str(hyp)]) == 0
    assert "1 hypothesis event(s) reach past the recording's end (60 s" in capsys.readouterr().out


def test_render_refuses_absurd_sizes_and_keeps_every_channel(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((3, 512))
    path = tmp_path / "x.csv"
    np.savetxt(path, x.T, delimiter=",", header="A+,A*,B", comments="")
    out = tmp_path / "img.png"
    assert cli.main(["render", str(path), "--sample-rate", "256", "--size", "100000",
                     "--out", str(out)]) == 1  # fmt: skip
    assert "at most 4096 pixels" in capsys.readouterr().err
    assert cli.main(["render", str(path), "--sample-rate", "256", "--channels", "each",
                     "--size", "32", "--out", str(out)]) == 0  # fmt: skip
    assert sorted(p.name for p in tmp_path.glob("img_*.png")) == ["img_A_-1.png", "img_A_.png",
                                                                 "img_B.png"]  # fmt: skip


def test_a_latin1_edf_is_read_with_a_warning(tmp_path):
    from sigalex.io import Annotation, open_recording

    rec = Recording(np.zeros((1, 2560), np.float32) + 1, 256.0, ["a"],
                    [Annotation(1.0, 2.0, "Anfall größer")])  # fmt: skip
    path = write_edf(tmp_path / "utf8.edf", rec)
    utf8, latin1 = "größer".encode(), "größer".encode("latin-1")
    data = path.read_bytes().replace(utf8, latin1 + b"\x00" * (len(utf8) - len(latin1)))
    old = tmp_path / "latin1.edf"
    old.write_bytes(data)
    with pytest.warns(UserWarning, match="read as Latin-1"):
        lazy = open_recording(old)
    assert [a.label for a in lazy.annotations] == ["Anfall größer"]
    assert lazy.read().shape == (1, 2560)


def test_predict_lists_dangling_links_and_pipes(single, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_edf(folder / "good.edf", make_synthetic_recording(8, n_channels=1, seed=5))
    (folder / "gone.edf").symlink_to(tmp_path / "nowhere.edf")
    os.mkfifo(folder / "pipe.edf")
    out = tmp_path / "out"
    summary = predict_to_dir(single, [folder], out, device="cpu")
    reasons = {Path(r["recording"]).name: r["reason"] for r in _tsv(out / "errors.tsv")}
    assert reasons == {
        "gone.edf": "a dangling link: its target is missing",
        "pipe.edf": "not a regular file (a pipe, socket or device)",
    }
    assert summary["exit_status"] == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads anything")
def test_an_unreadable_file_is_a_data_error(tmp_path):
    from sigalex.io import load_recording

    path = tmp_path / "x.txt"
    np.savetxt(path, np.arange(10.0))
    path.chmod(0)
    with pytest.raises(DataError, match="cannot read it"):
        load_recording(path, sample_rate=10.0)


# ---------------------------------------------------------------------------------------------
# Runs: what a run directory keeps


def _folder_recipe(tmp_path: Path, **output) -> Path:
    import soundfile

    t = np.arange(2000) / 8000
    for label, freq in (("low", 300.0), ("high", 1500.0)):
        (tmp_path / "clips" / label).mkdir(parents=True)
        for k in range(6):
            soundfile.write(
                tmp_path / "clips" / label / f"c{k}.wav", np.sin(2 * np.pi * freq * t), 8000
            )
    (tmp_path / "clips" / "low" / "broken.wav").write_bytes(b"RIFF....")
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in output.items())
    recipe = tmp_path / "clips.toml"
    recipe.write_text(
        f'[data]\ndataset = "folder"\nroot = "{tmp_path / "clips"}"\n'
        '[transform]\nmethod = "stft"\nn_fft = 128\nhop_length = 32\n'
        '[render]\nsize = 64\n[model]\nweights = "none"\n'
        "[train]\nepochs = 1\nbatch_size = 4\nmax_steps_per_epoch = 1\n"
        '[eval]\nsplit = "stratified"\ntest_fraction = 0.25\nval_fraction = 0.25\n'
        f'[output]\ndir = "{tmp_path / "runs"}"\nexamples_per_class = 1\n{lines}'
    )
    return recipe


def test_a_run_lists_the_files_it_left_out_and_keeps_last_only_when_asked(tmp_path, capsys):
    from sigalex.train import run_recipe

    recipe = _folder_recipe(tmp_path)
    assert cli.main(["validate", str(recipe)]) == 0
    assert "broken.wav: not a readable audio file" in capsys.readouterr().out
    run_dir = run_recipe(recipe).run_dir
    (row,) = _tsv(run_dir / "data_errors.tsv")
    assert row["file"].endswith("broken.wav") and "not a readable audio file" in row["reason"]
    assert not (run_dir / "last.pt").exists()
    kept = run_recipe(recipe, overrides=["output.keep_last=true"]).run_dir
    assert (kept / "last.pt").is_file()


def test_a_run_folder_in_use_is_refused(tmp_path):
    from sigalex.train import run_recipe

    recipe = _folder_recipe(tmp_path, keep_last=True)
    run_dir = run_recipe(recipe).run_dir
    (run_dir / "metrics.json").unlink()  # as if killed before the end
    (run_dir / ".last.pt.123.abc.tmp").write_bytes(b"half a checkpoint")
    with FolderLock(run_dir, "sigalex run (another)"):
        with pytest.raises(DataError, match=r"in use by sigalex run \(another\)"):
            run_recipe(resume=run_dir)
    run_recipe(resume=run_dir)
    assert not list(run_dir.glob(".*.tmp"))  # the stale temporary was cleaned


def test_validate_creates_nothing_for_a_mistyped_data_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SIGALEX_DATA", str(tmp_path / "typo"))
    recipe = Path(__file__).resolve().parents[1] / "pipelines" / "eeg-seizure.toml"
    assert cli.main(["validate", str(recipe)]) == 1
    assert "not found locally" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()


def test_images_too_small_for_the_network_are_a_recipe_error(tmp_path, capsys):
    recipe = _folder_recipe(tmp_path)
    assert cli.main(["validate", str(recipe), "--set", "render.size=32"]) == 1
    assert "render.size = 32 is too small for model.architecture = 'alexnet'" in (
        capsys.readouterr().err
    )
