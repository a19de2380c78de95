"""Index a dataset by name (:func:`load_dataset`) or from a recipe (:func:`from_config`).

Both go through the registry (:mod:`sigalex.datasets.registry`): the dataset's own module
says how it reads its options from a recipe, whether it can be found locally, and where a
generated dataset writes its data. Nothing here names a dataset.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, DataError, ParameterError
from .base import DatasetIndex
from .registry import DatasetSpec, available_layouts, dataset_spec
from .remote import REGISTRY, fetch, find_dataset, findable_datasets

if TYPE_CHECKING:
    from ..config import Config


def load_dataset(layout: str, root=None, **options) -> DatasetIndex:
    """Index a dataset folder with a named layout.

    Parameters
    ----------
    layout : str
        One of :func:`~sigalex.datasets.available_layouts`.
    root : path, optional
        The folder (or CSV for ``manifest``). For datasets that can be found locally (bonn,
        chbmit, fsdd) it defaults to :func:`~sigalex.datasets.find_dataset` (no download).
    **options
        Passed to the layout (``task=`` for bonn, ``source=`` for chbmit, ``sample_rate=``…).

    Raises
    ------
    ParameterError
        Unknown layout (the message lists them), or no ``root`` for a layout that needs one.
    DataError
        The data are not found or cannot be read.
    """
    spec = dataset_spec(layout)
    if root is None:
        if layout not in findable_datasets():
            raise ParameterError(f"layout {layout!r} needs root= (a folder or CSV)")
        root = find_dataset(layout)
    return spec.layout(root, **options)


def from_config(cfg: Config) -> DatasetIndex:
    """The dataset a recipe names, indexed with the options the recipe gives it.

    The root is ``data.root`` when given (an error when it does not exist, except for
    generated datasets, which write it); else a generated dataset's own default
    (``synthetic``: ``<output.dir>/synthetic-data``); else the local copy
    (:func:`~sigalex.datasets.find_dataset`: ``$SIGALEX_DATA/<name>`` or the cache), fetched
    and verified when missing and ``data.download`` is true. The layout's options come from
    the dataset's registry entry (``recipe_options``: ``data.task`` for bonn, ``data.source``
    for chbmit, ``data.sample_rate`` for folder and manifest, ``data.n_recordings``,
    ``data.duration_s``, ``train.seed`` and ``windows.default_label`` for synthetic).

    Parameters
    ----------
    cfg : sigalex.config.Config

    Returns
    -------
    DatasetIndex

    Raises
    ------
    ConfigError
        An unknown ``data.dataset`` (the message lists the available ones), a dataset that
        needs ``data.root`` without one, or options the layout rejects (``data: …``).
    DataError
        ``data.root`` missing, or the dataset neither found nor downloadable (the message
        says where it looked and how to provide it).
    """
    spec = _spec(cfg.data.dataset)
    root = _root(cfg, spec)
    try:
        return spec.layout(root, **spec.options_from(cfg))
    except ParameterError as exc:
        raise ConfigError(f"data: {exc}") from exc


def _spec(name: str) -> DatasetSpec:
    options = available_layouts()
    if name not in options:
        close = difflib.get_close_matches(name, options, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"data.dataset = {name!r}{hint}: unknown dataset; available: {', '.join(options)}"
        )
    return dataset_spec(name)


def _root(cfg: Config, spec: DatasetSpec) -> Path:
    name = spec.name
    if cfg.data.root:
        root = Path(cfg.data.root).expanduser()
        if spec.default_root is None and not root.exists():
            raise DataError(f"data.root = {str(root)!r}: no such file or folder")
        return root
    if spec.default_root is not None:
        return Path(spec.default_root(cfg)).expanduser()
    if name not in findable_datasets():
        raise ConfigError(f"data.dataset = {name!r} needs data.root (a folder or CSV)")
    try:
        return find_dataset(name)
    except DataError as missing:
        if not cfg.data.download or name not in REGISTRY:
            raise DataError(
                f"{missing}\nThe recipe synthetic-seizure.toml needs no data."
            ) from None
        try:
            return fetch(name)
        except DataError as failed:
            raise DataError(
                f"dataset {name!r} is neither found nor downloadable: {failed}\n"
                "Point SIGALEX_DATA (or data.root) at a local copy, or run "
                "pipelines/synthetic-seizure.toml, which needs no data."
            ) from None


__all__ = ["from_config", "load_dataset"]
