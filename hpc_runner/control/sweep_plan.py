"""Planning a sweep's submission: per run, new, retried or skipped (submitting side).

:func:`plan_sweep` finds each run of the sweep among the run directories that exist by the
values they record (:mod:`hpc_runner.control.sweep_runs`), never by name or position, else by
the settings it is made with (:mod:`hpc_runner.control.sweep_same`: a key listed at the base
spec's value, or a value written otherwise, is the run that exists): a run that exists is
skipped (submitting a sweep twice, reordered or grown, duplicates nothing) unless
``only_failed`` asks for it and it CRASHED, was cancelled, or never started; then it continues
as its next attempt from its newest checkpoint (an absolute path, as ``hpc-runner resume``
passes it). A run that does not exist is new, under its own name
(:mod:`hpc_runner.spec.sweep_names`) or, where a directory with other values has that name,
under a name with a hash of its values.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpc_runner.control.jobfile import JobRecord
from hpc_runner.control.phase import Phase, RunPhase
from hpc_runner.errors import UsageError
from hpc_runner.spec.sweep_names import values_text
from hpc_runner.stream.runs import RUN_SPEC_FILE, STATUS_FILE, is_run_dir

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hpc_runner.control.sweep_runs import RecordedRun
    from hpc_runner.spec.job import JobSpec
    from hpc_runner.spec.sweep import SweepRun
    from hpc_runner.stream.run_state import RunState


@dataclass(frozen=True)
class PlannedRun:
    """What a submission does with one run of the sweep.

    Attributes
    ----------
    run, spec
        The run and its validated job spec.
    run_dir : Path
        Its directory (``<sweep dir>/<run name>``).
    action : str
        ``new`` (submit), ``retry`` (submit the next attempt) or ``skip``.
    reason : str
        Why (``exists: DONE``, ``CRASHED``, ``cancelled``, ``never started``, ...).
    attempt : int
        The attempt number the job starts with.
    checkpoint : str or None
        A retried run continues from this checkpoint (an absolute path).
    note : str
        Worth telling the user: its own name was taken by other values, or it is an existing
        run of other values made with its settings.
    job_id : str or None
        A retried run's job when the plan was made: submitting re-checks it under the run's
        lock, so that a ``resume`` or another sweep that submitted it meanwhile is not doubled.
    by_settings : bool
        The run is an existing run of other values found by its settings: the records of its
        values are left as they are (it stays the run it was, also for the sweep that made it).
    """

    run: SweepRun
    spec: JobSpec
    run_dir: Path
    action: str
    reason: str = ""
    attempt: int = 0
    checkpoint: str | None = None
    note: str = ""
    job_id: str | None = None
    by_settings: bool = False


def plan_sweep(
    checked: list[tuple[SweepRun, JobSpec]], sweep_dir: Path, *, only_failed: bool = False
) -> list[PlannedRun]:
    """Decide for each run whether it is submitted (one scheduler query for all existing ones).

    A run exists when a run directory of the sweep records the same values
    (:mod:`hpc_runner.control.sweep_runs`), whatever its name: a reordered or grown sweep finds
    its runs again, and runs named by an older hpc-runner too. A run whose values no directory
    records is then looked for by its settings among the directories no run claimed
    (:func:`~hpc_runner.control.sweep_same.same_runs`), with a note saying which it is. A new
    run whose name is taken by a directory with other values gets a name of its own (see
    :func:`_own_name`).

    Raises
    ------
    UsageError
        A new run's name is taken by a directory that records no values (it might be this very
        run): the message names it. Or ``sweep_dir`` is a run's directory. Or a run is made with
        the settings of two existing runs (:func:`~hpc_runner.control.sweep_same.same_runs`).
        Or a new run has the settings of another run of the plan: one training listed twice
        (:func:`~hpc_runner.control.sweep_same.refuse_one_training_twice`).
    """
    from hpc_runner.control.scheduler import job_records, scheduler_states
    from hpc_runner.control.sweep_runs import recorded_runs
    from hpc_runner.control.sweep_same import refuse_one_training_twice, same_runs

    if is_run_dir(sweep_dir) or os.path.lexists(sweep_dir / RUN_SPEC_FILE):
        # (its runs would go inside that run: the array's logs in its submitit folder, and
        # the run itself ranked among the sweep's)
        raise UsageError(
            f"{sweep_dir}: is the directory of a run, not of a sweep: name the sweep otherwise "
            "(its 'name:') or give another --runs-dir"
        )
    recorded = recorded_runs(sweep_dir)
    by_identity: dict[str, list[Path]] = {}
    for run_dir, record in recorded.items():
        if record.identity is not None:
            by_identity.setdefault(record.identity, []).append(run_dir)
    matched = {}
    for run, _ in checked:
        found = by_identity.get(run.identity, [])
        if found:  # its own name first, else the first by name
            matched[run.name] = next((d for d in found if d.name == run.name), found[0])
    read: dict[Path, Any] = {}  # run.yaml documents: each read once by this plan
    claimed = set(matched.values())
    unmatched = [(run, spec) for run, spec in checked if run.name not in matched]
    # (among runs that record their values: one that records none might be this very run,
    # and _own_name stops at it rather than guess)
    unclaimed = [d for d, record in recorded.items() if record.complete and d not in claimed]
    same = same_runs(unmatched, unclaimed, read)
    matched.update(same)
    records = job_records(matched.values())
    schedulers = scheduler_states(records)
    states = _states(matched.values())
    plan = []
    for run, spec in checked:
        if run.name not in matched:
            name, note = _own_name(run, sweep_dir, recorded)
            run, spec = _renamed(run, spec, name)
            plan.append(PlannedRun(run, spec, sweep_dir / name, "new", note=note))
            continue
        run_dir = matched[run.name]
        listed = run
        run, spec = _renamed(run, spec, run_dir.name)
        item = _existing(run, spec, run_dir, records, schedulers, states, only_failed)
        if listed.name in same:
            item = replace(item, note=_same_note(listed, recorded[run_dir]), by_settings=True)
        plan.append(item)
    refuse_one_training_twice(plan, sweep_dir)
    _refuse_other_trainings(plan, sweep_dir, read)
    return _not_while_alive(plan, records)


def _not_while_alive(
    plan: list[PlannedRun], records: dict[Path, JobRecord | None]
) -> list[PlannedRun]:
    """Retries of runs a job of which has not exited yet are skipped, saying which job: the
    run's status may say CRASHED or CANCELLED while its job still ends, and ``resume`` refuses
    the same (:func:`~hpc_runner.control.scheduler.live_jobs`); submitting it again would have
    two jobs write one run directory."""
    from hpc_runner.control.scheduler import live_jobs, not_exited

    retried = {
        item.run_dir: record
        for item in plan
        if item.action == "retry" and (record := records.get(item.run_dir)) is not None
    }
    alive = live_jobs(retried) if retried else {}
    result = []
    for item in plan:
        jobs = alive.get(item.run_dir)
        if jobs:
            reason = f"{item.reason}, but {not_exited(jobs)}: retry it once the job has ended"
            item = replace(item, action="skip", reason=reason, attempt=0, checkpoint=None)
        result.append(item)
    return result


def _same_note(listed: SweepRun, existing: RecordedRun) -> str:
    """What the user is told about a run found by its settings."""
    return (
        f"{listed.name} ({values_text(listed.overrides)}) is the existing run "
        f"{existing.run_dir.name} ({values_text(existing.overrides)}): the same settings (data, "
        "careamics configuration, evaluate, after)"
    )


#: Runs named, and keys per run, in the message about runs trained with other settings.
_SHOWN_RUNS, _SHOWN_KEYS = 5, 3


def _refuse_other_trainings(
    plan: list[PlannedRun], sweep_dir: Path, read: dict[Path, Any] | None = None
) -> None:
    """Stop when runs this submission would keep were trained with other settings.

    A run is found by the values the sweep varies; the base job spec (or the sweep file's
    other keys) may have changed since: another ``base:``, more epochs, other data. Skipping
    such a run as existing would credit this sweep with a training it never asked for, and its
    ``--summary`` would rank results of other settings. A run retried by ``--only-failed``
    is refused as well, even from its start: it would keep its best checkpoint, trained with
    the settings of then, until the new training beats it. ``read``: the ``run.yaml``
    documents the plan has read already (each file is read once).

    Raises
    ------
    UsageError
        Naming the runs, the keys that differ and what to do.
    """
    from hpc_runner.control.sweep_runs import recorded_training, training_changes
    from hpc_runner.spec.job import training_settings

    differing = []
    for item in plan:
        if item.action == "new":
            continue
        recorded = recorded_training(item.run_dir, read)
        changes = training_changes(recorded, training_settings(item.spec)) if recorded else []
        if changes:
            differing.append((item.run_dir.name, changes))
    if not differing:
        return
    lines = [
        f"  {name}: "
        + "; ".join(
            f"{key}: {_shown(old)} there, {_shown(new)} now"
            for key, old, new in changes[:_SHOWN_KEYS]
        )
        + (f"; and {len(changes) - _SHOWN_KEYS} more" if len(changes) > _SHOWN_KEYS else "")
        for name, changes in differing[:_SHOWN_RUNS]
    ]
    if len(differing) > _SHOWN_RUNS:
        lines.append(f"  and {len(differing) - _SHOWN_RUNS} more runs")
    raise UsageError(
        f"{sweep_dir}: {len(differing)} run(s) of this sweep exist, trained with other "
        "settings than this submission (found by the values the sweep varies; their run.yaml "
        "says what they trained with):\n"
        + "\n".join(lines)
        + "\nkept as they are, their results would stand for settings they were not trained "
        "with: give this sweep another name (its 'name:'), or move that sweep directory away"
    )


def _shown(value: Any) -> str:
    from hpc_runner.control.sweep_runs import UNSET

    if value is UNSET:
        return "unset"
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _existing(
    run: SweepRun,
    spec: JobSpec,
    run_dir: Path,
    records: dict[Path, JobRecord | None],
    schedulers: dict[Path, Any],
    states: dict[Path, RunState],
    only_failed: bool,
) -> PlannedRun:
    """A run that exists: skipped, or (``only_failed``) retried as its next attempt."""
    from hpc_runner.control.phase import derive_phase
    from hpc_runner.stream.run_state import RunState
    from hpc_runner.stream.runs import latest_checkpoint

    record, scheduler = records.get(run_dir), schedulers.get(run_dir)
    state = states.get(run_dir) or RunState()
    phase = derive_phase(state, record, scheduler, now=time.time())
    reason = retry_reason(phase)
    if not only_failed or reason is None:
        return PlannedRun(run, spec, run_dir, "skip", f"exists: {phase.describe()}")
    attempts = [submission.attempt for submission in record.submissions] if record else []
    seen = [state.attempt] if state.records else []
    attempt = max([*seen, *attempts]) + 1 if seen or attempts else 0
    checkpoint = latest_checkpoint(run_dir)  # absolute: the job may start in another folder
    return PlannedRun(
        run,
        spec,
        run_dir,
        "retry",
        reason,
        attempt,
        str(checkpoint) if checkpoint else None,
        job_id=record.job_id if record else None,
    )


def _states(run_dirs: Iterable[Path]) -> dict[Path, RunState]:
    """The runs' states, read as ``status`` reads them (the reader cache, worker processes
    for a big sweep): a sweep of long trainings submitted again is planned in a blink."""
    from hpc_runner.stream.run_reader import read_runs

    with_files = [run_dir for run_dir in run_dirs if (run_dir / STATUS_FILE).is_file()]
    read = read_runs([run_dir / STATUS_FILE for run_dir in with_files])
    return {run_dir: item.run for run_dir, item in zip(with_files, read, strict=True)}


def _own_name(run: SweepRun, sweep_dir: Path, recorded: dict[Path, RecordedRun]) -> tuple[str, str]:
    """The directory name of a new run, and a note when its own name was taken.

    A directory of that name that records other values is another run: it is left as it is,
    and this run is named after its values plus a hash of them, so the next submission finds
    it again (by its values) and the results credit each directory with its own values.
    Stopping the whole sweep instead would leave the user nothing to do but rename
    directories by hand. A directory that records no values might be this very run: training
    it again could double it, so that is an error naming the directory.
    """
    from hpc_runner.control.sweep_runs import RUN_VALUES_FILE, SWEEP_FILE
    from hpc_runner.spec.sweep_names import conflict_name

    taken = sweep_dir / run.name
    if not os.path.lexists(taken):
        return run.name, ""
    other = recorded.get(taken)
    if other is None or other.identity is None:
        raise UsageError(
            f"{taken}: the name of a new run of the sweep ({values_text(run.values)}) is taken "
            f"by a directory with no record of its values (no {RUN_VALUES_FILE}, no entry in "
            f"{SWEEP_FILE}): move it away if it is not this run, then submit again"
        )
    name = conflict_name(run.name, run.identity)
    if os.path.lexists(sweep_dir / name):
        raise UsageError(
            f"{sweep_dir / name}: holds other values than {values_text(run.values)}: move it away"
        )
    differ = {key: value for key, value in other.values.items() if run.values.get(key) != value}
    mine = {key: value for key, value in run.values.items() if other.values.get(key) != value}
    note = (
        f"conflict: {run.name} is another run ({values_text(differ)}, by its {other.where}), "
        f"not this one ({values_text(mine)}): this run is {name}"
    )
    return name, note


def _renamed(run: SweepRun, spec: JobSpec, name: str) -> tuple[SweepRun, JobSpec]:
    """The run and its spec under the directory name it has (or gets) on disk."""
    if run.name == name:
        return run, spec
    return replace(run, name=name), replace(spec, name=name)


def retry_reason(phase: RunPhase) -> str | None:
    """Why ``--only-failed`` resubmits a run (CRASHED, CANCELLED, LOST), or None.

    A run that was stopped on purpose (``hpc-runner stop``) or is DONE is not failed; one whose
    job still waits or runs is left alone. The phase is the one every view shows.
    """
    if phase.phase in (Phase.CRASHED, Phase.CANCELLED, Phase.LOST):
        return phase.describe()
    return None
