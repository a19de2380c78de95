"""Training on several processes: PyTorch's ``torch.distributed``, launched by ``torchrun``.

``torchrun --nproc-per-node N -m sigalex run CONFIG`` (or ``sigalex run --nproc N CONFIG``,
which launches exactly that; several nodes with torchrun's ``--nnodes`` and a rendezvous
endpoint) starts N copies of ``sigalex run``. Each reads ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` (:func:`from_environment`), joins the process group (NCCL on GPUs, each rank on
``cuda:LOCAL_RANK``; gloo on CPUs) and trains the same model with
:class:`~torch.nn.parallel.DistributedDataParallel`:

- every rank prepares the same data and computes the same split (deterministic: nothing is
  sent); each epoch is sharded by a :class:`~torch.utils.data.DistributedSampler` (or
  :class:`DistributedWeightedSampler` for ``train.balance = "sampler"``), and every rank draws
  its own augmentation streams (seeded by rank);
- validation and test windows are split between the ranks without padding and their
  predictions gathered in order (:func:`gather_predictions`), so metrics cover every example
  exactly once and are identical on every rank (early stopping agrees everywhere);
- rank 0 alone writes the run directory; the checkpoint holds the plain model.

``train.batch_size`` is per rank: a step sees ``batch_size × world_size`` windows (both in
``metrics.json``); ``train.lr`` is not rescaled.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as torch_dist

from ..errors import ConfigError


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in a distributed run (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> dict:
        """For ``metrics.json``."""
        return {"world_size": self.world_size, "backend": self.backend or "none"}


SINGLE = Distributed()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} in the environment is not an integer") from None


def from_environment(device: torch.device) -> Distributed:
    """The process group torchrun described in the environment, joined (``init_process_group``
    once per process); :data:`SINGLE` when ``WORLD_SIZE`` is unset or 1.

    The backend is NCCL for CUDA devices and gloo otherwise."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return SINGLE
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not torch_dist.is_available():
        raise ConfigError(f"WORLD_SIZE={world}, but this PyTorch has no torch.distributed")
    if not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        timeout = datetime.timedelta(seconds=_env_int("SIGALEX_DIST_TIMEOUT_S", 1800))
        torch_dist.init_process_group(backend=backend, timeout=timeout)
    return Distributed(rank, world, local_rank, torch_dist.get_backend())


def rank_device(dist: Distributed, device: torch.device) -> torch.device:
    """Each rank's device: ``cuda:LOCAL_RANK`` on GPUs, the CPU otherwise."""
    if dist.active and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device


def shard(n: int, dist: Distributed) -> np.ndarray:
    """Positions ``0..n-1`` this rank evaluates: every ``world_size``-th from ``rank`` (no
    padding: each position on exactly one rank)."""
    return np.arange(n)[dist.rank :: dist.world_size]


def all_gather(dist: Distributed, obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order."""
    if not dist.active:
        return [obj]
    out: list = [None] * dist.world_size
    torch_dist.all_gather_object(out, obj)
    return out


def broadcast(dist: Distributed, obj):
    """Rank 0's ``obj`` on every rank."""
    if not dist.active:
        return obj
    box = [obj if dist.is_main else None]
    torch_dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(dist: Distributed) -> None:
    if dist.active:
        torch_dist.barrier()


def gather_predictions(
    dist: Distributed, positions: np.ndarray, y: np.ndarray, p: np.ndarray, loss_sum: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(y, probabilities, mean loss)`` over all ranks' shards, in the order of the positions
    (each example once): what one process would have computed on the whole set."""
    parts = all_gather(dist, (positions, y, p, loss_sum))
    order = np.concatenate([part[0] for part in parts])
    ys = np.concatenate([part[1] for part in parts])
    ps = np.concatenate([part[2] for part in parts])
    total = sum(part[3] for part in parts)
    back = np.argsort(order, kind="stable")
    return ys[back], ps[back], total / max(len(order), 1)


class DistributedWeightedSampler(torch.utils.data.Sampler[int]):
    """:class:`~torch.utils.data.WeightedRandomSampler` for several ranks: every rank draws the
    same ``num_samples`` (rounded up to a multiple of the world size) from the same generator
    (``seed + epoch``: call :meth:`set_epoch`) and takes every ``world_size``-th from its rank,
    so the ranks share one balanced epoch without overlap and run the same number of steps."""

    def __init__(self, weights, num_samples: int, dist: Distributed, *, seed: int = 0):
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.dist, self.seed, self.epoch = dist, int(seed), 0
        self.total = -(-int(num_samples) // dist.world_size) * dist.world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.total // self.dist.world_size

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.total, replacement=True, generator=g)
        return iter(drawn[self.dist.rank :: self.dist.world_size].tolist())


__all__ = [
    "SINGLE",
    "Distributed",
    "DistributedWeightedSampler",
    "all_gather",
    "barrier",
    "broadcast",
    "from_environment",
    "gather_predictions",
    "rank_device",
    "shard",
]
