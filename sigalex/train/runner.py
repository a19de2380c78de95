"""``sigalex run`` and ``sigalex validate``: a recipe → a run directory.

:func:`validate` checks everything that can be checked before training; :func:`run` trains one
model per fold (with :mod:`callbacks <sigalex.train.callbacks>` for checkpoints, history, early
stopping), tests each fold's best checkpoint and writes ``metrics.json``; it returns a
:class:`RunResult`. ``evaluate_test=False`` leaves the test set alone (hyperparameter search
must never see it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import signal
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from .. import _checks
from .._files import (
    FolderLock,
    atomic_write_text,
    fold_dirs,
    remove_stale_temporaries,
    write_tsv,
)
from .._version import __version__
from ..checkpoint import initial_model, load_checkpoint, resolve_parent
from ..config import Config, load_config, to_toml
from ..errors import ConfigError, DataError, ParameterError
from ..metrics import summarise_folds
from ..models.net import build_frontend
from ..models.weights import build_network
from ..runtime import device_name
from . import distributed
from .callbacks import Callback, EarlyStopping, default_callbacks
from .data import PreparedData, prepare_data
from .distributed import Distributed
from .report import finish_fold, split_counts, summary_line
from .trainer import Trainer

log = logging.getLogger("sigalex.train")


@dataclass
class RunResult:
    """What :func:`run` leaves behind.

    Attributes
    ----------
    run_dir : pathlib.Path
    metrics : dict
        What ``metrics.json`` holds (test metrics, or validation only without the test).
    checkpoints : list of pathlib.Path
        The best checkpoint of each fold.
    """

    run_dir: Path
    metrics: dict
    checkpoints: list[Path] = field(default_factory=list)

    @property
    def checkpoint(self) -> Path:
        """The best checkpoint (of the first fold)."""
        return self.checkpoints[0]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is checked (``ConfigError``)."""
    try:
        return _checks.resolve_device(name, name="train.device")
    except ParameterError as exc:
        raise ConfigError(str(exc)) from exc


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python's, NumPy's and torch's global generators (and make CUDA deterministic)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds code that uses the global generator
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def new_run_dir(cfg: Config) -> Path:
    """``<output.dir>/<name>-<timestamp>`` (``-1``, ``-2``… when taken), created."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.output.dir).expanduser() / f"{cfg.output.name or 'run'}-{stamp}"
    path, k = base, 1
    while path.exists():
        path, k = base.with_name(f"{base.name}-{k}"), k + 1
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise DataError(
            f"output.dir = {cfg.output.dir!r}: cannot create {path} ({exc.strerror})"
        ) from None
    return path


def validate(cfg: Config) -> PreparedData:
    """Everything ``run`` checks before training: the parent checkpoint and its front end,
    data, windows, split, the front end at the data's rate. A read-only question: nothing is
    downloaded and no folder is created (a missing dataset is reported, not fetched)."""
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, download=False))
    cfg, _ = resolve_parent(cfg)
    return _validated(cfg)


def _check_image_size(cfg: Config) -> None:
    """The network must take the recipe's images: a shape-only pass on the meta device."""
    with torch.device("meta"):
        network = build_network(
            cfg.model.architecture, num_classes=2, width=cfg.model.width, groups=cfg.model.groups
        )
    size = cfg.render.size
    try:
        network(torch.zeros(1, 3, size, size, device="meta"))
    except RuntimeError:
        raise ConfigError(
            f"render.size = {size} is too small for model.architecture = "
            f"{cfg.model.architecture!r} (its pooling leaves nothing); use 67 or more (227: "
            "AlexNet's own)"
        ) from None


def _check_extras(cfg: Config) -> None:
    """Optional packages a recipe asks for must be installed (one line naming the extra)."""
    import importlib.util

    if cfg.output.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "output.tensorboard = true needs the tensorboard package: "
            "pip install 'sigalex[tensorboard]'"
        )


def _validated(cfg: Config, data: PreparedData | None = None) -> PreparedData:
    _check_extras(cfg)
    _check_image_size(cfg)
    if data is None:
        data = prepare_data(cfg)
    elif data.spec.architecture != cfg.model.architecture:
        raise ParameterError(
            f"data was prepared for model.architecture = {data.spec.architecture!r}; the recipe "
            f"builds {cfg.model.architecture!r}"
        )
    frontend = build_frontend(cfg, data.sample_rate)
    frontend.transform.output_shape(data.n_times)
    if data.n_times < frontend.transform.min_length():
        raise ConfigError(
            f"windows of {data.n_times} samples are too short for [transform] "
            f"(needs {frontend.transform.min_length()}); lengthen windows.window_s"
        )
    return data


