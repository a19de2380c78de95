"""Index a dataset by name (:func:`load_dataset`) through the registry: nothing here names a
dataset."""

from __future__ import annotations

from ..errors import ParameterError
from .base import DatasetIndex
from .registry import dataset_spec
from .remote import find_dataset, findable_datasets


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


__all__ = ["load_dataset"]
