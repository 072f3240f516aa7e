"""The ``data:`` and ``evaluate:`` sections of a job spec: sources resolved and checked.

Every source is made absolute (relative to the spec file), opened far enough to read its
shape, and checked against the training configuration (targets where the algorithm needs them,
dimensions matching the axes, images at least one patch large), so that a wrong path or shape
is reported at submission and not minutes later on a compute node. The readers
(numpy, tifffile, h5py, zarr) are imported inside :mod:`hpc_runner.data.sources`'s functions.
"""

from __future__ import annotations

import math
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
    if "\0" in value:  # (the system refuses such a name: it raised ValueError, a traceback)
        problems.add(key, f"{value!r} holds a NUL character, which no file name can: remove it")
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
    """Targets where the algorithm needs them, and data that fit the configuration: dimensions
    matching the axes, images at least one patch large, channel counts matching the model, and
    each target the same shape as its input (careamics only finds out on the compute node)."""
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
    target_axes: str = data_config.get("target_axes") or axes
    patch = dict(
        zip([a for a in "ZYX" if a in axes], data_config["patching"]["patch_size"], strict=False)
    )
    fitting: dict[str, list[tuple[int, ...]]] = {}
    for key, source in data.sources().items():
        shapes = check_source(source)
        if _shapes_fit(
            key, shapes, target_axes if key.endswith("_target") else axes, patch, problems
        ):
            fitting[key] = shapes
    model = careamics["algorithm_config"].get("model") or {}
    _check_channels(
        fitting, axes, target_axes, data_config.get("channels"), model, algorithm, problems
    )
    for key in ("train", "val"):
        if key in fitting and f"{key}_target" in fitting:
            _check_pairs(key, fitting, axes, target_axes, problems)
    if data.val is None and "train" in fitting:
        _check_val_split(fitting["train"], axes, data_config, problems)


def _shapes_fit(
    key: str, shapes: list[tuple[int, ...]], axes: str, patch: dict[str, int], problems: Problems
) -> bool:
    """Every image has one dimension per axis and is at least one patch large."""
    for shape in shapes:
        if len(shape) != len(axes):
            problems.add(
                join_key("data", key),
                f"image has {len(shape)} dimensions {shape} but training axes '{axes}' "
                f"has {len(axes)} (set the axes to match the data)",
            )
            return False
        small = {a: (shape[axes.index(a)], p) for a, p in patch.items() if a in axes}
        small = {a: (n, p) for a, (n, p) in small.items() if n < p}
        if small:
            sizes = ", ".join(f"{a}={n} < {p}" for a, (n, p) in small.items())
            problems.add(
                join_key("data", key),
                f"image smaller than the patch ({sizes}): use a smaller training.patch_size",
            )
            return False
    return True


def _check_channels(
    shapes: dict[str, list[tuple[int, ...]]],
    axes: str,
    target_axes: str,
    channels: list[int] | None,
    model: dict[str, Any],
    algorithm: str,
    problems: Problems,
) -> None:
    """The C axis of inputs against the model's input channels (or the ``channels`` picked),
    of targets against its output channels - careamics checks this only when it loads data."""
    inputs, outputs = model.get("in_channels"), model.get("num_classes")
    suffix = "" if algorithm == "n2v" else "_in"
    for key in ("train", "val", "train_target", "val_target"):
        target = key.endswith("_target")
        key_axes = target_axes if target else axes
        expected = outputs if target else inputs
        if key not in shapes or not isinstance(expected, int):
            continue
        for shape in shapes[key]:
            count = shape[key_axes.index("C")] if "C" in key_axes else 1
            where = f"axis C of '{key_axes}'" if "C" in key_axes else f"no C in '{key_axes}'"
            if channels is not None and not target and max(channels, default=0) >= count:
                problems.add(
                    join_key("data", key),
                    f"training.channels {channels} picks channel {max(channels)} but the images "
                    f"have {count} ({where}): pick channels below {count}",
                )
            elif channels is None and count != expected:
                name = "n_channels_out" if target else f"n_channels{suffix}"
                model_key = "num_classes" if target else "in_channels"
                what = "targets" if target else "images"
                problems.add(
                    join_key("data", key),
                    f"the {what} have {count} channel(s) ({where}) but the model "
                    f"{'puts out' if target else 'takes'} {expected}: set training.{name} "
                    f"(algorithm_config.model.{model_key} in a full config) to {count}"
                    + ("" if target else ", or pick channels with training.channels"),
                )
            else:
                continue
            break


def _check_val_split(
    shapes: list[tuple[int, ...]], axes: str, data_config: dict[str, Any], problems: Problems
) -> None:
    """Without ``data.val``, careamics sets ``n_val_patches`` of the training patches aside
    for validation, and stops on the compute node when that leaves none to train on. The patch
    count is careamics' own (its stratified patching of these shapes, which it gives as
    S, C, (Z), Y, X: samples and time points are both samples)."""
    n_val = data_config.get("n_val_patches")
    patching = data_config.get("patching") or {}
    if type(n_val) is not int or patching.get("name") != "stratified":
        return
    try:
        from careamics.dataset.patching import StratifiedPatching
    except ImportError:  # (another careamics: it checks this itself, on the node)
        return
    samples = [a for a in "ST" if a in axes]
    spatial = [a for a in "ZYX" if a in axes]
    data_shapes = [
        (
            math.prod(shape[axes.index(a)] for a in samples),
            1,
            *(shape[axes.index(a)] for a in spatial),
        )
        for shape in shapes
    ]
    available = StratifiedPatching(data_shapes, patching["patch_size"]).n_patches
    if n_val >= available:
        problems.add(
            "data.train",
            f"gives {available} training patch(es) of {patching['patch_size']}, and "
            f"n_val_patches={n_val} of them would be set aside for validation, leaving none to "
            "train on: lower training.n_val_patches (data_config.n_val_patches in a full "
            "config) or training.patch_size, or give validation images as data.val",
        )


def _check_pairs(
    key: str,
    shapes: dict[str, list[tuple[int, ...]]],
    axes: str,
    target_axes: str,
    problems: Problems,
) -> None:
    """Each target has its input's size along every axis both have (careamics cuts the same
    patch from both; a 256x256 target for a 512x512 input trains on garbage or crashes)."""
    target_key = f"{key}_target"
    images, targets = shapes[key], shapes[target_key]
    if len(images) != len(targets):
        problems.add(
            join_key("data", target_key),
            f"{len(targets)} images but data.{key} has {len(images)} "
            f"(give one target per input image, with the same file names)",
        )
        return
    for index, (image, target) in enumerate(zip(images, targets, strict=True)):
        common = [a for a in "STZYX" if a in axes and a in target_axes]
        differ = [
            f"{a} {target[target_axes.index(a)]} vs {image[axes.index(a)]}"
            for a in common
            if target[target_axes.index(a)] != image[axes.index(a)]
        ]
        if differ:
            which = f"image {index + 1}: " if len(images) > 1 else ""
            problems.add(
                join_key("data", target_key),
                f"{which}shape {target} does not match data.{key} {image} ({', '.join(differ)}): "
                f"each target must be its input's counterpart, pixel for pixel",
            )
            return


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
