"""Where a study lives and how its workers share it: storages, heartbeats, the study and its
trial budget."""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from ...config import Config, TuneConfig, to_dict
from ...errors import ConfigError

#: Recipe keys that may differ between the workers of one study (paths, devices, budgets).
LOCAL_KEYS = (
    "data.root", "data.download", "train.device", "train.num_workers", "tune.trials",
    "tune.seed", "tune.heartbeat_s", "tune.grace_s", "tune.retries", "tune.prune_after",
)  # fmt: skip
FINAL_ATTR = "sigalex:final"
RECIPE_ATTR = "sigalex:recipe"
HEARTBEAT_ATTR = "sigalex:heartbeat"


def direction_of(tune: TuneConfig) -> Literal["maximize", "minimize"]:
    """``maximize`` or ``minimize`` (``auto``: minimize ``loss``, maximize scores)."""
    if tune.direction != "auto":
        return cast(Literal["maximize", "minimize"], tune.direction)
    return "minimize" if tune.metric == "loss" else "maximize"


class RDBHeartbeat:
    """Optuna's own heartbeat (database storages): the thread runs inside ``optimize``."""

    def beating(self, trial):
        return contextlib.nullcontext()

    def sweep(self, study: optuna.Study) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(study)


class JournalHeartbeat:
    """The same for journal storages, which Optuna gives no heartbeat: a thread writes the time
    into the running trial's system attributes every ``heartbeat_s``; :meth:`sweep` fails the
    running trials silent for ``grace_s`` and hands them to ``retry``."""

    def __init__(self, tune: TuneConfig, retry: Callable | None):
        self.interval, self.grace, self.retry = tune.heartbeat_s, tune.grace_s, retry

    @contextlib.contextmanager
    def beating(self, trial: optuna.Trial):
        stop = threading.Event()
        storage, trial_id = trial.study._storage, trial._trial_id

        def beat():
            while True:
                with contextlib.suppress(Exception):  # a finished trial takes no more beats
                    storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
                if stop.wait(self.interval):
                    return

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def sweep(self, study: optuna.Study) -> None:
        storage = study._storage
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            start = t.datetime_start.timestamp() if t.datetime_start else time.time()
            if time.time() - t.system_attrs.get(HEARTBEAT_ATTR, start) <= self.grace:
                continue
            try:
                if not storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker was first
            if self.retry is not None:
                self.retry(study, storage.get_trial(t._trial_id))


def retry_callback(tune: TuneConfig):
    """Optuna's callback that queues a lost trial again (``tune.retries`` times), or None."""
    if not tune.retries:
        return None
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    retry = retry or optuna.storages.RetryFailedTrialCallback  # optuna < 4.9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return retry(max_retry=tune.retries)


def open_storage(url: str, tune: TuneConfig):
    """An Optuna storage and its heartbeat: ``journal:PATH`` is a journal file, anything else an
    SQLAlchemy URL (``sqlite:///study.db``, ``postgresql://…``, ``mysql://…``)."""
    retry = retry_callback(tune)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if url.startswith("journal:"):
                path = Path(url.removeprefix("journal:").removeprefix("//")).expanduser()
                path.parent.mkdir(parents=True, exist_ok=True)
                backend = JournalFileBackend(str(path))
                return optuna.storages.JournalStorage(backend), JournalHeartbeat(tune, retry)
            params = inspect.signature(optuna.storages.RDBStorage).parameters
            name = (
                "heartbeat_stale_trial_callback"
                if "heartbeat_stale_trial_callback" in params
                else "failed_trial_callback"
            )
            kwargs: dict[str, Any] = {"heartbeat_interval": tune.heartbeat_s}
            kwargs.update({"grace_period": tune.grace_s, name: retry})
            if url.startswith("sqlite"):  # workers wait their turn to write, not fail
                kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
            storage = optuna.storages.RDBStorage(url, **kwargs)
            return storage, RDBHeartbeat()
    except (ImportError, ValueError, OSError) as exc:
        raise ConfigError(f"--storage {hide_password(url)}: {exc}") from None
    except Exception as exc:  # SQLAlchemy's errors: no server, refused, bad credentials
        if type(exc).__module__.startswith("sqlalchemy"):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--storage {hide_password(url)}: {first}") from None
        raise


