"""Sweeps: one base job spec, many runs that each change a few of its keys.

A sweep spec (YAML)::

    name: patch_lr                       # the sweep's directory below the runs directory
    base: n2v_demo.yaml                  # a job spec, relative to this file
    grid:                                # every combination (cartesian product)
      training.patch_size: [[32, 32], [64, 64]]
      training.epochs: [10, 20]
    zip:                                 # varied together (lists of equal length)
      training.seed: [1, 2]
      data.train: [data/a.tif, data/b.tif]   # paths relative to this file
    cluster:                             # for every run of the sweep
      array_parallelism: 4               # at most 4 runs at once (SLURM's --array=...%4)
      timeout_min: 60                    # + any cluster profile field, or profile: NAME

Keys are dotted paths into the job spec. The sweep has ``product(grid sizes) x zip length``
runs; each run is named after the values it sets (``patch_size=32x32_epochs=10_seed=1_train=a``),
made safe for paths and unique. :func:`expand` is pure;
:func:`hpc_runner.spec.sweep_file.load_sweep` checks the sweep file itself, and
:mod:`hpc_runner.spec.sweep_check` validates every expanded run as a job spec.
Importing this module is cheap (standard library and the spec error helpers).
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpc_runner.spec.errors import type_name
from hpc_runner.stream.runs import safe_run_name

SWEEP_KEYS = ("name", "base", "grid", "zip", "cluster")
#: Top-level job spec sections a sweep may vary (``name`` is the run's; ``cluster`` is shared
#: by the whole job array and belongs in the sweep's own ``cluster:`` section).
VARIABLE_SECTIONS = ("training", "data", "evaluate", "after")
#: Upper bound on the runs of one sweep: beyond it a typo in a grid, not an intention.
MAX_RUNS = 10_000
KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its name and the job spec keys it sets (dotted path → value)."""

    name: str
    overrides: dict[str, Any]


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep file.

    Parameters
    ----------
    name : str
        The sweep's name, safe as a path component.
    base : str
        The base job spec (absolute).
    grid, zip : dict
        Dotted key path → list of values, as written.
    array_parallelism : int or None
        At most this many runs at once (SLURM ``%N``); None leaves submitit's default.
    cluster : dict
        Cluster section keys set for every run (``profile`` and profile fields).
    source : str
        The sweep file, as the user named it (for messages).
    directory : str
        Where relative paths in the sweep's values are resolved (the sweep file's folder).
    """

    name: str
    base: str
    grid: dict[str, list[Any]] = field(default_factory=dict)
    zip: dict[str, list[Any]] = field(default_factory=dict)
    array_parallelism: int | None = None
    cluster: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    directory: str = "."

    def runs(self) -> list[SweepRun]:
        """The expanded runs (see :func:`expand`)."""
        return expand(self.grid, self.zip)


# -- pure expansion ------------------------------------------------------------------------------


def run_count(grid: Mapping[str, Sequence[Any]], zipped: Mapping[str, Sequence[Any]]) -> int:
    """``product(len(values) for the grid) x zip length`` (an empty grid or zip counts 1)."""
    zip_length = len(next(iter(zipped.values()))) if zipped else 1
    return math.prod(len(values) for values in grid.values()) * zip_length


def expand(
    grid: Mapping[str, Sequence[Any]], zipped: Mapping[str, Sequence[Any]] | None = None
) -> list[SweepRun]:
    """Every run of a sweep, in a stable order (the first grid key varies slowest, zip last).

    Parameters
    ----------
    grid : mapping of dotted path to list
        Values combined as a cartesian product.
    zipped : mapping of dotted path to list, optional
        Lists of one length, whose i-th values go together.

    Raises
    ------
    ValueError
        When the zip lists differ in length, or a key is in both.
    """
    zipped = zipped or {}
    lengths = {len(values) for values in zipped.values()}
    if len(lengths) > 1:
        raise ValueError(f"zip lists differ in length: {sorted(lengths)}")
    if both := sorted(grid.keys() & zipped.keys()):
        raise ValueError(f"keys both in grid and zip: {', '.join(both)}")
    zip_rows = list(zip(*zipped.values(), strict=True)) if zipped else [()]
    keys = [*grid, *zipped]
    labels = _labels(keys)
    combos: list[dict[str, Any]] = []
    for grid_values in itertools.product(*grid.values()):
        for zip_values in zip_rows:
            combos.append(dict(zip(keys, (*grid_values, *zip_values), strict=True)))
    varied = [key for key in keys if _varies(key, grid, zipped)]
    names = [
        "_".join(f"{labels[key]}={value_label(combo[key])}" for key in varied) or "run"
        for combo in combos
    ]
    return [
        SweepRun(name, overrides)
        for name, overrides in zip(unique_names(names), combos, strict=True)
    ]


def _varies(key: str, grid: Mapping[str, Sequence[Any]], zipped: Mapping[str, Any]) -> bool:
    """Keys with one value set the same for every run, so they do not help tell runs apart;
    they still name the run when nothing varies at all (a sweep of one is still a sweep)."""
    values = grid[key] if key in grid else zipped[key]
    if len(values) > 1:
        return True
    return all(len(v) <= 1 for v in (*grid.values(), *zipped.values()))


def _labels(keys: Sequence[str]) -> dict[str, str]:
    """The last segment of each path (``training.patch_size`` → ``patch_size``), or the whole
    path where two keys share a last segment."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    labels = zip(keys, last, strict=True)
    return {key: (tail if last.count(tail) == 1 else key) for key, tail in labels}


def value_label(value: Any) -> str:
    """A short text for a value in a run name: ``[32, 32]`` → ``32x32``, a path → its last
    component, ``None`` → ``none``. Not necessarily safe yet (see :func:`unique_names`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value.rstrip("/").rsplit("/", 1)[-1] or value
    if isinstance(value, Mapping):
        return "-".join(f"{key}={value_label(item)}" for key, item in value.items())
    if isinstance(value, Sequence):
        return "x".join(value_label(item) for item in value)
    return str(value)


def unique_names(names: Sequence[str]) -> list[str]:
    """Path-safe names, unique in order: the first of equal names keeps it, the others get
    ``-2``, ``-3``, ... (skipping any name that another run has anyway)."""
    safe = [safe_run_name(name) for name in names]
    taken = set(safe)
    used: set[str] = set()
    result = []
    for name in safe:
        candidate, index = name, 1
        while candidate in used or (index > 1 and candidate in taken):
            index += 1
            suffix = f"-{index}"
            candidate = safe_run_name(name, suffix=suffix)  # the name is cut to fit, not -N
        used.add(candidate)
        result.append(candidate)
    return result


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a job spec mapping with each dotted path set (missing mappings made).

    A segment of digits indexes a list (``training.patch_size.0``).

    Raises
    ------
    KeyError
        When a path runs through something that is neither a mapping nor a list, or a list
        index is out of range (the message names the path).
    """
    result = copy.deepcopy(dict(raw))
    for path, value in overrides.items():
        node: Any = result
        parts = path.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                if last:
                    node[int(part)] = copy.deepcopy(value)
                else:
                    node = node[int(part)]
                continue
            if not isinstance(node, dict):
                where = ".".join(parts[:depth]) or "the spec"
                raise KeyError(f"{path}: {where} is {type_name(node)}, not a mapping")
            if last:
                node[part] = copy.deepcopy(value)
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
    return result
