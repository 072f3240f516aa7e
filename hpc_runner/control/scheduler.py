"""What the scheduler says about the runs' jobs: SLURM, local processes, and how often to ask.

A status file cannot report its own training's death: a job killed for memory, cancelled, or
lost with its node stops writing and its file says TRAINING forever. The scheduler knows.
:func:`scheduler_states` asks about every run's current job at once - one batched SLURM query
(:mod:`hpc_runner.control.slurm_query`), local and debug jobs through the processes their
``<job id>_processes.json`` names (:mod:`hpc_runner.stream.processes`: plain JSON, never a
pickle) - and :mod:`hpc_runner.control.phase` turns file and answer into what the user sees.

A job submitted moments ago is not listed by ``sacct`` yet: it counts as ``SUBMITTED`` (alive)
until the scheduler has answered for it or :data:`SUBMIT_GRACE_S` has passed, so that nothing
takes a fresh job for a dead one and submits a second.

Monitoring side: standard library and msgspec only, no torch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from hpc_runner.control.jobfile import JobFileError, JobRecord, Submission, read_job_file
from hpc_runner.control.local_process import hostname, is_controller, runs_job
from hpc_runner.control.slurm_query import (
    ENDED_STATES,
    Runner,
    SchedulerState,
    query_slurm,
    run_command,
    slurm_available,
)
from hpc_runner.stream.processes import identify_path, read_processes
from hpc_runner.stream.runs import JOB_FILE, STATUS_FILE

__all__ = [
    "ENDED_STATES",
    "SUBMIT_GRACE_S",
    "SchedulerPoller",
    "SchedulerState",
    "job_records",
    "local_state",
    "not_exited",
    "scheduler_states",
    "submission_states",
]

#: How long a submitted SLURM job that no command lists yet still counts as alive (seconds).
#: ``sacct`` listed fresh jobs 0.2-0.9 s after ``sbatch`` on the test cluster and ``squeue`` at
#: once; a minute covers a busy ``slurmdbd`` without leaving a vanished job alive for long.
SUBMIT_GRACE_S = 60.0


# -- local and debug processes ---------------------------------------------------------------


def debug_status_file(run_dir: Path, submission: Submission) -> Path | None:
    """For a ``debug`` job, the status file its process holds open while it trains (how
    :func:`~hpc_runner.control.local_process.runs_job` knows it); None for other jobs."""
    return run_dir / STATUS_FILE if submission.debug else None


def copied_state(run_dir: Path, job: JobRecord, submission: Submission) -> SchedulerState | None:
    """``NOT_FOUND`` for a job submitted for another directory than ``run_dir``, else None.

    ``job.json`` is a file in the run directory: ``cp -a`` of a run copies it, and the copy
    names the original's job. Inside a sweep the copy even shares the original's submitit
    folder, so neither the processes' command lines nor SLURM's log folder tell them apart:
    ``cancel`` of a backup copy ended the original's training. A submission records its run
    directory's identity (device, inode; a rename keeps it, a copy does not), and a job is
    never this run's when the directory is another (job.json of older versions records none).
    Another host may number the devices of a shared filesystem otherwise (a SLURM run submitted
    on one login node, cancelled on another): there the inode alone decides.
    """
    recorded, found = submission.directory, identify_path(run_dir)
    if recorded is None or found is None or found == recorded:
        return None
    if job.host != hostname() and found.inode == recorded.inode:
        return None
    return SchedulerState(
        submission.job_id,
        "NOT_FOUND",
        f"job {submission.job_id} was submitted for another directory (this one is a copy)",
    )


def local_state(
    run_dir: Path, job: JobRecord, submission: Submission | None = None
) -> SchedulerState:
    """A local or debug job's state from its processes (alive, orphaned, or how they ended).

    A copy of the run directory is told apart before (:func:`copied_state`, in :func:`_ask`,
    which every query goes through)."""
    submission = submission or job.current
    job_id = submission.job_id
    if job.host != hostname():
        return SchedulerState(job_id, "UNKNOWN", f"a local process on {job.host}")
    folder = job.folder(run_dir, submission)
    debug = debug_status_file(run_dir, submission)
    record = read_processes(folder, job_id)
    started = record.started if record is not None else None
    if record is not None and record.exit_codes and None not in record.exit_codes:
        # every task ended and said how; the process may live on (a debug run's `submit`)
        return _ended(job, submission, record.exit_codes, started)
    if submission.process is not None:
        heads = [submission.process, record.controller if record else None]
        controller = any(runs_job(head, folder, debug_status=debug) for head in heads if head)
    else:  # job.json of an older hpc-runner: the pid alone, checked against its command line
        controller = submission.job_id.isdigit() and is_controller(int(submission.job_id))
    if controller:
        return SchedulerState(job_id, "RUNNING", started=started)
    tasks = record.tasks if record else []
    orphans = [task.pid for task in tasks if runs_job(task, folder, debug_status=debug)]
    if orphans:
        pids = ", ".join(map(str, orphans))
        return SchedulerState(
            job_id, "RUNNING", f"its controller is gone; process {pids} still trains", None, started
        )
    return _ended(job, submission, (record.exit_codes or []) if record else [], started)


def _ended(
    job: JobRecord, submission: Submission, exit_codes: list[int | None], started: float | None
) -> SchedulerState:
    """How a local job that runs no more ended: cancelled, its exit codes, or unknown."""
    job_id = submission.job_id
    if job.cancelled is not None and submission is job.current:
        return SchedulerState(job_id, "CANCELLED", "by hpc-runner cancel", started=started)
    codes = [code for code in exit_codes if code is not None]
    if not codes:
        return SchedulerState(job_id, "FAILED", "its processes ended without reporting how")
    failed = [code for code in codes if code != 0]
    if failed:
        return SchedulerState(job_id, "FAILED", None, str(failed[0]), started)
    return SchedulerState(job_id, "COMPLETED", started=started)


# -- SLURM -----------------------------------------------------------------------------------


def _slurm_answer(
    submission: Submission, answers: Mapping[str, SchedulerState] | None, job: JobRecord, now: float
) -> SchedulerState:
    job_id = submission.job_id
    if answers is None:
        why = "the scheduler did not answer" if slurm_available() else "no SLURM commands here"
        return SchedulerState(job_id, "UNKNOWN", why)
    if job_id in answers:
        return answers[job_id]
    if job.cancelled is not None and submission is job.current:
        # An array task cancelled while still pending in the array's unsplit part leaves no
        # accounting record (SLURM 22.05): only job.json remembers the cancel.
        return SchedulerState(job_id, "CANCELLED", "before it started; SLURM kept no record")
    if now - submission.submitted < SUBMIT_GRACE_S:
        return SchedulerState(job_id, "SUBMITTED")
    return SchedulerState(job_id, "NOT_FOUND")


# -- all runs at once --------------------------------------------------------------------------


def job_records(run_dirs: Iterable[Path]) -> dict[Path, JobRecord | None]:
    """Each run's ``job.json`` (None where there is none or it cannot be read: monitoring goes on
    with the status file alone, and :func:`scheduler_states` says why for an unreadable one)."""
    records: dict[Path, JobRecord | None] = {}
    for run_dir in run_dirs:
        try:
            records[run_dir] = read_job_file(run_dir)
        except JobFileError:
            records[run_dir] = None
    return records


def scheduler_states(
    jobs: Mapping[Path, JobRecord | None], *, run: Runner = run_command
) -> dict[Path, SchedulerState | None]:
    """The scheduler state of every run's current job: one SLURM query for all of them. A run
    without a usable ``job.json`` gets None, or :func:`unusable_job_file`'s answer."""
    answers = _ask({run_dir: [job.current] for run_dir, job in jobs.items() if job}, jobs, run)
    return {
        run_dir: answers[run_dir][0]
        if job is not None and answers.get(run_dir)
        else unusable_job_file(run_dir)
        for run_dir, job in jobs.items()
    }


