"""``sigalex run``: the whole loop on tiny synthetic EDFs, resume, interruption and bad recipes.

AlexNet is slow on a CPU, so these runs use 64×64 images, batches of 8 and two steps an epoch;
they check the plumbing and the run directory, not accuracy (that lives in recipes/benchmarks).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sigalex import cli
from sigalex.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint
from sigalex.config import load_config
from sigalex.errors import ConfigError, DataError
from sigalex.train import Trainer, run, run_recipe, validate
from sigalex.transforms import Augment, freq_warp, spec_augment, time_shift

TINY = """
[data]
dataset = "synthetic"
root = "{root}"
n_recordings = 4
duration_s = 40.0

[windows]
window_s = 4.0
stride_s = 4.0

[transform]
method = "stft"
n_fft = 128
hop_length = 32
fmax = 40.0

[render]
size = 64

[model]
weights = "none"

[train]
epochs = 2
batch_size = 8
max_steps_per_epoch = 2
lr = 0.001
optimizer = "adamw"

[eval]
split = "grouped"
test_fraction = 0.25
val_fraction = 0.25
positive_class = "seizure"

[output]
dir = "{out}"
examples_per_class = 2
"""


@pytest.fixture()
def recipe(tmp_path, synthetic_root) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(root=synthetic_root, out=tmp_path / "runs"))
    return path


def test_run_writes_a_complete_run_directory(recipe):
    result = run_recipe(recipe)
    run_dir = result.run_dir
    assert result.checkpoint == run_dir / "checkpoint.pt"
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "config.toml",
        "checkpoint.pt",
        "history.csv",
        "test_predictions.tsv",
        "metrics.json",
        "plots",
    } <= names
    assert "last.pt" not in names  # a finished run keeps no resume state (output.keep_last)
    assert not [p for p in run_dir.rglob("*.tmp")]  # atomic writes leave no temporaries

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == result.metrics
    for key in ("accuracy", "balanced_accuracy", "f1_macro", "per_class", "sensitivity",
                "specificity", "auroc", "confusion_matrix", "split", "weights_used", "device"):  # fmt: skip
        assert key in metrics, key
    assert metrics["weights_used"] == "random"
    assert "grouped by subject" in metrics["split"]
    cm = np.array(metrics["confusion_matrix"])
    assert cm.sum() == metrics["n_test"] > 0

    history = (run_dir / "history.csv").read_text().strip().splitlines()
    assert history[0].startswith("epoch,train_loss,train_accuracy,val_loss")
    assert len(history) == 3  # header + 2 epochs

    payload = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert payload["format"] == FORMAT and payload["format_version"] == FORMAT_VERSION
    assert "resume" not in payload  # the best checkpoint carries no optimiser
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    spec = ckpt.spec
    assert spec.classes == ("background", "seizure") and spec.positive_class == "seizure"
    assert ckpt.config["transform"] == {
        "method": "stft",
        "n_fft": 128,
        "hop_length": 32,
        "fmax": 40.0,
    }
    assert (spec.sample_rate, spec.n_times, spec.n_channels) == (256.0, 1024, 18)
    assert (spec.window_s, spec.stride_s) == (4.0, 4.0)
    assert ckpt.training["weights_used"] == "random" and ckpt.parent is None

    assert "per_recording" not in metrics  # labels change within a recording: windows only
    assert not (run_dir / "plots" / "confusion_per_recording.png").exists()
    assert load_config(run_dir / "config.toml") == load_config(recipe)
    for plot in ("training.png", "confusion.png", "roc.png", "examples.png"):
        assert (run_dir / "plots" / plot).stat().st_size > 1000


def test_interrupted_run_resumes_from_last_epoch(recipe, monkeypatch, caplog):
    calls = {"n": 0}
    original = Trainer.train_epoch

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second epoch
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe)
    assert "sigalex run --resume" in caplog.text
    run_dir = next((recipe.parent / "runs").iterdir())
    last = load_checkpoint(run_dir / "last.pt")
    assert last.training["epoch"] == 1 and "optimizer" in last.resume
    assert not (run_dir / "metrics.json").exists()

    monkeypatch.setattr(Trainer, "train_epoch", original)
    assert run_recipe(resume=run_dir).run_dir == run_dir  # no recipe needed with resume
    assert len(load_checkpoint(run_dir / "checkpoint.pt").training["history"]) in (1, 2)
    assert len((run_dir / "history.csv").read_text().strip().splitlines()) == 3
    assert not (run_dir / "last.pt").exists()
    assert (run_dir / "metrics.json").is_file()


def test_corrupt_checkpoint_on_resume_fails_before_training(recipe):
    run_dir = recipe.parent / "runs" / "broken"
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(recipe.read_text())
    (run_dir / "last.pt").write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match=r"last\.pt: corrupt or unreadable checkpoint"):
        run_recipe(recipe, resume=run_dir)


def test_bad_recipes_fail_before_training(recipe, tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(Trainer, "fit", no_training)
    cfg = load_config(recipe)
    too_short = dataclasses.replace(cfg, windows=dataclasses.replace(cfg.windows, window_s=0.25))
    with pytest.raises(ConfigError, match="too short"):
        run(too_short)
    nyquist = load_config(recipe, ["transform.fmax=200.0"])
    with pytest.raises(ConfigError, match="Nyquist"):
        run(nyquist)
    few = load_config(recipe, ["eval.test_fraction=0.5", "eval.val_fraction=0.4"])
    with pytest.raises(ConfigError, match="eval.split"):
        run(few)
    monkeypatch.setenv("SIGALEX_DATA", str(tmp_path / "nothing-here"))
    missing = load_config(recipe, ['data.dataset="bonn"', 'data.root=""', "data.download=false"])
    with pytest.raises(DataError, match=r"synthetic-seizure\.toml"):
        run(missing)


def test_cli_run_and_validate(recipe, capsys):
    assert cli.main(["validate", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "40 windows" in out and "grouped by subject" in out
    assert cli.main(["validate", str(recipe), "--set", "train.lr=-1"]) == 1
    assert "train.lr = -1" in capsys.readouterr().err
    assert cli.main(["run", str(recipe), "--set", "train.epochs=1", "--device", "cpu"]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_validate_reports_the_split(recipe):
    data = validate(load_config(recipe))
    split = data.splits[0]
    groups = data.groups
    sides = [set(groups[split.train]), set(groups[split.val]), set(groups[split.test])]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def test_time_shift_is_a_circular_shift():
    x = torch.arange(20, dtype=torch.float32).view(2, 1, 10)
    torch.manual_seed(0)
    y = time_shift(x, 3)
    for i in range(2):
        shift = int((y[i, 0] == x[i, 0, 0]).nonzero()[0, 0])
        torch.testing.assert_close(y[i, 0], torch.roll(x[i, 0], shift))
    assert torch.equal(time_shift(x, 0), x)


def test_spec_augment_masks_whole_bands():
    maps = torch.ones(4, 2, 20, 30)
    out = spec_augment(maps, time_masks=1, freq_masks=1, fraction=0.2)
    assert out.shape == maps.shape
    zero = out == 0
    # a masked column is zero at every frequency and channel; at most 20% of columns/rows
    cols = zero.all(dim=2).all(dim=1)
    rows = zero.all(dim=3).all(dim=1)
    assert (cols.sum(1) <= 6).all() and (rows.sum(1) <= 4).all()
    assert torch.equal(zero, (cols[:, None, None, :] | rows[:, None, :, None]).expand_as(zero))
    assert torch.equal(spec_augment(maps, time_masks=0, freq_masks=0, fraction=0.2), maps)


def test_freq_warp_stretches_each_map_by_its_own_factor():
    ramp = torch.arange(40, dtype=torch.float32).view(1, 1, 40, 1).expand(6, 2, 40, 5)
    torch.manual_seed(0)
    out = freq_warp(ramp.contiguous(), 0.2)
    assert out.shape == ramp.shape
    # a linear ramp stays linear: out[f] = f / factor (zero where the source runs off the top)
    slope = out[:, 0, 1, 0]
    assert ((slope >= 1 / 1.2 - 1e-5) & (slope <= 1 / 0.8 + 1e-5)).all()
    assert len(set(slope.tolist())) == 6  # one factor per example
    f = torch.arange(40, dtype=torch.float32)
    for b in range(6):
        expected = f * slope[b]
        expected[f * slope[b] > 39 + 1e-4] = 0  # drawn from above the top bin
        torch.testing.assert_close(out[b, 1, :, 3], expected, atol=1e-4, rtol=0)
        assert torch.equal(out[b, 0], out[b, 1])  # channels of an example share the factor
    assert torch.equal(freq_warp(ramp, 0.0), ramp)


def test_mixup_mixes_maps_and_keeps_the_own_label_the_main_one():
    maps = torch.rand(8, 1, 10, 12)
    assert Augment(mixup=0.0).drawn(8).mix is None
    assert Augment(mixup=0.4).drawn(1).mix is None  # nothing to mix with
    torch.manual_seed(1)
    aug = Augment(mixup=0.4).drawn(8)
    assert aug.mix is not None and 0.5 <= aug.mix.lam <= 1
    assert sorted(aug.mix.perm.tolist()) == list(range(8))
    lam, perm = aug.mix.lam, aug.mix.perm
    torch.testing.assert_close(aug.maps(maps), lam * maps + (1 - lam) * maps[perm])
    assert Augment(mixup=0.4).mix is None  # the recipe's augmentation stays undrawn


def test_mixup_trains_on_both_labels(recipe, monkeypatch):
    """With mixup the loss of a batch is lam * loss(y) + (1 - lam) * loss(y[perm])."""
    from sigalex.checkpoint import initial_model
    from sigalex.train import prepare_data

    cfg = load_config(recipe, ["train.mixup=0.4", "train.freq_warp=0.1", "train.epochs=1"])
    data = prepare_data(cfg)
    model, _, _ = initial_model(cfg, data.spec)
    trainer = Trainer(cfg, data, data.splits[0], model, device=torch.device("cpu"))
    seen = []
    loss_fn = trainer.loss_fn

    def spy(logits, y):
        seen.append(y.clone())
        return loss_fn(logits, y)

    monkeypatch.setattr(trainer, "loss_fn", spy)
    draws = []
    drawn = Augment.drawn
    monkeypatch.setattr(Augment, "drawn", lambda self, n: draws.append(drawn(self, n)) or draws[-1])
    row = trainer.train_epoch()
    assert np.isfinite(row["train_loss"])
    mixed = [d for d in draws if d.mix is not None]
    assert mixed and len(seen) == len(draws) + len(mixed)
    first = draws[0].mix  # the first batch has 8 examples: mixed
    assert first is not None
    torch.testing.assert_close(seen[1], seen[0][first.perm])


def test_clips_at_other_rates_are_resampled_then_fitted(tmp_path):
    import soundfile

    from sigalex.train import prepare_data, window_dataset

    t8, t16 = np.arange(4000) / 8000, np.arange(16000) / 16000
    for label, freq in (("low", 300.0), ("high", 1200.0)):
        folder = tmp_path / "clips" / label
        folder.mkdir(parents=True)
        for k in range(4):
            soundfile.write(folder / f"a{k}.wav", 0.5 * np.sin(2 * np.pi * freq * t8), 8000)
            soundfile.write(folder / f"b{k}.wav", 0.5 * np.sin(2 * np.pi * freq * t16), 16000)
    recipe = tmp_path / "clips.toml"
    recipe.write_text(
        f'[data]\ndataset = "folder"\nroot = "{tmp_path / "clips"}"\nsample_rate = 8000.0\n'
        '[windows]\nlength_s = 0.75\nfit = "pad_or_crop"\n[eval]\nsplit = "stratified"\n'
        "test_fraction = 0.25\nval_fraction = 0.0\n"
    )
    data = prepare_data(load_config(recipe))
    assert data.sample_rate == 8000.0 and data.n_times == 6000 and data.spec.fit == "pad_or_crop"
    ds = window_dataset(data, np.arange(len(data.windows)))
    for i in range(len(ds)):
        x, _ = ds[i]
        assert x.shape == (1, 6000)
        # 1 s at 16 kHz → 8000 samples at 8 kHz → centre-cropped to 6000 (what is
        # too long is cropped); 0.5 s at 8 kHz → zero-padded. Fitting before resampling would have cut the
        # 16 kHz clip to 6000 samples = 0.375 s and then halved it.
        active = int((x[0].reshape(60, 100).square().mean(1).sqrt() > 0.1).sum())
        assert active in (40, 60), active  # 0.5 s clip padded, or 1 s clip cropped; never 30
        spectrum = np.abs(np.fft.rfft(x[0].numpy()))
        peak_hz = np.argmax(spectrum) * 8000 / 6000
        label = data.classes[int(data.targets[i])]
        assert abs(peak_hz - (300.0 if label == "low" else 1200.0)) < 5


@pytest.mark.needs_data
def test_validation_is_drawn_the_way_the_test_set_was(data_dir, monkeypatch):
    """FSDD's official split tests every speaker, so validation must not hold one out (it would
    then be scored in test without ever being trained on); leave-one-speaker-out validates on a
    whole unseen speaker, as its test does."""
    from sigalex.train import prepare_data

    monkeypatch.setenv("SIGALEX_DATA", str(data_dir))
    recipe = Path(__file__).resolve().parents[1] / "pipelines" / "speech-digits.toml"
    official = prepare_data(load_config(recipe)).splits[0]
    data = prepare_data(load_config(recipe, ["eval.split=logo"]))
    g = data.groups
    assert set(g[official.train]) == set(g[official.test]) == set(g[official.val])
    assert len(set(g[official.train])) == 6
    assert "training recordings" in official.description
    recordings = np.array([w.recording for w in data.windows], dtype=object)
    assert not set(recordings[official.val]) & set(recordings[official.train])
    assert np.bincount(data.targets[official.val]).tolist() == [27] * 10  # stratified by digit
    for fold in data.splits:
        sides = [set(g[fold.train]), set(g[fold.val]), set(g[fold.test])]
        assert len(sides[1]) == 1 and len(sides[2]) == 1
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        assert "training speakers" in fold.description


def test_clips_cut_into_windows_are_also_scored_per_recording(tmp_path):
    """Each 1 s clip gives 4 windows; metrics.json adds clip-level figures from the mean window
    probability, one row per test clip."""
    import soundfile

    t = np.arange(8000) / 8000
    rng = np.random.default_rng(0)
    for label, freq in (("low", 300.0), ("high", 1500.0)):
        folder = tmp_path / "clips" / label
        folder.mkdir(parents=True)
        for k in range(8):
            x = 0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.size)
            soundfile.write(folder / f"c{k}.wav", x, 8000)
    recipe = tmp_path / "clips.toml"
    recipe.write_text(
        f'[data]\ndataset = "folder"\nroot = "{tmp_path / "clips"}"\n'
        "[windows]\nwindow_s = 0.25\n"
        '[transform]\nmethod = "stft"\nn_fft = 128\nhop_length = 32\n'
        '[render]\nsize = 64\n[model]\nweights = "none"\n'
        '[train]\nepochs = 1\nbatch_size = 8\nmax_steps_per_epoch = 2\noptimizer = "adamw"\n'
        'lr = 0.001\n[eval]\nsplit = "grouped"\ntest_fraction = 0.25\nval_fraction = 0.25\n'
        f'[output]\ndir = "{tmp_path / "runs"}"\nexamples_per_class = 1\n'
    )
    run_dir = run_recipe(recipe).run_dir
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_test"] == 16 and np.sum(metrics["confusion_matrix"]) == 16  # windows
    per_rec = metrics["per_recording"]
    assert per_rec["n_recordings"] == 4 and np.sum(per_rec["confusion_matrix"]) == 4  # clips
    assert per_rec["aggregation"] == "mean of window probabilities per recording"
    for key in ("accuracy", "balanced_accuracy", "auroc", "per_class"):
        assert key in per_rec, key
    assert (run_dir / "plots" / "confusion_per_recording.png").stat().st_size > 1000