def hide_password(url: str) -> str:
    """``postgresql://me:secret@host/db`` → ``postgresql://me:***@host/db``."""
    head, sep, tail = url.partition("://")
    if "@" not in tail or ":" not in tail.split("@", 1)[0]:
        return url
    user = tail.split("@", 1)[0].split(":", 1)[0]
    return f"{head}{sep}{user}:***@{tail.split('@', 1)[1]}"


def _sampler(tune: TuneConfig):
    seed = None if tune.seed < 0 else tune.seed
    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant_liar was experimental before optuna 5
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _pruner(tune: TuneConfig):
    """The pruner; no trial is stopped in its first ``tune.prune_after`` epochs (early epochs
    rank learning rates and warm-ups by how fast they start, not where they end)."""
    first = tune.prune_after + 1  # epochs are steps 1, 2, …; Optuna may prune from this step
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=first)
    if tune.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first)
    return optuna.pruners.NopPruner()


def shared_recipe(cfg: Config) -> dict:
    """What every worker of a study must agree on: the recipe less :data:`LOCAL_KEYS` and
    ``[output]``."""
    d = to_dict(cfg)
    d.pop("output", None)
    for key in LOCAL_KEYS:
        section, _, name = key.partition(".")
        d.get(section, {}).pop(name, None)
    return json.loads(json.dumps(d, default=str))


def open_study(base: Config, name: str, storage, *, create: bool = True) -> optuna.Study:
    """The study ``name`` in ``storage``, created when missing; a study started with another
    recipe or space is refused, naming the keys that differ."""
    try:
        sampler, pruner = _sampler(base.tune), _pruner(base.tune)
        if create:
            study = optuna.create_study(
                storage=storage, study_name=name, sampler=sampler, pruner=pruner,
                direction=direction_of(base.tune), load_if_exists=True,
            )  # fmt: skip
        else:
            study = optuna.load_study(
                storage=storage, study_name=name, sampler=sampler, pruner=pruner
            )
    except KeyError:
        raise ConfigError(f"no study {name!r} in the storage: nothing to train") from None
    except ValueError as exc:  # another direction than the stored study's
        raise ConfigError(f"study {name!r}: {exc}") from None
    mine = shared_recipe(base)
    theirs = study.user_attrs.get(RECIPE_ATTR)
    if theirs is None:
        study.set_user_attr(RECIPE_ATTR, mine)
    elif diff := _differences(mine, theirs):
        raise ConfigError(
            f"study {name!r} was started with another recipe (differs in {', '.join(diff[:6])}); "
            "use the same recipe, or start another study with --study NAME"
        )
    return study


def _differences(mine: dict, theirs: dict) -> list[str]:
    """Keys on which two shared recipes differ. A key the stored recipe lacks (a study started
    by a sigalex that did not have it yet) agrees when this recipe leaves it at its default."""
    defaults = shared_recipe(Config())
    missing = object()
    return [
        f"{s}.{k}" if s != "tune" or "." not in k else f'tune."{k}"'
        for s in sorted(set(mine) | set(theirs))
        for k in sorted(set(mine.get(s, {})) | set(theirs.get(s, {})))
        if (m := mine.get(s, {}).get(k, missing)) != theirs.get(s, {}).get(k, missing)
        and not (k not in theirs.get(s, {}) and m == defaults.get(s, {}).get(k, missing))
    ]


@dataclass
class Counts:
    """The study's trials as the budget sees them."""

    done: int  # complete, pruned, and failed but not queued again
    running: int
    waiting: int
    best: FrozenTrial | None

    @property
    def used(self) -> int:
        return self.done + self.running + self.waiting


def count(study: optuna.Study) -> Counts:
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    done = sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and t.number not in retried)
        for t in trials
    )
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = None
    if complete:
        pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
        best = pick(complete, key=lambda t: t.value if t.value is not None else math.nan)
    return Counts(
        done=done,
        running=sum(t.state == TrialState.RUNNING for t in trials),
        waiting=sum(t.state == TrialState.WAITING for t in trials),
        best=best,
    )


__all__ = [
    "Counts",
    "JournalHeartbeat",
    "RDBHeartbeat",
    "count",
    "direction_of",
    "hide_password",
    "open_storage",
    "open_study",
    "shared_recipe",
]
