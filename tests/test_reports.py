"""``report.html`` of runs and predictions, rendered in a real (headless) Chromium, and
TensorBoard event files of a run.

The runs are the tiny synthetic runs of ``test_train.py`` (64×64 images, two steps an epoch);
the prediction folder is that run's checkpoint on the synthetic EDFs plus a corrupt file.
Browser tests skip, saying why, where no ``chromium`` binary is found.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_train import TINY

from sigalex import cli
from sigalex.config import load_config
from sigalex.errors import ConfigError
from sigalex.reports import EXPLANATIONS_DIR, predict_report, run_report
from sigalex.train import run, validate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (apt-get install chromium)"
)
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _recipe(folder: Path, root: Path, extra: str = "") -> Path:
    path = folder / "tiny.toml"
    path.write_text(TINY.format(root=root, out=folder / "runs") + extra)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synthetic_root):
    """One fold, with TensorBoard."""
    folder = tmp_path_factory.mktemp("run")
    return run(load_config(_recipe(folder, synthetic_root, "tensorboard = true\n")))


@pytest.fixture(scope="module")
def kfold_run(tmp_path_factory, synthetic_root):
    """Two folds (one epoch each)."""
    folder = tmp_path_factory.mktemp("kfold")
    recipe = _recipe(folder, synthetic_root)
    sets = ["eval.split=kfold", "eval.folds=2", "train.epochs=1", "output.tensorboard=true"]
    return run(load_config(recipe, sets))


@pytest.fixture(scope="module")
def predictions(tmp_path_factory, tiny_run, synthetic_root) -> Path:
    """The tiny run's checkpoint on the synthetic EDFs (EDF+ annotations) and a corrupt file."""
    folder = tmp_path_factory.mktemp("predict")
    bad = folder / "broken.edf"
    bad.write_bytes(b"not an edf")
    out = folder / "out"
    status = cli.main(
        [
            "predict", "--checkpoint", str(tiny_run.checkpoint), str(synthetic_root), str(bad),
            "--out", str(out), "--threshold", "0.3", "--report",
        ]
    )  # fmt: skip
    assert status == 3  # one failed
    return out


