"""The sweep file (see :mod:`hpc_runner.spec.sweep` for its format): read and checked as a whole.

Every problem of the file is reported at once, each with the file and the key
(``sweep.yaml: zip: lists of different lengths ...``); the runs themselves are validated as job
specs by :mod:`hpc_runner.spec.sweep_check`. Standard library, PyYAML and the spec error helpers
only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpc_runner.spec.errors import Problems, SpecError, check_keys, load_yaml_mapping, type_name
from hpc_runner.spec.sweep import (
    KEY_SEGMENT,
    MAX_RUNS,
    SWEEP_KEYS,
    VARIABLE_SECTIONS,
    SweepSpec,
    run_count,
)
from hpc_runner.spec.sweep_check import rebase_paths
from hpc_runner.spec.sweep_names import canonical, plain_value
from hpc_runner.stream.runs import safe_run_name


def load_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and check a sweep file (not yet its runs: see :mod:`hpc_runner.spec.sweep_check`).

    Raises
    ------
    SpecError
        Every problem of the file, each with the file and the key.
    """
    sweep_path = Path(path).expanduser().absolute()
    problems = Problems(os.fspath(path))
    raw = load_yaml_mapping(sweep_path, problems)
    if raw is None:
        raise SpecError(problems.items)
    return parse_sweep(raw, sweep_path, problems)


def parse_sweep(raw: Mapping[str, Any], sweep_path: Path, problems: Problems) -> SweepSpec:
    """Check a sweep mapping read from ``sweep_path``; raise every problem at once.

    Values built by a script (numpy numbers and arrays, tuples) are taken as the plain data
    they equal (:func:`~hpc_runner.spec.sweep_names.plain_value`), as a sweep file gives them.
    """
    from hpc_runner.spec.profiles import PROFILE_KEYS

    raw = plain_value(raw)

    check_keys(raw, SWEEP_KEYS, "", problems)
    name = raw.get("name", sweep_path.stem)
    if not isinstance(name, str) or not name.strip():
        problems.add("name", f"expected a non-empty string, got {type_name(name)}")
        name = sweep_path.stem
    base = raw.get("base")
    base_path = ""
    if not isinstance(base, str) or not base.strip():
        reason = "missing" if base is None else f"expected a file path, got {type_name(base)}"
        problems.add("base", f"{reason} (the job spec to vary, e.g. 'base: job.yaml')")
    else:
        resolved = Path(base).expanduser()
        resolved = resolved if resolved.is_absolute() else sweep_path.parent / resolved
        if not resolved.is_file():
            problems.add("base", f"no such job spec: {resolved} (check the path)")
        base_path = str(resolved)
    grid = _lists(raw.get("grid"), "grid", sweep_path, problems)
    zipped = _lists(raw.get("zip"), "zip", sweep_path, problems)
    lengths = {key: len(values) for key, values in zipped.items()}
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{key}: {size}" for key, size in lengths.items())
        problems.add("zip", f"lists of different lengths ({sizes}): give each the same length")
    if zipped and len(set(lengths.values())) == 1:
        rows = _rows(zipped)
        files = [
            {key: _files(key, value, sweep_path) for key, value in row.items()} for row in rows
        ]
        if twice := _listed_twice(files):
            earlier, index = twice
            same = "" if rows[earlier] == rows[index] else f" (the same files as row {earlier + 1})"
            problems.add(
                "zip",
                f"two rows set the same values {canonical(rows[index])}{same}: list each row once",
            )
    for key in grid.keys() & zipped.keys():
        problems.add(f"zip.{key}", "also in grid: vary a key in one of them only")
    keys = [*grid, *zipped]
    for key in keys:
        for other in keys:
            if other.startswith(key + "."):
                section = "grid" if other in grid else "zip"
                problems.add(
                    f"{section}.{other}", f"inside '{key}', which is varied too: vary only one"
                )
    array_parallelism, cluster = _cluster(raw.get("cluster"), PROFILE_KEYS, problems)
    if not problems and grid.keys() | zipped.keys():
        count = run_count(grid, zipped)
        if count > MAX_RUNS:
            problems.add("grid", f"{count} runs is more than {MAX_RUNS}: split the sweep")
    problems.raise_if_any()
    return SweepSpec(
        name=safe_run_name(name.strip()),
        base=base_path,
        grid=grid,
        zip=zipped,
        array_parallelism=array_parallelism,
        cluster=cluster,
        source=problems.file,
        directory=str(sweep_path.parent),
    )


def _lists(section: Any, title: str, sweep_path: Path, problems: Problems) -> dict[str, list[Any]]:
    """A ``grid:`` or ``zip:`` section: dotted paths into the job spec, each a non-empty list."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        problems.add(title, f"expected a mapping of key paths to lists, got {type_name(section)}")
        return {}
    result: dict[str, list[Any]] = {}
    for key, values in section.items():
        where = f"{title}.{key}"
        parts = str(key).split(".")
        if not isinstance(key, str) or not all(KEY_SEGMENT.match(part) for part in parts):
            problems.add(where, "expected a dotted key path of the job spec (training.epochs)")
            continue
        if parts[0] not in VARIABLE_SECTIONS:
            reason = {
                "name": "runs are named after their values: the name cannot vary",
                "cluster": "the runs of one job array share their cluster settings: set them "
                "in the sweep's own 'cluster:' section",
            }.get(parts[0], f"not a job spec section (vary {', '.join(VARIABLE_SECTIONS)})")
            problems.add(where, reason)
            continue
        if not isinstance(values, list) or not values:
            got = "an empty list" if values == [] else type_name(values)
            problems.add(where, f"expected a non-empty list of values, got {got}")
            continue
        if title == "grid" and (
            twice := _listed_twice([_files(key, v, sweep_path) for v in values])
        ):
            first, second = (canonical(values[index]) for index in twice)
            listed = (
                f"{second} is listed twice"
                if first == second
                else f"{second} names the same file as {first}"
            )
            problems.add(where, f"{listed}: a run is its values, list each once")
            continue
        result[key] = values
    return result


def _listed_twice(values: Sequence[Any]) -> tuple[int, int] | None:
    """Where the first value listed twice is, and where it was listed before; or None.

    Values compare as run names and identities compare them (``1``, ``1.0`` and ``"1"`` are
    three values), after :func:`_files`.
    """
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        earlier = seen.setdefault(canonical(value), index)
        if earlier != index:
            return earlier, index
    return None


def _files(key: str, value: Any, sweep_path: Path) -> Any:
    """A value as the files it names, for a file path key (``tiny.npy``, ``./tiny.npy``, its
    absolute path and a symlink to it train the same run); other values as they are."""
    return rebase_paths(key, value, sweep_path.parent, real=True)


def _rows(zipped: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(zipped, row, strict=True)) for row in zip(*zipped.values(), strict=True)]


def _cluster(
    section: Any, profile_keys: Sequence[str], problems: Problems
) -> tuple[int | None, dict[str, Any]]:
    if section is None:
        return None, {}
    if not isinstance(section, dict):
        problems.add("cluster", f"expected a mapping, got {type_name(section)}")
        return None, {}
    check_keys(section, ("array_parallelism", "profile", *profile_keys), "cluster", problems)
    parallelism = section.get("array_parallelism")
    if parallelism is not None and (
        not isinstance(parallelism, int) or isinstance(parallelism, bool) or parallelism < 1
    ):
        problems.add(
            "cluster.array_parallelism",
            f"expected a whole number >= 1 (runs at once), got {type_name(parallelism)}",
        )
        parallelism = None
    shared = {key: value for key, value in section.items() if key != "array_parallelism"}
    return parallelism, shared
