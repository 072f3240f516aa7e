"""Validate every run of a sweep as the job spec it will be, before anything is written.

Each run is the base job spec with the sweep's ``cluster:`` keys and the run's own values set
(:func:`hpc_runner.spec.sweep.apply_overrides`), checked by
:func:`hpc_runner.spec.job.job_spec_from_mapping` like any job spec. Problems are reported once each
and point at the sweep file where a sweep value caused them (``sweep.yaml: grid.training.patch_size:
value [8, 8]: ... (runs: ...)``); problems every run shares come from the base job spec and name it.
careamics is imported (by the spec's training section) only when this runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpc_runner.spec.errors import Problem, Problems, SpecError, load_yaml_mapping
from hpc_runner.spec.sweep import SweepRun, SweepSpec, apply_overrides

if TYPE_CHECKING:
    from hpc_runner.spec.job import JobSpec

#: Job spec keys that hold file paths: a sweep's values for them are relative to the sweep file.
PATH_KEYS = frozenset(
    {
        "data.train",
        "data.val",
        "data.train_target",
        "data.val_target",
        "evaluate.ground_truth",
        "training.config",
        "after.predict.images",
        "after.export_bmz.input",
    }
)


def rebase_paths(path: str, value: Any, directory: Path, *, real: bool = False) -> Any:
    """``value`` with relative file paths under ``path`` made absolute against ``directory``
    (``file.h5:/group/data`` keeps its inner path; lists and mappings are walked).

    ``real``: each path also with its symlinks, ``..`` and ``.`` resolved, so that two names of
    one file are equal (what the sweep's "listed twice" check compares; a run's identity keeps
    the path as written, so that runs recorded before are still found).
    """
    from hpc_runner.data.sources import split_source

    if isinstance(value, Mapping):
        return {
            key: rebase_paths(f"{path}.{key}", item, directory, real=real)
            for key, item in value.items()
        }
    if isinstance(value, list) and path in PATH_KEYS:
        return [rebase_paths(path, item, directory, real=real) for item in value]
    if isinstance(value, str) and path in PATH_KEYS:
        file, inner = split_source(value)
        resolved = Path(file).expanduser()
        if not resolved.is_absolute():
            resolved = directory / resolved
        if real and "\0" not in value:  # (a NUL is reported where the run's spec is checked)
            resolved = Path(os.path.realpath(resolved))
        return f"{resolved}:{inner}" if inner else str(resolved)
    return value


def resolved_values(overrides: Mapping[str, Any], directory: str | Path) -> dict[str, Any]:
    """A run's values with relative file paths made absolute against the sweep file's folder:
    what the run trains on, and so what identifies it (a sweep file moved elsewhere names other
    files with the same words)."""
    return {path: rebase_paths(path, value, Path(directory)) for path, value in overrides.items()}


def run_mapping(base: Mapping[str, Any], sweep: SweepSpec, run: SweepRun) -> dict[str, Any]:
    """The job spec mapping of one run: base + the sweep's cluster keys + the run's values."""
    overrides: dict[str, Any] = {f"cluster.{key}": value for key, value in sweep.cluster.items()}
    overrides.update(resolved_values(run.overrides, sweep.directory))
    overrides["name"] = run.name
    return apply_overrides(base, overrides)


def check_sweep(
    sweep: SweepSpec, *, profile: str | None = None, runs: list[SweepRun] | None = None
) -> list[tuple[SweepRun, JobSpec]]:
    """Every run of the sweep (or the ``runs`` given) as a validated job spec; each run comes
    back with its :attr:`~hpc_runner.spec.sweep.SweepRun.values` filled in.

    Raises
    ------
    SpecError
        Every problem of every run, each once, naming the sweep file and the sweep key
        where a sweep value caused it, else the base job spec and its key.
    """
    from hpc_runner.spec.job import job_spec_from_mapping

    base_path = Path(sweep.base)
    base_label = _label(base_path, sweep)
    base_problems = Problems(base_label)
    base = load_yaml_mapping(base_path, base_problems)
    if base is None:
        raise SpecError(base_problems.items)
    runs = sweep.runs() if runs is None else runs
    sweep_file = Path(sweep.directory) / Path(sweep.source).name  # recorded in each run.yaml
    checked: list[tuple[SweepRun, JobSpec]] = []
    failures: list[tuple[SweepRun, list[Problem]]] = []
    for run in runs:
        run = replace(run, values=resolved_values(run.overrides, sweep.directory))
        try:
            mapping = run_mapping(base, sweep, run)
            spec = job_spec_from_mapping(
                mapping, base_path, profile=profile, file_label=base_label, sweep_file=sweep_file
            )
        except KeyError as error:  # a path through a value that is not a mapping
            key, _, reason = str(error.args[0]).partition(": ")
            if key in sweep.grid or key in sweep.zip:
                section = "grid" if key in sweep.grid else "zip"
                problem = Problem(sweep.source, f"{section}.{key}", f"{key}: {reason}")
            else:  # the sweep's own cluster: keys, into a base whose cluster: is no mapping
                where = f"(the sweep's {key} goes into it)"
                problem = Problem(base_label, key.rsplit(".", 1)[0], f"{reason} {where}")
            failures.append((run, [problem]))
            continue
        except SpecError as error:
            failures.append((run, error.problems))
            continue
        checked.append((run, spec))
    problems = [*base_problems.items, *_attribute(failures, runs, sweep, base_label)]
    if problems:
        raise SpecError(problems)
    return checked


def _attribute(
    failures: list[tuple[SweepRun, list[Problem]]],
    runs: list[SweepRun],
    sweep: SweepSpec,
    base_label: str,
) -> list[Problem]:
    """One problem per distinct cause, where the user can fix it.

    A problem every run has is the base spec's own, unless it is about a key the sweep sets
    (then every run has it because of the sweep's values). Otherwise it goes to the sweep key whose
    value exactly the failing runs share (compared with the runs that have no problem: a run
    that failed earlier on something else never got this far), else to the sweep key it is
    about, else to the base spec's key, listing the runs.
    """
    grouped: dict[tuple[str, str, str], list[SweepRun]] = {}
    for run, problems in failures:
        for problem in problems:
            grouped.setdefault((problem.file, problem.key, problem.reason), []).append(run)
    failed = {run.name for run, _ in failures}
    result = []
    for (file, key, reason), failing in grouped.items():
        own = _override_key(key, failing[0])
        if file == base_label and len(failing) == len(runs) and own is None:
            result.append(Problem(file, key, reason))  # the base spec's own problem
            continue
        names = [run.name for run in failing]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        runs_text = f"(run{'s' if len(names) > 1 else ''} {shown})"
        if file != base_label:  # already the sweep's own key
            result.append(Problem(file, key, f"{reason} {runs_text}"))
            continue
        cause = _shared_value(failing, runs, failed, first=own) or own
        if cause is None:
            result.append(
                Problem(sweep.source, "base", f"{base_label} {key}: {reason} {runs_text}")
            )
            continue
        values = []
        for run in failing:
            if run.overrides[cause] not in values:
                values.append(run.overrides[cause])
        shown_values = " or ".join(repr(value) for value in values)
        inner = key[len(cause) :].lstrip(".") if key.startswith(cause) else key
        where = f" ({inner})" if inner else ""
        section = "grid" if cause in sweep.grid else "zip"
        text = f"value {shown_values}{where}: {reason} {runs_text}"
        result.append(Problem(sweep.source, f"{section}.{cause}", text))
    return result


def _shared_value(
    failing: list[SweepRun], runs: list[SweepRun], failed: set[str], first: str | None = None
) -> str | None:
    """The sweep key whose value the failing runs, and only they among the comparable runs
    (those without other problems), have in common; ``first`` (the key the problem is about)
    wins over keys zipped with it."""
    names = {run.name for run in failing}
    comparable = [run for run in runs if run.name in names or run.name not in failed]
    overrides = failing[0].overrides
    for key in sorted(overrides, key=lambda k: k != first):
        value = overrides[key]
        having = {run.name for run in comparable if run.overrides.get(key, _MISSING) == value}
        if having == names:
            return key
    return None


_MISSING = object()


def _override_key(key: str, run: SweepRun) -> str | None:
    """The sweep key (of the run's values) the problem's key path is at or below."""
    for path in run.overrides:
        if key == path or key.startswith((f"{path}.", f"{path}[")):
            return path
    return None


def _label(path: Path, sweep: SweepSpec) -> str:
    """The base spec's name in messages: relative to the sweep file's folder when inside it."""
    try:
        return str(Path(sweep.source).parent / path.relative_to(sweep.directory))
    except ValueError:
        return str(path)
