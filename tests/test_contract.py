"""The seams between training and prediction: one checkpoint, one way to cut a window, one model.

Each test here fails if a seam breaks: prediction disagreeing with training's own test-set
probabilities, the two cutting different windows, a checkpoint of the previous format no longer
loading, a resumed run ending elsewhere than an uninterrupted one, folds or fine-tuning losing
their bookkeeping. Runs use tiny synthetic EEG, 64×64 images and a few steps (plumbing, not
accuracy).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sigalex
from sigalex import cli
from sigalex._files import sha256_file
from sigalex.checkpoint import (
    FORMAT,
    initial_model,
    load_checkpoint,
    resolve_parent,
)
from sigalex.config import from_dict, to_dict
from sigalex.errors import ConfigError, DataError
from sigalex.inference import Predictor
from sigalex.inference.stream import read_windows
from sigalex.io import Recording
from sigalex.models import ModelSpec, SignalClassifier
from sigalex.synthetic import make_synthetic_recording, write_synthetic_dataset
from sigalex.train import Trainer, prepare_data, run, window_dataset

REPO = Path(__file__).resolve().parents[1]


def _recipe(root: Path, out: Path, **sections) -> dict:
    recipe = {
        "data": {"dataset": "synthetic", "root": str(root), "n_recordings": 4, "duration_s": 40.0},
        "windows": {"window_s": 4.0, "stride_s": 4.0},
        "transform": {"method": "stft", "n_fft": 128, "hop_length": 32, "fmax": 40.0},
        "render": {"size": 64},
        "model": {"weights": "none"},
        "train": {
            "epochs": 2, "batch_size": 8, "max_steps_per_epoch": 2, "lr": 0.001,
            "optimizer": "adamw",
        },
        "eval": {"split": "grouped", "test_fraction": 0.25, "val_fraction": 0.25},
        "output": {"dir": str(out), "examples_per_class": 1},
    }  # fmt: skip
    for section, values in sections.items():
        recipe.setdefault(section, {}).update(values)
    return recipe


def _tsv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def eeg(tmp_path_factory) -> Path:
    """Four 40 s synthetic EDFs at 250 Hz (the model below runs at 256 Hz: every window is
    resampled, in training and in prediction)."""
    root = tmp_path_factory.mktemp("eeg")
    write_synthetic_dataset(
        root, 4, duration_s=40.0, sample_rate=250.0, n_seizures=(1, 1),
        seizure_duration_s=(10, 14),
    )  # fmt: skip
    return root


@pytest.fixture(scope="module")
def trained(eeg, tmp_path_factory):
    """One real ``run`` of the recipe: its result and its config."""
    out = tmp_path_factory.mktemp("runs")
    cfg = from_dict(_recipe(eeg, out, data={"sample_rate": 256.0}))
    return run(cfg), cfg


# ---------------------------------------------------------------------------------------------
# Training ↔ prediction


def test_predictor_gives_the_run_s_own_test_probabilities(trained):
    """``sigalex run``'s test-set probabilities (test_predictions.tsv) are what ``Predictor``
    gives for the same windows of the same files, from the checkpoint alone (≤ 1e-5)."""
    result, _ = trained
    rows = _tsv(result.run_dir / "test_predictions.tsv")
    assert rows and set(rows[0]) >= {"recording", "start_s", "end_s", "label", "prob_seizure"}
    predictor = Predictor.from_checkpoint(result.checkpoint, device="cpu", batch_size=5)
    compared = 0
    for recording in sorted({r["recording"] for r in rows}):
        pred = predictor.predict(recording)
        by_span = {
            (round(s, 6), round(e, 6)): p
            for s, e, p in zip(pred.start_s, pred.end_s, pred.probabilities, strict=True)
        }
        for r in (r for r in rows if r["recording"] == recording):
            got = by_span[(round(float(r["start_s"]), 6), round(float(r["end_s"]), 6))]
            want = [float(r[f"prob_{c}"]) for c in predictor.classes]
            np.testing.assert_allclose(got, want, atol=1e-5)
            compared += 1
    assert compared == len(rows) == result.metrics["n_test"]


def test_training_and_prediction_cut_the_same_windows(eeg, tmp_path):
    """Recordings at 250 Hz, a model at 256 Hz, 4 s windows every 3.5 s: the windows training
    reads (read at 250 Hz, resampled, fitted) are bit for bit the windows prediction reads;
    prediction adds one window ending at the recording's end."""
    cfg = from_dict(_recipe(eeg, tmp_path, data={"sample_rate": 256.0}, windows={"stride_s": 3.5}))
    data = prepare_data(cfg)
    assert data.spec.sample_rate == 256.0 and data.spec.n_times == 1024
    model, _, _ = initial_model(cfg, data.spec)
    predictor = Predictor(model, device="cpu", batch_size=4)
    recording = data.windows[0].recording
    mine = [i for i, w in enumerate(data.windows) if w.recording == recording]
    train_x = torch.stack([window_dataset(data, np.array(mine))[k][0] for k in range(len(mine))])
    (opened,) = predictor.open(recording)
    blocks = list(read_windows(opened, data.spec, 4))
    pred_x = np.concatenate([b[0] for b in blocks])
    starts = np.concatenate([b[1] for b in blocks])
    assert len(pred_x) == len(mine) + 1  # 40 s: windows at 0, 3.5, … 35 s, and 36-40 s
    np.testing.assert_array_equal(pred_x[: len(mine)], train_x.numpy())
    np.testing.assert_allclose(starts[: len(mine)], [data.windows[i].start_s for i in mine])
    assert starts[-1] == pytest.approx(36.0, abs=1 / 250)