def live_jobs(
    jobs: Mapping[Path, JobRecord], *, run: Runner = run_command
) -> dict[Path, list[SchedulerState]]:
    """The jobs of each run that have not exited yet or may not have, of all its submissions
    (one SLURM query for all runs): a run is submitted again (``resume``, ``sweep
    --only-failed``) only when none is left. Its status file may say CRASHED or CANCELLED while
    the job still ends (``scancel`` sent, a node slow to kill it), or an older submission's job
    may still run. A SLURM job SLURM did not answer about (UNKNOWN) counts: it may well run, and
    SLURM answers again in a moment. A job the scheduler does not know does not, nor a local
    process of another host, which nobody here can ask about (its status file is all there is).
    """
    answers = _ask({run_dir: list(job.submissions) for run_dir, job in jobs.items()}, jobs, run)
    return {
        run_dir: [
            state
            for submission, state in zip(jobs[run_dir].submissions, states, strict=True)
            if _may_run(state, jobs[run_dir].scheduler_of(submission))
        ]
        for run_dir, states in answers.items()
    }


def _may_run(state: SchedulerState, scheduler: str) -> bool:
    if state.state == "UNKNOWN":
        return scheduler == "slurm"
    return not state.ended and state.state != "NOT_FOUND"


def not_exited(states: Iterable[SchedulerState]) -> str:
    """Why a run is not submitted again (:func:`live_jobs`' jobs), for a message:
    ``job 123 (RUNNING), 124 (PENDING) has not exited yet`` and, for jobs SLURM did not answer
    about, ``SLURM did not say whether job 125 has exited (the scheduler did not answer)``."""
    states = list(states)
    known = [state for state in states if state.state != "UNKNOWN"]
    unknown = [state for state in states if state.state == "UNKNOWN"]
    parts = []
    if known:
        named = ", ".join(f"{state.job_id} ({state.describe()})" for state in known)
        parts.append(f"job {named} has not exited yet")
    if unknown:
        ids = ", ".join(state.job_id for state in unknown)
        reasons = "; ".join(dict.fromkeys(state.reason or "no answer" for state in unknown))
        parts.append(f"SLURM did not say whether job {ids} has exited ({reasons})")
    return "; ".join(parts)


