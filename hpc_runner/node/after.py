"""After a DONE training (node side): predict on images and export a BioImage Model Zoo archive.

What to do comes from the job spec's ``after:`` section (:mod:`hpc_runner.spec.after_section`).
Predictions are tiled when a tile size is given and read lazily from HDF5 (the loader of
:mod:`hpc_runner.data.hdf5_stack` serves every kind of source); they are written as one TIFF per
image into ``work/predictions/`` or as datasets of ``work/predictions.h5``. The archive goes to
``work/bmz/<name>.zip``. Where both are is recorded in the status stream: a second CAREAMIST
record with the checkpoints plus ``predictions`` and ``bmz_archive``, so that ``status --json``
and the TUI show it. The training is DONE whatever happens here: a failure of one step is
recorded as an exception record (the state stays DONE) and the other step still runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec.structs import replace

from hpc_runner.stream.records import ModelLocation
from hpc_runner.stream.runs import WORK_DIR, safe_run_name
from hpc_runner.stream.status import TrainUpdateType

if TYPE_CHECKING:
    from hpc_runner.spec.after_section import BmzSpec, PredictSpec
    from hpc_runner.spec.job import JobSpec

#: Spatial size (per axis) of the example image stored in a BioImage Model Zoo archive.
EXAMPLE_SIZE = 256


def run_after(
    careamist: Any, spec: JobSpec, run_dir: Path, callback: Any, location: ModelLocation | None
) -> ModelLocation:
    """Carry out ``spec.after`` with the trained model; record and return the model location.

    ``callback`` is the run's status callback (it writes debug, exception and CAREAMIST
    records); ``location`` the checkpoints the training recorded.
    """
    after = spec.after
    location = location or ModelLocation(work_dir=str(run_dir / WORK_DIR))
    if after is None:
        return location
    work = run_dir / WORK_DIR
    if after.predict is not None:
        try:
            written = predict_images(careamist, spec, after.predict, work)
        except Exception as exc:  # recorded, not raised: the training itself is DONE
            _failed(callback, "prediction", exc)
        else:
            location = replace(location, predictions=str(written))
            callback.emit(TrainUpdateType.DEBUG, f"predictions written to {written}")
    if after.export_bmz is not None:
        try:
            archive = export_bmz(careamist, spec, after.export_bmz, work)
        except Exception as exc:  # recorded, not raised: the checkpoints are still there
            _failed(callback, "BioImage Model Zoo export", exc)
        else:
            location = replace(location, bmz_archive=str(archive))
            callback.emit(TrainUpdateType.DEBUG, f"BioImage Model Zoo archive: {archive}")
    callback.emit(TrainUpdateType.CAREAMIST, location)
    return location


def _failed(callback: Any, step: str, exc: BaseException) -> None:
    callback.emit(TrainUpdateType.DEBUG, f"after training: {step} failed: {exc}")
    callback.emit(TrainUpdateType.EXCEPTION, exc)


def predict_images(careamist: Any, spec: JobSpec, predict: PredictSpec, work: Path) -> Path:
    """Predict every image of ``predict.images`` (default: the training data); the TIFF
    directory or the HDF5 file written."""
    import numpy as np

    from hpc_runner.data.hdf5_stack import lazy_loading

    sources = predict.images or (spec.data.train,)
    tiling: dict[str, Any] = {"axes": predict.axes} if predict.axes else {}
    if predict.tile_size:
        tiling.update(tile_size=predict.tile_size, tile_overlap=predict.tile_overlap)
    outputs: dict[str, Any] = {}
    for source in sources:
        predictions, _ = careamist.predict(
            pred_data=source, data_type="custom", loading=lazy_loading(), **tiling
        )
        stem = _stem(source)
        for index, image in enumerate(predictions):
            name = stem if len(predictions) == 1 else f"{stem}_{index}"
            while name in outputs:
                name += "_"
            outputs[name] = np.asarray(image)
    if predict.format == "hdf5":
        import h5py

        target = work / "predictions.h5"
        target.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(target, "w") as handle:
            for name, image in outputs.items():
                handle.create_dataset(name, data=image, chunks=True)
        return target
    import tifffile

    target = work / "predictions"
    target.mkdir(parents=True, exist_ok=True)
    for name, image in outputs.items():
        tifffile.imwrite(target / f"{name}.tif", image)
    return target


def _stem(source: str) -> str:
    """An output name for a source: the file's stem, plus the dataset inside a container."""
    from hpc_runner.data.sources import split_source

    path, inner = split_source(source)
    name = Path(path).stem + (f"_{inner.strip('/')}" if inner else "")
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "image"


def export_bmz(careamist: Any, spec: JobSpec, bmz: BmzSpec, work: Path) -> Path:
    """Write the BioImage Model Zoo archive of the trained model; its path."""
    config = spec.careamics["data_config"]
    example = _example(bmz.input or spec.data.train, config["axes"], config["patching"])
    name = model_name(bmz.name or spec.name)
    algorithm = spec.algorithm.upper()
    description = bmz.description or (
        f"{algorithm} model trained with CAREamics (hpc-runner run {spec.name})."
    )
    data_description = bmz.data_description or (
        f"Trained on {Path(spec.data.train).name} (axes {config['axes']})."
    )
    archive = work / "bmz" / f"{safe_run_name(name)}.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    careamist.export_to_bmz(
        path_to_archive=archive,
        friendly_model_name=name,
        input_array=example,
        authors=[dict(author) for author in bmz.authors],
        general_description=description,
        data_description=data_description,
    )
    return archive


def model_name(text: str) -> str:
    """A Model Zoo model name from ``text``: letters, digits, ``_+-()`` and spaces, 5 to 128
    characters (the Model Zoo's rules; a short run name gets `` model`` appended)."""
    name = re.sub(r"[^A-Za-z0-9_+\-() ]", "_", text).strip() or "hpc-runner"
    return (name if len(name) >= 5 else f"{name} model")[:128]


def _example(source: str, axes: str, patching: dict[str, Any]) -> Any:
    """The example crop of a source; from HDF5 only the crop is read (the data may be huge)."""
    from hpc_runner.data.sources import load_source, source_kind

    if source_kind(source) == "hdf5":
        import h5py

        from hpc_runner.data.hdf5_stack import hdf5_dataset

        path, name = hdf5_dataset(source)
        with h5py.File(path, "r") as handle:
            return example_input(handle[name], axes, patching["patch_size"])
    loaded = load_source(source)
    image = loaded[0] if isinstance(loaded, list) else loaded
    return example_input(image, axes, patching["patch_size"])


def example_input(image: Any, axes: str, patch_size: list[int]) -> Any:
    """A small crop of ``image`` for the archive's test input: the first sample (S and T kept
    as axes of size 1), every channel, at most :data:`EXAMPLE_SIZE` per spatial axis in whole
    patches (the model must take it untiled)."""
    import numpy as np

    spatial = [axis for axis in "ZYX" if axis in axes]
    patch = dict(zip(spatial, patch_size, strict=True))
    selection: list[slice] = []
    for axis, size in zip(axes, image.shape, strict=True):
        if axis in "ST":
            selection.append(slice(0, 1))
        elif axis in patch:
            keep = min(size, max(patch[axis], EXAMPLE_SIZE // patch[axis] * patch[axis]))
            selection.append(slice(0, keep // patch[axis] * patch[axis] or size))
        else:
            selection.append(slice(None))
    return np.ascontiguousarray(image[tuple(selection)], dtype=np.float32)
