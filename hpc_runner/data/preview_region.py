"""The fixed region of the data that a run previews during training: chosen once, read once.

A preview shows one square crop of the first image, by default the centred one of at most
:data:`DEFAULT_SIZE` pixels a side (a region asked for may be up to :data:`MAX_SIZE`)
(sample 0 of ``S`` and ``T``, every channel the training uses); for 3D data (``Z`` in the axes)
the network sees a slab of ``Z`` planes as deep as a training patch, and the preview shows the
middle plane of the data (or the plane asked for). Sizes are multiples of ``2**depth`` of the
UNet, which halves the image ``depth`` times.

The same rules serve the spec check at submission (:func:`plan_region` with the image's shape:
a region that does not fit is reported before anything runs) and the node (:func:`read_region`).
Pure numpy; the readers (h5py for lazily read HDF5) are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

#: Largest side of a preview crop asked for, in pixels.
MAX_SIZE = 256
#: Side of the default crop, in pixels: the network's time grows with the pixels, and at 256 the
#: demo's previews cost 2.4 % of its training on a CPU, at 192 (0.56x the pixels) 1.5 %
#: (``benchmarks/bench_preview.py --quick 4``); 192 pixels still fill a terminal's picture.
DEFAULT_SIZE = 192


class RegionError(ValueError):
    """A preview region that does not fit the data (the message says how to fix it); ``key``
    names what to change: ``region`` or ``z``."""

    def __init__(self, message: str, key: str = "region") -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Region:
    """A crop: ``size`` x ``size`` pixels from ``(y0, x0)``; for 3D, planes ``z0`` to
    ``z0 + depth`` go through the network and plane ``z`` is shown (both None for 2D)."""

    y0: int
    x0: int
    size: int
    z0: int | None = None
    depth: int | None = None
    z: int | None = None

    def selection(self, axes: str) -> tuple[Any, ...]:
        """The index of the crop in an array with ``axes``: sample 0 of S and T, every C."""
        chosen: list[Any] = []
        for axis in axes:
            if axis in "ST":
                chosen.append(0)
            elif axis == "Y":
                chosen.append(slice(self.y0, self.y0 + self.size))
            elif axis == "X":
                chosen.append(slice(self.x0, self.x0 + self.size))
            elif axis == "Z" and self.z0 is not None and self.depth is not None:
                chosen.append(slice(self.z0, self.z0 + self.depth))
            else:
                chosen.append(slice(None))
        return tuple(chosen)


def plan_region(
    shape: Sequence[int],
    axes: str,
    *,
    multiple: int,
    z_depth: int | None = None,
    region: Sequence[int] | None = None,
    z: int | None = None,
) -> Region:
    """The region to preview in an image of ``shape`` (``axes`` as the training names them).

    Parameters
    ----------
    shape : sequence of int
        The image's shape, one size per axis.
    multiple : int
        Every side is a multiple of this (``2**depth`` of the UNet).
    z_depth : int, optional
        Planes the network sees at once for 3D data (the training patch's Z size).
    region : (y0, x0, size), optional
        The crop asked for; default: the largest centred square of at most
        :data:`DEFAULT_SIZE`.
    z : int, optional
        The plane shown for 3D data; default: the middle one.

    Raises
    ------
    RegionError
        When the crop asked for does not fit the image or the network.
    """
    sizes = dict(zip(axes, shape, strict=True))
    height, width = sizes["Y"], sizes["X"]
    if region is None:
        size = min(DEFAULT_SIZE, height, width) // multiple * multiple
        if size == 0:
            raise RegionError(f"the image ({height}x{width}) is smaller than {multiple} pixels")
        y0, x0 = (height - size) // 2, (width - size) // 2
    else:
        y0, x0, size = (int(value) for value in region)
        if size % multiple or not 0 < size <= MAX_SIZE:
            raise RegionError(
                f"size {size} must be a multiple of {multiple} (the network halves the image "
                f"{multiple.bit_length() - 1} times) between {multiple} and {MAX_SIZE}"
            )
        if y0 < 0 or x0 < 0 or y0 + size > height or x0 + size > width:
            raise RegionError(
                f"[{y0}, {x0}, {size}] reaches beyond the image ({height}x{width}): keep "
                f"y0 + size <= {height} and x0 + size <= {width}"
            )
    if "Z" not in sizes:
        if z is not None:
            raise RegionError(f"z is for 3D data, but the axes '{axes}' have no Z (remove it)", "z")
        return Region(y0, x0, size)
    planes = sizes["Z"]
    shown = planes // 2 if z is None else int(z)
    if not 0 <= shown < planes:
        raise RegionError(
            f"z {shown} is outside the image's {planes} planes (0 to {planes - 1})", "z"
        )
    depth = min(planes, z_depth or planes) // multiple * multiple or planes
    z0 = min(max(0, shown - depth // 2), planes - depth)
    return Region(y0, x0, size, z0, depth, shown)


def canonical(array: np.ndarray, axes: str) -> np.ndarray:
    """A crop (S and T already taken) reordered to ``C(Z)YX``, a C axis of 1 added if none."""
    import numpy as np

    kept = [axis for axis in axes if axis not in "ST"]
    order = [axis for axis in "CZYX" if axis in kept]
    array = np.transpose(array, [kept.index(axis) for axis in order])
    return array if "C" in kept else array[np.newaxis]


def read_region(
    data: Any,
    axes: str,
    region: Region,
    channels: Sequence[int] | None = None,
    *,
    image_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """The crop of ``data`` as float32 ``C(Z)YX``.

    ``data`` is an array (numpy, h5py, zarr: only the crop is read), a list of arrays (the
    first is used) or a source name (:mod:`hpc_runner.data.sources`; an HDF5 dataset is read
    lazily). ``channels`` are the channels the training uses (careamics' ``channels``). With
    ``image_shape`` (the training image's), ``data`` is its counterpart - a ground truth - which
    may lack the image's size-1 axes (:func:`matching_axes`).

    Raises
    ------
    RegionError
        When ``data`` does not have the dimensions the axes say.
    """
    import numpy as np

    if isinstance(data, list | tuple):
        data = data[0]
    with _opened(data) as array:
        ndim = len(array.shape)
        found = axes if image_shape is None else matching_axes(axes, image_shape, ndim)
        if found is None or ndim != len(found):
            raise RegionError(f"the image has {ndim} dimensions, axes are '{axes}'")
        crop = np.asarray(array[region.selection(found)], dtype=np.float32)
    crop = canonical(crop, found)
    if channels is not None and "C" in found:
        crop = crop[list(channels)]
    return np.ascontiguousarray(crop)


@contextmanager
def _opened(data: Any) -> Iterator[Any]:
    """An array-like for ``data``; a source name is opened (HDF5 lazily, else read whole)."""
    if not isinstance(data, str) and not hasattr(data, "__fspath__"):
        yield data
        return
    from hpc_runner.data.sources import load_source, source_kind

    source = str(data)
    if source_kind(source) != "hdf5":
        loaded = load_source(source)
        yield loaded[0] if isinstance(loaded, list) else loaded
        return
    import h5py

    from hpc_runner.data.hdf5_stack import hdf5_dataset

    path, name = hdf5_dataset(source)
    with h5py.File(path, "r") as handle:
        yield handle[name]


def matching_axes(axes: str, image_shape: Sequence[int], other_ndim: int) -> str | None:
    """The axes of an image that is ``image_shape``'s counterpart with its size-1 axes dropped
    (a ground truth saved as ``YX`` for ``SYX`` data of one sample); None if it is not."""
    if other_ndim == len(axes):
        return axes
    squeezed = "".join(axis for axis, n in zip(axes, image_shape, strict=True) if n != 1)
    return squeezed if len(squeezed) == other_ndim else None
