"""``sigalex run``: recipe → dataset → windows → split → images → AlexNet → run directory.

Importable (``from sigalex.train import run``) but not imported by ``import sigalex``, so the API
stays light. The run directory ``<output.dir>/<name>-<timestamp>/`` holds:

- ``config.toml``: the resolved recipe (every default written out);
- ``checkpoint.pt``: the best model: state dict + config + class names + version + front end,
  loadable with ``torch.load(..., weights_only=True)``; ``last.pt`` adds the optimiser state
  for ``--resume``;
- ``history.csv``: one row per epoch; ``metrics.json``: test metrics, split, weights, device;
- ``plots/``: training curves, confusion matrix, ROC, example images per class.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import random
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__, _checks
from ._files import atomic_path, atomic_write_text
from .config import Config, load_config, to_dict, to_toml
from .errors import ConfigError, DataError, ParameterError, SigalexError
from .frontend import ImageFrontend

# ---------------------------------------------------------------------------------------------
# Small utilities


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is checked (``ConfigError``)."""
    try:
        return _checks.resolve_device(name, name="train.device")
    except ParameterError as exc:
        raise ConfigError(str(exc)) from exc


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds code that uses the global generator
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def save_checkpoint(path: Path, payload: dict) -> None:
    """``torch.save`` to a temporary file, then rename: a kill never leaves half a checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint with ``weights_only=True``; a corrupt or foreign file is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise DataError(f"{path}: corrupt or unreadable checkpoint ({exc})") from exc
    needed = {"state_dict", "config", "classes", "version"}
    if not isinstance(ckpt, dict) or not needed <= set(ckpt):
        raise DataError(f"{path}: not a sigalex checkpoint (needs {', '.join(sorted(needed))})")
    return ckpt


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class PreparedData:
    """Everything the loop needs about the examples."""

    windows: list  # sigalex.windows.Window
    classes: list[str]
    targets: np.ndarray  # (n_windows,) int
    groups: np.ndarray  # (n_windows,) object
    recordings: np.ndarray  # (n_windows,) object: the recording each window was cut from
    group_by: str
    sample_rate: float  # Hz of the windows the model sees
    n_channels: int
    channel_names: list[str]  # of the first recording, as the model saw them
    n_times: int  # samples per window the model sees
    fit: str  # how windows of other lengths are brought to n_times (windows.fit)
    splits: list  # sigalex.splits.Split, one per fold
    opener: Callable
    dataset_root: Path
    notes: list[str]


class _Resampled(torch.utils.data.Dataset):
    """Windows read at their own rate, resampled to the model's (polyphase, in the worker), then
    fitted to ``n_times`` — the order prediction uses too."""

    def __init__(self, base, sample_rates: np.ndarray, target_rate: float, n_times: int, fit: str):
        self.base, self.rates, self.target = base, sample_rates, target_rate
        self.n_times, self.fit = n_times, fit

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        from fractions import Fraction

        import scipy.signal

        from .windows import fit_length

        x, y = self.base[i]
        x = x.numpy()
        rate = float(self.rates[i])
        if rate != self.target:
            frac = Fraction(self.target / rate).limit_denominator(1000)
            x = scipy.signal.resample_poly(x, frac.numerator, frac.denominator, axis=-1)
        x = fit_length(x.astype(np.float32), self.n_times, mode=self.fit)
        return torch.from_numpy(np.ascontiguousarray(x)), y


def _dataset_root(cfg: Config) -> Path:
    from . import datasets

    name = cfg.data.dataset
    if cfg.data.root:
        root = Path(cfg.data.root).expanduser()
        if not root.exists():
            raise DataError(f"data.root = {str(root)!r}: no such file or folder")
        return root
    if name in ("folder", "manifest"):
        raise ConfigError(f"data.dataset = {name!r} needs data.root (a folder or CSV)")
    try:
        return datasets.find_dataset(name)
    except DataError as missing:
        if not cfg.data.download:
            raise DataError(
                f"{missing}\nThe recipe synthetic-seizure.toml needs no data."
            ) from None
        try:
            return datasets.fetch(name)
        except DataError as failed:
            raise DataError(
                f"dataset {name!r} is neither found nor downloadable: {failed}\n"
                "Point SIGALEX_DATA (or data.root) at a local copy, or run "
                "pipelines/synthetic-seizure.toml, which needs no data."
            ) from None


def _synthetic_index(cfg: Config):
    from .annotations import read_events_tsv
    from .datasets import DatasetIndex, Item
    from .synthetic import write_synthetic_dataset

    root = Path(cfg.data.root or Path(cfg.output.dir) / "synthetic-data").expanduser()
    edfs = sorted(root.glob("sub-*_eeg.edf"))
    if len(edfs) < cfg.data.n_recordings:
        print(f"writing {cfg.data.n_recordings} synthetic EDF recordings to {root}", flush=True)
        write_synthetic_dataset(
            root, cfg.data.n_recordings, duration_s=cfg.data.duration_s, seed=cfg.train.seed
        )
        edfs = sorted(root.glob("sub-*_eeg.edf"))
    items = []
    for edf in edfs[: cfg.data.n_recordings]:
        stem = edf.name.removesuffix("_eeg.edf")
        tsv = edf.with_name(f"{stem}_events.tsv")
        events = tuple(read_events_tsv(tsv)) if tsv.is_file() else ()
        items.append(
            Item(path=edf, label=None, group=stem.split("_")[0], recording=stem, annotations=events)
        )
    return DatasetIndex(
        name="synthetic",
        root=root,
        items=items,
        classes=[cfg.windows.default_label, "seizure"],
        group_by="subject",
    )


def _index(cfg: Config):
    from . import datasets

    if cfg.data.dataset == "synthetic":
        return _synthetic_index(cfg)
    root = _dataset_root(cfg)
    options = {}
    if cfg.data.dataset == "bonn":
        options["task"] = cfg.data.task
    elif cfg.data.dataset == "chbmit":
        options["source"] = cfg.data.source
    elif cfg.data.dataset in ("folder", "manifest") and cfg.data.sample_rate:
        options["sample_rate"] = cfg.data.sample_rate
    try:
        return datasets.load_dataset(cfg.data.dataset, root, **options)
    except ParameterError as exc:
        raise ConfigError(f"data: {exc}") from exc


def _make_splits(
    cfg: Config,
    index,
    targets: np.ndarray,
    groups: np.ndarray,
    recordings: np.ndarray,
    item_of: np.ndarray,
):
    from . import splits as S

    e = cfg.eval
    by = index.group_by
    try:
        if e.split == "grouped":
            return [
                S.grouped_split(
                    targets, groups, test_fraction=e.test_fraction, val_fraction=e.val_fraction,
                    seed=e.seed, by=by,
                )
            ]  # fmt: skip
        if e.split == "stratified":
            return [
                S.stratified_split(
                    targets, test_fraction=e.test_fraction, val_fraction=e.val_fraction, seed=e.seed
                )
            ]
        if e.split == "official":
            item_split = index.official_split()
            side = np.full(len(index.items), "train", dtype=object)
            side[item_split.test] = "test"
            side[item_split.val] = "val"
            base = S.official_split(list(side[item_of]), description=item_split.description)
            return [_carve_val(base, targets, groups, recordings, e, by)]
        folds = (
            S.group_kfold(targets, groups, n_splits=e.folds, seed=e.seed, by=by)
            if e.split == "kfold"
            else S.leave_one_group_out(targets, groups, by=by)
        )
        return [_carve_val(f, targets, groups, recordings, e, by) for f in folds]
    except ParameterError as exc:
        raise ConfigError(f"eval.split = {e.split!r}: {exc}") from exc


def _carve_val(split, targets, groups, recordings, e, by):
    """A validation set taken from ``split.train`` if it has none, drawn the way the test was.

    When the test set holds out whole groups (k-fold, leave-one-out), so does validation: it
    then estimates accuracy on unseen patients or speakers. When the test set shares groups with
    training (FSDD's official split tests every speaker), validation is carved by recording
    instead: holding out a whole speaker there would drop one the test set still scores.
    """
    from . import splits as S

    if len(split.val) or e.val_fraction == 0:
        return split
    train = split.train
    test_shares_groups = bool(set(groups[train].tolist()) & set(groups[split.test].tolist()))
    unit, unit_name = (recordings, "recording") if test_shares_groups else (groups, by)
    try:
        inner = S.grouped_split(
            targets[train], unit[train], test_fraction=e.val_fraction, seed=e.seed, by=unit_name
        )
        how = f"val = {e.val_fraction:.0%} of training {unit_name}s"
    except ParameterError:
        inner = S.stratified_split(targets[train], test_fraction=e.val_fraction, seed=e.seed)
        how = f"val = {e.val_fraction:.0%} of training examples, stratified"
    return dataclasses.replace(
        split,
        train=np.sort(train[inner.train]),
        val=np.sort(train[inner.test]),
        description=f"{split.description}; {how}",
    )


def prepare_data(cfg: Config) -> PreparedData:
    """Index the dataset, cut windows, label them and split them; no model, no FFTs.

    Raises ``DataError`` (missing or unreadable data) or ``ConfigError`` (a recipe the data
    cannot satisfy: too few examples of a class for the split, windows longer than recordings…).
    """
    index = _index(cfg)
    notes = list(index.errors)
    w = cfg.windows
    label_options = {"min_overlap": w.min_overlap, "default_label": w.default_label}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        windows = index.windows(
            window_s=w.window_s or None,
            stride_s=(w.stride_s or None) if w.window_s else None,
            **(label_options if any(it.label is None for it in index.items) else {}),
        )
    notes += [str(c.message) for c in caught]
    if not windows:
        raise DataError(
            f"no usable windows in {index.root} (dataset {cfg.data.dataset!r}); "
            + ("; ".join(notes[:5]) or "no files found")
        )
    classes = list(index.classes)
    labels = [win.label for win in windows]
    unknown = sorted({lab for lab in labels if lab not in classes})
    if unknown:
        raise DataError(f"windows carry labels {unknown} outside the classes {classes}")
    targets = np.array([classes.index(lab) for lab in labels], dtype=np.int64)
    present = np.bincount(targets, minlength=len(classes))
    if (present == 0).any():
        missing = [c for c, n in zip(classes, present, strict=True) if n == 0]
        raise ConfigError(f"no examples of class(es) {missing} in {index.root}")
    groups = np.array([win.group or win.recording for win in windows], dtype=object)
    item_by_recording = {str(it.path): i for i, it in enumerate(index.items)}
    item_of = np.array([item_by_recording.get(win.recording, -1) for win in windows])
    rates = {float(win.sample_rate) for win in windows}
    target_rate = cfg.data.sample_rate or (rates.pop() if len(rates) == 1 else 0.0)
    if not target_rate:
        raise ConfigError(
            f"recordings have different sample rates {sorted(rates)} Hz; set data.sample_rate"
        )
    if w.window_s:
        n_times = round(w.window_s * target_rate)
    elif w.length_s:
        n_times = round(w.length_s * target_rate)
    else:
        n_times = max(round(win.n_times * target_rate / win.sample_rate) for win in windows)
    from .windows import RecordingOpener

    opener = RecordingOpener(cfg.data.channels)
    first = opener(windows[0])
    n_channels = first.n_channels
    channel_names = list(getattr(first, "channel_names", []))
    recordings = np.array([win.recording for win in windows], dtype=object)
    splits = _make_splits(cfg, index, targets, groups, recordings, item_of)
    return PreparedData(
        windows=windows,
        classes=classes,
        targets=targets,
        groups=groups,
        recordings=recordings,
        group_by=index.group_by,
        sample_rate=float(target_rate),
        n_channels=n_channels,
        channel_names=channel_names,
        n_times=int(n_times),
        fit=w.fit,
        splits=splits,
        opener=opener,
        dataset_root=Path(index.root),
        notes=notes,
    )


def window_dataset(data: PreparedData, indices: np.ndarray) -> torch.utils.data.Dataset:
    """Raw windows ``(n_channels, n_times)`` float32 and labels for ``indices``.

    Windows at another sample rate are resampled first, then fitted to ``n_times``
    (``windows.fit``); windows at the model's rate are only fitted.
    """
    from .windows import WindowDataset

    wins = [data.windows[i] for i in indices]
    rates = np.array([w.sample_rate for w in wins])
    resample = not np.all(rates == data.sample_rate)
    same_length = all(w.n_times == data.n_times for w in wins)
    base = WindowDataset(
        wins,
        classes=data.classes,
        n_times=None if (same_length or resample) else data.n_times,
        fit=data.fit,
        opener=data.opener,
        cache_size=8,
    )
    if not resample:
        return base
    return _Resampled(base, rates, data.sample_rate, data.n_times, data.fit)


# ---------------------------------------------------------------------------------------------
# Front end, model, optimiser


def build_frontend(cfg: Config, sample_rate: float) -> ImageFrontend:
    """The transform + render of a recipe at ``sample_rate``; bad parameters name their key."""
    r = cfg.render
    render = dict(
        size=r.size, colormap=r.colormap, channels=r.channels, scale=r.scale, top_db=r.top_db,
        normalize=r.normalize, percentiles=r.percentiles,
    )  # fmt: skip
    if r.normalize == "fixed":
        render.update(vmin=r.vmin, vmax=r.vmax)
    try:
        return ImageFrontend(
            sample_rate, cfg.transform.method, **dict(cfg.transform.params), **render
        )
    except ParameterError as exc:
        raise ConfigError(f"[transform]/[render] at {sample_rate:g} Hz: {exc}") from exc


def _param_groups(model: nn.Module, cfg: Config, pretrained: bool) -> list[dict]:
    head = {id(p) for p in model.head.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head]
    top = [p for p in model.head.parameters() if p.requires_grad]
    scale = cfg.model.pretrained_lr_scale if pretrained else 1.0
    groups = [{"params": top, "lr": cfg.train.lr, "name": "head"}]
    if body:
        groups.append({"params": body, "lr": cfg.train.lr * scale, "name": "body"})
    return groups


def build_optimizer(model: nn.Module, cfg: Config, pretrained: bool) -> torch.optim.Optimizer:
    t = cfg.train
    groups = _param_groups(model, cfg, pretrained)
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    return torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)


def build_scheduler(optimizer, cfg: Config, steps_per_epoch: int):
    t = cfg.train
    total = max(1, t.epochs * steps_per_epoch)
    warmup = t.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if t.schedule == "none":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if t.schedule == "step":
            return 0.1 ** int(3 * min(progress, 0.999))
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ---------------------------------------------------------------------------------------------
# Augmentation (on the device, batched)


def time_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None):
    """Circularly shift each window ``(batch, n_channels, n_times)`` by up to ±``max_shift``."""
    if max_shift <= 0:
        return x
    batch, _, n = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (batch, 1, 1), generator=generator)
    idx = (torch.arange(n)[None, None, :] - shifts) % n
    return torch.gather(x, -1, idx.to(x.device).expand_as(x))


def spec_augment(maps: torch.Tensor, *, time_masks: int, freq_masks: int, fraction: float):
    """Zero random bands of ``(batch, n_channels, n_freqs, n_frames)`` maps (SpecAugment).

    Each example gets ``time_masks`` bands across time and ``freq_masks`` across frequency, each
    up to ``fraction`` of its axis wide; zeros render as the lowest colour.
    """
    if not (time_masks or freq_masks):
        return maps
    batch, _, n_freqs, n_frames = maps.shape
    keep = torch.ones(batch, 1, n_freqs, n_frames, device=maps.device, dtype=torch.bool)
    for axis, count, size in ((3, time_masks, n_frames), (2, freq_masks, n_freqs)):
        width_max = max(1, int(fraction * size))
        for _ in range(count):
            width = torch.randint(0, width_max + 1, (batch, 1, 1, 1), device=maps.device)
            start = (torch.rand(batch, 1, 1, 1, device=maps.device) * (size - width + 1)).long()
            pos = torch.arange(size, device=maps.device)
            pos = pos.view(1, 1, 1, -1) if axis == 3 else pos.view(1, 1, -1, 1)
            keep &= ~((pos >= start) & (pos < start + width))
    return maps * keep


# ---------------------------------------------------------------------------------------------
# The loop


def _progress(iterable, **kw):
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        disable=not sys.stderr.isatty() and os.environ.get("SIGALEX_PROGRESS") != "1",
        **kw,
    )


class Trainer:
    """One model on one split: fit with validation, then test."""

    def __init__(self, cfg: Config, data: PreparedData, split, run_dir: Path, device: torch.device):
        from .models import build_model

        self.cfg, self.data, self.split, self.run_dir, self.device = (
            cfg,
            data,
            split,
            run_dir,
            device,
        )
        self.frontend = build_frontend(cfg, data.sample_rate).to(device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.model, self.weights_used = build_model(
                cfg.model.architecture,
                num_classes=len(data.classes),
                weights=None if cfg.model.weights.lower() in ("none", "") else cfg.model.weights,
                weights_required=cfg.model.weights_required,
                dropout=cfg.model.dropout,
                freeze=cfg.model.freeze,
            )
        for c in caught:
            print(f"WARNING: {c.message}", file=sys.stderr, flush=True)
        self.model.to(device)
        self.channels_last = cfg.train.channels_last
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.amp = cfg.train.amp and device.type == "cuda"
        loader_kw = dict(
            batch_size=cfg.train.batch_size,
            num_workers=cfg.train.num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=cfg.train.num_workers > 0,
        )
        self.train_set = window_dataset(data, split.train)
        sampler = None
        y_train = data.targets[split.train]
        counts = np.bincount(y_train, minlength=len(data.classes)).astype(float)
        if cfg.train.balance == "sampler":
            weights = 1.0 / np.maximum(counts[y_train], 1)
            sampler = torch.utils.data.WeightedRandomSampler(
                torch.as_tensor(weights, dtype=torch.double), num_samples=len(y_train)
            )
        self.train_loader = torch.utils.data.DataLoader(
            self.train_set, shuffle=sampler is None, sampler=sampler, drop_last=False, **loader_kw
        )
        eval_kw = dict(loader_kw, batch_size=max(cfg.train.batch_size, 64))
        self.val_loader = (
            torch.utils.data.DataLoader(window_dataset(data, split.val), **eval_kw)
            if len(split.val)
            else None
        )
        self.test_loader = torch.utils.data.DataLoader(window_dataset(data, split.test), **eval_kw)
        class_weight = None
        if cfg.train.balance == "weights":
            w = counts.sum() / (len(counts) * np.maximum(counts, 1))
            class_weight = torch.tensor(w, dtype=torch.float32, device=device)
        self.loss_fn = nn.CrossEntropyLoss(weight=class_weight)
        steps = len(self.train_loader)
        if cfg.train.max_steps_per_epoch:
            steps = min(steps, cfg.train.max_steps_per_epoch)
        self.steps_per_epoch = steps
        self.optimizer = build_optimizer(self.model, cfg, self.weights_used != "random")
        self.scheduler = build_scheduler(self.optimizer, cfg, steps)
        self.epoch = 0
        self.history: list[dict] = []
        self.best_metric = -math.inf
        self.best_epoch = 0
        self.max_shift = round(cfg.train.time_shift_s * data.sample_rate)

    # -- images -----------------------------------------------------------------------------
    def images(self, x: torch.Tensor, *, train: bool) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        t = self.cfg.train
        if train:
            x = time_shift(x, self.max_shift)
        maps = self.frontend.transform(x)
        if train:
            maps = spec_augment(
                maps, time_masks=t.time_masks, freq_masks=t.freq_masks, fraction=t.mask_fraction
            )
        images = self.frontend.render(maps)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def _autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    # -- phases -----------------------------------------------------------------------------
    def train_epoch(self) -> dict:
        self.model.train()
        total, correct, loss_sum = 0, 0, 0.0
        bar = _progress(
            self.train_loader,
            total=self.steps_per_epoch,
            desc=f"epoch {self.epoch + 1}",
            leave=False,
        )
        for step, (x, y) in enumerate(bar):
            if step >= self.steps_per_epoch:
                break
            y = y.to(self.device, non_blocking=True)
            with torch.no_grad():
                images = self.images(x, train=True)
            with self._autocast():
                logits = self.model(images)
                loss = self.loss_fn(logits.float(), y)
            if not torch.isfinite(loss):
                raise SigalexError(
                    f"the loss became {float(loss)} at epoch {self.epoch + 1}, step {step}; "
                    "lower train.lr"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            n = len(y)
            total += n
            loss_sum += float(loss.detach()) * n
            correct += int((logits.argmax(1) == y).sum())
            bar.set_postfix(loss=f"{loss_sum / total:.4f}", acc=f"{correct / total:.3f}")
        return {"train_loss": loss_sum / max(total, 1), "train_accuracy": correct / max(total, 1)}

    @torch.no_grad()
    def predict(self, loader) -> tuple[np.ndarray, np.ndarray, float]:
        """``(y_true (n,), probabilities (n, n_classes), mean loss)`` over ``loader``."""
        self.model.eval()
        ys, ps, loss_sum, n = [], [], 0.0, 0
        for x, y in _progress(loader, desc="evaluating", leave=False):
            y = y.to(self.device, non_blocking=True)
            with self._autocast():
                logits = self.model(self.images(x, train=False)).float()
            loss_sum += float(self.loss_fn(logits, y)) * len(y)
            n += len(y)
            ys.append(y.cpu().numpy())
            ps.append(torch.softmax(logits, 1).cpu().numpy())
        return np.concatenate(ys), np.concatenate(ps), loss_sum / max(n, 1)

    def evaluate(self, loader) -> dict:
        from .metrics import classification_metrics

        y, p, loss = self.predict(loader)
        metrics = classification_metrics(
            y, p, self.data.classes, positive_class=self.cfg.eval.positive_class or None
        )
        metrics["loss"] = loss
        return metrics

    # -- checkpoints ------------------------------------------------------------------------
    def payload(self, *, with_optimizer: bool) -> dict:
        out = {
            "version": __version__,
            "state_dict": self.model.state_dict(),
            "config": to_dict(self.cfg),
            "classes": list(self.data.classes),
            "architecture": self.cfg.model.architecture,
            "sample_rate": self.data.sample_rate,
            "n_channels": self.data.n_channels,
            "n_times": self.data.n_times,
            "channel_names": list(self.data.channel_names),
            "weights_used": self.weights_used,
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
            "history": self.history,
            "split": self.split.description,
        }
        if with_optimizer:
            out["optimizer"] = self.optimizer.state_dict()
            out["scheduler"] = self.scheduler.state_dict()
            out["torch_rng"] = torch.get_rng_state()
        return out

    def restore(self, ckpt: dict) -> None:
        try:
            self.model.load_state_dict(ckpt["state_dict"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise DataError(f"the checkpoint does not fit this recipe's model: {exc}") from exc
        if "torch_rng" in ckpt:
            torch.set_rng_state(ckpt["torch_rng"])
        self.epoch = int(ckpt["epoch"])
        self.best_epoch = int(ckpt["best_epoch"])
        self.best_metric = float(ckpt["best_metric"])
        self.history = list(ckpt["history"])

    # -- fit --------------------------------------------------------------------------------
    def fit(self) -> None:
        cfg = self.cfg.train
        monitor = cfg.monitor
        stale = 0
        while self.epoch < cfg.epochs:
            start = time.perf_counter()
            row = {"epoch": self.epoch + 1, **self.train_epoch()}
            if self.val_loader is not None:
                val = self.evaluate(self.val_loader)
                row.update(
                    val_loss=val["loss"],
                    val_accuracy=val["accuracy"],
                    val_balanced_accuracy=val["balanced_accuracy"],
                    val_f1_macro=val["f1_macro"],
                )
                score = -val["loss"] if monitor == "loss" else (val.get(monitor) or 0.0)
            else:
                score = -row["train_loss"]
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            row["seconds"] = time.perf_counter() - start
            self.epoch += 1
            self.history.append(row)
            improved = score > self.best_metric
            if improved:
                self.best_metric, self.best_epoch, stale = score, self.epoch, 0
                save_checkpoint(self.run_dir / "checkpoint.pt", self.payload(with_optimizer=False))
            else:
                stale += 1
            save_checkpoint(self.run_dir / "last.pt", self.payload(with_optimizer=True))
            write_history(self.run_dir / "history.csv", self.history)
            print(_epoch_line(row, improved), flush=True)
            if cfg.early_stopping_patience and stale >= cfg.early_stopping_patience:
                print(f"early stopping: no better validation {monitor} for {stale} epochs")
                break


def _epoch_line(row: dict, improved: bool) -> str:
    parts = [
        f"epoch {row['epoch']:3d}",
        f"loss {row['train_loss']:.4f}",
        f"acc {row['train_accuracy']:.3f}",
    ]
    if "val_loss" in row:
        parts += [
            f"val loss {row['val_loss']:.4f}",
            f"val acc {row['val_accuracy']:.3f}",
            f"val bal-acc {row['val_balanced_accuracy']:.3f}",
        ]
    parts.append(f"{row['seconds']:.1f}s")
    return "  ".join(parts) + ("  *" if improved else "")


def write_history(path: Path, history: list[dict]) -> None:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    lines = [",".join(keys)]
    for row in history:
        lines.append(",".join("" if row.get(k) is None else f"{row[k]}" for k in keys))
    atomic_write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Orchestration


def _finish_fold(trainer: Trainer, fold_dir: Path) -> dict:
    """Test the best checkpoint, write metrics and plots for one fold."""
    from . import plots
    from .metrics import classification_metrics, roc_curves

    best = load_checkpoint(fold_dir / "checkpoint.pt")
    trainer.model.load_state_dict(best["state_dict"])
    y, p, loss = trainer.predict(trainer.test_loader)
    data = trainer.data
    metrics = classification_metrics(
        y, p, data.classes, positive_class=trainer.cfg.eval.positive_class or None
    )
    metrics["loss"] = loss
    per_recording = recording_metrics(trainer, y, p)
    if per_recording is not None:
        metrics["per_recording"] = per_recording
    plot_dir = fold_dir / "plots"
    plots.plot_history(trainer.history, plot_dir / "training.png", best_epoch=trainer.best_epoch)
    plots.plot_confusion(metrics["confusion_matrix"], data.classes, plot_dir / "confusion.png")
    if per_recording is not None:
        plots.plot_confusion(
            per_recording["confusion_matrix"], data.classes,
            plot_dir / "confusion_per_recording.png", title="Confusion matrix per recording",
        )  # fmt: skip
    if metrics.get("auroc") is not None:
        plots.plot_roc(roc_curves(y, p, data.classes), plot_dir / "roc.png")
    _plot_examples(trainer, y, p, plot_dir / "examples.png")
    return metrics


def recording_metrics(trainer: Trainer, y: np.ndarray, p: np.ndarray) -> dict | None:
    """Test metrics per recording (the mean of its windows' probabilities), or ``None``.

    Only for clip-labelled data cut into several windows a recording (Bonn segments cut into
    sub-windows, say): there each recording has one true label and a clip-level answer. Data
    whose windows carry different labels within a recording (seizure onsets in an EDF) is
    scored per window and per event instead (``sigalex predict`` / ``sigalex score``).
    """
    from .metrics import aggregate_by, classification_metrics

    recordings = trainer.data.recordings[trainer.split.test]
    _, counts = np.unique(recordings, return_counts=True)
    if counts.max() < 2:
        return None
    try:
        y_rec, p_rec, _ = aggregate_by(recordings, p, y)
    except ParameterError:  # a recording with windows of several labels
        return None
    out = classification_metrics(
        y_rec, p_rec, trainer.data.classes, positive_class=trainer.cfg.eval.positive_class or None
    )
    out["n_recordings"] = len(y_rec)
    out["aggregation"] = "mean of window probabilities per recording"
    return out


def _plot_examples(trainer: Trainer, y: np.ndarray, p: np.ndarray, path: Path) -> None:
    from . import plots
    from .render import to_uint8

    per_class = trainer.cfg.output.examples_per_class
    test_idx = trainer.split.test
    chosen = []
    for c in range(len(trainer.data.classes)):
        chosen += list(np.flatnonzero(y == c)[:per_class])
    if not chosen:
        return
    ds = window_dataset(trainer.data, test_idx[chosen])
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        images = to_uint8(trainer.images(x, train=False))
    plots.plot_examples(
        images, y[chosen], trainer.data.classes, path, per_class=per_class,
        predictions=p[chosen].argmax(1),
    )  # fmt: skip


def new_run_dir(cfg: Config) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.output.dir).expanduser() / f"{cfg.output.name or 'run'}-{stamp}"
    path, k = base, 1
    while path.exists():
        path, k = base.with_name(f"{base.name}-{k}"), k + 1
    path.mkdir(parents=True)
    return path


def validate(cfg: Config) -> PreparedData:
    """Everything ``run`` checks before training: data, windows, split, front end, weights."""
    data = prepare_data(cfg)
    frontend = build_frontend(cfg, data.sample_rate)
    frontend.transform.output_shape(data.n_times)
    if data.n_times < frontend.transform.min_length():
        raise ConfigError(
            f"windows of {data.n_times} samples are too short for [transform] "
            f"(needs {frontend.transform.min_length()}); lengthen windows.window_s"
        )
    return data


def run(cfg: Config, *, device: str | None = None, resume: Path | None = None) -> Path:
    """Train and evaluate a recipe; returns the run directory.

    Everything that can be checked is checked before the first step: a missing dataset, an
    unknown transform, windows too short for the transform, too few examples of a class for the
    split, a corrupt checkpoint on resume.
    """
    if device:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device=device))
    dev = resolve_device(cfg.train.device)
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    resume_ckpts: dict[int, dict] = {}
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.toml").is_file():
            raise DataError(f"{run_dir}: not a run directory (no config.toml)")
        for k, last in enumerate(_fold_dirs(run_dir)):
            if (last / "last.pt").is_file():
                resume_ckpts[k] = load_checkpoint(last / "last.pt")
        if not resume_ckpts and not (run_dir / "last.pt").is_file():
            raise DataError(f"{run_dir}: no last.pt to resume from")
    data = validate(cfg)
    if resume is None:
        run_dir = new_run_dir(cfg)
    atomic_write_text(run_dir / "config.toml", to_toml(cfg))
    print(
        f"run {run_dir}\n  data: {len(data.windows)} windows of {data.n_times} samples at "
        f"{data.sample_rate:g} Hz, {data.n_channels} channel(s), classes {data.classes}\n"
        f"  split: {data.splits[0].description}{f' ({len(data.splits)} folds)' if len(data.splits) > 1 else ''}\n"
        f"  device: {dev}",
        flush=True,
    )
    for note in data.notes[:10]:
        print(f"  note: {note}", flush=True)
    fold_metrics = []
    started = time.perf_counter()
    weights_used = "random"
    for k, split in enumerate(data.splits):
        fold_dir = run_dir if len(data.splits) == 1 else run_dir / f"fold-{k + 1:02d}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(cfg, data, split, fold_dir, dev)
        weights_used = trainer.weights_used
        if k in resume_ckpts:
            trainer.restore(resume_ckpts[k])
            print(f"resuming fold {k + 1} after epoch {trainer.epoch}", flush=True)
        elif resume is not None and (fold_dir / "metrics.json").is_file():
            fold_metrics.append(json.loads((fold_dir / "metrics.json").read_text()))
            continue
        try:
            _with_sigterm(trainer.fit)
        except KeyboardInterrupt:
            print(
                f"\ninterrupted; the last finished epoch is saved. Resume with:\n"
                f"  sigalex run {run_dir / 'config.toml'} --resume {run_dir}",
                file=sys.stderr,
                flush=True,
            )
            raise
        metrics = _finish_fold(trainer, fold_dir)
        metrics.update(
            split=split.description, fold=k + 1, epochs=trainer.epoch, best_epoch=trainer.best_epoch
        )
        if len(data.splits) > 1:
            atomic_write_text(fold_dir / "metrics.json", json.dumps(metrics, indent=2))
        fold_metrics.append(metrics)
        print(_summary_line(metrics, data.classes), flush=True)
        if "per_recording" in metrics:
            print(
                f"per recording ({metrics['per_recording']['n_recordings']}): "
                + _summary_line(metrics["per_recording"], data.classes),
                flush=True,
            )
    if len(fold_metrics) == 1:
        final = dict(fold_metrics[0])
    else:
        from .metrics import summarise_folds

        final = {"folds": fold_metrics, **summarise_folds(fold_metrics)}
        if all("per_recording" in m for m in fold_metrics):
            final["per_recording"] = summarise_folds([m["per_recording"] for m in fold_metrics])
        final["split"] = (
            f"{cfg.eval.split}: {len(fold_metrics)} folds; " + data.splits[0].description
        )
    final.update(
        weights_used=weights_used,
        device=_device_name(dev),
        dataset=cfg.data.dataset,
        dataset_root=str(data.dataset_root),
        transform=cfg.transform.method,
        n_windows=len(data.windows),
        n_train=len(data.splits[0].train),
        n_val=len(data.splits[0].val),
        n_test=len(data.splits[0].test),
        seconds=round(time.perf_counter() - started, 1),
        sigalex_version=__version__,
        torch_version=torch.__version__,
        data_notes=data.notes[:50],
    )
    atomic_write_text(run_dir / "metrics.json", json.dumps(final, indent=2, default=_json_default))
    print(f"wrote {run_dir / 'metrics.json'}", flush=True)
    return run_dir


def _fold_dirs(run_dir: Path) -> list[Path]:
    folds = sorted(run_dir.glob("fold-*"))
    return folds or [run_dir]


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
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _summary_line(metrics: dict, classes: list[str]) -> str:
    parts = [
        f"test accuracy {metrics['accuracy']:.4f}",
        f"balanced {metrics['balanced_accuracy']:.4f}",
        f"F1 {metrics['f1_macro']:.4f}",
    ]
    if metrics.get("auroc") is not None:
        parts.append(f"AUROC {metrics['auroc']:.4f}")
    if "sensitivity" in metrics:
        parts.append(
            f"sensitivity {metrics['sensitivity']:.4f} specificity {metrics['specificity']:.4f}"
        )
    return "  ".join(parts)


def run_recipe(path, *, overrides=(), device=None, resume=None) -> Path:
    """``sigalex run``: load a recipe (or the run's own config on resume) and run it."""
    if resume is not None:
        path = Path(resume) / "config.toml"
    cfg = load_config(path, overrides)
    return run(cfg, device=device, resume=resume)
