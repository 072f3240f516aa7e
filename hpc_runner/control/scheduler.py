"""What the scheduler says about runs' jobs, and how that amends what their status files say.

A status file cannot report its own training's death: a job killed for memory, cancelled, or
lost with its node stops writing and its file says TRAINING forever. The scheduler knows. This
module asks it - one batched ``sacct`` call for every SLURM job of every run (plus one ``squeue``
call for the reasons of pending jobs, which ``sacct`` does not keep), falling back to ``squeue`` and
``scontrol`` where accounting is off - and :func:`reconcile` combines the two views.
Local runs are checked through the controller pid recorded in ``job.json``.

Monitoring side: standard library only, no torch; nothing here runs a command unless there is a
SLURM job to ask about and the command is on PATH.
"""

from __future__ import annotations

import pickle
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hpc_runner.control.jobfile import JobFileError, JobRecord, read_job_file
from hpc_runner.control.local_process import hostname, is_controller
from hpc_runner.stream.status import TrainingState

#: SLURM states after which the job will not run again (without a new submission).
ENDED_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "REVOKED",
        "SPECIAL_EXIT",
    }
)
# PREEMPTED is not final: with requeueing (what hpc_runner's node entry does) the job comes back.

#: How long one scheduler command may take before the answer is given up (status must not hang).
COMMAND_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class SchedulerState:
    """The scheduler's view of one job.

    Attributes
    ----------
    job_id : str
        The job asked about.
    state : str
        SLURM state name (``PENDING``, ``RUNNING``, ``COMPLETED``, ``CANCELLED``, ...); local runs
        use ``RUNNING``, ``COMPLETED``, ``FAILED``, ``CANCELLED``; ``UNKNOWN`` where nobody knows.
    reason : str | None
        Why it pends, who cancelled it, or how it failed.
    exit_code : str | None
        SLURM ``exit:signal`` (``0:0``) or a local exit status.
    """

    job_id: str
    state: str
    reason: str | None = None
    exit_code: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    def describe(self) -> str:
        """``PENDING (Priority)``, ``CANCELLED (by 0)``, ``RUNNING``: for tables and messages."""
        return f"{self.state} ({self.reason})" if self.reason else self.state


def reconcile(
    state: TrainingState, scheduler: SchedulerState | None
) -> tuple[TrainingState, str | None]:
    """Combine the state a status file reached with the scheduler's view of its job.

    The file is trusted whenever it reached a final state (DONE, STOPPED, CRASHED): the node wrote
    it, knowing more than the scheduler. Only a file still saying IDLE or TRAINING about a job that
    has ended is amended: a cancelled job is STOPPED, any other ended job CRASHED.

    Returns
    -------
    (TrainingState, str | None)
        The state to show and, where it was amended, why.
    """
    if scheduler is None or not scheduler.ended:
        return state, None
    if state not in (TrainingState.IDLE, TrainingState.TRAINING):
        return state, None
    job = f"job {scheduler.job_id}"
    if scheduler.state == "CANCELLED":
        return TrainingState.STOPPED, f"{job} was cancelled{_detail(scheduler)}"
    if scheduler.state == "COMPLETED":
        return TrainingState.CRASHED, f"{job} ended without its training recording a final state"
    return TrainingState.CRASHED, f"{job} ended: {scheduler.state}{_detail(scheduler)}"


def _detail(scheduler: SchedulerState) -> str:
    parts = [part for part in (scheduler.reason, _exit_text(scheduler.exit_code)) if part]
    return f" ({', '.join(parts)})" if parts else ""


def _exit_text(exit_code: str | None) -> str | None:
    if not exit_code or exit_code in ("0:0", "0"):
        return None
    return f"exit code {exit_code}"


# -- SLURM ---------------------------------------------------------------------------------------

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )


def slurm_available() -> bool:
    """True where SLURM can be asked (``sacct`` or ``squeue`` on PATH)."""
    return bool(shutil.which("sacct") or shutil.which("squeue"))


