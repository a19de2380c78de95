"""The training loop: one model unit on one split, with callbacks around it.

:class:`Trainer` fits the model with validation after every epoch, tracks the best epoch by the
monitored validation score, and calls its callbacks (:mod:`sigalex.train.callbacks`): early
stopping, checkpoints, history, logging and progress plug in without the loop knowing them.
Its :meth:`~Trainer.state_dict` holds everything a resumed run needs to end with the same
weights as an uninterrupted one: optimiser, schedule, best epoch, history, the callbacks' state
and every random-number stream (torch CPU and CUDA, NumPy's and Python's global generators).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import TypedDict

import numpy as np
import torch
from torch import nn

from ..checkpoint import Checkpoint, new_checkpoint
from ..config import Config
from ..errors import DataError, SigalexError
from ..metrics import classification_metrics
from ..models.net import SignalClassifier
from ..transforms.augment import Augment
from . import distributed
from .callbacks import Callback, show_progress
from .data import PreparedData, window_dataset
from .distributed import SINGLE, Distributed
from .optim import build_optimizer, build_scheduler


def rng_state() -> dict:
    """Every random-number stream training draws from, as plain values and tensors."""
    # legacy=True is numpy's default, spelled out: its stubs pick the dict overload without it.
    state = np.random.get_state(legacy=True)  # noqa: NPY002 - the global stream
    assert not isinstance(state, dict)  # the global RandomState is MT19937: a legacy tuple
    keys, pos, has_gauss, gauss = state[1:]
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "internal": list(internal), "gauss": gauss_next},
    }


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state` (streams missing from ``state`` are left alone)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        n = state["numpy"]
        keys = n["keys"].numpy().astype(np.uint32)
        np.random.set_state(("MT19937", keys, n["pos"], n["has_gauss"], n["gauss"]))  # noqa: NPY002
    if "python" in state:
        p = state["python"]
        random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


class _LoaderKwargs(TypedDict):
    """The DataLoader settings the train, validation and test loaders share."""

    batch_size: int
    num_workers: int
    pin_memory: bool
    persistent_workers: bool


def _progress(iterable, *, disable: bool | None = None, **kw):
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not show_progress() if disable is None else disable, **kw)


class Trainer:
    """One model unit on one split: fit with validation, then test.

    Parameters
    ----------
    cfg : Config
        The recipe (``[train]`` for the loop, ``[eval]`` for scoring).
    data : PreparedData
    split : sigalex.splits.Split
    model : SignalClassifier
        The model unit to train (moved to ``device``).
    device : torch.device
    weights_used : str
        What the model started from (``"random"`` disables the pretrained learning-rate
        factor); recorded in checkpoints.
    parent : dict, optional
        The checkpoint it is fine-tuned from (recorded in checkpoints).
    callbacks : sequence of Callback
    dist : Distributed
        This process's place in a ``torchrun`` run (:mod:`sigalex.train.distributed`): the
        network trains under DistributedDataParallel, each epoch sharded between the ranks,
        validation and test predictions gathered. One process by default.
    """

    def __init__(
        self,
        cfg: Config,
        data: PreparedData,
        split,
        model: SignalClassifier,
        *,
        device: torch.device,
        weights_used: str = "random",
        parent: dict | None = None,
        callbacks: Sequence[Callback] = (),
        dist: Distributed = SINGLE,
    ):
        self.cfg, self.data, self.split, self.device = cfg, data, split, device
        self.dist = dist
        self.model = model.to(device)
        # The module the training steps run through: the model itself, or DDP around it
        # (which syncs gradients; the front end has no parameters and identical buffers).
        self.train_module: nn.Module = self.model
        if dist.active:
            self.train_module = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None,
                forward_sync_buffers=False,
            )  # fmt: skip
        self.weights_used, self.parent = weights_used, parent
        self.callbacks = list(callbacks)
        t = cfg.train
        loader_kw = _LoaderKwargs(
            batch_size=t.batch_size,
            num_workers=t.num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=t.num_workers > 0,
        )
        y_train = data.targets[split.train]
        counts = np.bincount(y_train, minlength=len(data.classes)).astype(float)
        train_set = window_dataset(data, split.train)
        sampler = None
        if t.balance == "sampler":
            weights = 1.0 / np.maximum(counts[y_train], 1)
            if dist.active:
                sampler = distributed.DistributedWeightedSampler(
                    weights, len(y_train), dist, seed=t.seed
                )
            else:
                sampler = torch.utils.data.WeightedRandomSampler(
                    # Annotated Sequence[float]; it takes a tensor (torch.as_tensor inside).
                    torch.as_tensor(weights, dtype=torch.double),  # pyright: ignore[reportArgumentType]
                    num_samples=len(y_train),
                )
        elif dist.active:
            sampler = torch.utils.data.DistributedSampler(
                train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                seed=t.seed, drop_last=False,
            )  # fmt: skip
        self.train_sampler = sampler
        self.train_loader = torch.utils.data.DataLoader(
            train_set, shuffle=sampler is None, sampler=sampler, drop_last=False, **loader_kw,
        )  # fmt: skip
        eval_kw = loader_kw.copy()
        eval_kw["batch_size"] = max(t.batch_size, 64)
        # Each rank evaluates its share of the windows (all of them in one process); the
        # positions put the gathered predictions back in order.
        self.val_loader = self._eval_loader(split.val, eval_kw) if len(split.val) else None
        self.test_loader = self._eval_loader(split.test, eval_kw)
        class_weight = None
        if t.balance == "weights":
            w = counts.sum() / (len(counts) * np.maximum(counts, 1))
            class_weight = torch.tensor(w, dtype=torch.float32, device=device)
        self.loss_fn = nn.CrossEntropyLoss(weight=class_weight)
        steps = len(self.train_loader)
        if t.max_steps_per_epoch:
            steps = min(steps, t.max_steps_per_epoch)
        self.steps_per_epoch = steps
        self.optimizer = build_optimizer(model.network, cfg, weights_used != "random")
        self.scheduler = build_scheduler(self.optimizer, cfg, steps)
        self.augment = Augment(
            max_shift=round(t.time_shift_s * data.sample_rate), time_masks=t.time_masks,
            freq_masks=t.freq_masks, mask_fraction=t.mask_fraction, max_warp=t.freq_warp,
            mixup=t.mixup,
        )  # fmt: skip
        self.epoch = 0
        self.history: list[dict] = []
        self.best_metric = -math.inf
        self.best_epoch = 0
        self.last_score = -math.inf
        self.improved = False
        self.stop_reason: str | None = None
        self.best_state: dict[str, torch.Tensor] | None = None  # distributed runs only
        self.rng_ranks: list[dict] = []  # distributed runs: every rank's streams, each epoch

    def _eval_loader(self, indices: np.ndarray, kw: _LoaderKwargs):
        positions = distributed.shard(len(indices), self.dist)
        loader = torch.utils.data.DataLoader(
            window_dataset(self.data, np.asarray(indices)[positions]), **kw
        )
        loader.positions = positions  # pyright: ignore[reportAttributeAccessIssue]
        return loader

    # -- the loop ---------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """Ask the loop to stop after this epoch (callbacks: early stopping, pruning)."""
        self.stop_reason = reason

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self) -> None:
        """Train until ``train.epochs`` or a callback stops it; validation after every epoch."""
        t = self.cfg.train
        self._call("on_fit_start")
        while self.epoch < t.epochs and self.stop_reason is None:
            start = time.perf_counter()
            set_epoch = getattr(self.train_sampler, "set_epoch", None)
            if set_epoch is not None:  # distributed samplers: this epoch's shuffle or draw
                set_epoch(self.epoch)
            self._call("on_epoch_start")
            row = {"epoch": self.epoch + 1, **self.train_epoch()}
            if self.val_loader is not None:
                val = self.evaluate(self.val_loader)
                row.update(
                    val_loss=val["loss"],
                    val_accuracy=val["accuracy"],
                    val_balanced_accuracy=val["balanced_accuracy"],
                    val_f1_macro=val["f1_macro"],
                )
                score = -val["loss"] if t.monitor == "loss" else (val.get(t.monitor) or 0.0)
            else:
                score = -row["train_loss"]
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            row["seconds"] = time.perf_counter() - start
            self.epoch += 1
            self.history.append(row)
            self.last_score = score
            self.improved = score > self.best_metric
            if self.improved:
                self.best_metric, self.best_epoch = score, self.epoch
                if self.dist.active:  # rank 0 writes checkpoint.pt; every rank keeps the best
                    self.best_state = {
                        k: v.detach().cpu().clone()
                        for k, v in self.model.network.state_dict().items()
                    }
            if self.dist.active:  # last.pt carries every rank's streams (rank 0 writes it)
                self.rng_ranks = distributed.all_gather(self.dist, rng_state())
            self._call("on_epoch_end", row)
        self._call("on_fit_end")

    def train_epoch(self) -> dict:
        """One pass over the training batches (at most ``steps_per_epoch``)."""
        self.model.train()
        total, correct, loss_sum = 0, 0, 0.0
        for step, (x, y) in enumerate(self.train_loader):
            if step >= self.steps_per_epoch:
                break
            y = y.to(self.device, non_blocking=True)
            augment = self.augment.drawn(len(y))
            logits = self.train_module(x, augment=augment)
            loss = self.loss_fn(logits, y)
            if augment.mix is not None:  # each example is partly example perm[i]: so is its loss
                perm, lam = augment.mix.perm.to(y.device), augment.mix.lam
                loss = lam * loss + (1 - lam) * self.loss_fn(logits, y[perm])
            if not torch.isfinite(loss):
                raise SigalexError(
                    f"the loss became {float(loss.detach())} at epoch {self.epoch + 1}, step {step}; "
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
            logs = {"loss": loss_sum / total, "accuracy": correct / total, "inputs": x}
            self._call("on_batch_end", step, logs)
        return {"train_loss": loss_sum / max(total, 1), "train_accuracy": correct / max(total, 1)}

    @torch.no_grad()
    def predict(self, loader) -> tuple[np.ndarray, np.ndarray, float]:
        """``(y_true (n,), probabilities (n, n_classes), mean loss)`` over ``loader`` (one of
        the trainer's evaluation loaders: in a distributed run, over every rank's share, in
        order, each window once)."""
        self.model.eval()
        n_classes = len(self.data.classes)
        ys, ps, loss_sum, n = (
            [np.zeros(0, np.int64)],
            [np.zeros((0, n_classes), np.float32)],
            0.0,
            0,
        )
        show = self.dist.is_main and show_progress()
        for x, y in _progress(loader, desc="evaluating", leave=False, disable=not show):
            y = y.to(self.device, non_blocking=True)
            logits = self.model(x)
            loss_sum += float(self.loss_fn(logits, y)) * len(y)
            n += len(y)
            ys.append(y.cpu().numpy())
            ps.append(torch.softmax(logits, 1).cpu().numpy())
        y_all, p_all = np.concatenate(ys), np.concatenate(ps)
        if self.dist.active:
            return distributed.gather_predictions(
                self.dist, loader.positions, y_all, p_all, loss_sum
            )
        return y_all, p_all, loss_sum / max(n, 1)

    def evaluate(self, loader) -> dict:
        """Classification metrics (and ``loss``) over ``loader``."""
        y, p, loss = self.predict(loader)
        metrics = classification_metrics(
            y, p, self.data.classes, positive_class=self.data.spec.positive_class
        )
        metrics["loss"] = loss
        return metrics

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a resumed run needs (module docs)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "rng_ranks": self.rng_ranks,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
            "last_score": self.last_score,
            "stop_reason": self.stop_reason,
        }

    def training_info(self) -> dict:
        """The checkpoint's ``training`` table."""
        return {
            "epoch": self.epoch,
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
            "monitor": self.cfg.train.monitor,
            "history": self.history,
            "split": self.split.description,
            "weights_used": self.weights_used,
        }

    def checkpoint(self, *, resume: bool) -> Checkpoint:
        """The model now, as a checkpoint; ``resume`` adds :meth:`state_dict` (``last.pt``)."""
        return new_checkpoint(
            self.model, self.cfg, training=self.training_info(), parent=self.parent,
            resume=self.state_dict() if resume else None,
        )  # fmt: skip

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from a ``last.pt``: weights, optimiser, schedule, best epoch, history,
        callbacks and random-number streams.

        Raises
        ------
        DataError
            A checkpoint without resume state, or one that does not fit this recipe's model.
        """
        state = ckpt.resume
        if not state:
            raise DataError(f"{ckpt.path}: holds no resume state (not a last.pt)")
        try:
            self.model.network.load_state_dict(ckpt.state_dict)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise DataError(f"the checkpoint does not fit this recipe's model: {exc}") from exc
        info = ckpt.training
        self.epoch = int(info["epoch"])
        self.best_epoch = int(info["best_epoch"])
        self.best_metric = float(info["best_metric"])
        self.history = list(info["history"])
        self.last_score = float(state.get("last_score", -math.inf))
        self.stop_reason = state.get("stop_reason")
        saved = state.get("callbacks", {})
        for cb in self.callbacks:
            cb.load_state_dict(saved.get(type(cb).__name__, {}))
        ranks = state.get("rng_ranks") or []
        if self.dist.active and len(ranks) == self.dist.world_size:
            set_rng_state(ranks[self.dist.rank])
        elif self.dist.is_main:
            set_rng_state(state.get("rng", {}))


__all__ = ["Trainer", "rng_state", "set_rng_state"]
