"""Runs of a sweep listed in other words: found again by what they are, where their values differ.

:func:`~hpc_runner.control.sweep_plan.plan_sweep` finds the runs that exist by their values
first (:mod:`hpc_runner.control.sweep_runs`). Values are what the sweep file lists, and one run
can be listed in several ways: a key at the base spec's own value (``training.seed: [42]`` over
a base with seed 42) added to the sweep or dropped from it again, or a value written otherwise
that resolves to the same setting. Each made a run of other values, and so a second, identical
training of a run that exists. :func:`same_runs` compares the runs left unmatched with the
sweep's run directories that no run claimed.

Two runs are one when ``run.yaml`` records the same :data:`SAME_RUN_SECTIONS`: the data and the
careamics configuration (what trains), ``evaluate`` (the ground truth its PSNR is measured
against: a sweep over it has runs that train alike and report apart) and ``after`` (prediction
and export once trained). The cluster, monitor and preview sections and the run's name are not
part of it: a longer time limit trains the same model. Settings compare as the sweep's settings
check compares them (:func:`~hpc_runner.control.sweep_runs.training_changes`: careamics' version
and experiment name passed over, data sources in one spelling, ``12`` and ``12.0`` one number),
and exactly otherwise: a key on one side only is a difference. A run recorded by another
careamics (fields added or dropped) is then not found this way and is a new run, as it was
before: taking a run for one it might not be would credit it with another training.

The same rule holds within one submission (:func:`refuse_one_training_twice`): two values
written apart can set one thing (``training.seed: [1, 1.0]``: two run names, one training), and
a new run with the settings of another run of the plan would train it a second time.

Sweeps have hundreds of runs: only unmatched runs and unclaimed directories are compared (none
in a sweep submitted again unchanged, or only grown), each ``run.yaml`` is read once (shared
with the settings check), and they meet by a hash of their settings, not pairwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from hpc_runner.control.sweep_runs import NOT_TRAINING, TRAINING_SECTIONS, run_document
from hpc_runner.errors import UsageError
from hpc_runner.spec.sweep_names import canonical, values_text

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from hpc_runner.spec.job import JobSpec
    from hpc_runner.spec.sweep import SweepRun

#: The sections of ``run.yaml`` that make a run what it is (see the module docstring).
SAME_RUN_SECTIONS = (*TRAINING_SECTIONS, "evaluate", "after")
#: Sections whose text values are data sources (compared in one spelling).
_SOURCES = {("data",), ("evaluate",)}
#: Integers beyond this are kept as they are (a float would round them).
_EXACT_FLOAT = 2**53
#: Pairs of runs named in the message about one training listed twice.
_SHOWN_PAIRS = 5


def settings_key(settings: Mapping[str, Any]) -> str:
    """A hash of a run's settings (:data:`SAME_RUN_SECTIONS`): equal for runs that are one."""
    text = canonical(_normal(settings, ()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def recorded_settings(document: Any) -> dict[str, Any] | None:
    """The :data:`SAME_RUN_SECTIONS` of a run's ``run.yaml`` (as read), or None when it lacks
    any of them (a run.yaml of an older hpc-runner, or none): nothing is said about such a run."""
    if not isinstance(document, dict) or any(name not in document for name in SAME_RUN_SECTIONS):
        return None
    if not all(isinstance(document[name], dict) for name in TRAINING_SECTIONS):
        return None
    return {name: document[name] for name in SAME_RUN_SECTIONS}


def same_runs(
    unmatched: Sequence[tuple[SweepRun, JobSpec]],
    unclaimed: Iterable[Path],
    read: dict[Path, Any],
) -> dict[str, Path]:
    """The existing run directory each run (by name) is, found by its settings.

    Parameters
    ----------
    unmatched
        Runs of the submission that no directory records the values of, with their specs.
    unclaimed
        The sweep's run directories that no run of the submission matched by its values.
    read
        ``run.yaml`` documents read so far (:func:`~hpc_runner.control.sweep_runs.run_document`;
        filled here for the settings check to use).

    Raises
    ------
    UsageError
        A run is what two or more existing runs are (one run trained more than once, by an
        older hpc-runner): which of them it is cannot be told, and training it once more
        would not help. The message names them.
    """
    from hpc_runner.spec.job import run_settings

    unclaimed = list(unclaimed)
    if not unmatched or not unclaimed:
        return {}
    existing: dict[str, list[Path]] = {}
    for run_dir in unclaimed:
        settings = recorded_settings(run_document(run_dir, read))
        if settings is not None:
            existing.setdefault(settings_key(settings), []).append(run_dir)
    found: dict[str, Path] = {}
    claimed: set[Path] = set()
    for run, spec in unmatched:
        same = existing.get(settings_key(run_settings(spec)), [])
        if len(same) > 1:
            names = ", ".join(run_dir.name for run_dir in same)
            raise UsageError(
                f"{same[0].parent}: {len(same)} runs of this sweep exist with the settings of "
                f"its run {run.name}: {names} (one run trained more than once); which one it is "
                "cannot be told: move all but one of them away, then submit again"
            )
        # (two runs listed alike: the first is that run, the second is refused as listed
        # twice by refuse_one_training_twice)
        if same and same[0] not in claimed:
            found[run.name] = same[0]
            claimed.add(same[0])
    return found


class PlannedRun(Protocol):
    """What :func:`refuse_one_training_twice` reads of a
    :class:`~hpc_runner.control.sweep_plan.PlannedRun` (named here: that module uses this one)."""

    @property
    def action(self) -> str: ...
    @property
    def run(self) -> SweepRun: ...
    @property
    def spec(self) -> JobSpec: ...


def refuse_one_training_twice(plan: Sequence[PlannedRun], sweep_dir: Path) -> None:
    """Stop when a new run of the plan is what another of its runs is (by :func:`settings_key`).

    The sweep file's own check refuses a value listed twice as it is, or a file named twice;
    values written apart can still set one thing (``1`` and ``1.0`` of a seed, ``"1"`` that
    careamics reads as ``1``): two run names, and the second run would train the first's
    training again, beside it or beside the run of it that exists. Runs that exist both are
    left alone (nothing trains).

    Raises
    ------
    UsageError
        Naming each such run and the run it is, with their values, and the fix.
    """
    from hpc_runner.spec.job import run_settings

    if all(item.action != "new" for item in plan):
        return
    first: dict[str, PlannedRun] = {}
    twice: list[tuple[PlannedRun, PlannedRun]] = []
    # runs that exist first: a new run is the second listing of one, never the other way round
    for item in sorted(plan, key=lambda item: item.action == "new"):
        earlier = first.setdefault(settings_key(run_settings(item.spec)), item)
        if earlier is not item and item.action == "new":
            twice.append((item, earlier))
    if not twice:
        return
    lines = [
        f"  {_listed(item)} is {_listed(earlier)}"
        + ("" if earlier.action == "new" else ", which exists")
        for item, earlier in twice[:_SHOWN_PAIRS]
    ]
    if len(twice) > _SHOWN_PAIRS:
        lines.append(f"  and {len(twice) - _SHOWN_PAIRS} more runs")
    sweep = plan[0].spec.sweep  # (none for a sweep built in Python: its directory then)
    raise UsageError(
        f"{sweep.path if sweep else sweep_dir}: {len(twice)} run(s) of this sweep would train "
        "what another of its runs trains (the same data, careamics configuration, evaluate "
        "and after; values written apart can set one thing):\n"
        + "\n".join(lines)
        + "\nlist each setting once: remove one value of each pair from "
        + ("the sweep file" if sweep else "the Sweep's grid or zip")
        + ", then submit again"
    )


def _listed(item: PlannedRun) -> str:
    """A run as the sweep lists it: its name and its values as written."""
    return f"{item.run.name} ({values_text(item.run.overrides)})"


def _normal(value: Any, path: tuple[str, ...]) -> Any:
    """The settings as compared: NOT_TRAINING keys left out, data sources in one spelling,
    whole numbers as floats (``12`` is ``12.0``; ``True`` stays apart from ``1``)."""
    if isinstance(value, Mapping):
        return {
            key: _normal(item, (*path, str(key)))
            for key, item in value.items()
            if (*path, str(key)) not in NOT_TRAINING
        }
    if isinstance(value, list | tuple):
        return [_normal(item, path) for item in value]
    if isinstance(value, str) and path[:1] in _SOURCES:
        from hpc_runner.data.sources import canonical_source

        return canonical_source(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < _EXACT_FLOAT:
        return float(value)
    return value