def query_slurm(job_ids: Iterable[str], *, run: Runner = _run) -> dict[str, SchedulerState]:
    """The states of SLURM jobs (``1234`` or array tasks ``1234_7``), in as few calls as possible.

    Jobs the scheduler no longer knows (purged, never existed) are missing from the result.
    """
    wanted = sorted(set(job_ids))
    if not wanted:
        return {}
    bases = sorted({job_id.split("_", 1)[0] for job_id in wanted})
    states: dict[str, SchedulerState] | None = None
    if shutil.which("sacct"):
        sacct = ["sacct", "-X", "-n", "-P", "-o", "JobID,State,Reason,ExitCode"]
        answer = _call(run, [*sacct, "-j", ",".join(bases)])
        if answer is not None:
            states = parse_sacct(answer)
    queued: dict[str, SchedulerState] = {}
    if shutil.which("squeue"):
        squeue = ["squeue", "-h", "-o", "%i|%T|%r"]
        if states is None:  # every job of this user: squeue -j fails on a purged id
            queued = parse_squeue(_call(run, [*squeue, "--me"]) or "")
        elif pending := sorted({job_id.split("_", 1)[0] for job_id in _pending(states, wanted)}):
            queued = parse_squeue(_call(run, [*squeue, "-j", ",".join(pending)]) or "")
    if states is None:  # no accounting: the queue, then the controller's memory of recent jobs
        states = dict(queued)
        if shutil.which("scontrol") and any(job_id not in states for job_id in wanted):
            states = parse_scontrol(_call(run, ["scontrol", "-o", "show", "job"]) or "") | states
    else:  # sacct has no pending reasons; the queue has
        for job_id, state in states.items():
            if state.state == "PENDING" and job_id in queued:
                states[job_id] = queued[job_id]
    return {job_id: states[job_id] for job_id in wanted if job_id in states}


def _pending(states: Mapping[str, SchedulerState], wanted: list[str]) -> list[str]:
    return [job_id for job_id in wanted if job_id in states and states[job_id].state == "PENDING"]


def _call(run: Runner, command: list[str]) -> str | None:
    try:
        answer = run(command)
    except (OSError, subprocess.SubprocessError):
        return None
    return answer.stdout if answer.returncode == 0 else None


def expand_job_id(job_id: str) -> list[str]:
    """``1234`` → [``1234``]; ``1234_7`` → [``1234_7``]; ``1234_[0-2,5%2]`` → each task."""
    match = re.fullmatch(r"(\d+)_\[([0-9,\-]+)(?:%\d+)?\]", job_id)
    if match is None:
        return [job_id]
    base, ranges = match.groups()
    tasks: list[str] = []
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        tasks.extend(f"{base}_{index}" for index in range(int(low), int(high or low) + 1))
    return tasks


def _state(job_id: str, raw_state: str, reason: str, exit_code: str | None) -> SchedulerState:
    # sacct writes "CANCELLED by 1000": the state, then who
    name, _, by = raw_state.strip().partition(" ")
    detail = by or (reason if reason and reason != "None" else "")
    return SchedulerState(job_id, name.rstrip("+"), detail or None, exit_code or None)


def parse_sacct(text: str) -> dict[str, SchedulerState]:
    """Parse ``sacct -X -n -P -o JobID,State,Reason,ExitCode``."""
    states: dict[str, SchedulerState] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 4 or not fields[0] or "." in fields[0]:
            continue
        for job_id in expand_job_id(fields[0]):
            states[job_id] = _state(job_id, fields[1], fields[2], fields[3])
    return states


def parse_squeue(text: str) -> dict[str, SchedulerState]:
    """Parse ``squeue -h -o %i|%T|%r``."""
    states: dict[str, SchedulerState] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 3 or not fields[0]:
            continue
        for job_id in expand_job_id(fields[0]):
            states[job_id] = _state(job_id, fields[1], fields[2], None)
    return states


def parse_scontrol(text: str) -> dict[str, SchedulerState]:
    """Parse ``scontrol -o show job`` (one job per line, ``Key=Value`` pairs)."""
    states: dict[str, SchedulerState] = {}
    for line in text.splitlines():
        pairs = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" not in pairs or "JobState" not in pairs:
            continue
        job_id = pairs["JobId"]
        if pairs.get("ArrayTaskId", "N/A") not in ("N/A", "") and "ArrayJobId" in pairs:
            job_id = f"{pairs['ArrayJobId']}_{pairs['ArrayTaskId']}"
        for one in expand_job_id(job_id):
            reason, exit_code = pairs.get("Reason", ""), pairs.get("ExitCode")
            states[one] = _state(one, pairs["JobState"], reason, exit_code)
    return states


# -- local processes -------------------------------------------------------------------------


