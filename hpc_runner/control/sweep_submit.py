"""Submitting a sweep: the planned runs as one job array (submitting side).

A sweep lives in ``<runs dir>/<sweep name>/``: one run directory per run (shared/DESIGN.md),
each with ``sweep_run.json``, the values it was made with (:mod:`hpc_runner.control.sweep_runs`);
the job array's submitit folder ``submitit/``; and ``sweep.yaml``, the sweep as submitted.

:func:`~hpc_runner.control.sweep_plan.plan_sweep` decides per run (new, retry, skip);
:func:`submit_plan` then writes the new run directories and submits every picked run as one
submitit batch - one SLURM job array, throttled to the sweep's ``array_parallelism``
(``--array=0-N%P``). A retried run continues as its next attempt: from its newest checkpoint
when it has one (as ``hpc-runner resume`` does), else from the start with the sweep's current
``run.yaml``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hpc_runner.control.held_interrupts import interrupts_held
from hpc_runner.control.jobfile import JobFileError, JobRecord, read_job_file, write_job_file
from hpc_runner.control.run_lock import run_lock
from hpc_runner.control.sweep_plan import PlannedRun, plan_sweep, retry_reason
from hpc_runner.control.sweep_runs import (
    RUN_VALUES_FILE,
    SWEEP_FILE,
    read_sweep_file,
    sweep_file_path,
    write_run_values,
    write_sweep_file,
)
from hpc_runner.errors import HpcRunnerError
from hpc_runner.stream.files import reason_of, replace_file
from hpc_runner.stream.runs import RUN_SPEC_FILE, STOP_FILE, SUBMITIT_DIR

if TYPE_CHECKING:
    from hpc_runner.control.submit import SubmittedRun
    from hpc_runner.spec.sweep import SweepRun, SweepSpec

__all__ = [
    "SWEEP_FILE",
    "PlannedRun",
    "plan_sweep",
    "read_sweep_file",
    "retry_reason",
    "submit_plan",
    "write_sweep_file",
]


def submit_plan(
    plan: list[PlannedRun], sweep: SweepSpec, sweep_dir: Path, *, cluster: str = "auto"
) -> list[SubmittedRun]:
    """Submit every ``new`` and ``retry`` run of the plan as one batch (one SLURM job array),
    after recording the sweep and its runs' values in ``sweep.yaml``.

    New run directories are removed again if the submission fails. Retried runs are locked
    (:mod:`~hpc_runner.control.run_lock`, as ``resume`` does) from the check that their job is
    still the one planned on until their new ``job.json`` is written: two ``--only-failed``
    started together each submitted a job for one run, and both trained into its files.

    Raises
    ------
    HpcRunnerError
        The scheduler refused the job array (its message is passed on), or a retried run was
        submitted by another command meanwhile.
    """
    from hpc_runner.control.submit import choose_cluster

    todo = [item for item in plan if item.action != "skip"]
    if not todo:
        return []
    scheduler = choose_cluster(cluster)
    with contextlib.ExitStack() as locks:
        for run_dir in sorted(item.run_dir.absolute() for item in todo if item.action == "retry"):
            locks.enter_context(run_lock(run_dir))  # (in one order: two sweeps never deadlock)
        with interrupts_held(scheduler != "debug"):  # (until job.json names the jobs)
            # (a run found by its settings keeps the values it records: it stays that run)
            runs = [item.run for item in plan if not item.by_settings]
            return _submit_locked(todo, runs, sweep, sweep_dir, scheduler)


def _submit_locked(
    todo: list[PlannedRun],
    runs: list[SweepRun],
    sweep: SweepSpec,
    sweep_dir: Path,
    scheduler: str,
) -> list[SubmittedRun]:
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    from hpc_runner.control.submit import (
        SubmittedRun,
        add_submission,
        make_executor,
        prepare_run,
        quiet_submission,
    )
    from hpc_runner.node.job import NodeJob
    from hpc_runner.spec.job import dump_run_spec

    folder = sweep_dir.absolute() / SUBMITIT_DIR
    created: list[Path] = []
    items: list[tuple[Path, PlannedRun]] = []
    rewritten, before = False, None  # whether this submission rewrote sweep.yaml; what it was
    try:
        for item in todo:
            if item.action == "new":
                run_dir = prepare_run(item.spec, sweep_dir)
                created.append(run_dir)
                if run_dir.name != item.run.name:  # another submission made it meanwhile
                    raise HpcRunnerError(f"{item.run_dir} appeared during the submission: retry")
                _record_values(run_dir, item.run, sweep)  # before its job exists
            else:
                run_dir = item.run_dir.absolute()
                if _current_job(run_dir) != item.job_id:
                    raise HpcRunnerError(
                        f"{item.run_dir}: another command submitted it meanwhile: run the sweep "
                        "again to see what is left"
                    )
                (run_dir / STOP_FILE).unlink(missing_ok=True)
                if item.checkpoint is None:  # starts over: with the sweep as it is now
                    # (replaced, never written through: a link planted there points elsewhere)
                    replace_file(run_dir / RUN_SPEC_FILE, dump_run_spec(item.spec).encode())
                if not item.by_settings and not (run_dir / RUN_VALUES_FILE).exists():
                    # (a run of an older hpc-runner)
                    _record_values(run_dir, item.run, sweep)
            items.append((run_dir, item))
        before = _record_sweep(sweep, sweep_dir, runs)  # before any job exists
        rewritten = True
        executor = make_executor(scheduler, folder, todo[0].spec.profile, sweep.name)
        if scheduler == "slurm" and sweep.array_parallelism:
            executor.update_parameters(slurm_array_parallelism=sweep.array_parallelism)
        with quiet_submission(), executor.batch():
            jobs = [
                executor.submit(NodeJob(str(run_dir), item.attempt, item.checkpoint))
                for run_dir, item in items
            ]
    except (FailedJobError, FailedSubmissionError, subprocess.CalledProcessError, OSError) as exc:
        # (FailedJobError carries sbatch's stderr: "sbatch: error: invalid partition ...")
        _remove(created)
        if rewritten:
            _restore_sweep_file(sweep_dir, before)
        raise HpcRunnerError(f"the {scheduler} submission failed: {_message(exc)}") from None
    except BaseException:
        _remove(created)
        if rewritten:
            _restore_sweep_file(sweep_dir, before)
        raise
    submitted = []
    for (run_dir, item), job in zip(items, jobs, strict=True):
        record = _job_record(run_dir, scheduler)
        record.submitit_folder = os.path.relpath(folder, run_dir)
        how = "submit" if item.action == "new" else "resume"
        job_id = str(job.job_id)
        add_submission(record, run_dir, scheduler, item.attempt, job_id, how)
        write_job_file(run_dir, record)
        submitted.append(SubmittedRun(run_dir, scheduler, job_id, job))
    return submitted


def _record_values(run_dir: Path, run: SweepRun, sweep: SweepSpec) -> None:
    """The run's own record of the values it is made with (``sweep_run.json``)."""
    write_run_values(
        run_dir,
        sweep=sweep.name,
        sweep_file=sweep_file_path(sweep),
        overrides=run.overrides,
        values=run.values or run.overrides,
    )