def test_a_whole_recording_model_slides_over_longer_recordings():
    """A model trained on whole 4 s clips classifies a 4 s recording whole (as in training) and
    slides its window over a 16.5 s one, end to end, with events for its positive class."""
    spec = ModelSpec(
        classes=("background", "seizure"), sample_rate=256.0, n_channels=1, n_times=1024,
        positive_class="seizure", max_clip_s=4.0,
    )  # fmt: skip
    whole = spec.plan(1024, 256.0)
    assert whole.n_windows == 1 and whole.length == 1024 and whole.fit == "pad_or_crop"
    long = spec.plan(round(16.5 * 256), 256.0)
    np.testing.assert_allclose(long.start_s, [0, 4, 8, 12, 12.5])
    np.testing.assert_allclose(long.end_s, [4, 8, 12, 16, 16.5])
    finer = spec.plan(round(16.5 * 256), 256.0, stride_s=2.0)
    np.testing.assert_allclose(finer.start_s, [0, 2, 4, 6, 8, 10, 12, 12.5])
    at_other_rate = spec.plan(round(16.5 * 512), 512.0)
    np.testing.assert_allclose(at_other_rate.start_s, long.start_s)
    assert at_other_rate.length == 2048
    padded = spec.plan(600, 256.0)  # shorter than the window: padded, as training padded
    assert padded.n_windows == 1 and padded.fit == "pad_or_crop" and "padded" in padded.notes[0]
    windowed = dataclasses.replace(spec, window_s=4.0, stride_s=4.0, max_clip_s=0.0)
    with pytest.raises(DataError, match="less than half"):
        windowed.plan(500, 256.0)


def test_a_whole_recording_model_finds_events_in_a_long_recording(tmp_path):
    """Whole-clip models write events too: a 4 s clip model over 40 s of EEG."""
    spec = ModelSpec(
        classes=("background", "seizure"), sample_rate=256.0, n_channels=1, n_times=1024,
        positive_class="seizure", max_clip_s=4.0,
    )  # fmt: skip
    cfg = from_dict(_recipe(tmp_path, tmp_path, windows={"window_s": 0.0, "stride_s": 0.0}))
    model, _, _ = initial_model(cfg, spec)
    predictor = Predictor(model, device="cpu")
    rec = make_synthetic_recording(40, n_channels=1, seed=3)
    pred = predictor.predict(Recording(rec.data, rec.sample_rate, ["ch0"]))
    assert pred.n_windows == 10 and pred.end_s[-1] == pytest.approx(40.0)
    assert isinstance(pred.events(threshold=0.0), list) and pred.events(threshold=0.0)


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _v1_payload(ckpt) -> dict:
    """The unversioned dict sigalex 0.1 wrote (frozen here: the layout is history)."""
    spec = ckpt.spec
    return {
        "version": "0.1.0",
        "state_dict": ckpt.state_dict,
        "config": ckpt.config,
        "classes": list(spec.classes),
        "architecture": spec.architecture,
        "sample_rate": spec.sample_rate,
        "n_channels": spec.n_channels,
        "n_times": spec.n_times,
        "channel_names": list(spec.channel_names),
        "weights_used": "random",
        "epoch": 2,
        "best_epoch": 1,
        "best_metric": -0.5,
        "history": [],
        "split": "grouped",
    }


