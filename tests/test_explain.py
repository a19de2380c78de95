"""``sigalex explain``: heat maps on the transform's (frequency, time) grid, whether they point
at the seizure, the Adebayo sanity check, the command line and the run directory's bands view.

The models are compact AlexNets (``model.width = 0.25``) on 64×64 images. The sensitivity tests
train one for 60 steps (about 15 s on two CPU cores) on windows of the synthetic EEG generator
behind the tiny synthetic recipe (3 Hz spike-and-wave of large amplitude); it then classifies
held-out windows nearly perfectly. At 64 px the last convolution is 3×3 cells, so Grad-CAM
only localises coarsely: the frequency check uses Integrated Gradients (pixel-level), the
time check both methods.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

pytest.importorskip("captum", reason="needs the explain extra: pip install 'sigalex[explain]'")

from sigalex import cli
from sigalex.checkpoint import new_checkpoint, save_checkpoint
from sigalex.config import from_dict
from sigalex.errors import ParameterError, SigalexError
from sigalex.explain import explain_windows
from sigalex.explain.attribution import image_to_map
from sigalex.inference import Predictor
from sigalex.models import ModelSpec, SignalClassifier, build_frontend, build_network
from sigalex.synthetic import make_synthetic_recording

RATE, N_TIMES, N_CHANNELS = 256.0, 1024, 2
STFT = {"method": "stft", "n_fft": 128, "hop_length": 32, "fmax": 40.0}


def _model(transform=STFT, render=None, n_channels=N_CHANNELS, seed=0) -> SignalClassifier:
    cfg = from_dict({
        "transform": transform, "render": {"size": 64, **(render or {})},
        "model": {"weights": "none", "width": 0.25}, "eval": {"positive_class": "seizure"},
    })  # fmt: skip
    spec = ModelSpec(
        classes=("background", "seizure"), sample_rate=RATE, n_channels=n_channels,
        n_times=N_TIMES, positive_class="seizure", window_s=4.0, stride_s=4.0,
        channel_names=tuple(f"EEG{i}" for i in range(n_channels)),
    )  # fmt: skip
    torch.manual_seed(seed)
    network = build_network("alexnet", num_classes=2, width=0.25)
    model = SignalClassifier(build_frontend(cfg, RATE), network, spec).eval()
    model.recipe = cfg  # type: ignore[attr-defined]  (for _save)
    return model


def _save(model: SignalClassifier, path: Path) -> Path:
    return save_checkpoint(path, new_checkpoint(model, model.recipe, training={"epoch": 1}))  # type: ignore[attr-defined]


def _recording(seed: int, n_channels: int = N_CHANNELS, seizure=(20.0, 20.0)):
    return make_synthetic_recording(60, n_channels=n_channels, seizures=[seizure], seed=seed)


def _labelled_windows(seeds) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows 2 s apart: wholly in the seizure (1) or wholly outside it (0)."""
    xs, ys = [], []
    for seed in seeds:
        data = _recording(seed).data
        for s in np.arange(0.0, 56.01, 2.0):
            label = 1 if 20 <= s <= 36 else 0 if (s <= 16 or s >= 40) else None
            if label is not None:
                xs.append(data[:, int(s * RATE) : int(s * RATE) + N_TIMES])
                ys.append(label)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys)


