"""Training data sources: TIFF, Zarr, NumPy and HDF5 files, as named in a job spec.

A source is a path, optionally followed by ``:INNER`` naming one array inside a container:

=====================================  ==================================================
``images/noisy.tif``, ``images/``      a TIFF file, or a directory of TIFF files
``stack.npy``, ``pairs.npz:noisy``     a NumPy file; ``.npz`` needs the array name unless
                                       it holds exactly one array
``data.h5:/train/noisy``               an HDF5 dataset (read with h5py)
``data.zarr``, ``data.zarr:/raw/0``    a Zarr array (the store's root or a path inside it)
=====================================  ==================================================

When every source of a job is TIFF, careamics reads the files itself (``data_type: tiff``);
when one is HDF5, careamics reads patches lazily through :mod:`hpc_runner.data.hdf5_stack`
(``data_type: custom``: a dataset larger than memory trains); otherwise everything is read into
memory here and handed over as arrays (``data_type: array``).
The spec side (:func:`source_kind`, :func:`split_source`, :func:`careamics_data_type`) is pure
and imports nothing heavy; numpy, tifffile, h5py and zarr are imported inside the functions
that read data, on the compute node or when a spec checks its files.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
NUMPY_SUFFIXES = (".npy", ".npz")
ZARR_SUFFIXES = (".zarr",)
_CONTAINER = re.compile(
    r"^(?P<path>.*?\.(?:h5|hdf5|hdf|he5|npz|npy|zarr|tiff?))(?::(?P<inner>.*))?$", re.I
)


class DataSourceError(ValueError):
    """A data source that does not exist, cannot be read, or is not an image array."""


def split_source(source: str) -> tuple[str, str | None]:
    """Split a container source: ``"data.h5:/train/noisy"`` → ``("data.h5", "/train/noisy")``.

    Plain paths give ``(path, None)``. An HDF5 dataset path comes in one spelling
    (:func:`canonical_inner`), so that every run, record and comparison of one dataset agrees.
    """
    match = _CONTAINER.match(source)
    if match is None:
        return source, None
    path, inner = match.group("path"), match.group("inner") or None
    if inner is not None and path.lower().endswith(HDF5_SUFFIXES):
        inner = canonical_inner(inner)
    return path, inner


def canonical_inner(inner: str) -> str:
    """An HDF5 dataset path in its one spelling: absolute, single slashes, no trailing slash.

    HDF5 reads ``/g/d``, ``g/d``, ``/g//d`` and ``g/d/`` as one dataset: spelled apart, they
    were two runs of a sweep and two trainings' data.
    """
    return "/" + "/".join(part for part in inner.split("/") if part)


def canonical_source(source: str) -> str:
    """A data source with its inner path in one spelling (:func:`split_source`); what sources
    are compared and identified by (a record written by an older hpc-runner included)."""
    path, inner = split_source(source)
    return f"{path}:{inner}" if inner else path


def source_kind(source: str) -> str:
    """``tiff``, ``numpy``, ``hdf5`` or ``zarr`` from the source's name (a directory is TIFF).

    Raises
    ------
    DataSourceError
        For any other file type, naming the supported ones.
    """
    path, _ = split_source(source)
    suffix = Path(path).suffix.lower()
    for kind, suffixes in (
        ("tiff", TIFF_SUFFIXES),
        ("numpy", NUMPY_SUFFIXES),
        ("hdf5", HDF5_SUFFIXES),
        ("zarr", ZARR_SUFFIXES),
    ):
        if suffix in suffixes:
            return kind
    if suffix == "" and Path(path).is_dir():
        return "tiff"
    raise DataSourceError(
        f"unsupported file type '{suffix or path}' (use TIFF .tif/.tiff or a directory of them, "
        "NumPy .npy/.npz, HDF5 'file.h5:/group/dataset' or Zarr .zarr)"
    )


def careamics_data_type(sources: Mapping[str, str | None], requested: str | None = None) -> str:
    """The careamics ``data_type`` a job's sources need (keys as in a spec's ``data:``).

    ``tiff`` when every source is TIFF and each target has its input's file name(s) (careamics
    pairs TIFF inputs and targets by file name and refuses anything else); ``custom`` when a
    source is HDF5 (read lazily, patch by patch); ``array`` otherwise. A requested ``array``
    is always possible since everything can be loaded here.
    """
    if requested == "array":
        return "array"
    given = {key: source for key, source in sources.items() if source is not None}
    kinds = set()
    for source in given.values():
        try:
            kinds.add(source_kind(source))
        except DataSourceError:
            kinds.add("unknown")
    if "hdf5" in kinds:
        return "custom"
    if kinds != {"tiff"}:
        return "array"
    for key in ("train", "val"):
        target = given.get(f"{key}_target")
        if target is not None and key in given and _tiff_names(given[key]) != _tiff_names(target):
            return "array"
    return "tiff"


def _tiff_names(source: str) -> list[str]:
    path = Path(source)
    if path.is_dir():
        return sorted(p.name for p in path.iterdir() if p.suffix.lower() in TIFF_SUFFIXES)
    return [path.name]


def check_source(source: str) -> list[tuple[int, ...]]:
    """The shapes of the images in a source, reading headers only where the format allows.

    Raises
    ------
    DataSourceError
        When the source is missing, unreadable, or names an array that is not there.
    """
    kind = source_kind(source)
    path, inner = split_source(source)
    is_dir = _check_kind(Path(path), directory_ok=kind in ("tiff", "zarr"))
    if kind == "tiff":
        if inner:
            raise DataSourceError(f"{path} is a TIFF file: remove ':{inner}'")
        files = _tiff_files(Path(path))
        if is_dir:
            for file in files:
                _check_kind(file, directory_ok=False)
        return [_tiff_shape(file) for file in files]
    if kind == "zarr" and is_dir:
        _check_zarr_metadata(Path(path), inner)
    with _open_array(kind, path, inner) as array:
        return [tuple(array.shape)]


def _check_kind(path: Path, *, directory_ok: bool) -> bool:
    """Refuse what is not a regular file (or a directory, where one may be): the readers would
    block on a FIFO or a terminal forever. Returns whether ``path`` is a directory.

    The readers open the file again after this check; a source swapped for a FIFO in between
    is the user's own doing, on the submitting machine.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise DataSourceError(f"no such file or directory: {path} (check the path)") from None
    except OSError as error:
        reason = (error.strerror or type(error).__name__).lower()
        raise DataSourceError(f"{path} cannot be read ({reason}): check the path") from None
    if stat.S_ISDIR(mode) and directory_ok:
        return True
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a FIFO or device?)"
        raise DataSourceError(f"{path} is {what}: point to an image file")
    return False


