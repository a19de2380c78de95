"""Datasets: one module per dataset behind a registry, and verified downloads into a cache.

A **layout** turns a folder into a :class:`DatasetIndex`: one :class:`Item` per recording with
its path, label, and the identity that honest splits group by (patient, speaker, recording):

============= ================================================ ===================== ==========
layout        files                                            label                 group
============= ================================================ ===================== ==========
``bonn``      ``Z/ O/ N/ F/ S/`` ``*.txt``, 173.61 Hz           set, by ``task``      segment
``chbmit``    ``chbNN/*.edf`` + summary, or ``ictal/`` and      seizure annotations,  patient
              ``preictal_10s/`` ``.npy`` excerpts at 256 Hz     or the folder
``fsdd``      ``recordings/{digit}_{speaker}_{index}.wav``     digit                 speaker
``folder``    ``<class>/<any readable file>``                  folder name           file
``manifest``  a CSV: ``path,label[,group,split,onset,offset]`` the column          the column
``synthetic`` ``sub-SS_run-RR_eeg.edf`` + ``_events.tsv``,      seizure annotations   subject
              generated when missing
============= ================================================ ===================== ==========

Each layout lives in its own module (:mod:`~sigalex.datasets.bonn`, …) and registers itself
with :func:`register_dataset`, saying how it reads its options from a recipe, how to tell a
local copy, and how to verify a download; :func:`load_dataset` (by name) and
:func:`from_config` (from a recipe) dispatch through that registry, so adding a dataset is
adding a module. (As in torchvision's ``models``, the package attribute ``bonn`` is the
function; ``from sigalex.datasets.bonn import bonn_set`` reaches the module.)

The **remote registry** (:data:`REGISTRY`, read from ``sigalex/registry/datasets.toml``) holds
each public dataset's URLs, checksums, citation and licence. :func:`fetch` downloads into
:func:`data_home` (``$SIGALEX_DATA``, else the user cache dir) and verifies: SHA-256 where the
publisher gives it (PhysioNet's ``SHA256SUMS.txt`` for CHB-MIT), else the dataset module's
content check (file counts, sample counts, and a SHA-256 of the parsed sample values).
:func:`find_dataset` only looks.

Library messages (a synthetic dataset being written) go to the ``sigalex.datasets`` logger.
"""

from __future__ import annotations

# importing the dataset modules registers them
from .base import DatasetIndex, Item, open_item
from .bonn import BONN_TASKS, bonn
from .chbmit import chbmit
from .folder import folder
from .fsdd import fsdd
from .load import from_config, load_dataset
from .manifest import manifest
from .registry import LAYOUTS, DatasetSpec, available_layouts, register_dataset
from .remote import REGISTRY, DatasetInfo, Remote, data_home, fetch, find_dataset, verify, with_urls
from .synthetic import synthetic

__all__ = [
    "BONN_TASKS",
    "LAYOUTS",
    "REGISTRY",
    "DatasetIndex",
    "DatasetInfo",
    "DatasetSpec",
    "Item",
    "Remote",
    "available_layouts",
    "bonn",
    "chbmit",
    "data_home",
    "fetch",
    "find_dataset",
    "folder",
    "from_config",
    "fsdd",
    "load_dataset",
    "manifest",
    "open_item",
    "register_dataset",
    "synthetic",
    "verify",
    "with_urls",
]
