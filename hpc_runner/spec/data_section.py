"""The ``data:`` and ``evaluate:`` sections of a job spec: sources resolved and checked.

Every source is made absolute (relative to the spec file), opened far enough to read its
shape, and checked against the training configuration (targets where the algorithm needs them,
dimensions matching the axes, images at least one patch large), so that a wrong path or shape
is reported at submission and not minutes later on a compute node. The readers
(numpy, tifffile, h5py, zarr) are imported inside :mod:`hpc_runner.data.sources`'s functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_runner.spec.errors import Problems, check_keys, join_key, type_name

DATA_KEYS = ("train", "val", "train_target", "val_target")
EVALUATE_KEYS = ("ground_truth",)


@dataclass(frozen=True)
class DataSpec:
    """Where the training data are; sources are absolute (``file.h5:/group/dataset`` for HDF5).

    ``data_type`` is the careamics data type the sources need: ``tiff`` (careamics reads the
    files) or ``array`` (hpc_runner.data.sources reads them into memory on the node).
    """

    train: str
    val: str | None = None
    train_target: str | None = None
    val_target: str | None = None
    data_type: str = "array"

    def sources(self) -> dict[str, str]:
        """The given sources by key (``train``, ``val``, ...)."""
        return {key: value for key in DATA_KEYS if (value := getattr(self, key)) is not None}


def _source(value: Any, key: str, spec_dir: Path, problems: Problems) -> str | None:
    """An absolute, existing, readable data source, or None after reporting the problem."""
    from hpc_runner.data.sources import DataSourceError, check_source, split_source

    if not isinstance(value, str) or not value.strip():
        problems.add(key, f"expected a file path (string), got {type_name(value)}")
        return None
    file, inner = split_source(value.strip())
    file_path = Path(file).expanduser()
    file_path = file_path if file_path.is_absolute() else spec_dir / file_path
    source = f"{file_path}:{inner}" if inner else str(file_path)
    try:
        check_source(source)
    except DataSourceError as error:
        problems.add(key, str(error))
        return None
    return source


def data_section(section: Any, spec_dir: Path, problems: Problems) -> DataSpec | None:
    """The ``data:`` section as a :class:`DataSpec`, or None after reporting its problems."""
    from hpc_runner.data.sources import careamics_data_type

    if not isinstance(section, dict):
        reason = "missing" if section is None else f"expected a mapping, got {type_name(section)}"
        problems.add("data", f"{reason} (add 'data: {{train: path/to/images.tif}}')")
        return None
    check_keys(section, DATA_KEYS, "data", problems)
    if section.get("train") is None:
        problems.add("data.train", "missing (the training images, e.g. 'train: data/noisy.tif')")
    sources: dict[str, str | None] = {}
    ok = True
    for key in DATA_KEYS:
        if section.get(key) is None:
            sources[key] = None
            continue
        sources[key] = _source(section[key], join_key("data", key), spec_dir, problems)
        ok = ok and sources[key] is not None
    if not ok or sources["train"] is None:
        return None
    return DataSpec(**sources, data_type=careamics_data_type(sources))  # type: ignore[arg-type]


def evaluate_section(section: Any, spec_dir: Path, problems: Problems) -> str | None:
    """The absolute ground-truth source of ``evaluate:``, or None (absent or reported)."""
    if section is None:
        return None
    if not isinstance(section, dict):
        problems.add("evaluate", f"expected a mapping, got {type_name(section)}")
        return None
    check_keys(section, EVALUATE_KEYS, "evaluate", problems)
    if section.get("ground_truth") is None:
        return None
    return _source(section["ground_truth"], "evaluate.ground_truth", spec_dir, problems)


def check_data_fits(
    data: DataSpec, careamics: dict[str, Any], supervised: bool, problems: Problems
) -> None:
    """Targets where the algorithm needs them, and image dimensions matching the axes."""
    from hpc_runner.data.sources import check_source

    algorithm = careamics["algorithm_config"]["algorithm"]
    if supervised and data.train_target is None:
        problems.add("data.train_target", f"missing: {algorithm} trains on pairs (add the targets)")
    if not supervised and data.train_target is not None:
        problems.add("data.train_target", f"{algorithm} is self-supervised: remove the targets")
    if supervised and data.val is not None and data.val_target is None:
        problems.add("data.val_target", f"missing: {algorithm} validates on pairs (add it)")
    if data.val_target is not None and data.val is None:
        problems.add("data.val_target", "given without data.val (add data.val or remove it)")
    data_config = careamics["data_config"]
    axes: str = data_config["axes"]
    patch = dict(
        zip([a for a in "ZYX" if a in axes], data_config["patching"]["patch_size"], strict=False)
    )
    for key, source in data.sources().items():
        for shape in check_source(source):
            if len(shape) != len(axes):
                problems.add(
                    join_key("data", key),
                    f"image has {len(shape)} dimensions {shape} but training axes '{axes}' "
                    f"has {len(axes)} (set the axes to match the data)",
                )
                break
            small = {
                a: (shape[axes.index(a)], p) for a, p in patch.items() if shape[axes.index(a)] < p
            }
            if small:
                sizes = ", ".join(f"{a}={n} < {p}" for a, (n, p) in small.items())
                problems.add(
                    join_key("data", key),
                    f"image smaller than the patch ({sizes}): use a smaller training.patch_size",
                )
                break


def check_ground_truth(data: DataSpec, ground_truth: str, problems: Problems) -> None:
    """PSNR compares the ground truth with the training image pixel by pixel."""
    from hpc_runner.data.sources import check_source

    truth, train = check_source(ground_truth), check_source(data.train)
    squeeze = [tuple(n for n in shape if n != 1) for shape in (*truth, *train)]
    if len(truth) != len(train) or squeeze[: len(truth)] != squeeze[len(truth) :]:
        problems.add(
            "evaluate.ground_truth",
            f"shape {_shapes(truth)} differs from data.train {_shapes(train)} (the PSNR "
            "compares them pixel by pixel: give the clean version of the training images)",
        )


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return str(shapes[0]) if len(shapes) == 1 else f"{len(shapes)} images"
