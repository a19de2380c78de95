"""The dataset registry: one module per dataset registers its layout with :func:`register_dataset`.

A registered dataset is a **layout** (folder → :class:`~sigalex.datasets.DatasetIndex`) plus
what the rest of sigalex needs to know about it, each supplied by the dataset's own module:

- ``recipe_options``: the layout's keyword options read from a recipe
  (:class:`sigalex.config.Config`), so :func:`sigalex.datasets.from_config` has no
  per-dataset branches;
- ``looks_present``: whether a folder holds a copy (:func:`~sigalex.datasets.find_dataset`
  looks in ``$SIGALEX_DATA/<name>`` and the cache only for datasets that say this);
- ``verify``: a content check of a downloaded copy (default: the SHA-256 list of the
  dataset's registry entry, for checksummed datasets);
- ``default_root``: for datasets that generate their own data (``synthetic``), where they
  write it when the recipe gives no ``data.root``.

Adding a dataset is adding a module::

    from sigalex.datasets import DatasetIndex, Item, register_dataset

    @register_dataset("mydata", recipe_options=lambda cfg: {"task": cfg.data.task})
    def mydata(root, *, task="all") -> DatasetIndex: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._checks import choice
from ..errors import ParameterError

if TYPE_CHECKING:
    from ..config import Config
    from .base import DatasetIndex

Layout = Callable[..., "DatasetIndex"]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset (see the module docs).

    Attributes
    ----------
    name : str
    layout : callable(root, **options) -> DatasetIndex
    recipe_options : callable(Config) -> dict, optional
        The layout's options from a recipe; ``None``: the layout takes none.
    looks_present : callable(Path) -> bool, optional
        Whether a folder holds a copy; ``None``: the dataset is only ever given a root.
    verify : callable(DatasetInfo, Path, *, files) -> list of str, optional
        Problems with a local copy (empty: verified); ``None``: the SHA-256 list.
    default_root : callable(Config) -> Path, optional
        Generated datasets: their folder when the recipe gives none. A given ``data.root``
        need not exist either (the layout writes it).
    """

    name: str
    layout: Layout
    recipe_options: Callable[[Config], dict[str, Any]] | None = None
    looks_present: Callable[[Path], bool] | None = None
    verify: Callable[..., list[str]] | None = None
    default_root: Callable[[Config], Path] | None = None

    def options_from(self, cfg: Config) -> dict[str, Any]:
        """The layout's keyword options for recipe ``cfg``."""
        return dict(self.recipe_options(cfg)) if self.recipe_options else {}


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(
    name: str,
    *,
    recipe_options: Callable[[Config], dict[str, Any]] | None = None,
    looks_present: Callable[[Path], bool] | None = None,
    verify: Callable[..., list[str]] | None = None,
    default_root: Callable[[Config], Path] | None = None,
) -> Callable[[Layout], Layout]:
    """Register a layout function under ``name`` (a decorator; returns the function unchanged).

    Parameters
    ----------
    name : str
        What recipes (``data.dataset``) and :func:`~sigalex.datasets.load_dataset` call it.
    recipe_options, looks_present, verify, default_root
        See :class:`DatasetSpec`.

    Raises
    ------
    ParameterError
        ``name`` is empty or already registered.
    """
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"dataset name {name!r} must be a non-empty string")

    def wrap(layout: Layout) -> Layout:
        if name in _DATASETS:
            raise ParameterError(
                f"dataset {name!r} is already registered (by {_DATASETS[name].layout.__module__})"
            )
        _DATASETS[name] = DatasetSpec(
            name, layout, recipe_options, looks_present, verify, default_root
        )
        return layout

    return wrap


def dataset_spec(name: str) -> DatasetSpec:
    """The registered dataset ``name``.

    Raises
    ------
    ParameterError
        Unknown name; the message lists the registered ones and a near miss.
    """
    return _DATASETS[choice("dataset layout", name, _DATASETS)]


def registered_datasets() -> dict[str, DatasetSpec]:
    """Every registered dataset by name, in name order (a copy)."""
    return {name: _DATASETS[name] for name in sorted(_DATASETS)}


def available_layouts() -> list[str]:
    """Names accepted by :func:`~sigalex.datasets.load_dataset` and ``data.dataset``."""
    return sorted(_DATASETS)


class _Layouts(Mapping):
    """Registered layout functions by name (a live, read-only view of the registry)."""

    def __getitem__(self, name: str) -> Layout:
        return dataset_spec(name).layout  # an unknown name: ParameterError listing them

    def __contains__(self, name: object) -> bool:
        return name in _DATASETS

    def get(self, name: str, default=None):
        return _DATASETS[name].layout if name in _DATASETS else default

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(_DATASETS))

    def __len__(self) -> int:
        return len(_DATASETS)

    def __repr__(self) -> str:
        return f"LAYOUTS({', '.join(sorted(_DATASETS))})"


LAYOUTS: Mapping[str, Layout] = _Layouts()
"""Layout functions by name, read from the registry (``LAYOUTS["bonn"] is bonn``)."""


__all__ = [
    "LAYOUTS",
    "DatasetSpec",
    "available_layouts",
    "dataset_spec",
    "register_dataset",
    "registered_datasets",
]
