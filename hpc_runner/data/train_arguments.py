"""The data keyword arguments of ``CAREamist.train(...)`` for the sources a spec names.

Separate from :mod:`hpc_runner.data.sources` because it builds on both the sources and the lazy
HDF5 loader of :mod:`hpc_runner.data.hdf5_stack`, which itself reads through the sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from hpc_runner.data.hdf5_stack import lazy_loading
from hpc_runner.data.sources import DataSourceError, load_source


class DataSources(Protocol):
    """The data sources of one training (a spec's ``data:`` section, e.g. ``DataSpec``).

    A protocol, so this bottom layer needs nothing from the spec layer above it.
    """

    @property
    def train(self) -> str: ...
    @property
    def train_target(self) -> str | None: ...
    @property
    def val(self) -> str | None: ...
    @property
    def val_target(self) -> str | None: ...


def training_arguments(data: DataSources, careamics_config: Mapping[str, Any]) -> dict[str, Any]:
    """The data keyword arguments for ``CAREamist.train(...)``.

    With the config's ``data_type`` ``tiff`` the paths are passed through for careamics to
    read; with ``custom`` too, with the lazy HDF5 loader as ``loading``; with ``array`` every
    source is read into memory here. Only the sources the spec names appear (``train_data``
    always).
    """
    data_type = careamics_config["data_config"]["data_type"]
    sources = {
        "train_data": data.train,
        "train_data_target": data.train_target,
        "val_data": data.val,
        "val_data_target": data.val_target,
    }
    arguments: dict[str, Any] = {}
    for argument, source in sources.items():
        if source is None:
            continue
        if data_type == "tiff":
            arguments[argument] = Path(source)
        elif data_type == "custom":
            arguments[argument] = source
        elif data_type == "array":
            arguments[argument] = load_source(source)
        else:
            raise DataSourceError(
                f"careamics data_type '{data_type}' is not supported by hpc-runner (use tiff, "
                "custom or array; the spec chooses it from the data files)"
            )
    if data_type == "custom":
        arguments["loading"] = lazy_loading()
    return arguments