def test_a_checkpoint_of_the_previous_format_still_loads(trained, tmp_path):
    result, _ = trained
    ckpt = load_checkpoint(result.checkpoint)
    old = tmp_path / "v1.pt"
    torch.save(_v1_payload(ckpt), old)
    migrated = load_checkpoint(old)
    assert migrated.format_version == 1 and migrated.sigalex_version == "0.1.0"
    assert migrated.spec == ckpt.spec  # positive class by the one rule, stride from the recipe
    assert migrated.training["best_epoch"] == 1
    rec = make_synthetic_recording(12, n_channels=18, sample_rate=250.0, seed=4)
    a = Predictor.from_checkpoint(old, device="cpu").predict(rec)
    b = Predictor.from_checkpoint(result.checkpoint, device="cpu").predict(rec)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)
    last = tmp_path / "v1-last.pt"
    torch.save({**_v1_payload(ckpt), "optimizer": {}, "torch_rng": torch.get_rng_state()}, last)
    assert set(load_checkpoint(last).resume) >= {"optimizer", "rng"}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"format": FORMAT, "format_version": 99, "sigalex_version": "9.0"}, "newer than this"),
        ({}, "the checkpoint is empty"),
        ({"weights": torch.zeros(2)}, "not a sigalex checkpoint"),
        ([1, 2, 3], "not a sigalex checkpoint"),
    ],
)
def test_foreign_and_newer_checkpoints_are_refused_in_one_line(tmp_path, payload, message):
    path = tmp_path / "x.pt"
    torch.save(payload, path)
    with pytest.raises(DataError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_a_checkpoint_holding_code_is_refused_and_nothing_runs(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": Evil()}, path)
    with pytest.raises(DataError, match=r"holds code .*refused, nothing in it was run") as info:
        load_checkpoint(path)
    assert "weights_only=False" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# The trainer


class TinyNet(torch.nn.Module):
    """A network small enough to fit a batch in seconds on a CPU (AlexNet's interface: ImageNet
    normalisation of uint8 or float images, a ``head``)."""

    def __init__(self, num_classes: int = 2):
        super().__init__()
        from sigalex.models.alexnet import ImageNetNormalize

        self.normalize = ImageNetNormalize()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4)
        )
        self.classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(128, num_classes))

    @property
    def head(self) -> torch.nn.Module:
        return self.classifier[-1]

    def forward(self, x):
        return self.classifier(self.features(self.normalize(x)))


def test_the_trainer_learns_a_small_batch(eeg, tmp_path):
    """Eight windows, a tiny network, sixty steps: the trainer fits them (loss near 0)."""
    cfg = from_dict(
        _recipe(
            eeg, tmp_path, data={"sample_rate": 256.0},
            train={"epochs": 1, "max_steps_per_epoch": 1, "lr": 0.01, "balance": "none",
                   "schedule": "none"},
        )
    )  # fmt: skip
    data = prepare_data(cfg)
    idx = np.concatenate([np.flatnonzero(data.targets == c)[:4] for c in (0, 1)])
    split = dataclasses.replace(data.splits[0], train=idx, val=idx[:0], test=idx)
    torch.manual_seed(0)
    unit, _, _ = initial_model(cfg, data.spec)
    model = SignalClassifier(unit.frontend, TinyNet(), data.spec)
    trainer = Trainer(cfg, data, split, model, device=torch.device("cpu"))
    losses = [trainer.train_epoch()["train_loss"] for _ in range(60)]
    y, p, loss = trainer.predict(trainer.test_loader)
    assert losses[-1] < 0.05 < 0.5 < losses[0] and loss < 0.05
    assert (p.argmax(1) == y).all()


