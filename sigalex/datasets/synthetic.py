"""Generated EEG with annotated seizures (:mod:`sigalex.synthetic`): a dataset that needs no data.

The folder holds ``sub-SS_run-RR_eeg.edf`` EDF+ recordings at 256 Hz with a BIDS/SzCORE events
file beside each (``sub-SS_run-RR_events.tsv``, :func:`sigalex.annotations.events_file_name`).
:func:`synthetic` writes them when fewer than asked for are there, and indexes them: items are
whole recordings labelled by their events, group = subject. Recipes without ``data.root``
write to ``<output.dir>/synthetic-data``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .._checks import positive_float, positive_int
from ..annotations import events_file_name, read_events_tsv, recording_key
from ..errors import DataError, ParameterError
from ..synthetic import SEIZURE, write_synthetic_dataset
from .base import DatasetIndex, Item
from .registry import register_dataset

logger = logging.getLogger("sigalex.datasets")


def _recipe_options(cfg) -> dict:
    return {
        "n_recordings": cfg.data.n_recordings,
        "duration_s": cfg.data.duration_s,
        "seed": cfg.train.seed,
        "default_label": cfg.windows.default_label,
    }


def _default_root(cfg) -> Path:
    return Path(cfg.output.dir) / "synthetic-data"


@register_dataset("synthetic", recipe_options=_recipe_options, default_root=_default_root)
def synthetic(
    root,
    *,
    n_recordings: int = 12,
    duration_s: float = 300.0,
    seed: int = 0,
    default_label: str = "background",
) -> DatasetIndex:
    """Synthetic EEG recordings with seizures, written into ``root`` when missing.

    Parameters
    ----------
    root : path
        The folder; created if missing. Recordings already there are reused: data are written
        only when it holds fewer than ``n_recordings`` (``write_synthetic_dataset`` writes the
        same files for the same ``seed``, so existing ones are not changed).
    n_recordings : int
        Recordings to index (the first ``n_recordings`` by name). Recipes: ``data.n_recordings``.
    duration_s : float
        Length of each written recording, seconds (``data.duration_s``).
    seed : int
        Seed of the written recordings (``train.seed``).
    default_label : str
        Class of windows no seizure covers (``windows.default_label``); classes are
        ``[default_label, "seizure"]``.

    Returns
    -------
    DatasetIndex
        Items without labels (windows are labelled from ``annotations``), group = subject
        (``sub-01``), recording = ``sub-01_run-01``.
    """
    n_recordings = positive_int("n_recordings", n_recordings)
    duration_s = positive_float("duration_s", duration_s)
    if not isinstance(default_label, str) or default_label in ("", SEIZURE):
        raise ParameterError(f"{default_label=} must be a class name other than {SEIZURE!r}")
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: not a folder (synthetic dataset root)")
    edfs = sorted(root.glob("sub-*_eeg.edf"))
    if len(edfs) < n_recordings:
        logger.info(
            "writing %d synthetic EDF recordings of %g s to %s", n_recordings, duration_s, root
        )
        write_synthetic_dataset(root, n_recordings, duration_s=duration_s, seed=seed)
        edfs = sorted(root.glob("sub-*_eeg.edf"))
    items = []
    for edf in edfs[:n_recordings]:
        key = recording_key(edf)
        tsv = edf.with_name(events_file_name(edf))
        events = tuple(read_events_tsv(tsv)) if tsv.is_file() else ()
        items.append(Item(edf, None, key.split("_")[0], key, annotations=events))
    return DatasetIndex("synthetic", root, items, [default_label, SEIZURE], group_by="subject")


__all__ = ["synthetic"]