def _with_sigterm(fn):
    """Run ``fn`` with SIGTERM turned into KeyboardInterrupt (checkpoints stay whole)."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return fn()
    try:
        return fn()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _resume_states(run_dir: Path) -> dict:
    if not (run_dir / "config.toml").is_file():
        raise DataError(f"{run_dir}: not a run directory (no config.toml)")
    states = {}
    for k, folder in enumerate(fold_dirs(run_dir)):
        if (folder / "last.pt").is_file():
            states[k] = load_checkpoint(folder / "last.pt")
    if not states and not any((f / "metrics.json").is_file() for f in fold_dirs(run_dir)):
        raise DataError(f"{run_dir}: no last.pt to resume from")
    return states


def _validation_metrics(trainer: Trainer) -> dict:
    """A fold's result without the test set: the best epoch's validation scores."""
    best = trainer.history[trainer.best_epoch - 1] if trainer.best_epoch else {}
    out = {k[4:]: v for k, v in best.items() if k.startswith("val_")}
    out["monitor"] = trainer.cfg.train.monitor
    out["best_metric"] = trainer.best_metric
    out["test"] = "not evaluated (evaluate_test=False)"
    return out


def run(
    cfg: Config,
    *,
    device: str | None = None,
    resume: Path | None = None,
    evaluate_test: bool = True,
    callbacks: list[Callback] | None = None,
    data: PreparedData | None = None,
) -> RunResult:
    """Train and evaluate a recipe.

    Everything that can be checked is checked before the first step: a missing dataset or
    parent checkpoint, an unknown transform, windows too short for the transform, too few
    examples of a class for the split, a corrupt checkpoint on resume.

    Parameters
    ----------
    cfg : Config
    device : str, optional
        Overrides ``train.device``.
    resume : path, optional
        A run directory to continue from its ``last.pt`` (a resumed run ends with the weights
        an uninterrupted one would have).
    evaluate_test : bool
        ``False``: train and validate only; ``metrics.json`` holds the best epoch's validation
        scores and the test set is never read.
    callbacks : list of Callback, optional
        Extra callbacks after the default ones (a pruning callback, say).
    data : PreparedData, optional
        What :func:`prepare_data` gave for a recipe with this one's ``[data]``, ``[windows]``,
        ``[eval]`` and ``model.architecture`` (a search that varies none of them prepares its
        data once); by default the recipe's own.
    """
    if device:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device=device))
    dev = resolve_device(cfg.train.device)
    dist = distributed.from_environment(dev)  # under torchrun: this rank's place (module docs)
    dev = distributed.rank_device(dist, dev)
    with _quiet_unless_main(dist):
        cfg, parent = resolve_parent(cfg)
        if resume is None and dist.active and (again := _elastic_resume(cfg, dist)):
            resume = Path(again)
        states = _resume_states(Path(resume)) if resume is not None else {}
        data = _validated(cfg, data)
        made = None
        if dist.is_main:
            made = str(Path(resume) if resume is not None else new_run_dir(cfg))
            if dist.active:
                _remember_attempt(Path(made))
        run_dir = Path(distributed.broadcast(dist, made) or "")
        lock = (
            FolderLock(run_dir, f"sigalex run {cfg.output.name or 'run'}")
            if dist.is_main
            else contextlib.nullcontext()
        )
        with lock:
            if dist.is_main:
                remove_stale_temporaries(run_dir)  # a kill during a checkpoint save leaves one
            result = _run_in(
                run_dir, cfg, data, dev, parent, states, resume, evaluate_test, callbacks, dist
            )
            distributed.barrier(dist)  # every rank returns once rank 0 has written the run
            return result


def _attempt_name() -> str | None:
    """``.torchrun-<run id>``: the note a torchrun launch leaves in its run directory, so that
    its workers, restarted by torchrun (``--max-restarts``), find the run and resume it."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "")
    if not run_id:
        return None
    return ".torchrun-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)[:100]


