"""Run control from the submitting machine: stop, cancel, resume, logs.

Each action first looks at the run's phase (:mod:`hpc_runner.control.phase`, with a fresh
scheduler answer) and acts only where it means something; otherwise it refuses with a message
and writes nothing (:class:`ActionRefused`, exit code 1). ``stop`` asks the training to end
gracefully (the ``STOP`` file). ``cancel`` ends every live job the run was ever submitted as
(``scancel``; or, for local and debug runs, the whole process tree, orphans included).
``resume`` submits the next attempt from the newest checkpoint, holding the run's lock
(:mod:`hpc_runner.control.run_lock`) from the decision to the new ``job.json``, so that two
``resume`` calls never make two jobs. ``logs`` are the run's own job files, per attempt.

Importing this module is cheap (standard library and the monitoring modules); submitit and the
spec machinery are imported only by :func:`resume_run`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hpc_runner.control.jobfile import JobFileError, JobRecord, read_job_file, write_job_file
from hpc_runner.control.local_process import end_processes, hostname, job_processes
from hpc_runner.control.phase import ACTIONS, Phase, RunPhase, derive_phase
from hpc_runner.control.run_lock import run_lock
from hpc_runner.control.scheduler import (
    SchedulerState,
    debug_status_file,
    live_jobs,
    not_exited,
    scheduler_states,
    submission_states,
)
from hpc_runner.errors import HpcRunnerError, UsageError
from hpc_runner.stream.files import same_file, write_new
from hpc_runner.stream.run_state import RunState, replay
from hpc_runner.stream.runs import (
    JOB_FILE,
    RUN_SPEC_FILE,
    STATUS_FILE,
    STOP_FILE,
    default_runs_dir,
    spelled_path,
)

if TYPE_CHECKING:
    from hpc_runner.control.submit import SubmittedRun
    from hpc_runner.spec.profiles import ClusterProfile


class ActionRefused(HpcRunnerError):
    """The action makes no sense in the run's phase; nothing was written (exit code 1)."""