def _browse(html: Path, tmp: Path, *, height: int = 2000) -> tuple[Path, str]:
    """A screenshot of ``html`` in headless Chromium and its console (stderr)."""
    png = tmp / f"{html.parent.name}-{html.stem}.png"
    done = subprocess.run(
        [
            str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu",
            "--enable-logging=stderr", "--v=0", f"--screenshot={png}",
            f"--window-size=1280,{height}", html.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert png.is_file(), done.stderr[-2000:]
    return png, done.stderr


def _dom(html: Path) -> str:
    done = subprocess.run(
        [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom",
         html.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.stdout


def _not_blank(png: Path) -> None:
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64)
    assert pixels.std() > 20, f"{png}: a blank page (pixel std {pixels.std():.1f})"
    assert (pixels < 200).any(axis=-1).mean() > 0.02  # ink, not only white


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _self_contained(html: str) -> None:
    assert not EXTERNAL.findall(html), EXTERNAL.findall(html)[:3]
    assert "<script src" not in html and "<link" not in html


# ---------------------------------------------------------------------------------------------
# The run's report


def test_run_writes_a_self_contained_report(tiny_run):
    path = tiny_run.run_dir / "report.html"
    html = path.read_text(encoding="utf-8")
    _self_contained(html)
    for text in ("config.toml", "[train]", "Data and split", "subjects", "Confusion matrix",
                 "ROC", "Example test images", "Training curves", "weights used", "random",
                 "device", "seconds", "Explanations"):  # fmt: skip
        assert text in html, text
    assert html.count("data:image/png;base64,") >= 4  # curves, confusion, ROC, examples
    counts = tiny_run.metrics["split_counts"]
    assert sum(counts["test"]["windows"].values()) == tiny_run.metrics["n_test"]
    assert counts["train"]["n_groups"] >= 1


def test_kfold_report_shows_mean_and_sd_and_each_fold(kfold_run):
    html = (kfold_run.run_dir / "report.html").read_text(encoding="utf-8")
    acc = kfold_run.metrics["accuracy"]
    assert f"{acc['mean']:.3f} ± {acc['std']:.3f}" in html
    assert "mean ± sd over 2 folds" in html and "fold-01" in html and "fold-02" in html
    for fold in ("fold-01", "fold-02"):  # TensorBoard: one folder a fold
        assert list((kfold_run.run_dir / "tensorboard" / fold).glob("events.out.tfevents.*"))


def test_explanation_images_have_their_place(tiny_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run.run_dir, run_dir)
    assert "None yet" in (run_dir / "report.html").read_text(encoding="utf-8")
    (run_dir / EXPLANATIONS_DIR).mkdir()
    shutil.copy(run_dir / "plots" / "roc.png", run_dir / EXPLANATIONS_DIR / "saliency_seizure.png")
    html = run_report(run_dir).read_text(encoding="utf-8")
    assert "saliency seizure" in html and "None yet" not in html


def test_a_run_that_leaves_the_test_set_alone_reports_validation(tmp_path, synthetic_root):
    """As ``sigalex tune``'s trials run: no test, no plots; curves drawn from the history."""
    cfg = load_config(_recipe(tmp_path, synthetic_root), ["train.epochs=1"])
    result = run(cfg, evaluate_test=False)
    html = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert "not evaluated" in html and "Training curves" in html
    assert html.count("data:image/png;base64,") == 1


@needs_chromium
def test_run_report_renders_in_chromium(tiny_run, kfold_run, tmp_path):
    for result in (tiny_run, kfold_run):
        png, stderr = _browse(result.run_dir / "report.html", tmp_path)
        _not_blank(png)
        assert not _console_errors(stderr), _console_errors(stderr)
        assert 'data-js="ready"' in _dom(result.run_dir / "report.html")


# ---------------------------------------------------------------------------------------------
# The prediction report


def test_predict_report_lists_recordings_errors_and_plots(predictions):
    html = (predictions / "report.html").read_text(encoding="utf-8")
    _self_contained(html)
    assert "broken.edf" in html and "Errors (1)" in html
    assert "too short for an EDF" in html  # the reason, as errors.tsv gives it
    assert html.count('class="status-ok"') == 4 and "Recordings (5)" in html
    assert html.count("<figure id=") == 4  # one plot per classified recording
    assert "reference event(s) (EDF+ annotations)" in html  # the synthetic EDFs' seizures
    assert "n/a" not in html.split("Recordings (5)")[1].split("Errors")[0]


def test_predict_report_takes_reference_events_and_caps_the_plots(predictions, synthetic_root):
    path = predict_report(predictions, reference=synthetic_root, max_plotted=2)
    html = path.read_text(encoding="utf-8")
    assert html.count("<figure id=") == 2
    assert "2 of 4 classified recordings are plotted" in html
    assert "_events.tsv)" in html  # the reference's file named under its plot
    with pytest.raises(Exception, match="not a folder"):
        predict_report(predictions, reference=synthetic_root / "nothing")


def test_predict_report_of_sharded_runs_waits_for_the_tables(tiny_run, synthetic_root, tmp_path):
    out = tmp_path / "sharded"
    args = ["predict", "--checkpoint", str(tiny_run.checkpoint), str(synthetic_root), "--out",
            str(out), "--report"]  # fmt: skip
    assert cli.main([*args, "--shard", "0/2"]) == 0
    assert (out / "report.html").is_file() == (out / "recordings.tsv").is_file()
    assert cli.main([*args, "--shard", "1/2"]) == 0
    assert (out / "recordings.tsv").is_file() and (out / "report.html").is_file()
    (out / "report.html").unlink()
    assert cli.main(["predict", "--assemble", str(out), "--report"]) == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Recordings (4)" in html and "shards" in html


@needs_chromium
def test_predict_report_renders_and_sorts_in_chromium(predictions, tmp_path):
    png, stderr = _browse(predictions / "report.html", tmp_path)
    _not_blank(png)
    assert not _console_errors(stderr), _console_errors(stderr)
    # Click the "duration (s)" header twice (descending) and read the rows back from the DOM.
    html = (predictions / "report.html").read_text(encoding="utf-8")
    click = (
        "<script>var th = document.querySelectorAll('#recordings-table thead th')[5];"
        "th.click(); th.click();</script></body>"
    )
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html.replace("</body>", click), encoding="utf-8")
    dom = _dom(clicked)
    assert 'data-sorted-by="duration (s)' in dom and 'aria-sort="descending"' in dom
    body = dom.split('id="recordings-table"')[1].split("</tbody>")[0]
    assert body.rfind("broken.edf") > body.rfind("sub-04")  # no duration: last when descending


# ---------------------------------------------------------------------------------------------
# TensorBoard


def test_tensorboard_event_files_hold_the_epochs(tiny_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(tiny_run.run_dir / "tensorboard"))
    board.Reload()
    tags = board.Tags()
    assert {"loss/train", "loss/val", "accuracy/val", "lr"} <= set(tags["scalars"])
    assert "examples/first_batch" in tags["images"]
    history = (tiny_run.run_dir / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    losses = [float(line.split(",")[header.index("train_loss")]) for line in history[1:]]
    logged = board.Scalars("loss/train")
    assert [e.step for e in logged] == list(range(1, len(losses) + 1))
    np.testing.assert_allclose([e.value for e in logged], losses, rtol=1e-5)


def test_tensorboard_key_is_checked(tmp_path, synthetic_root, monkeypatch):
    recipe = _recipe(tmp_path, synthetic_root)
    with pytest.raises(ConfigError, match="output.tensorboard"):
        load_config(recipe, ["output.tensorboard=1"])
    cfg = load_config(recipe, ["output.tensorboard=true"])
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    with pytest.raises(ConfigError, match=r"sigalex\[tensorboard\]") as err:
        validate(cfg)
    assert "\n" not in str(err.value)
    validate(dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, tensorboard=False)))