def _weights(path: Path) -> dict:
    return load_checkpoint(path).state_dict


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(eeg, tmp_path, monkeypatch):
    """Shuffling, random time shifts, SpecAugment masks and dropout all draw random numbers;
    early stopping counts epochs: a run killed after epoch 2 and resumed ends bit for bit where
    an uninterrupted run ends."""
    recipe = _recipe(
        eeg, tmp_path / "a", data={"sample_rate": 256.0},
        train={
            "epochs": 4, "time_shift_s": 1.0, "time_masks": 1, "freq_masks": 1,
            "early_stopping_patience": 3, "monitor": "accuracy",
        },
        output={"keep_last": True},
    )  # fmt: skip
    straight = run(from_dict(recipe)).run_dir
    recipe["output"]["dir"] = str(tmp_path / "b")
    calls = {"n": 0}
    original = Trainer.train_epoch

    def killed_in_epoch_3(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        run(from_dict(recipe))
    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = next((tmp_path / "b").iterdir())
    run(from_dict(recipe), resume=resumed)
    a, b = _weights(straight / "last.pt"), _weights(resumed / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ha = load_checkpoint(straight / "last.pt").training["history"]
    hb = load_checkpoint(resumed / "last.pt").training["history"]
    assert [r["train_loss"] for r in ha] == [r["train_loss"] for r in hb]
    assert _tsv(straight / "test_predictions.tsv") == _tsv(resumed / "test_predictions.tsv")


@pytest.mark.parametrize(("split", "n_folds"), [("kfold", 2), ("logo", 4)])
def test_fold_runs_end_to_end_and_resume_across_folds(eeg, tmp_path, monkeypatch, split, n_folds):
    recipe = _recipe(
        eeg, tmp_path, data={"sample_rate": 256.0}, eval={"split": split, "folds": 2},
        train={"epochs": 1, "max_steps_per_epoch": 1},
    )  # fmt: skip
    fits = {"n": 0}
    original = Trainer.fit

    def killed_in_fold_2(self):
        fits["n"] += 1
        if fits["n"] == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "fit", killed_in_fold_2)
    with pytest.raises(KeyboardInterrupt):
        run(from_dict(recipe))
    run_dir = next(tmp_path.iterdir())
    first = (run_dir / "fold-01" / "checkpoint.pt").stat().st_mtime_ns
    result = run(from_dict(recipe), resume=run_dir)
    assert fits["n"] == 1 + n_folds  # fold 1 was not trained again
    assert (run_dir / "fold-01" / "checkpoint.pt").stat().st_mtime_ns == first
    folds = sorted(p.name for p in run_dir.glob("fold-*"))
    assert folds == [f"fold-{k:02d}" for k in range(1, n_folds + 1)]
    for fold in folds:
        assert {"checkpoint.pt", "metrics.json", "test_predictions.tsv"} <= {
            p.name for p in (run_dir / fold).iterdir()
        }
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == result.metrics and len(metrics["folds"]) == n_folds
    assert {"mean", "std"} <= set(metrics["accuracy"]) and metrics["accuracy"]["n_folds"] == n_folds
    assert f"{split}: {n_folds} folds" in metrics["split"]


def test_run_can_leave_the_test_set_alone(eeg, tmp_path, monkeypatch):
    def no_test(*args, **kwargs):
        raise AssertionError("the test set was read")

    monkeypatch.setattr("sigalex.train.runner.finish_fold", no_test)
    cfg = from_dict(_recipe(eeg, tmp_path, data={"sample_rate": 256.0}))
    result = run(cfg, evaluate_test=False)
    assert "not evaluated" in result.metrics["test"] and "accuracy" in result.metrics
    assert not (result.run_dir / "test_predictions.tsv").exists()


# ---------------------------------------------------------------------------------------------
# Fine-tuning from a sigalex checkpoint


def test_fine_tuning_records_the_parent_and_guards_the_front_end(trained, eeg, tmp_path):
    result, cfg = trained
    parent = str(result.checkpoint)
    child = _recipe(eeg, tmp_path, data={"sample_rate": 256.0}, model={"weights": parent})
    child["train"]["epochs"] = 1
    tuned = run(from_dict(child))
    ckpt = load_checkpoint(tuned.checkpoint)
    assert ckpt.parent["path"] == parent and ckpt.parent["head_kept"] is True
    assert ckpt.parent["sha256"] == sha256_file(parent)
    assert tuned.metrics["weights_used"].startswith(f"checkpoint {parent}")

    mel = _recipe(eeg, tmp_path, model={"weights": parent}, transform={"method": "mel"})
    mel["transform"] = {"method": "mel", "n_fft": 128, "hop_length": 32, "n_mels": 32}
    with pytest.raises(
        ConfigError, match=r'model.frontend = "checkpoint".*model.frontend = "recipe"'
    ):
        resolve_parent(from_dict(mel))
    mel["model"]["frontend"] = "checkpoint"
    kept, _ = resolve_parent(from_dict(mel))
    assert to_dict(kept)["transform"] == to_dict(cfg)["transform"]
    mel["model"]["frontend"] = "recipe"
    chosen, found = resolve_parent(from_dict(mel))
    assert chosen.transform.method == "mel" and found is not None

    missing = _recipe(eeg, tmp_path, model={"weights": str(tmp_path / "nope.pt")})
    with pytest.raises(DataError, match=r"model.weights = .*nope\.pt.*no such file"):
        resolve_parent(from_dict(missing))


# ---------------------------------------------------------------------------------------------
# Inputs, recipes, layout


def test_predictor_reads_txt_csv_npy_npz_alike(trained, tmp_path):
    result, _ = trained
    predictor = Predictor.from_checkpoint(result.checkpoint, device="cpu")
    rec = make_synthetic_recording(10, n_channels=18, sample_rate=256.0, seed=6)
    x = rec.data
    np.savetxt(tmp_path / "a.txt", x.T)
    np.savetxt(tmp_path / "a.csv", x.T, delimiter=",", header=",".join(rec.channel_names),
               comments="")  # fmt: skip
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "a.npz", data=x, sample_rate=256.0)
    want = predictor.predict(Recording(x, 256.0, rec.channel_names)).probabilities
    for name in ("a.txt", "a.csv", "a.npy", "a.npz"):
        pred = predictor.predict(tmp_path / name)
        np.testing.assert_allclose(pred.probabilities, want, atol=1e-4, err_msg=name)
        assumed = any("assumed 256 Hz" in n for n in pred.notes)
        assert assumed == (name != "a.npz"), (name, pred.notes)  # the .npz carries its rate
    told = predictor.predict(tmp_path / "a.npy", sample_rate=256.0)
    assert not told.notes