#: The metadata files zarr reads to open an array or group (v2 and v3).
_ZARR_METADATA = (".zarray", ".zgroup", ".zattrs", ".zmetadata", "zarr.json")


def _check_zarr_metadata(store: Path, inner: str | None) -> None:
    """The metadata zarr reads while opening must be regular files too (see _check_kind)."""
    folder = store / inner.strip("/") if inner else store
    for directory in {store, folder}:
        for name in _ZARR_METADATA:
            if os.path.lexists(directory / name):
                _check_kind(directory / name, directory_ok=False)


def load_source(source: str) -> np.ndarray | list[np.ndarray]:
    """The image(s) of a source as numpy arrays (a list for a directory of TIFFs)."""
    import numpy as np

    kind = source_kind(source)
    path, inner = split_source(source)
    if kind == "tiff":
        import tifffile

        files = _tiff_files(Path(path))
        arrays = [np.asarray(tifffile.imread(file)) for file in files]
        return arrays[0] if not Path(path).is_dir() else arrays
    with _open_array(kind, path, inner) as array:
        return np.asarray(array[...])


def psnr(image: Any, reference: Any, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio of ``image`` against the clean ``reference``, in dB.

    Singleton axes are dropped from both first (careamics predicts with sample and channel
    axes). ``data_range`` defaults to the reference's max - min, as is usual for denoising
    benchmarks with float images. Identical images give ``inf``.
    """
    import numpy as np

    image = np.squeeze(np.asarray(image, dtype=np.float64))
    reference = np.squeeze(np.asarray(reference, dtype=np.float64))
    if image.shape != reference.shape:
        raise ValueError(f"shapes differ: image {image.shape}, reference {reference.shape}")
    if data_range is None:
        data_range = float(reference.max() - reference.min()) or 1.0
    mse = float(np.mean((image - reference) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _tiff_files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in TIFF_SUFFIXES)
    if not files:
        raise DataSourceError(f"{path} holds no .tif/.tiff files (point to an image file)")
    return files


def _tiff_shape(file: Path) -> tuple[int, ...]:
    import tifffile

    try:
        with tifffile.TiffFile(file) as tif:
            return tuple(tif.series[0].shape)
    except (OSError, ValueError, IndexError, tifffile.TiffFileError) as error:
        raise DataSourceError(f"{file} is not a readable TIFF ({error})") from error


@contextmanager
def _open_array(kind: str, path: str, inner: str | None) -> Iterator[Any]:
    """An array-like (numpy memmap, h5py dataset, zarr array) without reading the pixels;
    HDF5 files are closed on exit (an open handle locks the file for writers)."""
    if kind == "numpy":
        yield _numpy_array(path, inner)
    elif kind == "hdf5":
        import h5py

        try:
            handle = h5py.File(path, "r")
        except OSError as error:
            raise DataSourceError(f"{path} is not a readable HDF5 file ({error})") from error
        with handle:
            yield _hdf5_dataset(handle, path, inner)
    else:
        yield _zarr_array(path, inner)


def _numpy_array(path: str, inner: str | None) -> Any:
    import numpy as np

    try:
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataSourceError(f"{path} is not a readable NumPy file ({error})") from error
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        if inner:
            raise DataSourceError(f"{path} is a .npy file: remove ':{inner}'")
        return loaded
    names = list(loaded.files)
    if inner is None and len(names) == 1:
        inner = names[0]
    if inner not in names:
        raise DataSourceError(
            f"name the array as '{path}:NAME' (the file holds: {', '.join(names) or 'nothing'})"
        )
    return loaded[inner]


def _hdf5_dataset(handle: Any, path: str, inner: str | None) -> Any:
    datasets: list[str] = []

    def collect(name: str, item: Any) -> None:
        if hasattr(item, "shape"):
            datasets.append("/" + name)

    handle.visititems(collect)
    if inner is None:
        if len(datasets) != 1:
            raise DataSourceError(
                f"name the dataset as '{path}:/group/dataset' (the file holds: "
                f"{', '.join(datasets) or 'no datasets'})"
            )
        inner = datasets[0]
    item = handle.get(inner)
    if item is None or not hasattr(item, "shape"):
        raise DataSourceError(
            f"{path} has no dataset '{inner}' (it holds: {', '.join(datasets) or 'none'})"
        )
    return item


def _zarr_array(path: str, inner: str | None) -> Any:
    import zarr

    try:
        node: Any = zarr.open(path, mode="r")
        if inner:
            node = node[inner.strip("/")]
    except (OSError, KeyError, ValueError, zarr.errors.BaseZarrError) as error:
        where = f"{path}:{inner}" if inner else path
        raise DataSourceError(f"cannot open {where} ({error})") from error
    if not hasattr(node, "shape"):
        arrays = sorted(name for name, _ in node.arrays())
        raise DataSourceError(
            f"{path} is a Zarr group: name an array as '{path}:/ARRAY' "
            f"(top-level arrays: {', '.join(arrays) or 'none'})"
        )
    return node
