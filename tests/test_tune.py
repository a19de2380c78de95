"""``sigalex tune``: the [tune] space and its errors, a small study end to end, resuming, the
final run, workers sharing a study, a killed worker, a diverging trial and pruning.

Trials are tiny (synthetic EEG, 64×64 images, one or two epochs of one step): they check the
plumbing, never accuracy. The test set must never be read during the search: the test-set
evaluation fails here for every run but the final one.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from sigalex import cli  # noqa: E402
from sigalex.config import load_config, to_toml  # noqa: E402
from sigalex.errors import ConfigError  # noqa: E402
from sigalex.train import Trainer  # noqa: E402
from sigalex.train.tune import study as study_mod  # noqa: E402
from sigalex.train.tune import trial as trial_mod  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

RECIPE = """
[data]
dataset = "synthetic"
root = "{root}"
n_recordings = 4
duration_s = 40.0

[windows]
window_s = 4.0

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
epochs = {epochs}
batch_size = 8
max_steps_per_epoch = {steps}
lr = 0.001
optimizer = "adamw"
num_workers = 0

[eval]
split = "grouped"
test_fraction = 0.25
val_fraction = 0.25
positive_class = "seizure"

[output]
dir = "{out}"
examples_per_class = 1

[tune]
trials = 3
seed = 1
{space}
"""

SPACE = """\
"train.lr" = {low = 1e-4, high = 1e-2, log = true}
"model.dropout" = {low = 0.2, high = 0.7}
"train.optimizer" = ["adamw", "sgd"]
"""


@pytest.fixture(scope="module")
def eeg(tmp_path_factory) -> Path:
    from sigalex.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("eeg")
    write_synthetic_dataset(
        root, 4, duration_s=40.0, n_seizures=(1, 1), seizure_duration_s=(10, 14)
    )
    return root


def write_recipe(
    tmp_path: Path, eeg: Path, *, space: str = SPACE, epochs: int = 1, steps: int = 1
) -> Path:
    path = tmp_path / "tiny.toml"
    text = RECIPE.format(root=eeg, out=tmp_path / "runs", epochs=epochs, steps=steps, space=space)
    path.write_text(text)
    return path


@pytest.fixture()
def test_set_guard(monkeypatch):
    """Every test-set evaluation, recorded; outside a final run it fails the test."""
    scored = []
    original = Trainer.predict

    def predict(self, loader):
        if loader is self.test_loader:
            assert self.cfg.output.name == "final", "the search read the test set"
            scored.append(self.cfg.output.name)
        return original(self, loader)

    monkeypatch.setattr(Trainer, "predict", predict)
    return scored


def rows(tune_dir: Path) -> list[dict]:
    with open(tune_dir / "trials.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def tune_cli(recipe: Path, *args: str) -> int:
    return cli.main(["tune", str(recipe), "--device", "cpu", *args])


# ---------------------------------------------------------------------------------------------
# The space


@pytest.mark.parametrize(
    "space, message",
    [
        ('"train.lrr" = {low = 1e-4, high = 1e-2}', r"unknown key 'train\.lrr' \(did you mean 'lr'\?\)"),
        ('"train.lr" = {low = -1.0, high = 1e-2}', r"train\.lr = -1\.0: must be > 0"),
        ('"transform.method" = ["stft", "cwtt"]', r'"transform\.method" = \'cwtt\''),
        ('"train.lr" = {low = 1e-2, high = 1e-4}', r'tune\."train\.lr": low = 0\.01 is above high'),
        ('"train.epochs" = {low = 1, high = 2.5}', r'tune\."train\.epochs"\.high = 2\.5: must be an integer'),
        ('"eval.val_fraction" = [0.25, 0.8]', r"eval\.val_fraction\" = 0\.8: .*leave data to train on"),
        ('"output.dir" = ["a", "b"]', r"\[output\] holds no hyperparameters"),
        ('"transform.n_mels" = [32, 64]', r"takes n_mels \(a parameter of mel\)"),
    ],
)  # fmt: skip
def test_a_bad_space_is_a_recipe_error_naming_the_key(tmp_path, eeg, space, message):
    recipe = write_recipe(tmp_path, eeg, space=space)
    with pytest.raises(ConfigError, match=message):
        load_config(recipe)


def test_bad_spaces_stop_before_the_first_trial(tmp_path, eeg, monkeypatch, capsys):
    """Through the command: one line naming the key, no trial, no tune folder; a space the
    recipe accepts but the data does not (fmax above Nyquist at 256 Hz) too."""

    def no_training(*args, **kwargs):
        raise AssertionError("a trial started")

    monkeypatch.setattr(Trainer, "fit", no_training)
    for space, key in [
        ('"train.lr" = {low = 1e-2, high = 1e-4}', "train.lr"),
        ('"transform.fmax" = {low = 20.0, high = 200.0}', "transform.fmax"),
        ('"render.size" = [16, 64]', "render.size"),
    ]:
        recipe = write_recipe(tmp_path, eeg, space=space)
        assert tune_cli(recipe) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("sigalex: error:") and key in err and "\n" not in err, err
    assert not (tmp_path / "tune").exists()
    empty = write_recipe(tmp_path, eeg, space="")
    assert tune_cli(empty) == 1
    assert "[tune] has no dimensions" in capsys.readouterr().err


def test_run_and_validate_accept_a_recipe_with_its_space(tmp_path, eeg, capsys):
    recipe = write_recipe(tmp_path, eeg)
    cfg = load_config(recipe)
    assert set(cfg.tune.space) == {"train.lr", "model.dropout", "train.optimizer"}
    again = tmp_path / "again.toml"
    again.write_text(to_toml(cfg))
    assert load_config(again) == cfg  # [tune] round-trips
    assert cli.main(["validate", str(recipe)]) == 0
    assert ": OK" in capsys.readouterr().out
    bad = write_recipe(tmp_path, eeg, space='"train.lr" = {low = 1e-2, high = 1e-4}')
    assert cli.main(["validate", str(bad), "--config-only"]) == 1  # checked, not ignored
    assert "train.lr" in capsys.readouterr().err
    override = load_config(recipe, ["tune.train.lr={low=1e-3, high=1e-1}", "tune.trials=5"])
    assert override.tune.space["train.lr"].high == 0.1 and override.tune.trials == 5
    assert "tune" not in json.dumps(cfg.tune.space["train.lr"].to_toml())  # plain TOML


def test_without_optuna_the_command_says_what_to_install(tmp_path, eeg, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a)
    )
    assert tune_cli(write_recipe(tmp_path, eeg)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'sigalex[tune]'" in err


def test_importing_sigalex_and_its_training_does_not_import_optuna():
    code = "import sys, sigalex, sigalex.train, sigalex.cli; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# A study


@pytest.mark.filterwarnings("ignore:Fixed parameter train.lr:UserWarning")  # the queued 1e9
def test_a_small_study_end_to_end(tmp_path, eeg, monkeypatch, test_set_guard, capsys):
    """Three trials on validation only, data prepared once, the final run scoring the test set
    once; trials.csv, best.toml (valid as is), summary.json and plots; a rerun asking for more
    trials continues the numbering (a diverging trial fails with its reason and the study goes
    on), and --final on a finished study scores nothing again."""
    prepared = []
    original = trial_mod.prepare_data
    monkeypatch.setattr(trial_mod, "prepare_data", lambda cfg: prepared.append(1) or original(cfg))
    recipe = write_recipe(tmp_path, eeg, steps=2)
    assert tune_cli(recipe) == 0
    out = capsys.readouterr().out
    tune_dir = tmp_path / "tune" / "tiny"
    assert f"wrote {tune_dir}" in out and "best trial" in out and "test accuracy" in out
    assert len(prepared) == 1  # once for the process: no tuned key touches the data
    assert test_set_guard == ["final"]

    table = rows(tune_dir)
    assert [r["number"] for r in table] == ["0", "1", "2"]
    assert {"state", "value", "train.lr", "model.dropout", "train.optimizer", "duration_s",
            "pruned_at_epoch", "reason"} <= set(table[0])  # fmt: skip
    assert all(r["state"] == "complete" and 0 <= float(r["value"]) <= 1 for r in table)
    for r in table:  # a trial keeps its recipe, history and validation metrics, not weights
        run_dir = Path(r["run_dir"])
        assert (run_dir / "metrics.json").is_file() and not list(run_dir.rglob("*.pt"))
        assert json.loads((run_dir / "metrics.json").read_text())["test"].startswith("not")

    summary = json.loads((tune_dir / "summary.json").read_text())
    assert summary["trials"] == {"complete": 3} and summary["metric"].startswith("validation")
    best = summary["best"]
    assert best["value"] == max(float(r["value"]) for r in table)
    final = summary["final"]
    assert final["trial"] == best["trial"] and 0 <= final["test"]["accuracy"] <= 1
    assert Path(final["run_dir"]).name.startswith("final-")
    assert (Path(final["run_dir"]) / "test_predictions.tsv").is_file()

    best_toml = tune_dir / "best.toml"
    cfg = load_config(best_toml)
    assert cfg.train.lr == pytest.approx(best["params"]["train.lr"])
    assert cfg.train.optimizer == best["params"]["train.optimizer"]
    assert cfg.tune.space.keys() == load_config(recipe).tune.space.keys()
    assert cli.main(["validate", str(best_toml)]) == 0
    assert ": OK" in capsys.readouterr().out
    assert (tune_dir / "study.db").is_file()
    for plot in ("history.png", "slice.png", "importances.png"):
        assert (tune_dir / "plots" / plot).stat().st_size > 1000, plot

    # Rerunning the same command continues the study, numbering on: trial 3 (queued here with
    # a learning rate that diverges at its second step) fails with its reason, trial 4 runs.
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tune_dir / 'study.db'}")
    study.enqueue_trial({"train.lr": 1e9})
    assert tune_cli(recipe, "--trials", "5") == 0
    table = rows(tune_dir)
    assert [r["number"] for r in table] == ["0", "1", "2", "3", "4"]
    assert [r["state"] for r in table[3:]] == ["fail", "complete"]
    assert "the loss became" in table[3]["reason"] and "lower train.lr" in table[3]["reason"]
    best_now = json.loads((tune_dir / "summary.json").read_text())["best"]["trial"]
    assert test_set_guard == ["final"] * (2 if best_now == 4 else 1)  # once per best recipe
    scored = len(test_set_guard)
    assert tune_cli(recipe, "--trials", "5", "--final") == 0
    assert len(test_set_guard) == scored  # the final run of the same best trial is not redone
    assert len(rows(tune_dir)) == 5


def test_final_trains_the_best_of_an_unfinished_study_once(
    tmp_path, eeg, monkeypatch, test_set_guard, capsys
):
    """Ctrl-C fails the running trial and queues its point again; a rerun stopped by
    --timeout-s runs that point and no more; --final then trains the best once."""
    original = Trainer.train_epoch

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    recipe = write_recipe(tmp_path, eeg)
    assert tune_cli(recipe) == 130
    err = capsys.readouterr().err
    assert "queued again; run the same command" in err and "sigalex run --resume" not in err
    tune_dir = tmp_path / "tune" / "tiny"
    assert [(r["state"], r["reason"]) for r in rows(tune_dir)] == [
        ("fail", "interrupted"), ("waiting", "")
    ]  # fmt: skip
    monkeypatch.setattr(Trainer, "train_epoch", original)
    assert tune_cli(recipe, "--timeout-s", "0.5") == 0  # one trial starts, then time is up
    table = rows(tune_dir)
    assert [r["state"] for r in table] == ["fail", "complete"] and test_set_guard == []
    assert table[0]["retried_as"] == "1" and table[1]["train.lr"] == table[0]["train.lr"]
    assert "1 of 3 trials done" in capsys.readouterr().out
    assert tune_cli(recipe, "--final") == 0
    assert test_set_guard == ["final"] and len(rows(tune_dir)) == 2
    assert json.loads((tune_dir / "summary.json").read_text())["final"]["trial"] == 1
    other = write_recipe(tmp_path, eeg, space='"train.lr" = [0.001, 0.01]')
    assert tune_cli(other, "--final") == 1  # another space: not this study
    assert "another recipe" in capsys.readouterr().err


def test_a_study_from_an_older_sigalex_goes_on_with_new_keys_at_their_defaults(tmp_path):
    from sigalex.config import Config, with_values

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = study_mod.open_study(Config(), "old", storage)
    stored = study_mod.shared_recipe(Config())
    del stored["train"]["mixup"]  # as a sigalex before train.mixup wrote it
    study.set_user_attr(study_mod.RECIPE_ATTR, stored)
    study_mod.open_study(Config(), "old", storage)  # mixup = 0.0, the default: the same recipe
    with pytest.raises(ConfigError, match=r"another recipe \(differs in train\.mixup\)"):
        study_mod.open_study(with_values(Config(), {"train.mixup": 0.2}), "old", storage)


def test_the_pruner_lets_every_trial_train_its_warm_up_epochs():
    from sigalex.config import TuneConfig

    pruner = study_mod._pruner(TuneConfig(pruner="median", prune_after=3))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for _ in range(6):  # good trials: 0.9 at every epoch
        trial = study.ask()
        for step in range(1, 11):
            trial.report(0.9, step)
        study.tell(trial, 0.9)
    bad = study.ask()
    stops = []
    for step in range(1, 11):
        bad.report(0.1, step)
        stops.append(bad.should_prune())
    assert stops[:3] == [False, False, False]  # never in its first 3 epochs
    assert any(stops[3:])  # and then, far behind, it is stopped


def test_pruning_stops_a_trial_early(tmp_path, eeg, monkeypatch, test_set_guard):
    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    monkeypatch.setattr(study_mod, "_pruner", lambda tune: AlwaysPrune())
    epochs = []
    original = Trainer.train_epoch
    monkeypatch.setattr(Trainer, "train_epoch", lambda self: epochs.append(1) or original(self))
    recipe = write_recipe(tmp_path, eeg, epochs=3)
    assert tune_cli(recipe, "--trials", "2") == 0
    table = rows(tmp_path / "tune" / "tiny")
    assert [r["state"] for r in table] == ["pruned", "pruned"]
    assert [r["pruned_at_epoch"] for r in table] == ["1", "1"]
    assert len(epochs) == 2  # one epoch of three each
    assert test_set_guard == []  # no complete trial: nothing to train for the test set


def test_the_pruning_callback_reports_every_epoch():
    reports = []

    class FakeTrial:
        def report(self, value, step):
            reports.append((step, value))

        def should_prune(self):
            return len(reports) == 2

    class FakeTrainer:
        epoch = 2

    callback = trial_mod.PruneOnEpoch(FakeTrial(), "balanced_accuracy")  # pyright: ignore
    callback.on_epoch_end(FakeTrainer(), {"val_balanced_accuracy": 0.5})
    with pytest.raises(optuna.TrialPruned, match="after epoch 2"):
        callback.on_epoch_end(FakeTrainer(), {"val_balanced_accuracy": 0.75})
    assert reports == [(1, 0.5), (2, 0.75)] and callback.pruned_at == 2


# ---------------------------------------------------------------------------------------------
# Workers


def _worker(recipe: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.Popen(
        [sys.executable, "-m", "sigalex", "tune", str(recipe), "--device", "cpu", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_workers_share_one_study(tmp_path, eeg):
    """Two processes on one journal file finish the study's trials between them, every trial
    number once, and one of them runs the final."""
    recipe = write_recipe(tmp_path, eeg)
    storage = f"journal:{tmp_path / 'study.log'}"
    workers = [_worker(recipe, "--storage", storage, "--trials", "3") for _ in range(2)]
    outs = [w.communicate(timeout=240) for w in workers]
    for w, (_, err) in zip(workers, outs, strict=True):
        assert w.returncode == 0, err
    study = optuna.load_study(
        study_name="tiny",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log"))
        ),
    )
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 3 <= len(complete) <= 4  # one over when both start their last trial at once
    assert len(list((tmp_path / "tune" / "tiny").glob("final-*"))) == 1
    assert "final" in study.user_attrs.get("sigalex:final", {}).get("run_dir", "")


def test_a_killed_worker_leaves_its_trial_failed_and_retried(tmp_path, eeg, capsys):
    """SIGKILL mid-trial: the next worker waits for the trial's heartbeat to go stale (SQLite
    storage: Optuna's heartbeat), fails it, runs it again, and the study finishes."""
    recipe = write_recipe(tmp_path, eeg, epochs=2)
    args = ["--set", "tune.heartbeat_s=1", "--set", "tune.grace_s=2", "--trials", "1"]
    worker = _worker(recipe, *args)
    url = f"sqlite:///{tmp_path / 'tune' / 'tiny' / 'study.db'}"
    deadline = time.time() + 120
    running = []
    while not running and time.time() < deadline and worker.poll() is None:
        time.sleep(0.2)
        try:
            study = optuna.load_study(study_name="tiny", storage=url)
        except Exception:  # not created yet
            continue
        # running with its point drawn (a trial is RUNNING a moment before it has its lr)
        running = [
            t
            for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            if "train.lr" in t.params
        ]
    assert running, worker.communicate()[1]
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert tune_cli(recipe, *args) == 0
    lost, retry = rows(tmp_path / "tune" / "tiny")
    assert lost["state"] == "fail" and "no heartbeat" in lost["reason"]
    assert lost["retried_as"] == "1" and retry["state"] == "complete"
    assert retry["train.lr"] == lost["train.lr"]  # the same point, run again
    assert "best trial 1" in capsys.readouterr().out