def resolve_run(run: str, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """A run directory from a path, or from a name below the runs directory; names equal after
    Unicode normalisation are one name (:func:`~hpc_runner.stream.runs.spelled_path`).

    Raises
    ------
    UsageError
        Neither is a run directory (one holding ``run.yaml``, ``job.json`` or ``status.jsonl``),
        or two directories differ only in their Unicode spelling.
    """
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    for base in (Path(), root):
        candidate = spelled_path(base, run)
        if (
            candidate is not None
            and candidate.is_dir()
            and any((candidate / name).exists() for name in (RUN_SPEC_FILE, JOB_FILE, STATUS_FILE))
        ):
            return candidate.absolute()
    raise UsageError(
        f"{run}: no such run (give a run directory, or a run name below {root}; "
        "`hpc-runner status` lists them)"
    )


def job_record(run_dir: Path) -> JobRecord:
    """The run's ``job.json``, or an error saying why there is none."""
    try:
        record = read_job_file(run_dir)
    except JobFileError as error:
        raise HpcRunnerError(str(error)) from None
    if record is None:
        raise UsageError(f"{run_dir}: no {JOB_FILE} (this run was not submitted by hpc-runner)")
    return record


@dataclass(frozen=True)
class RunView:
    """A run as the status file, ``job.json`` and the scheduler show it together."""

    phase: RunPhase
    run: RunState
    job: JobRecord | None
    scheduler: SchedulerState | None


def view_run(run_dir: Path) -> RunView:
    """Replay the status file and ask the scheduler now (one query) for the run's phase."""
    try:
        job = read_job_file(run_dir)
    except JobFileError as error:
        raise HpcRunnerError(str(error)) from None
    run = replay(run_dir / STATUS_FILE)
    scheduler = scheduler_states({run_dir: job}).get(run_dir) if job else None
    return RunView(derive_phase(run, job, scheduler, now=time.time()), run, job, scheduler)


def refuse_unless(action: str, run_dir: Path, view: RunView) -> None:
    """Raise :class:`ActionRefused` with what to do instead, unless ``action`` fits the phase."""
    phase = view.phase.phase
    if phase in ACTIONS[action]:
        return
    name, shown = run_dir.name, view.phase.describe()
    if phase.live:
        advice = {
            "stop": "its job has not started training; `hpc-runner cancel` takes it off the queue",
            "resume": "its job is still alive; stop or cancel it first",
        }[action]
    elif phase is Phase.DONE:
        advice = "the training finished; there is nothing to " + action
    else:
        advice = "nothing runs any more"
        if action != "resume":
            advice += "; `hpc-runner resume` continues it"
    raise ActionRefused(f"{name} is {shown}: {advice}")


def stop_run(run_dir: Path) -> Path:
    """Ask the training to stop gracefully after the current batch (writes ``STOP``)."""
    refuse_unless("stop", run_dir, view_run(run_dir))
    stop = run_dir / STOP_FILE
    write_new(stop, f"stop requested at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    return stop


def cancel_run(run_dir: Path, *, wait_s: float = 15.0) -> str:
    """End every live job of the run through its scheduler; returns what was done."""
    with run_lock(run_dir):
        view = view_run(run_dir)
        refuse_unless("cancel", run_dir, view)
        record = job_record(run_dir)
        states = submission_states(run_dir, record)
        live = {
            (record.scheduler_of(submission), state.job_id)
            for submission, state in zip(record.submissions, states, strict=True)
            if not state.ended and state.state != "NOT_FOUND"
        }
        # (each job by its own scheduler: a local run resumed on SLURM has a pid and a job id)
        slurm = sorted(job_id for scheduler, job_id in live if scheduler == "slurm")
        local = {job_id for scheduler, job_id in live if scheduler != "slurm"}
        if not live and record.scheduler_of(record.current) == "slurm":
            slurm = [record.job_id]
        if slurm:
            _check_jobs_are_the_runs(run_dir, record, slurm)
        done = [_end_local(run_dir, record, local, wait_s)] if local or not slurm else []
        if slurm:
            done.append(_scancel(slurm))
        record.cancelled = time.time()
        write_job_file(run_dir, record)
    return "; ".join(done)


def _check_jobs_are_the_runs(run_dir: Path, record: JobRecord, job_ids: list[str]) -> None:
    """Refuse to cancel a job that writes its logs elsewhere than the run's submitit folder.

    ``job.json`` is a file in the run directory: a copied run directory names the original's
    job, and ``cancel`` of the copy cancelled the original's training (found by an adversarial
    review). A job SLURM no longer describes is not checked (there is nothing to cancel then).
    """
    from hpc_runner.control.slurm_query import job_output_folder

    folders = {s.job_id: record.folder(run_dir, s) for s in record.submissions}
    for job_id in job_ids:
        written = job_output_folder(job_id)
        folder = folders.get(job_id) or record.folder(run_dir)
        if written is not None and not same_file(written, folder):
            raise HpcRunnerError(
                f"{run_dir.name}: job {job_id} writes its logs to {written}, not to this run's "
                f"{folder} (a copied run directory?): not cancelled. Cancel it from its own run "
                "directory, or with scancel"
            )


def _scancel(job_ids: list[str]) -> str:
    if shutil.which("scancel") is None:
        raise HpcRunnerError("scancel is not on PATH: cancel from a machine with SLURM")
    answer = subprocess.run(["scancel", *job_ids], capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        raise HpcRunnerError(f"scancel {' '.join(job_ids)} failed: {answer.stderr.strip()}")
    return f"scancel {' '.join(job_ids)}"


def _end_local(run_dir: Path, record: JobRecord, live: set[str], wait_s: float) -> str:
    if record.host != hostname():
        raise HpcRunnerError(f"the run's processes run on {record.host}: cancel it there")
    tasks, others = [], []
    for submission in record.submissions:
        if submission.job_id in live and record.scheduler_of(submission) != "slurm":
            folder = record.folder(run_dir, submission)
            debug = debug_status_file(run_dir, submission)
            found = job_processes(folder, submission.job_id, submission.process, debug_status=debug)
            tasks += found[0]
            others += found[1]
    return end_processes(tasks, others, wait_s)


@dataclass(frozen=True)
class ResumePlan:
    """What ``resume`` would do: the next attempt, where from, and which setup lines run.

    Attributes
    ----------
    attempt : int
        The attempt number of the new job.
    checkpoint : str | None
        The newest checkpoint (absolute), or None: the training starts from the beginning.
    profile : ClusterProfile
        The recorded resources with the user's own profile's setup lines.
    ignored_setup : tuple of str
        Setup lines ``run.yaml`` asks for that the user's profile does not have: not run.
    """

    attempt: int
    checkpoint: str | None
    profile: ClusterProfile
    ignored_setup: tuple[str, ...] = ()

    def describe(self) -> list[str]:
        """What will happen, in lines for a confirmation or the command line."""
        source = (
            f"attempt {self.attempt} from {self.checkpoint}"
            if self.checkpoint
            else (f"attempt {self.attempt} from the start: no checkpoint")
        )
        lines = [source]
        if self.profile.setup:
            where = f" (profile {self.profile.name}: {self.profile.source})"
            lines.append("setup lines run before the job" + where + ":")
            lines += [f"  {line}" for line in self.profile.setup]
        if self.ignored_setup:
            lines.append("not run - setup lines in run.yaml that your profile does not have:")
            lines += [f"  {line}" for line in self.ignored_setup]
        return lines


def plan_resume(run_dir: Path, view: RunView | None = None) -> ResumePlan:
    """What resuming the run would do, or :class:`ActionRefused` if it may not be resumed."""
    from hpc_runner.control.submit import trusted_profile
    from hpc_runner.spec.errors import SpecError
    from hpc_runner.spec.job import load_run_spec
    from hpc_runner.stream.runs import latest_checkpoint

    view = view or view_run(run_dir)
    refuse_unless("resume", run_dir, view)
    record = view.job
    if record is not None:
        alive = live_jobs({run_dir: record})[run_dir]
        if alive:
            raise ActionRefused(
                f"{run_dir.name} is {view.phase.describe()}, but {not_exited(alive)}: "
                "resume it once the job has ended (`hpc-runner cancel` ends it)"
            )
    try:
        recorded = load_run_spec(run_dir).profile
    except SpecError as error:
        raise HpcRunnerError(str(error)) from None
    profile = trusted_profile(recorded)
    attempts = [submission.attempt for submission in record.submissions] if record else []
    checkpoint = latest_checkpoint(run_dir)
    return ResumePlan(
        attempt=max([view.run.attempt, *attempts]) + 1,
        checkpoint=str(Path(checkpoint).absolute()) if checkpoint else None,
        profile=profile,
        ignored_setup=tuple(line for line in recorded.setup if line not in profile.setup),
    )


def resume_run(run_dir: Path, *, cluster: str | None = None) -> tuple[ResumePlan, SubmittedRun]:
    """Submit the run's next attempt from its newest checkpoint; returns the plan and the job.

    The decision and the submission happen under the run's lock, so a second ``resume`` (or
    one racing a fresh submission) sees the new job and is refused. A ``debug`` job trains
    in this process: as after :func:`~hpc_runner.control.submit.submit_specs`, the caller runs
    it with :func:`~hpc_runner.control.submit.run_debug`, after saying what it resumes.

    Raises
    ------
    ActionRefused
        A job of the run is still alive (any of its submissions), or the training is DONE.
    """
    from hpc_runner.control.submit import resubmit

    with run_lock(run_dir):
        plan = plan_resume(run_dir)
        submitted = resubmit(
            run_dir,
            attempt=plan.attempt,
            checkpoint=plan.checkpoint,
            profile=plan.profile,
            cluster=cluster,
        )
    return plan, submitted


def log_files(run_dir: Path, attempt: int | None = None, run: RunState | None = None) -> list[Path]:
    """The run's own stdout and stderr files for ``attempt`` (default: the newest) that exist.

    Only the job (or array task) that ran that attempt: never another run's files, even in a
    sweep's shared submitit folder. Requeued attempts of one job share its files (appended),
    so an attempt beyond the last submission is one only if the status file (``run``, else
    read here) has seen it: ``--attempt 9`` of a run that made two showed the second's logs.
    """
    record = job_record(run_dir)
    submission = record.current
    if attempt is not None:
        earlier = [s for s in record.submissions if s.attempt <= attempt]
        if not earlier:
            first = record.submissions[0].attempt
            raise UsageError(f"{run_dir.name}: no attempt {attempt} (the first is {first})")
        if attempt > submission.attempt:
            newest = max(submission.attempt, _status(run_dir, run).attempt)
            if attempt > newest:
                raise UsageError(f"{run_dir.name}: no attempt {attempt} (the newest is {newest})")
        submission = earlier[-1]
    folder = record.folder(run_dir, submission)
    names = [f"{submission.job_id}_0_log.out", f"{submission.job_id}_0_log.err"]
    return [folder / name for name in names if (folder / name).is_file()]


def _status(run_dir: Path, run: RunState | None) -> RunState:
    """``run``, or the run's status file read (through the reader cache)."""
    if run is not None:
        return run
    from hpc_runner.stream.run_reader import read_runs

    (read,) = read_runs([run_dir / STATUS_FILE])
    return read.run


#: Attempts listed at most: the newest ones (requeues of one job share its logs). A status
#: file claiming attempt 10**12 made the logs screen build a list of that many, without end.
MAX_ATTEMPTS_LISTED = 1000


def attempts(run_dir: Path, run: RunState | None = None) -> list[tuple[int, str]]:
    """``(attempt, job id)`` of every attempt the run made or was submitted for, oldest first
    (the newest :data:`MAX_ATTEMPTS_LISTED`, and every submission)."""
    record = job_record(run_dir)
    highest = max(run.attempt if run is not None else 0, record.current.attempt)
    first = record.submissions[0].attempt
    numbers = {s.attempt for s in record.submissions}
    numbers.update(range(max(first, highest - MAX_ATTEMPTS_LISTED + 1), highest + 1))
    result = []
    for number in sorted(numbers):
        earlier = [s for s in record.submissions if s.attempt <= number]
        result.append((number, earlier[-1].job_id))
    return result