@pytest.fixture(scope="module")
def trained() -> SignalClassifier:
    """A compact AlexNet trained to find the synthetic seizures (60 steps of Adam)."""
    model = _model()
    x, y = _labelled_windows(range(6))
    with torch.no_grad():
        images = model.frontend(x, image_dtype="float")
    net = model.network.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    weight = torch.tensor([1.0, float((y == 0).sum() / (y == 1).sum())])
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        idx = torch.randint(0, len(x), (16,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(images[idx]), y[idx], weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xt, yt = _labelled_windows([100, 101])
    accuracy = float(((model.probabilities(xt)[:, 1] > 0.5).long() == yt).float().mean())
    assert accuracy > 0.9, f"the test model did not learn the seizures ({accuracy=:.2f})"
    return model


# ---------------------------------------------------------------------------------------------
# (a) axes


@pytest.mark.parametrize(
    "transform",
    [
        STFT,
        {"method": "mel", "n_fft": 128, "hop_length": 16, "n_mels": 32, "fmax": 60.0},
        {"method": "cwt", "fmin": 1.0, "fmax": 40.0, "n_freqs": 24},
    ],
    ids=["stft", "mel", "cwt"],
)
def test_maps_lie_on_the_transform_s_frequencies_and_times(transform):
    model = _model(transform)
    x = torch.from_numpy(_recording(1).data[None, :, :N_TIMES].copy()).repeat(3, 1, 1)
    starts = np.array([0.0, 4.0, 8.0])
    exp = explain_windows(model, x, method="gradcam", start_s=starts)
    tf = model.frontend.transform
    f, t = tf.output_shape(N_TIMES)
    assert exp.maps.shape == (3, f, t) and exp.image_maps.shape == (3, 64, 64)
    np.testing.assert_allclose(exp.frequencies_hz, tf.frequencies.double().numpy())
    np.testing.assert_allclose(exp.times_s, starts[:, None] + tf.times(N_TIMES).numpy()[None])
    assert exp.target == [model.classes[k] for k in exp.probabilities.argmax(1)]  # no target
    # The map grid keeps the image's attribution in total (the adjoint of the resize).
    np.testing.assert_allclose(exp.maps.sum((1, 2)), exp.image_maps.sum((1, 2)), rtol=1e-4)


def test_image_rows_go_back_to_their_frequencies_and_tiles_to_their_channels():
    """Render flips low frequencies to the bottom and tiles channels row-major: attribution on
    the image's bottom rows lands on the lowest frequencies, on the top-left tile on channel 0."""
    heat = torch.zeros(1, 64, 64)
    heat[0, 48:, :] = 1.0  # the bottom quarter of one image
    maps = image_to_map(heat, (20, 30), (1, 1, 1))[0, 0].numpy()
    rows = maps.sum(1)
    assert rows[:5].sum() > 0.95 * rows.sum() and maps.sum() == pytest.approx(48 * 64 / 3, 1e-4)
    tiled = torch.zeros(1, 64, 64)
    tiled[0, :32, :32] = 1.0  # the top-left tile of a 2×2 grid of 3 channels
    per_channel = image_to_map(tiled, (20, 30), (3, 2, 2))[0].numpy().sum((1, 2))
    assert per_channel[0] > 0.95 * per_channel.sum()


def test_predictor_explain_on_a_recording_and_tiles(tmp_path):
    model = _model(render={"channels": "tile"}, n_channels=4)
    predictor = Predictor(model, device="cpu")
    rec = _recording(2, n_channels=4, seizure=(4.0, 6.0))
    exp = predictor.explain(rec.data[:, : int(12 * RATE)], sample_rate=RATE)
    f, t = model.frontend.transform.output_shape(N_TIMES)
    assert exp.maps.shape == (3, 4, f, t) and exp.channel_names == [f"EEG{i}" for i in range(4)]
    np.testing.assert_allclose(exp.start_s, [0.0, 4.0, 8.0])
    assert exp.target == ["seizure"] * 3  # the positive class by default
    np.testing.assert_allclose(exp.probabilities, predictor.predict_windows(
        np.stack([rec.data[:, int(s * RATE) : int(s * RATE) + N_TIMES] for s in (0, 4, 8)])
    ), atol=1e-5)  # fmt: skip
    with pytest.raises(ParameterError, match="unknown class 'nope'.*background, seizure"):
        predictor.explain(rec.data[None, :, :N_TIMES], target="nope")


# ---------------------------------------------------------------------------------------------
# (b) the maps point at the seizure; (c) and at the trained weights


def test_seizure_attribution_falls_on_the_low_band(trained):
    """On windows wholly in a seizure, Integrated Gradients put at least twice the low band's
    share of rows (< 10 Hz: 5 of 21) on it (measured: about 0.5 against 0.24)."""
    x, y = _labelled_windows([200])
    seizure = x[y == 1][:6]
    exp = explain_windows(trained, seizure, target="seizure", method="integrated-gradients")
    assert (exp.probabilities[:, 1] > 0.5).all()
    low = exp.frequencies_hz < 10.0
    share = exp.maps[:, low].sum((1, 2)) / exp.maps.sum((1, 2))
    assert share.mean() > 2 * low.mean(), (share, low.mean())


@pytest.mark.parametrize("method", ["gradcam", "integrated-gradients"])
def test_seizure_attribution_falls_on_the_seizure_s_seconds(trained, method):
    """Windows half and three quarters covered by a seizure: more of the attribution inside
    the seizure's seconds than the share of the window it covers (measured: 0.71-0.91 against
    0.52-0.76)."""
    rec = _recording(300)  # a seizure from 20 s
    starts = np.array([18.0, 19.0])
    x = torch.from_numpy(np.stack([rec.data[:, int(s * RATE) : int(s * RATE) + N_TIMES]
                                   for s in starts]))  # fmt: skip
    exp = explain_windows(trained, x, target="seizure", method=method, start_s=starts)
    assert (exp.probabilities[:, 1] > 0.5).all()
    inside = exp.times_s >= 20.0
    for i in range(len(starts)):
        share = exp.maps[i][:, inside[i]].sum() / exp.maps[i].sum()
        assert share > inside[i].mean() + 0.1, (i, share, inside[i].mean())


@pytest.mark.parametrize("method", ["gradcam", "integrated-gradients"])
def test_random_weights_give_other_maps(trained, method):
    """Adebayo et al.'s model randomisation test: the same windows through the network with
    its weights re-initialised give maps of low rank correlation with the trained model's
    (measured: Integrated Gradients 0.18-0.31, as gradient × input keeps some of the image;
    Grad-CAM 0.02, or no map at all where the random network's ReLU leaves none)."""
    x, y = _labelled_windows([200])
    windows = x[y == 1][:4]
    ours = explain_windows(trained, windows, target="seizure", method=method).maps
    random = _model(seed=123)
    random.frontend = trained.frontend
    theirs = explain_windows(random, windows, target="seizure", method=method).maps
    rho = [
        0.0 if a.std() == 0 or b.std() == 0 else spearmanr(a.ravel(), b.ravel()).statistic
        for a, b in zip(ours, theirs, strict=True)
    ]  # a map of zeros (Grad-CAM's ReLU can leave one) has no correlation with anything
    assert np.mean(rho) < 0.5, rho


# ---------------------------------------------------------------------------------------------
# (d) the command line


def _tsv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_cli_writes_pngs_and_tables_and_reports_a_bad_input(trained, tmp_path, capsys):
    ckpt = _save(trained, tmp_path / "m.pt")
    rec = _recording(400, seizure=(10.0, 12.0))
    np.save(tmp_path / "night.npy", rec.data[:, : int(32 * RATE)])
    (tmp_path / "broken.npy").write_text("not numpy")
    out = tmp_path / "why"
    args = ["explain", "--checkpoint", str(ckpt), str(tmp_path / "night.npy"),
            str(tmp_path / "broken.npy"), "--out", str(out), "--sample-rate", "256",
            "--max-windows", "3"]  # fmt: skip
    assert cli.main(args) == 3
    rows = _tsv(out / "explanations.tsv")
    assert len(rows) == 3 and all(r["class"] == "seizure" for r in rows)
    starts = [float(r["start_s"]) for r in rows]
    assert starts == sorted(starts) and all(8 <= s <= 20 for s in starts)  # the seizure's
    for r in rows:
        assert r["png"] == f"night_{float(r['start_s']):g}s_seizure.png"
        assert (out / r["png"]).stat().st_size > 5000
        assert float(r["start_s"]) <= float(r["peak_s"]) <= float(r["end_s"])
        assert 0 <= float(r["peak_hz"]) <= 40 and r["method"] == "gradcam"
    errors = _tsv(out / "errors.tsv")
    assert [Path(e["recording"]).name for e in errors] == ["broken.npy"]
    assert "see" in capsys.readouterr().err
    # A span, another class, Integrated Gradients.
    args = ["explain", "--checkpoint", str(ckpt), str(tmp_path / "night.npy"), "--out",
            str(tmp_path / "span"), "--sample-rate", "256", "--start-s", "24", "--duration-s",
            "4", "--class", "background", "--method", "integrated-gradients"]  # fmt: skip
    assert cli.main(args) == 0
    rows = _tsv(tmp_path / "span" / "explanations.tsv")
    assert [(r["start_s"], r["class"]) for r in rows] == [("24", "background")]
    assert not list(out.glob("*.tmp*")) and not list((tmp_path / "span").glob("*.tmp*"))
    # Two recordings with one name in two folders: their pictures do not overwrite each other.
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "night.npy", rec.data[:, : int(32 * RATE)])
    args = ["explain", "--checkpoint", str(ckpt), str(tmp_path / "a" / "night.npy"),
            str(tmp_path / "b" / "night.npy"), "--out", str(tmp_path / "twins"), "--sample-rate",
            "256", "--max-windows", "1"]  # fmt: skip
    assert cli.main(args) == 0
    pngs = [r["png"] for r in _tsv(tmp_path / "twins" / "explanations.tsv")]
    assert len(set(pngs)) == 2 and all(png.startswith("night__") for png in pngs)
    assert len(list((tmp_path / "twins").glob("*.png"))) == 2


def test_cli_one_line_errors(trained, tmp_path, capsys, monkeypatch):
    ckpt = _save(trained, tmp_path / "m.pt")
    np.save(tmp_path / "a.npy", _recording(1).data[:, : int(8 * RATE)])
    base = ["explain", "--checkpoint", str(ckpt), str(tmp_path / "a.npy"), "--out",
            str(tmp_path / "o")]  # fmt: skip
    for extra, message in (
        (["--class", "spike"], "unknown class 'spike'; the model's classes: background, seizure"),
        (["--max-windows", "0"], "--max-windows 0: must be a positive integer"),
    ):
        assert cli.main([*base, *extra]) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"sigalex: error: {message}", err
    assert cli.main(["explain", str(tmp_path / "a.npy"), "--out", str(tmp_path / "o")]) == 1
    assert "--checkpoint is required" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "captum.attr", None)
    assert cli.main(base) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'sigalex[explain]'" in err
    with pytest.raises(SigalexError, match="sigalex\\[explain\\]"):
        explain_windows(trained, torch.zeros(1, N_CHANNELS, N_TIMES))