def unusable_job_file(run_dir: Path) -> SchedulerState | None:
    """``UNKNOWN``, saying why, for a run whose ``job.json`` is there but cannot be used (corrupt,
    planted, a FIFO); None when there is none or it reads. Nobody can be asked about a job no
    file names, so every view decides from the status file alone and says so in the reason,
    rather than showing a dead run's last TRAINING record as the truth."""
    if not os.path.lexists(Path(run_dir) / JOB_FILE):
        return None
    try:
        read_job_file(run_dir)
    except JobFileError as error:
        return SchedulerState("-", "UNKNOWN", f"its job cannot be asked about: {error}")
    return None


def submission_states(
    run_dir: Path, job: JobRecord, *, run: Runner = run_command
) -> list[SchedulerState]:
    """The state of every job the run was ever submitted as (``cancel`` ends each live one)."""
    return _ask({run_dir: list(job.submissions)}, {run_dir: job}, run).get(run_dir, [])


def _ask(
    wanted: Mapping[Path, list[Submission]], jobs: Mapping[Path, JobRecord | None], run: Runner
) -> dict[Path, list[SchedulerState]]:
    now = time.time()
    slurm_ids = [
        submission.job_id
        for run_dir, submissions in wanted.items()
        if (job := jobs[run_dir]) is not None
        for submission in submissions
        if job.scheduler_of(submission) == "slurm"
    ]
    answers: dict[str, SchedulerState] | None = {}
    if slurm_ids:
        answers = query_slurm(slurm_ids, run=run) if slurm_available() else None
    result: dict[Path, list[SchedulerState]] = {}
    for run_dir, submissions in wanted.items():
        job = jobs[run_dir]
        assert job is not None  # only runs with a job.json are asked about
        result[run_dir] = [
            replace(
                copied_state(run_dir, job, submission)
                or (
                    _slurm_answer(submission, answers, job, now)
                    if job.scheduler_of(submission) == "slurm"
                    else local_state(run_dir, job, submission)
                ),
                asked=now,
            )
            for submission in submissions
        ]
    return result


class SchedulerPoller:
    """Scheduler states for a long-lived monitor (the TUI, ``submit --watch``), asked politely.

    One batched query for every run at most every ``min_interval_s``; when an answer changes
    nothing, the interval doubles up to ``max_interval_s`` (a quiet sweep does not need the
    controller every 10 s), and any change brings it back. :meth:`states` with ``force`` asks
    at once about the given runs only - after an action, or when the user asks (``g``).
    Answers are kept per run *and job*: a resumed run's new job never shows its old job's state.
    A job that ended is asked about again only every ``max_interval_s`` and when forced: SLURM
    can requeue it (``scontrol requeue``, a node failure with requeueing on) under the same id.
    """

    def __init__(
        self,
        min_interval_s: float = 10.0,
        *,
        max_interval_s: float = 120.0,
        run: Runner = run_command,
    ) -> None:
        self.min_interval_s = min_interval_s
        self.max_interval_s = max(max_interval_s, min_interval_s)
        self.interval_s = min_interval_s
        self._run = run
        self._cache: dict[tuple[Path, str], SchedulerState | None] = {}
        self._last_query = float("-inf")
        self.queries = 0

    def states(
        self, jobs: Mapping[Path, JobRecord | None], *, force: bool = False
    ) -> dict[Path, SchedulerState | None]:
        now = time.monotonic()
        asked_before = time.time() - self.max_interval_s
        keys = {run_dir: (run_dir, job.job_id) for run_dir, job in jobs.items() if job}
        unknown = [key for key in keys.values() if key not in self._cache]
        due = now - self._last_query >= self.interval_s
        if force or due or unknown:
            ask = {
                run_dir: job
                for run_dir, job in jobs.items()
                if job is not None
                and (force or due or keys[run_dir] in unknown)
                and (force or not self._ended(keys[run_dir], asked_before))
            }
            if ask:
                fresh = scheduler_states(ask, run=self._run)
                self.queries += 1
                changed = any(self._cache.get(keys[d]) != state for d, state in fresh.items())
                for run_dir, state in fresh.items():
                    self._cache[keys[run_dir]] = state
                if due and not force:
                    self._last_query = now
                    self.interval_s = (
                        self.min_interval_s
                        if changed
                        else min(self.interval_s * 2, self.max_interval_s)
                    )
        return {
            run_dir: self._cache.get(keys[run_dir]) if job else unusable_job_file(run_dir)
            for run_dir, job in jobs.items()
        }

    def _ended(self, key: tuple[Path, str], asked_before: float) -> bool:
        """The job ended, as an answer newer than ``asked_before`` (Unix time) says."""
        state = self._cache.get(key)
        return state is not None and state.ended and (state.asked or 0.0) > asked_before
