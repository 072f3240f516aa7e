"""HDF5 datasets read lazily by careamics: one patch (or tile) per read, never the whole dataset.

careamics 0.3.5 reads ``data_type: custom`` sources through a loading strategy passed to
``CAREamist.train/predict``. Its ``ReadFuncLoading`` reads every file whole into memory; its
``ImageStackLoading`` asks a loader for *image stacks* that hand out single patches. Here
:class:`Hdf5ImageStack` is such a stack over an h5py dataset: it knows the dataset's shape and
dtype from the file's metadata and reads only the slice of each patch (with a chunked layout,
only the chunks that patch touches), so a dataset larger than memory trains. Normalization
statistics are computed by careamics patch by patch too.

Node side (imports careamics utilities and h5py inside functions, as the data module does).
The file handle is opened lazily in each process that reads (data loader workers are forked
or spawned; an h5py handle must not cross that), and never pickled.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpc_runner.data.sources import load_source, source_kind, split_source


class Hdf5ImageStack:
    """A careamics ``ImageStack`` reading patches from one HDF5 dataset.

    Parameters
    ----------
    path : str
        The HDF5 file.
    dataset : str
        The dataset's path inside the file (``/train/noisy``).
    axes : str
        The dataset's axes as the training configuration names them (``SYX``, ``ZYX``, ...).
    """

    def __init__(self, path: str, dataset: str, axes: str) -> None:
        import h5py
        from careamics.utils.reshape_array import AxesTransform

        self._path, self._name, self._axes = str(path), dataset, axes
        with h5py.File(self._path, "r") as handle:
            data = handle[dataset]
            self._shape: tuple[int, ...] = tuple(data.shape)
            self._dtype = data.dtype
        self.data_shape = AxesTransform(axes, self._shape).transformed_shape
        self._handle: Any = None
        self._pid: int | None = None

    # -- the ImageStack protocol ---------------------------------------------------------------

    @property
    def source(self) -> str:
        return f"{self._path}:{self._name}"

    @property
    def data_dtype(self) -> Any:
        return self._dtype

    @property
    def original_data_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def original_axes(self) -> str:
        return self._axes

    def extract_patch(
        self,
        sample_idx: int,
        channels: Sequence[int] | None,
        coords: Sequence[int],
        patch_size: Sequence[int],
    ) -> Any:
        """The patch (C(Z)YX, float32, zero-padded where it leaves the image)."""
        import numpy as np
        from careamics.dataset.image_stack.image_utils.image_stack_utils import pad_patch
        from careamics.utils.reshape_array import get_patch_slices, reshape_patch

        selection = list(
            get_patch_slices(self._axes, self._shape, sample_idx, channels, coords, patch_size)
        )
        picked: list[int] | None = None
        for index, item in enumerate(selection):
            if isinstance(item, slice) and item.start is not None and item.start < 0:
                # a tile overhanging the image's start: read what exists, pad_patch adds zeros
                selection[index] = slice(0, max(item.stop, 0))
            elif isinstance(item, Sequence):  # h5py wants increasing channel lists: pick after
                picked, selection[index] = list(item), slice(None)
                channel_axis = sum(not isinstance(s, int) for s in selection[:index])
        data = self.read(tuple(selection))
        if picked is not None:
            data = np.take(data, picked, axis=channel_axis)
        return pad_patch(coords, patch_size, self.data_shape, reshape_patch(data, self._axes))

    # -- file handling ------------------------------------------------------------------------

    def read(self, selection: tuple[Any, ...]) -> Any:
        """Read one selection of the dataset (the only place pixels are read)."""
        return self._dataset()[selection]

    def load(self) -> None:
        """Open the file (careamics calls this for stacks it is about to read from)."""
        self._dataset()

    def close(self) -> None:
        """Close the file (careamics calls this for stacks it is done with)."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = self._pid = None

    def _dataset(self) -> Any:
        if self._handle is None or self._pid != os.getpid():
            import h5py

            self._handle, self._pid = h5py.File(self._path, "r"), os.getpid()
        return self._handle[self._name]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handle"] = state["_pid"] = None  # reopened by whichever process reads
        return state


def load_image_stacks(source: Any, axes: str) -> list[Any]:
    """careamics ``ImageStackLoading`` loader: a source or a list of hpc_runner sources.

    HDF5 datasets become lazy :class:`Hdf5ImageStack`; other sources of the same job (TIFF,
    NumPy, Zarr) are read into memory as careamics' in-memory stacks.
    """
    from careamics.dataset.image_stack import InMemoryImageStack

    sources = [source] if isinstance(source, str | Path) else list(source)
    stacks: list[Any] = []
    for item in sources:
        text = str(item)
        if source_kind(text) == "hdf5":
            stacks.append(Hdf5ImageStack(*hdf5_dataset(text), axes))
            continue
        arrays = load_source(text)
        for array in arrays if isinstance(arrays, list) else [arrays]:
            stacks.append(InMemoryImageStack.from_array(array, axes))
    return stacks


def hdf5_dataset(source: str) -> tuple[str, str]:
    """``(file, dataset path)`` of an HDF5 source; the dataset may be left out when the file
    holds exactly one."""
    from hpc_runner.data.sources import _open_array

    path, inner = split_source(source)
    with _open_array("hdf5", path, inner) as dataset:
        return path, str(dataset.name)


def lazy_loading() -> Any:
    """The ``loading=`` argument for ``CAREamist.train``/``predict`` with ``data_type`` custom."""
    from careamics.dataset.factory import ImageStackLoading

    return ImageStackLoading(image_stack_loader=load_image_stacks)
