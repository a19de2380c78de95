"""``sigalex tune``: hyperparameter search with Optuna over a recipe's ``[tune]`` space.

Each trial is one :func:`~sigalex.train.runner.run` of the recipe with the trial's values set
(:func:`sigalex.config.with_values`), scored on the **validation** set of the recipe's own split
(``evaluate_test=False``: the test set is never read; k-fold and leave-one-out recipes score
the mean over folds). A :class:`PruneOnEpoch` callback reports each epoch's validation score
to the trial and stops a trial the pruner gives up on. A trial whose loss diverges, or that
runs out of memory, is recorded failed with its reason and the study goes on.

The study lives in an Optuna storage (a SQLite file in the tune folder unless ``storage`` says
otherwise), so any number of workers, on one machine or many, given the same storage and study
name share one study: ``trials`` counts every worker's trials together. A worker that is killed
stops writing its heartbeat; after ``grace_s`` another worker fails its trial and queues it
again (``retries`` times). Optuna keeps heartbeats for its database storages only; for journal
files the same is done here (the time in the trial's system attributes; the workers' clocks
must agree).

When the study has all its trials, one worker trains the best trial's recipe once more and
scores the test set (``final``): the figure to report. One trial: :mod:`.trial`; storages,
heartbeats and the budget: :mod:`.study`; the files written: :mod:`.report`.
"""

from __future__ import annotations

try:
    import optuna
    from optuna.trial import FrozenTrial, TrialState
except ImportError as exc:  # pragma: no cover - the CLI says so before importing this package
    raise ImportError("sigalex tune needs optuna: pip install 'sigalex[tune]'") from exc

import contextlib
import dataclasses
import logging
import os
import socket
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from ...config import Config, TuneConfig
from ...errors import ConfigError, SigalexError
from ..callbacks import show_progress
from ..runner import run
from . import report
from .study import FINAL_ATTR, Counts, count, direction_of, hide_password, open_storage, open_study
from .trial import (
    DataCache,
    Objective,
    PruneOnEpoch,
    TrialFailed,
    check_space_on_data,
    objective_value,
    recipe_of,
    values_of,
)

log = logging.getLogger("sigalex.tune")


@dataclass
class TuneResult:
    """What :func:`tune` leaves behind: the tune folder and the study's state."""

    tune_dir: Path
    study: optuna.Study
    final: dict | None = None


@contextlib.contextmanager
def _quiet_optuna():
    """Optuna's own log lines off (the one line a trial is written here), its warnings too."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def tune_dir_for(cfg: Config, study_name: str, out: Path | None = None) -> Path:
    """The tune folder: ``out``, else ``tune/<study>`` beside the recipe's ``output.dir``."""
    if out is not None:
        return Path(out).expanduser()
    return Path(cfg.output.dir).expanduser().parent / "tune" / study_name


def _describe(t: FrozenTrial, metric: str) -> str:
    state = t.state.name.lower()
    secs = f" ({t.duration.total_seconds():.1f} s)" if t.duration else ""
    params = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.params.items()
    )
    if t.state == TrialState.COMPLETE and t.value is not None:
        state = f"{metric} {t.value:.4f}"
    elif t.state == TrialState.PRUNED:
        state = f"pruned after epoch {t.user_attrs.get('pruned_at_epoch')}"
    elif t.state == TrialState.FAIL:
        state = f"failed: {t.user_attrs.get('fail_reason', 'its worker stopped')}"
    return f"trial {t.number}: {state}; {params}{secs}"