def test_importing_sigalex_does_not_import_captum():
    import subprocess
    import sys

    code = ("import sys, sigalex, sigalex.inference, sigalex.cli; "
            "print([m for m in sys.modules if m.startswith(('captum', 'sigalex.explain'))])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# the run directory: the dataset view

TINY_RUN = """
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
width = 0.25

[train]
epochs = 1
batch_size = 8
max_steps_per_epoch = 2

[eval]
split = "grouped"
test_fraction = 0.25
val_fraction = 0.25
positive_class = "seizure"

[output]
dir = "{out}"
examples_per_class = 1
"""


def test_run_directory_gives_the_bands_view(tmp_path, capsys):
    from sigalex.synthetic import write_synthetic_dataset
    from sigalex.train import run_recipe

    root = tmp_path / "synthetic"
    write_synthetic_dataset(root, 4, duration_s=40.0, n_channels=4, n_seizures=(1, 1),
                            seizure_duration_s=(10, 14))  # fmt: skip
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RUN.format(root=root, out=tmp_path / "runs"))
    run_dir = run_recipe(recipe).run_dir
    assert not (run_dir / "explanations").exists()  # the library's run: no explanations
    # `sigalex run` adds them to the run's report (Captum is installed)
    assert cli.main(["run", str(recipe)]) == 0
    (cli_run,) = (p for p in (tmp_path / "runs").iterdir() if p != run_dir)
    made = sorted(p.name for p in (cli_run / "explanations").iterdir())
    assert "bands.png" in made and any(n.startswith("example_") for n in made)
    html = (cli_run / "report.html").read_text()
    assert "Explanations" in html and html.count("data:image/png;base64") >= 5
    out = tmp_path / "bands"
    assert cli.main(["explain", str(run_dir), "--out", str(out), "--max-windows", "6"]) == 0
    assert "test windows explained" in capsys.readouterr().out
    assert (out / "bands.png").stat().st_size > 5000
    rows = _tsv(out / "bands.tsv")
    assert next(iter(rows[0])) == "frequency_hz" and len(rows) == 21  # 0..40 Hz in 2 Hz rows
    classes = list(rows[0])[1:]
    assert classes and set(classes) <= {"background", "seizure"}
    for c in classes:  # each class's profile is a mean of shares: it sums to 1
        assert sum(float(r[c]) for r in rows) == pytest.approx(1.0, abs=1e-3)
    assert cli.main(["explain", str(run_dir), "--out", str(out), "--class", "seizure"]) == 1
    assert "--class does not apply to a run directory" in capsys.readouterr().err


def test_explanations_select_and_peaks(trained):
    x, _ = _labelled_windows([200])
    exp = explain_windows(trained, x[:3], method="gradcam")
    sub = exp.select([2, 0])
    assert len(sub) == 2 and np.array_equal(sub.maps[1], exp.maps[0])
    for (hz, s), i in zip(sub.peaks(), [2, 0], strict=True):
        assert hz in exp.frequencies_hz and s in exp.times_s[i]
    assert dataclasses.is_dataclass(exp)
