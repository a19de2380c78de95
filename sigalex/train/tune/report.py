"""What ``sigalex tune`` writes into its folder, from the study as the storage holds it (every
worker's trials): ``trials.csv``, ``best.toml``, ``summary.json`` and ``plots/``.

- ``trials.csv``: number, state, value, every dimension, seconds, the epoch a pruned trial
  stopped after, why a failed one failed, the trial that retried it, its run folder;
- ``best.toml``: the best trial's whole recipe (``[tune]`` kept: ``sigalex run`` ignores it);
- ``summary.json``: the study, the counts, the best trial, the final run's test scores;
- ``plots/``: ``history.png`` (each trial's value and the best so far), ``importances.png``
  (fANOVA, once two trials are complete), ``slice.png`` (the value against each dimension).

Plots use :class:`matplotlib.figure.Figure` directly, as :mod:`sigalex.plots` does.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import warnings
from datetime import datetime
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from ... import plots
from ..._files import atomic_write_text
from ..._version import __version__
from ...config import Config, to_toml
from .study import FINAL_ATTR, count, direction_of
from .trial import choice_label, recipe_of, values_of

log = logging.getLogger("sigalex.tune")


def _retried_as(trials: list[FrozenTrial]) -> dict[int, int]:
    out = {}
    for t in trials:
        history = t.system_attrs.get("retry_history", [])
        if history:
            out[history[-1]] = t.number
    return out


def trial_rows(study: optuna.Study, space) -> tuple[list[str], list[list]]:
    """``trials.csv``'s columns and rows (module docs)."""
    trials = study.get_trials(deepcopy=False)
    retried = _retried_as(trials)
    columns = ["number", "state", "value", *space, "duration_s", "pruned_at_epoch", "reason",
               "retried_as", "run_dir"]  # fmt: skip
    rows = []
    for t in trials:
        reason = ""
        if t.state == TrialState.FAIL:
            reason = t.user_attrs.get("fail_reason", "its worker stopped (no heartbeat) or crashed")
        rows.append([
            t.number, t.state.name.lower(), "" if t.value is None else t.value,
            *(t.params.get(k, "") for k in space),
            "" if t.duration is None else round(t.duration.total_seconds(), 2),
            t.user_attrs.get("pruned_at_epoch", "") if t.state == TrialState.PRUNED else "", reason, retried.get(t.number, ""),
            t.user_attrs.get("run_dir", ""),
        ])  # fmt: skip
    return columns, rows


def write_tables(study: optuna.Study, base: Config, tune_dir: Path, *, url: str, trials: int):
    """``trials.csv``, ``summary.json`` and (once a trial is complete) ``best.toml``."""
    space = base.tune.space
    columns, rows = trial_rows(study, space)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    atomic_write_text(tune_dir / "trials.csv", text.getvalue())
    counts = count(study)
    best = counts.best
    if best is not None:
        header = (
            f"# sigalex tune: the best trial ({best.number}) of study {study.study_name!r}, "
            f"validation {base.tune.metric} = {best.value:.6g}\n"
            f"# {', '.join(f'{k} = {v}' for k, v in best.params.items())}\n"
            "# `sigalex run` ignores [tune]; the test set was not seen by the search.\n\n"
        )
        best_cfg = recipe_of(base, values_of(best, space))
        atomic_write_text(tune_dir / "best.toml", header + to_toml(best_cfg))
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    summary = {
        "study": study.study_name,
        "storage": url,
        "tune_dir": str(tune_dir),
        "metric": f"validation {base.tune.metric}",
        "direction": direction_of(base.tune),
        "trials_wanted": trials,
        "trials": {s: states.count(s) for s in sorted(set(states))},
        "trials_done": counts.done,
        "best": None
        if best is None
        else {
            "trial": best.number,
            "value": best.value,
            "params": best.params,
            "run_dir": best.user_attrs.get("run_dir"),
        },
        "final": study.user_attrs.get(FINAL_ATTR),
        "test_set": "scored only by the final run (sigalex tune --final, or the end of the study)",
        "space": {k: d.to_toml() for k, d in space.items()},
        "written": datetime.now().isoformat(timespec="seconds"),
        "sigalex_version": __version__,
        "optuna_version": optuna.__version__,
    }
    atomic_write_text(tune_dir / "summary.json", json.dumps(summary, indent=2, default=str))