def _remember_attempt(run_dir: Path) -> None:
    for stale in run_dir.glob(".torchrun-*"):  # an earlier launch's (this is a --resume)
        stale.unlink(missing_ok=True)
    if (name := _attempt_name()) is not None:
        atomic_write_text(run_dir / name, "")


def _elastic_resume(cfg: Config, dist: Distributed) -> str | None:
    """The run directory to resume after an elastic restart (torchrun restarted the workers of
    a launch that had started one), or ``None``; rank 0 decides for every rank."""
    found = None
    restarts = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    name = _attempt_name()
    if dist.is_main and restarts not in ("", "0") and name is not None:
        for note in Path(cfg.output.dir).expanduser().glob(f"*/{name}"):
            folders = fold_dirs(note.parent)
            if any((f / "last.pt").is_file() or (f / "metrics.json").is_file() for f in folders):
                found = str(note.parent)
                log.info(f"elastic restart {restarts}: resuming {found}")
    return distributed.broadcast(dist, found)


@contextlib.contextmanager
def _quiet_unless_main(dist: Distributed):
    """Ranks other than 0 log errors only (one voice for N processes)."""
    logger = logging.getLogger("sigalex")
    level = logger.level
    if not dist.is_main:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _forget_last(fold_dir: Path, cfg: Config) -> None:
    """A finished fold needs no resume state: ``last.pt`` (the size of the model and its
    optimiser, hundreds of MB for AlexNet) goes unless ``output.keep_last``."""
    if not cfg.output.keep_last:
        (fold_dir / "last.pt").unlink(missing_ok=True)


#: Seeds of rank r are ``train.seed + fold + r * RANK_SEED_STRIDE``: rank 0 draws what one process
#: draws, the others their own augmentation streams (DDP copies rank 0's initial weights).
RANK_SEED_STRIDE = 1_000_003


