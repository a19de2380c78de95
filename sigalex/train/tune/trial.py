"""One trial of ``sigalex tune``: a point of the space, the recipe it makes, its run on the
shared data, pruning after each epoch, and its validation score."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial

from ...config import Config, Dimension, to_dict, with_values
from ...errors import ConfigError, SigalexError
from ..callbacks import Callback
from ..data import PreparedData, prepare_data
from ..runner import _validated, run
from .study import retry_callback


class TrialFailed(SigalexError):
    """A trial that could not be scored (diverged, out of memory, a rejected combination)."""


# -- the search space ---------------------------------------------------------------------------
def choice_label(choice) -> object:
    """A choice as Optuna stores it: scalars as they are, lists as JSON text."""
    return json.dumps(list(choice)) if isinstance(choice, (tuple, list)) else choice


def suggest(trial: optuna.Trial, space) -> dict:
    """The trial's values for ``space`` (dotted key → :class:`Dimension`). Transform parameters
    the trial's ``transform.method`` does not take are not drawn (a conditional space)."""
    from ...transforms import transform_parameters

    values: dict = {}
    method = None
    for key in sorted(space, key=lambda k: k != "transform.method"):
        dim: Dimension = space[key]
        section, _, name = key.partition(".")
        if section == "transform" and name != "method" and method is not None:
            if name not in transform_parameters(method):
                continue
        if dim.choices:
            labels: list[Any] = [choice_label(c) for c in dim.choices]
            label = trial.suggest_categorical(key, labels)
            values[key] = dim.choices[labels.index(label)]
        elif dim.integer:
            values[key] = trial.suggest_int(
                key, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log
            )
        else:
            values[key] = trial.suggest_float(
                key, dim.low, dim.high, step=dim.step or None, log=dim.log
            )
        if key == "transform.method":
            method = values[key]
    return values


def values_of(trial: FrozenTrial, space) -> dict:
    """A finished trial's values, as :func:`suggest` gave them (for ``best.toml``)."""
    out = {}
    for key, value in trial.params.items():
        dim = space.get(key)
        if dim is not None and dim.choices:
            labels = [choice_label(c) for c in dim.choices]
            value = dim.choices[labels.index(value)] if value in labels else value
        out[key] = value
    return out


def recipe_of(base: Config, values: dict) -> Config:
    """The whole recipe of a point of the space, with the base recipe's ``[tune]`` kept (so
    the written recipe can be tuned further; ``sigalex run`` ignores it)."""
    return dataclasses.replace(with_values(base, values), tune=base.tune)


# -- data shared between trials ------------------------------------------------------------------
class DataCache:
    """The prepared data (index, windows, split) of the last recipe asked for.

    A trial's data depends only on ``[data]``, ``[windows]``, ``[eval]`` and
    ``model.architecture``: when the space tunes none of them, every trial (and the final run)
    of this process reuses the data prepared once; a space that tunes one of them changes the
    key and the data is prepared for each trial anew.
    """

    def __init__(self):
        self.key: str | None = None
        self.data: PreparedData | None = None

    @staticmethod
    def key_of(cfg: Config) -> str:
        d = to_dict(cfg)
        parts = [d["data"], d["windows"], d["eval"], cfg.model.architecture]
        return json.dumps(parts, sort_keys=True, default=str)

    def get(self, cfg: Config) -> PreparedData:
        key = self.key_of(cfg)
        if key != self.key or self.data is None:
            self.data, self.key = None, None  # free the old data before preparing the new
            self.data, self.key = prepare_data(cfg), key
        return self.data


def check_space_on_data(base: Config, data: PreparedData) -> None:
    """Before the first trial: each dimension's ends (or choices), set alone into the recipe,
    must build a front end for the data's windows (an ``fmax`` above Nyquist, windows too short
    for an ``n_fft``, images too small for the network): a :class:`ConfigError` naming the key.
    Dimensions that change the data itself are checked per trial."""
    if any(not len(split.val) for split in data.splits):
        raise ConfigError(
            f"[tune] the search scores the validation set, and the split has none "
            f"(eval.val_fraction = {base.eval.val_fraction}); give eval.val_fraction > 0"
        )
    key = DataCache.key_of(base)
    for name, dim in base.tune.space.items():
        for v in dim.choices or (dim.low, dim.high):
            extra = {}
            if name.startswith("transform.") and name != "transform.method":
                extra = {"transform.method": _method_taking(base, name)}
            try:
                cfg = with_values(base, {**extra, name: v})
                if DataCache.key_of(cfg) == key:
                    _validated(cfg, data)
            except ConfigError as exc:
                raise ConfigError(f'[tune] "{name}" = {v!r}: {exc}') from None