def _record_sweep(sweep: SweepSpec, sweep_dir: Path, runs: list[SweepRun]) -> bytes | None:
    """Write ``sweep.yaml`` before any job exists: written after, one that could not be
    written (a directory of that name) made the command report a failure while its jobs ran.
    Returns what the file held before (None: there was none), to put back if the
    submission fails."""
    path = sweep_dir / SWEEP_FILE
    try:
        before = path.read_bytes() if path.is_file() else None
        write_sweep_file(sweep, sweep_dir, runs)
    except OSError as error:
        raise HpcRunnerError(
            f"cannot record the sweep in {path}: {reason_of(error)} (nothing was submitted)"
        ) from None
    return before


def _restore_sweep_file(sweep_dir: Path, before: bytes | None) -> None:
    """``sweep.yaml`` as it was before a submission that failed and had rewritten it
    (``before``: what :func:`_record_sweep` returned, None where there was none)."""
    path = sweep_dir / SWEEP_FILE
    with contextlib.suppress(OSError):
        if before is None:  # there was none
            path.unlink()
        else:
            replace_file(path, before)


def _remove(run_dirs: list[Path]) -> None:
    for run_dir in run_dirs:
        shutil.rmtree(run_dir, ignore_errors=True)


def _message(exc: BaseException) -> str:
    """The scheduler's own words: the last line of its output, else the exception."""
    output = getattr(exc, "output", None) or getattr(exc, "stderr", None) or str(exc)
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    lines = str(output).strip().splitlines()
    return lines[-1] if lines else repr(exc)


def _current_job(run_dir: Path) -> str | None:
    """The job ``job.json`` names now (None: none, or unreadable, as the plan saw it)."""
    from hpc_runner.control.scheduler import job_records

    record = job_records([run_dir])[run_dir]
    return record.job_id if record is not None else None


def _job_record(run_dir: Path, scheduler: str) -> JobRecord:
    try:
        record = read_job_file(run_dir)
    except JobFileError:
        record = None  # unreadable: the new submission starts a fresh record
    if record is None:
        record = JobRecord(scheduler=scheduler, submissions=[])
    record.scheduler = scheduler
    record.python = sys.executable
    return record