def test_journal_storages_get_a_heartbeat_too(tmp_path):
    """Optuna's journal storage has no heartbeat: sigalex's fails a running trial silent for
    grace_s and queues it again; a trial still beating is left alone."""
    cfg = load_config(write_recipe(tmp_path, tmp_path, space='"train.lr" = [0.001, 0.01]'))
    tune = cfg.tune.__class__(**{**cfg.tune.__dict__, "heartbeat_s": 1, "grace_s": 2})
    storage, hb = study_mod.open_storage(f"journal:{tmp_path / 'j.log'}", tune)
    assert isinstance(hb, study_mod.JournalHeartbeat)
    study = optuna.create_study(storage=storage, study_name="s")
    lost, alive = study.ask(), study.ask()
    lost.suggest_categorical("train.lr", [0.001, 0.01])
    storage.set_trial_system_attr(lost._trial_id, study_mod.HEARTBEAT_ATTR, time.time() - 10)
    with hb.beating(alive):
        time.sleep(0.1)
        hb.sweep(study)
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING,
                      optuna.trial.TrialState.WAITING]  # fmt: skip
    assert study.trials[2].params == study.trials[0].params
    assert study.trials[2].system_attrs["retry_history"] == [0]


@pytest.fixture()
def postgres():
    """A throwaway PostgreSQL server on a Unix socket (skipped without pg_ctl, initdb or the
    psycopg2 driver); as root, the server runs as the ``postgres`` user."""
    pytest.importorskip("psycopg2")
    if not (shutil.which("pg_ctl") and shutil.which("initdb")):
        pytest.skip("PostgreSQL's pg_ctl / initdb not found")
    as_user = []
    folder = Path(tempfile.mkdtemp(prefix="sigalex-pg-"))
    if os.geteuid() == 0:  # initdb refuses root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no postgres user to start PostgreSQL as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    run = lambda *a: subprocess.run([*as_user, *a], capture_output=True, text=True, timeout=60)  # noqa: E731
    made = run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    if made.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"initdb failed: {made.stderr.strip()[-200:]}")
    opts = f"-c listen_addresses='' -c unix_socket_directories={folder}"
    started = run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w", "start")
    try:
        if started.returncode:
            pytest.skip(f"PostgreSQL did not start: {started.stderr.strip()[-200:]}")
        yield f"postgresql+psycopg2://postgres@/postgres?host={folder}"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_a_study_in_postgresql(tmp_path, eeg, postgres, capsys):
    recipe = write_recipe(tmp_path, eeg)
    assert tune_cli(recipe, "--storage", postgres, "--trials", "1") == 0
    assert "best trial" in capsys.readouterr().out
    study = optuna.load_study(study_name="tiny", storage=postgres)
    assert [t.state.name for t in study.trials] == ["COMPLETE"]
    assert not (tmp_path / "tune" / "tiny" / "study.db").exists()
    assert (
        json.loads((tmp_path / "tune" / "tiny" / "summary.json").read_text())["storage"] == postgres
    )
    bad = "postgresql+psycopg2://postgres@/nosuchdb?host=" + postgres.rsplit("=", 1)[1]
    assert tune_cli(recipe, "--storage", bad) == 1
    err = capsys.readouterr().err
    assert err.startswith("sigalex: error: --storage") and err.count("\n") == 1, err


def test_the_objective_is_the_validation_score_or_its_mean_over_folds():
    from sigalex.metrics import summarise_folds

    single = {"balanced_accuracy": 0.75, "loss": 0.4, "test": "not evaluated"}
    assert trial_mod.objective_value(single, "balanced_accuracy") == 0.75
    folds = [{"balanced_accuracy": 0.5, "loss": 0.6}, {"balanced_accuracy": 0.7, "loss": 0.2}]
    summary = {"folds": folds, **summarise_folds(folds)}
    assert trial_mod.objective_value(summary, "balanced_accuracy") == pytest.approx(0.6)
    assert trial_mod.objective_value(summary, "loss") == pytest.approx(0.4)
    with pytest.raises(trial_mod.TrialFailed, match="no validation f1_macro"):
        trial_mod.objective_value(single, "f1_macro")
