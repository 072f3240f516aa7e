"""What the scheduler says about every run's job, asked now and then on a thread of its own.

A status file cannot report its own training's death (a job killed for memory, or cancelled, stops
writing and its file says TRAINING forever); the scheduler knows. The questions are the submission
side's (:class:`hpc_runner.control.scheduler.SchedulerPoller`: one batched ``sacct`` for all SLURM
jobs, rate-limited, local runs through their controller pid); this thread only decides when to ask,
and hands the answers to the UI. It has its own thread because ``sacct`` on a busy cluster can take
seconds, and record reading must not wait for it.

How often: the thread looks at the runs' ``job.json`` every ``interval`` seconds (a resume
from another terminal shows up), but the poller decides whether the scheduler is asked - one
batched query for the whole table at most every ``min_interval_s``, less often while nothing
changes. :meth:`SchedulerWatcher.ask_now` asks at once (``g``, and after an action on a run).
Every fresh answer is delivered, unchanged or not: its time is shown as the answer's age.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from hpc_runner.control.jobfile import JobFileError, JobRecord, read_job_file
from hpc_runner.control.scheduler import SchedulerPoller, SchedulerState
from hpc_runner.stream.runs import JOB_FILE


@dataclass(frozen=True)
class JobView:
    """One run's ``job.json`` and what the scheduler says about its current job (None: nobody
    to ask)."""

    job: JobRecord | None
    scheduler: SchedulerState | None

    @property
    def job_id(self) -> str | None:
        return self.job.job_id if self.job is not None else None


def _identity(view: JobView | None) -> tuple[object, ...] | None:
    """What makes a view different for the user: ``SchedulerState`` equality leaves out the
    start time (it moves the phase from STARTING to TRAINING) and the time of the answer."""
    if view is None:
        return None
    state = view.scheduler
    return (view, state.started if state else None, state.asked if state else None)


class SchedulerWatcher:
    """Every ``interval`` seconds, the scheduler state of each run's job, delivered if changed.

    Parameters
    ----------
    runs : callable
        Returns the run directories to ask about (called on this thread: must be thread-safe).
    deliver : callable
        Called on this thread with ``{run_dir: JobView}`` for the runs whose view changed.
    interval : float
        Seconds between two looks at the runs' ``job.json``. The poller asks the scheduler at
        most every ``poller.interval_s`` (its back-off; runs seen for the first time, and those
        of :meth:`ask_now`, are asked about at once).
    poller : SchedulerPoller | None
        The submission side's poller (a test may give one with a fake command runner).
    """

    def __init__(
        self,
        runs: Callable[[], list[Path]],
        deliver: Callable[[dict[Path, JobView]], object],
        *,
        interval: float = 10.0,
        poller: SchedulerPoller | None = None,
    ) -> None:
        self._runs = runs
        self._deliver = deliver
        self.interval = interval
        self.poller = poller or SchedulerPoller()
        self._lock = threading.Lock()
        self._force_all = False
        self._forced: set[Path] = set()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._records: dict[Path, tuple[tuple[int, int] | None, JobRecord | None]] = {}
        self._shown: dict[Path, JobView] = {}

    def start(self) -> None:
        """Start asking in a daemon thread (the first look is at once)."""
        self._thread = threading.Thread(target=self._loop, name="hpc-runner-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (a scheduler command under way may finish first)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def check_soon(self) -> None:
        """Look again now (new runs appeared): the poller still decides whom to ask."""
        self._wake.set()

    def ask_now(self, run_dirs: Iterable[Path] | None = None) -> None:
        """Ask the scheduler at once about these runs (None: every run), whatever the poller's
        interval: the user asked (``g``), or an action just changed the run's job."""
        with self._lock:
            if run_dirs is None:
                self._force_all = True
            else:
                self._forced.update(run_dirs)
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            self.check()
            self._wake.wait(self.interval)

    def check(self) -> dict[Path, JobView]:
        """Ask once (on the calling thread) and deliver what changed; returns the changes.

        A view counts as changed when the job record, the answer, the job's start time or the
        time of the answer differ: a fresh identical answer still renews the age shown.
        """
        with self._lock:
            force_all, forced = self._force_all, self._forced
            self._force_all, self._forced = False, set()
        jobs = {run_dir: self._job_record(run_dir) for run_dir in self._runs()}
        for gone in set(self._records) - set(jobs):
            del self._records[gone]
            self._shown.pop(gone, None)
        if force_all:
            states = self.poller.states(jobs, force=True)
        else:
            if asked := {run_dir: jobs[run_dir] for run_dir in forced if jobs.get(run_dir)}:
                self.poller.states(asked, force=True)
            states = self.poller.states(jobs)
        changed = {}
        for run_dir, job in jobs.items():
            view = JobView(job, states.get(run_dir))
            if _identity(self._shown.get(run_dir)) != _identity(view):
                self._shown[run_dir] = changed[run_dir] = view
        if changed and not self._stopping.is_set():
            self._deliver(changed)
        return changed

    def _job_record(self, run_dir: Path) -> JobRecord | None:
        """``job.json``, re-read only when it changed (a stat per run instead of a read)."""
        try:
            stat = os.stat(run_dir / JOB_FILE)
            identity: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            identity = None
        cached = self._records.get(run_dir)
        if cached is not None and cached[0] == identity:
            return cached[1]
        record = None
        if identity is not None:
            try:
                record = read_job_file(run_dir)
            except JobFileError:
                record = None  # the detail view reports why; the status file still tells a lot
        self._records[run_dir] = (identity, record)
        return record