def write_plots(study: optuna.Study, base: Config, tune_dir: Path) -> dict[str, str]:
    """``plots/``: each plot written, or why not (too few complete trials); the reasons go to
    the log and the returned dict (name → ``"written"`` or the reason)."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    out = {}
    for name, draw in (
        ("history.png", _history),
        ("importances.png", _importances),
        ("slice.png", _slice),
    ):
        path = tune_dir / "plots" / name
        try:
            if not complete:
                raise ValueError("no complete trial yet")
            draw(study, complete, base, path)
            out[name] = "written"
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            out[name] = f"not drawn: {exc}"
            log.info(f"plots/{name} {out[name]}")
    return out


def _history(study, complete, base, path: Path) -> None:
    fig = plots._new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    x = [t.number for t in complete]
    y = [t.value for t in complete]
    ax.scatter(x, y, s=18, color="#0969da", label="trial", zorder=3)
    pick = min if direction_of(base.tune) == "minimize" else max
    best, running = [], None
    for v in y:
        running = v if running is None else pick(running, v)
        best.append(running)
    ax.step(x, best, where="post", color="#cf222e", label="best so far")
    pruned = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.PRUNED]
    if pruned:
        px = [t.number for t in pruned if t.intermediate_values]
        py = [
            t.intermediate_values[max(t.intermediate_values)]
            for t in pruned
            if t.intermediate_values
        ]
        ax.scatter(px, py, s=18, marker="x", color="#8c959f", label="pruned (last epoch)")
    ax.set(
        xlabel="trial", ylabel=f"validation {base.tune.metric}", title=f"Study {study.study_name}"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    plots._save(fig, path)


def _importances(study, complete, base, path: Path) -> None:
    if len(complete) < 2:
        raise ValueError(f"importances need two complete trials; {len(complete)} so far")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importances = optuna.importance.get_param_importances(study)
    if not importances:
        raise ValueError("no dimension varied among the complete trials")
    names = list(importances)[::-1]
    fig = plots._new_figure(6.4, 1.2 + 0.35 * len(names))
    ax = fig.add_subplot()
    ax.barh(names, [importances[n] for n in names], color="#0969da")
    ax.set(xlabel="importance (fANOVA)", title="Which dimensions mattered", xlim=(0, 1))
    plots._save(fig, path)


def _slice(study, complete, base, path: Path) -> None:
    from matplotlib.ticker import MaxNLocator, NullFormatter

    space = [k for k in base.tune.space if any(k in t.params for t in complete)]
    cols = min(3, len(space))
    rows = math.ceil(len(space) / cols)
    fig = plots._new_figure(3.2 * cols, 2.8 * rows)
    for i, key in enumerate(space):
        ax = fig.add_subplot(rows, cols, i + 1)
        pts = [(t.params[key], t.value) for t in complete if key in t.params]
        dim = base.tune.space[key]
        if dim.choices:  # every choice in the space's order, tried or not
            labels = [str(choice_label(c)) for c in dim.choices]
            labels += [x for x in dict.fromkeys(str(p) for p, _ in pts) if x not in labels]
            ax.scatter([labels.index(str(p)) for p, _ in pts], [v for _, v in pts], s=16)
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize="small")
            ax.set_xlim(-0.5, len(labels) - 0.5)
        else:
            ax.scatter([p for p, _ in pts], [v for _, v in pts], s=16)
            if dim.log:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # 2×10⁻⁴ 3×10⁻⁴ … overlap
            elif dim.integer:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(key, fontsize="small")
        ax.grid(alpha=0.3)
        if i % cols == 0:
            ax.set_ylabel(f"validation {base.tune.metric}", fontsize="small")
    plots._save(fig, path)


__all__ = ["trial_rows", "write_plots", "write_tables"]