@pytest.mark.needs_data
@pytest.mark.parametrize(
    "recipe", sorted((REPO / "pipelines").glob("*.toml")), ids=lambda p: p.stem
)
def test_every_shipped_recipe_validates_against_the_real_data(
    recipe, data_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("SIGALEX_DATA", str(data_dir))
    sets = ["--set", f'output.dir="{tmp_path}"']
    if recipe.stem.startswith("synthetic"):
        sets += ["--set", "data.n_recordings=4", "--set", "data.duration_s=90"]
    assert cli.main(["validate", str(recipe), *sets]) == 0, capsys.readouterr().err
    assert ": OK" in capsys.readouterr().out


def test_inference_and_training_do_not_import_each_other():
    code = (
        "import sys, sigalex.inference, sigalex.checkpoint; "
        "assert not [m for m in sys.modules if m.startswith('sigalex.train')], 'train'; "
        "import sigalex.train; "
        "sys.modules.pop('sigalex.inference', None); "
        "print(sorted(m for m in sys.modules if m.startswith('sigalex.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "train" not in out.stderr
    trained_only = subprocess.run(
        [sys.executable, "-c",
         "import sys, sigalex.train; print([m for m in sys.modules if m.startswith('sigalex.inference')])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert trained_only.stdout.strip() == "[]"


def test_no_module_is_over_600_lines():
    sizes = {
        p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for p in (REPO / "sigalex").rglob("*.py")
    }
    assert {k: n for k, n in sizes.items() if n > 620} == {}


def test_an_mne_raw_is_a_source_like_its_file(trained, eeg):
    """A user of MNE hands over the Raw they already have: the same windows and probabilities
    as the file, and ``spectrogram`` takes it with its rate."""
    import mne

    result, _ = trained
    edf = sorted(eeg.glob("*.edf"))[0]
    raw = mne.io.read_raw_edf(edf, preload=False, verbose="error")
    predictor = Predictor.from_checkpoint(result.checkpoint, device="cpu")
    a, b = predictor.predict(raw, name="raw"), predictor.predict(edf)
    assert a.recording == "raw" and a.sample_rate == 250.0
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)
    rec = sigalex.load_recording(edf)
    np.testing.assert_array_equal(
        sigalex.spectrogram(raw, fmax=40, channels="tile"),
        sigalex.spectrogram(rec.data, 250.0, fmax=40, channels="tile"),
    )


def test_cli_stride_gives_finer_windows(trained, eeg, tmp_path, capsys):
    result, _ = trained
    edf = sorted(eeg.glob("*.edf"))[0]
    out = tmp_path / "out"
    args = ["predict", "--checkpoint", str(result.checkpoint), "--device", "cpu"]
    assert cli.main([*args, "--stride-s", "2", "--out", str(out), str(edf)]) == 0
    starts = [float(r["start_s"]) for r in _tsv(out / "windows.tsv")]
    np.testing.assert_allclose(starts, np.arange(0, 37, 2))  # 40 s, 4 s windows every 2 s
    assert json.loads((out / "summary.json").read_text())["stride_s"] == 2.0
    recordings = _tsv(out / "recordings.tsv")
    assert recordings[0]["sample_rate"] == "250" and recordings[0]["notes"] == "n/a"