def local_state(run_dir: Path, job: JobRecord) -> SchedulerState | None:
    """A local run's job: its controller process alive, or what its result pickle says."""
    pid = job.pid
    if pid is None:
        return None
    job_id = job.job_id
    if job.host != hostname():
        return SchedulerState(job_id, "UNKNOWN", f"local process on {job.host}")
    if is_controller(pid):
        return SchedulerState(job_id, "RUNNING")
    result = job.folder(run_dir) / f"{job_id}_0_result.pkl"
    try:
        with result.open("rb") as handle:
            outcome, value = pickle.load(handle)  # our own file: ("success"|"error", plain data)
    except FileNotFoundError:
        if job.cancelled:
            return SchedulerState(job_id, "CANCELLED", "by hpc-runner cancel")
        return SchedulerState(job_id, "FAILED", f"process {pid} ended without a result")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        return SchedulerState(job_id, "FAILED", f"unreadable result {result.name}: {exc}")
    if outcome == "success":
        return SchedulerState(job_id, "COMPLETED")
    last = str(value).strip().splitlines()[-1:] or [""]
    return SchedulerState(job_id, "FAILED", last[0][:200] or None)


# -- all runs at once --------------------------------------------------------------------------


def job_records(run_dirs: Iterable[Path]) -> dict[Path, JobRecord | None]:
    """Each run's ``job.json`` (None where there is none or it cannot be read: monitoring goes on
    with the status file alone)."""
    records: dict[Path, JobRecord | None] = {}
    for run_dir in run_dirs:
        try:
            records[run_dir] = read_job_file(run_dir)
        except JobFileError:
            records[run_dir] = None
    return records


def scheduler_states(
    jobs: Mapping[Path, JobRecord | None], *, run: Runner = _run
) -> dict[Path, SchedulerState | None]:
    """The scheduler state of every run's current job: one SLURM query for all of them."""
    result: dict[Path, SchedulerState | None] = dict.fromkeys(jobs)
    slurm = {run_dir: job for run_dir, job in jobs.items() if job and job.scheduler == "slurm"}
    if slurm and slurm_available():
        answers = query_slurm((job.job_id for job in slurm.values()), run=run)
        for run_dir, slurm_job in slurm.items():
            result[run_dir] = answers.get(slurm_job.job_id) or forgotten_cancel(slurm_job)
    for run_dir, job in jobs.items():
        if job is not None and job.scheduler == "local":
            result[run_dir] = local_state(run_dir, job)
    return result


def forgotten_cancel(job: JobRecord) -> SchedulerState | None:
    """CANCELLED for a job cancelled with ``hpc-runner cancel`` that SLURM no longer knows.

    SLURM keeps no accounting record of an array task cancelled while it was still pending in
    the array's not-yet-split part (checked with SLURM 22.05): ``sacct`` and ``squeue`` both
    forget it, so only ``job.json`` remembers that it was cancelled.
    """
    if job.cancelled is None:
        return None
    return SchedulerState(job.job_id, "CANCELLED", "before it started; SLURM kept no record")


class SchedulerPoller:
    """Rate-limited scheduler states for a long-lived monitor (the TUI, ``submit --watch``).

    Asks at most once per ``min_interval_s`` (a busy cluster's controller should not be polled
    every second by every user's monitor); in between it answers from its cache. A job that ended
    is not asked about again.
    """

    def __init__(self, min_interval_s: float = 30.0, *, run: Runner = _run) -> None:
        self.min_interval_s = min_interval_s
        self._run = run
        self._cache: dict[Path, SchedulerState | None] = {}
        self._final: dict[tuple[Path, str], SchedulerState] = {}
        self._last_query = float("-inf")
        self.queries = 0

    def states(
        self, jobs: Mapping[Path, JobRecord | None], *, force: bool = False
    ) -> dict[Path, SchedulerState | None]:
        now = time.monotonic()
        known = all(run_dir in self._cache for run_dir in jobs)
        if not force and known and now - self._last_query < self.min_interval_s:
            return {run_dir: self._cache[run_dir] for run_dir in jobs}
        pending = {
            run_dir: job
            for run_dir, job in jobs.items()
            if job is None or (run_dir, job.job_id) not in self._final
        }
        fresh = scheduler_states(pending, run=self._run)
        self._last_query = now
        self.queries += 1
        for run_dir, job in jobs.items():
            if job is not None and (run_dir, job.job_id) in self._final:
                self._cache[run_dir] = self._final[run_dir, job.job_id]
                continue
            state = fresh.get(run_dir)
            self._cache[run_dir] = state
            if job is not None and state is not None and state.ended:
                self._final[run_dir, job.job_id] = state
        return {run_dir: self._cache[run_dir] for run_dir in jobs}