def _method_taking(base: Config, key: str) -> str:
    from ...transforms import transform_parameters

    dim = base.tune.space.get("transform.method")
    methods = dim.choices if dim is not None else (base.transform.method,)
    name = key.partition(".")[2]
    return next((m for m in methods if name in transform_parameters(m)), base.transform.method)


# -- pruning and the objective -------------------------------------------------------------------
class PruneOnEpoch(Callback):
    """Reports each epoch's validation ``metric`` to an Optuna trial and raises
    :class:`optuna.TrialPruned` when the pruner gives up on it. Steps count epochs across
    folds (fold 2's first epoch follows fold 1's last)."""

    def __init__(self, trial: optuna.Trial, metric: str):
        self.trial, self.metric = trial, metric
        self.step = 0
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer, row: dict) -> None:
        value = row.get(f"val_{self.metric}")
        if value is None or not math.isfinite(value):
            return
        self.step += 1
        self.trial.report(float(value), self.step)
        if self.trial.should_prune():
            self.pruned_at = trainer.epoch
            raise optuna.TrialPruned(
                f"pruned after epoch {trainer.epoch}: validation {self.metric} {value:.4f}"
            )


def objective_value(metrics: dict, metric: str) -> float:
    """The validation ``metric`` of a run's ``metrics.json`` (``evaluate_test=False``): the best
    epoch's, or the mean over folds."""
    value = metrics.get(metric)
    if isinstance(value, dict):
        value = value.get("mean")
    if value is None or not math.isfinite(float(value)):
        raise TrialFailed(f"no validation {metric} in the run's metrics ({value!r})")
    return float(value)


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate" in text


def _trial_dirs(trials_dir: Path, number: int) -> list[Path]:
    return sorted(trials_dir.glob(f"trial-{number:04d}-*"))


def _drop_weights(run_dir: Path) -> None:
    """A trial's run folder keeps its recipe, history and metrics; its weights go (the final
    run trains the best recipe again): a study of AlexNets would fill the disk."""
    for name in ("checkpoint.pt", "last.pt"):
        for path in run_dir.rglob(name):
            path.unlink(missing_ok=True)


class Objective:
    """One trial: the recipe at the trial's point, trained and scored on validation only."""

    def __init__(self, base: Config, tune_dir: Path, cache: DataCache, device: str | None, hb):
        self.base, self.cache, self.device, self.hb = base, cache, device, hb
        self.trials_dir = tune_dir / "trials"
        self.metric = base.tune.metric
        self.retry = retry_callback(base.tune)

    def __call__(self, trial: optuna.Trial) -> float:
        with self.hb.beating(trial):
            return self._run(trial)

    def _run(self, trial: optuna.Trial) -> float:
        pruning = PruneOnEpoch(trial, self.metric)
        try:
            cfg = with_values(self.base, suggest(trial, self.base.tune.space))
            cfg = dataclasses.replace(
                cfg,
                output=dataclasses.replace(
                    cfg.output, dir=str(self.trials_dir), name=f"trial-{trial.number:04d}"
                ),
            )
            result = run(
                cfg, device=self.device, evaluate_test=False, callbacks=[pruning],
                data=self.cache.get(cfg),
            )  # fmt: skip
            trial.set_user_attr("epochs", result.metrics.get("epochs"))
            return objective_value(result.metrics, self.metric)
        except optuna.TrialPruned:
            trial.set_user_attr("pruned_at_epoch", pruning.pruned_at)
            raise
        except (SigalexError, MemoryError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not _out_of_memory(exc):
                raise  # a bug, not a trial's bad luck
            reason = f"out of memory: {exc}" if _out_of_memory(exc) else str(exc)
            trial.set_user_attr("fail_reason", reason.splitlines()[0][:500])
            raise TrialFailed(reason) from exc
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the next run of the study runs it again
            if self.retry is not None:
                self.retry(trial.study, trial.study._storage.get_trial(trial._trial_id))
            trial.set_user_attr("fail_reason", "interrupted")
            raise
        finally:
            for path in _trial_dirs(self.trials_dir, trial.number):
                _drop_weights(path)
                trial.set_user_attr("run_dir", str(path))
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


__all__ = [
    "DataCache",
    "Objective",
    "PruneOnEpoch",
    "TrialFailed",
    "check_space_on_data",
    "choice_label",
    "objective_value",
    "recipe_of",
    "suggest",
    "values_of",
]