def _run_in(
    run_dir, cfg, data, dev, parent, states, resume, evaluate_test, callbacks, dist
) -> RunResult:
    main = dist.is_main
    if main:
        atomic_write_text(run_dir / "config.toml", to_toml(cfg))
    if main and data.errors:
        write_tsv(run_dir / "data_errors.tsv", ("file", "reason"), data.errors)
        log.warning(
            f"{len(data.errors)} file(s) left out of the dataset: see {run_dir / 'data_errors.tsv'}"
        )
    folds = f" ({len(data.splits)} folds)" if len(data.splits) > 1 else ""
    log.info(
        f"run {run_dir}\n  data: {len(data.windows)} windows of {data.n_times} samples at "
        f"{data.sample_rate:g} Hz, {data.n_channels} channel(s), classes {data.classes}\n"
        f"  split: {data.splits[0].description}{folds}\n  device: {dev}"
        + (
            f" (rank 0 of {dist.world_size}, {dist.backend}; batch {cfg.train.batch_size} a "
            f"rank, {cfg.train.batch_size * dist.world_size} a step)"
            if dist.active
            else ""
        )
    )
    for note in data.notes[:10]:
        log.info(f"  note: {note}")
    fold_metrics, checkpoints = [], []
    started = time.perf_counter()
    weights_used = "random"
    for k, split in enumerate(data.splits):
        fold_dir = run_dir if len(data.splits) == 1 else run_dir / f"fold-{k + 1:02d}"
        if main:
            fold_dir.mkdir(parents=True, exist_ok=True)
        checkpoints.append(fold_dir / "checkpoint.pt")
        finished = None  # a resumed run's finished fold (rank 0 decides for every rank)
        if main and resume is not None and (fold_dir / "metrics.json").is_file():
            finished = json.loads((fold_dir / "metrics.json").read_text())
        finished = distributed.broadcast(dist, finished)
        if finished is not None:
            fold_metrics.append(finished)
            continue
        seed_everything(
            cfg.train.seed + k + dist.rank * RANK_SEED_STRIDE, deterministic=cfg.train.deterministic
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model, weights_used, parent_info = initial_model(cfg, data.spec, parent=parent)
        for c in caught:
            log.warning(f"WARNING: {c.message}")
        # Rank 0 writes (checkpoints, history, log, progress); every rank stops early alike.
        board = run_dir / "tensorboard" / (fold_dir.name if fold_dir != run_dir else "")
        own = (
            default_callbacks(cfg, fold_dir, tensorboard_dir=board)
            if main
            else [EarlyStopping(cfg.train.early_stopping_patience)]
        )
        trainer = Trainer(
            cfg, data, split, model, device=dev, weights_used=weights_used, parent=parent_info,
            callbacks=[*own, *(callbacks or [])], dist=dist,
        )  # fmt: skip
        if k in states:
            trainer.restore(states[k])
            log.info(f"resuming fold {k + 1} after epoch {trainer.epoch}")
        try:
            _with_sigterm(trainer.fit)
        except KeyboardInterrupt:
            log.warning(
                f"\ninterrupted; the last finished epoch is saved. Resume with:\n"
                f"  sigalex run --resume {run_dir}"
            )
            raise
        if evaluate_test:
            metrics = finish_fold(trainer, fold_dir)
            log.info(summary_line(metrics))
            if "per_recording" in metrics:
                per = metrics["per_recording"]
                log.info(f"per recording ({per['n_recordings']}): {summary_line(per)}")
        else:
            metrics = _validation_metrics(trainer)
        metrics.update(
            split=split.description,
            fold=k + 1,
            epochs=trainer.epoch,
            best_epoch=trainer.best_epoch,
            split_counts=split_counts(data, split),
        )
        if len(data.splits) > 1 and main:
            atomic_write_text(
                fold_dir / "metrics.json", json.dumps(metrics, indent=2, default=_json_default)
            )
            _forget_last(fold_dir, cfg)
        fold_metrics.append(metrics)
    if len(fold_metrics) == 1:
        final = dict(fold_metrics[0])
    else:
        final = {"folds": fold_metrics, **summarise_folds(fold_metrics)}
        if all("per_recording" in m for m in fold_metrics):
            final["per_recording"] = summarise_folds([m["per_recording"] for m in fold_metrics])
        final["split"] = (
            f"{cfg.eval.split}: {len(fold_metrics)} folds; {data.splits[0].description}"
        )
    final.update(
        weights_used=weights_used,
        parent=parent.path.as_posix() if parent is not None and parent.path else None,
        device=device_name(dev),
        dataset=cfg.data.dataset,
        dataset_root=str(data.dataset_root),
        transform=cfg.transform.method,
        positive_class=data.spec.positive_class,
        n_windows=len(data.windows),
        n_train=len(data.splits[0].train),
        n_val=len(data.splits[0].val),
        n_test=len(data.splits[0].test),
        seconds=round(time.perf_counter() - started, 1),
        sigalex_version=__version__,
        torch_version=torch.__version__,
        data_notes=data.notes[:50],
        **dist.describe(),
        devices=distributed.all_gather(dist, device_name(dev)),
        batch_size_per_rank=cfg.train.batch_size,
        global_batch_size=cfg.train.batch_size * dist.world_size,
    )
    if main:
        text = json.dumps(final, indent=2, default=_json_default)
        atomic_write_text(run_dir / "metrics.json", text)
        _forget_last(run_dir, cfg)
        if dist.active and (name := _attempt_name()) is not None:
            (run_dir / name).unlink(missing_ok=True)  # done: no restart will look for it
        log.info(f"wrote {run_dir / 'metrics.json'}")
        _write_report(run_dir)
    return RunResult(run_dir, final, checkpoints)


def _write_report(run_dir: Path) -> None:
    """``report.html`` from the finished run directory; a failure is a warning, never the
    run's end (the run's own files are all written)."""
    try:
        from ..reports import run_report

        log.info(f"wrote {run_report(run_dir)}")
    except Exception as exc:  # a report is a view of the run: the run stands without it
        log.warning(f"WARNING: report.html not written: {type(exc).__name__}: {exc}")


def run_recipe(path=None, *, overrides=(), device=None, resume=None) -> RunResult:
    """``sigalex run``: load a recipe (or, with ``resume``, the run's own ``config.toml``) and
    run it."""
    if resume is not None:
        path = Path(resume) / "config.toml"
        if not path.is_file():
            raise DataError(f"{resume}: not a run directory (no config.toml)")
    if path is None:
        raise ConfigError("give a recipe (TOML), or --resume RUN_DIR")
    cfg = load_config(path, overrides)
    return run(cfg, device=device, resume=resume)


__all__ = [
    "RunResult",
    "new_run_dir",
    "resolve_device",
    "run",
    "run_recipe",
    "seed_everything",
    "validate",
]