class _Progress:
    """A bar over the study's trials (every worker's) with the best value so far."""

    def __init__(self, total: int, counts: Counts):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total, initial=min(counts.done, total), desc="trials", unit="trial",
            disable=not show_progress(), dynamic_ncols=True,
        )  # fmt: skip
        self.update(counts)

    def update(self, counts: Counts) -> None:
        self.bar.n = min(counts.done, self.bar.total or counts.done)
        if counts.best is not None and counts.best.value is not None:
            self.bar.set_postfix(best=f"{counts.best.value:.4f}", trial=counts.best.number)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class _TrialLog(logging.Filter):
    """Training's warnings during a search: each once (not once a trial), and no hint to
    resume a trial's run folder (the study is resumed instead)."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sigalex run --resume" in message or message in self.seen:
            return False
        self.seen.add(message)
        return True


def work(study, objective: Objective, hb, *, trials: int, deadline: float | None) -> Counts:
    """Run trials until the study has ``trials`` (every worker's), or past ``deadline``.

    A worker with nothing left to start waits while trials run elsewhere (a lost worker's
    trial is failed after ``grace_s`` and queued again, and this worker may run it)."""
    counts = count(study)
    progress = _Progress(trials, counts)
    said = [lambda study, trial: log.info(_describe(trial, objective.metric))]
    train_log, quiet = logging.getLogger("sigalex.train"), _TrialLog()
    level = train_log.level
    train_log.setLevel(logging.WARNING)  # a trial's epochs are the trial's business
    train_log.addFilter(quiet)
    try:
        while deadline is None or time.time() < deadline:
            hb.sweep(study)
            counts = count(study)
            progress.update(counts)
            if counts.waiting or counts.used < trials:
                study.optimize(
                    objective, n_trials=1, catch=(TrialFailed,), callbacks=said,
                    gc_after_trial=True,
                )  # fmt: skip
                continue
            if counts.running:
                time.sleep(min(objective.base.tune.heartbeat_s, 10))
                continue
            break
    except KeyboardInterrupt:
        log.warning("interrupted: the running trial is queued again; run the same command to go on")
        raise
    finally:
        train_log.setLevel(level)
        train_log.removeFilter(quiet)
        progress.close()
    return count(study)


def tune(
    cfg: Config,
    *,
    trials: int | None = None,
    timeout_s: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    out: Path | None = None,
    device: str | None = None,
    final: bool = False,
) -> TuneResult:
    """Search the recipe's ``[tune]`` space (module docs); returns the tune folder and study.

    Parameters
    ----------
    cfg : Config
        A recipe with a ``[tune]`` space.
    trials : int, optional
        The study's number of trials, every worker's together (default ``tune.trials``).
    timeout_s : float, optional
        Start no trial after searching this many seconds (a running trial finishes).
    storage : str, optional
        An Optuna storage URL, or ``journal:PATH``; default ``sqlite:///<tune dir>/study.db``.
    study_name : str, optional
        Default: the recipe's ``output.name``.
    out : path, optional
        The tune folder; default ``tune/<study>`` beside ``output.dir``.
    device : str, optional
        Overrides ``train.device``.
    final : bool
        Start no trial: train the best trial's recipe now and score the test set.
    """
    if not cfg.tune.space:
        raise ConfigError(
            '[tune] has no dimensions: add e.g. "train.lr" = {low = 1e-5, high = 1e-2, log = true}'
        )
    name = study_name or cfg.output.name or "study"
    tune_dir = tune_dir_for(cfg, name, out)
    trials = trials if trials is not None else cfg.tune.trials
    if trials < 1:
        raise ConfigError(f"--trials {trials}: must be >= 1")
    cache = DataCache()
    data = cache.get(cfg)  # before any trial: missing data, a split without validation
    check_space_on_data(cfg, data)
    try:
        tune_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SigalexError(f"cannot create the tune folder {tune_dir}: {exc.strerror}") from None
    url = storage or f"sqlite:///{(tune_dir / 'study.db').resolve()}"
    with _quiet_optuna():
        store, hb = open_storage(url, cfg.tune)
        study = open_study(cfg, name, store, create=not final)
        log.info(
            f"study {name!r} in {hide_password(url)}: {len(study.trials)} trial(s) so far, "
            f"{trials} wanted; validation {cfg.tune.metric} ({direction_of(cfg.tune)}); "
            f"folder {tune_dir}"
        )
        counts = count(study)
        if not final:
            try:
                objective = Objective(cfg, tune_dir, cache, device, hb)
                deadline = None if timeout_s is None else time.time() + timeout_s
                counts = work(study, objective, hb, trials=trials, deadline=deadline)
            finally:  # also after Ctrl-C: the tables show what there is
                report.write_tables(study, cfg, tune_dir, url=hide_password(url), trials=trials)
        result = TuneResult(tune_dir, study, study.user_attrs.get(FINAL_ATTR))
        finished = counts.done >= trials and not counts.running and not counts.waiting
        if final or (finished and counts.best is not None):
            result.final = final_run(study, cfg, tune_dir, cache, device, claim=not final)
        elif finished:
            log.warning(f"study {name!r}: no trial completed, so there is no recipe to train")
        report.write_tables(study, cfg, tune_dir, url=hide_password(url), trials=trials)
        report.write_plots(study, cfg, tune_dir)
    if not finished and not final:
        log.info(
            f"study {name!r}: {counts.done} of {trials} trials done"
            + (f", {counts.running} running elsewhere" if counts.running else "")
            + "; run the same command to go on"
        )
    return result


CLAIM_ATTR = "sigalex:final_claim"


def _claim_final(study, trial: int) -> bool:
    """Whether this worker trains the final run of ``trial``: the first claim for that trial
    stands (a worker that finishes later, while the final trains, leaves it alone); two
    claims written at once are settled by reading back after a second (the last written
    wins, the other backs off). A claimer that dies leaves the final undone: ``sigalex tune
    --final`` runs it."""
    held = study.user_attrs.get(CLAIM_ATTR)
    if isinstance(held, dict) and held.get("trial") == trial:
        log.info(
            f"another worker ({held.get('by', '?')}) trains trial {trial}'s recipe for the test "
            "set; if it stopped before it finished, run sigalex tune --final"
        )
        return False
    token = {
        "trial": trial,
        "token": uuid.uuid4().hex,
        "by": f"{socket.gethostname()}:{os.getpid()}",
    }
    study.set_user_attr(CLAIM_ATTR, token)
    time.sleep(1.0)
    if study.user_attrs.get(CLAIM_ATTR) != token:
        log.info(f"another worker trains trial {trial}'s recipe for the test set")
        return False
    return True


def final_run(study, base: Config, tune_dir: Path, cache: DataCache, device, *, claim: bool):
    """Train the best trial's recipe once and score the test set, unless that was done for the
    same best trial already; with ``claim``, only the worker whose claim stands does it."""
    best = count(study).best
    if best is None:
        raise SigalexError(
            f"study {study.study_name!r} has no complete trial yet: nothing to train"
        )
    done = study.user_attrs.get(FINAL_ATTR)
    if done and done.get("trial") == best.number:
        log.info(
            f"final run of trial {best.number}: {done.get('run_dir')} (the test set was scored then)"
        )
        return done
    if claim and not _claim_final(study, best.number):
        return None
    cfg = recipe_of(base, values_of(best, base.tune.space))
    cfg = dataclasses.replace(
        cfg, output=dataclasses.replace(cfg.output, dir=str(tune_dir), name="final"),
        tune=TuneConfig(),
    )  # fmt: skip
    log.info(
        f"final run: trial {best.number}'s recipe, trained once more and scored on the test set"
    )
    result = run(cfg, device=device, evaluate_test=True, data=cache.get(cfg))
    keys = ("accuracy", "balanced_accuracy", "f1_macro", "auroc", "sensitivity", "specificity")
    test = {}
    for key in keys:
        value = result.metrics.get(key)
        test[key] = value.get("mean") if isinstance(value, dict) else value
    info = {
        "trial": best.number,
        "validation": {base.tune.metric: best.value},
        "test": test,
        "n_test": result.metrics.get("n_test"),
        "run_dir": str(result.run_dir),
    }
    study.set_user_attr(FINAL_ATTR, info)
    return info


__all__ = [
    "DataCache",
    "Objective",
    "PruneOnEpoch",
    "TrialFailed",
    "TuneResult",
    "direction_of",
    "final_run",
    "objective_value",
    "open_storage",
    "open_study",
    "tune",
    "tune_dir_for",
]
