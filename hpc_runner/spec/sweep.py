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
runs; each run is named after the values it sets, every listed key included
(``epochs=10_patch_size=32x32_seed=1_train=a.tif@3f2a1c``): the name depends only on the run's
own values, never on their positions (:mod:`hpc_runner.spec.sweep_names`), and a resubmission
finds the runs that exist by their recorded values. :func:`expand` is pure;
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
from hpc_runner.spec.sweep_names import plain_value, run_identity, run_names

SWEEP_KEYS = ("name", "base", "grid", "zip", "cluster")
#: Top-level job spec sections a sweep may vary (``name`` is the run's; ``cluster`` is shared
#: by the whole job array and belongs in the sweep's own ``cluster:`` section).
VARIABLE_SECTIONS = ("training", "data", "evaluate", "after")
#: Upper bound on the runs of one sweep: beyond it a typo in a grid, not an intention.
MAX_RUNS = 10_000
KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    Attributes
    ----------
    name : str
        Its directory name (:mod:`hpc_runner.spec.sweep_names`).
    overrides : dict
        The job spec keys it sets (dotted path → value), as the sweep file writes them.
    values : dict
        The same with relative file paths made absolute: what identifies the run (filled by
        :func:`hpc_runner.spec.sweep_check.check_sweep`; empty from :func:`expand`).
    """

    name: str
    overrides: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def identity(self) -> str:
        """The run's identity (:func:`~hpc_runner.spec.sweep_names.run_identity`)."""
        return run_identity(self.values or self.overrides)


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
        When the zip lists differ in length, a key is in both, or two runs would set the
        same values (a value listed twice).
    """
    grid, zipped = plain_value(grid), plain_value(zipped or {})  # (numpy values from a script)
    lengths = {len(values) for values in zipped.values()}
    if len(lengths) > 1:
        raise ValueError(f"zip lists differ in length: {sorted(lengths)}")
    if both := sorted(grid.keys() & zipped.keys()):
        raise ValueError(f"keys both in grid and zip: {', '.join(both)}")
    zip_rows = list(zip(*zipped.values(), strict=True)) if zipped else [()]
    keys = [*grid, *zipped]
    combos: list[dict[str, Any]] = []
    for grid_values in itertools.product(*grid.values()):
        for zip_values in zip_rows:
            combos.append(dict(zip(keys, (*grid_values, *zip_values), strict=True)))
    names = run_names(combos, keys)
    return [SweepRun(name, overrides) for name, overrides in zip(names, combos, strict=True)]


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
