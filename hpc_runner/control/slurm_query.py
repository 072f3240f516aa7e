"""Asking SLURM about jobs: one batched ``sacct`` call, ``squeue`` and ``scontrol`` where needed.

``sacct`` knows every job, running or ended, but not why a job pends, and it lags behind a
fresh ``sbatch`` (0.2-0.9 s measured on the test cluster; longer on a busy ``slurmdbd``).
``squeue`` knows pending reasons and fresh jobs at once, but forgets a job soon after it ends.
So: ``sacct`` for all jobs, then ``squeue`` for the jobs that pend or that ``sacct`` does not list
yet; without accounting, ``squeue`` then ``scontrol`` (which remembers recently ended jobs).

Monitoring side: standard library only; nothing runs unless a command is on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

#: A SLURM job id as ``sbatch`` gives it: ``1234``, an array task ``1234_7``, or a whole array
#: ``1234_[0-2,5%2]``. Only these are ever passed to a SLURM command.
SLURM_JOB_ID = r"[0-9]+(?:_(?:[0-9]+|\[[0-9,\-]+(?:%[0-9]+)?\]))?"

#: How long one scheduler command may take before the answer is given up (status must not hang).
COMMAND_TIMEOUT_S = 20.0

Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class SchedulerState:
    """The scheduler's view of one job.

    Attributes
    ----------
    job_id : str
        The job asked about.
    state : str
        SLURM state name (``PENDING``, ``RUNNING``, ``COMPLETED``, ``CANCELLED``, ...); local runs
        use ``RUNNING``, ``COMPLETED``, ``FAILED``, ``CANCELLED``. hpc-runner's own:
        ``SUBMITTED`` (just submitted, not listed yet), ``NOT_FOUND`` (listed nowhere after
        that), ``UNKNOWN`` (nobody here can tell, e.g. a local run of another host).
    reason : str | None
        Why it pends, who cancelled it, or how it failed.
    exit_code : str | None
        SLURM ``exit:signal`` (``0:0``) or a local return code (``-9``: killed by signal 9).
    started : float | None
        Unix time the job's newest run started: records older than this are an earlier run's.
    asked : float | None
        Unix time of this answer (its age is shown: a scheduler is asked only now and then).
    """

    job_id: str
    state: str
    reason: str | None = None
    exit_code: str | None = None
    started: float | None = field(default=None, compare=False)
    asked: float | None = field(default=None, compare=False)

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    def describe(self) -> str:
        """``PENDING (Priority)``, ``CANCELLED (by 0)``, ``RUNNING``: for tables and messages."""
        return f"{self.state} ({self.reason})" if self.reason else self.state


#: States after which the job will not run again (without a new submission).
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


def run_command(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )


def slurm_available() -> bool:
    """True where SLURM can be asked (``sacct`` or ``squeue`` on PATH)."""
    return bool(shutil.which("sacct") or shutil.which("squeue"))


def query_slurm(
    job_ids: Iterable[str], *, run: Runner = run_command
) -> dict[str, SchedulerState] | None:
    """The states of SLURM jobs (``1234`` or array tasks ``1234_7``), in as few calls as possible.

    Jobs no command lists (purged, not yet recorded, never existed) and ids that are not SLURM
    job ids (:data:`SLURM_JOB_ID`) are missing from the result; None means that no command
    answered at all (nothing can be concluded).
    """
    # (one malformed id would make the batched sacct fail, and every job look purged)
    wanted = sorted({job_id for job_id in job_ids if re.fullmatch(SLURM_JOB_ID, job_id)})
    if not wanted:
        return {}
    states: dict[str, SchedulerState] | None = None
    if shutil.which("sacct"):
        sacct = ["sacct", "-X", "-n", "-P", "-o", "JobID,State,Reason,ExitCode,Start"]
        answer = _call(run, [*sacct, "-j", ",".join(_bases(wanted))])
        if answer is not None:
            states = parse_sacct(answer)
    queued: dict[str, SchedulerState] | None = None
    if shutil.which("squeue"):
        squeue = ["squeue", "-h", "-o", "%i|%T|%r"]
        # (by id, whoever's: --me listed only the caller's, not a lab-mate's or, for an admin,
        # the user's; ids squeue does not know are an answer, see _call)
        ask = _bases(wanted if states is None else _for_the_queue(states, wanted))
        if ask:
            queued = _parsed(parse_squeue, _call(run, [*squeue, "-j", ",".join(ask)]))
    if states is None:  # no accounting: the queue, then the controller's memory of recent jobs
        if queued is None:
            return None
        states = dict(queued)
        if shutil.which("scontrol") and any(job_id not in states for job_id in wanted):
            recent = _parsed(parse_scontrol, _call(run, ["scontrol", "-o", "show", "job"]))
            if recent is None:  # nobody said whether a job the queue does not list has ended
                for job_id in wanted:
                    states.setdefault(job_id, SchedulerState(job_id, "UNKNOWN", _NO_SCONTROL))
            else:
                states = recent | states
    else:  # sacct has no pending reasons and lags behind sbatch; the queue has both
        for job_id, state in (queued or {}).items():
            if job_id not in states or states[job_id].state == "PENDING":
                states[job_id] = state
        if queued is None:  # the queue was asked about jobs sacct does not list, in vain
            for job_id in wanted:
                if job_id not in states:
                    states[job_id] = SchedulerState(job_id, "UNKNOWN", _NOT_LISTED_NO_QUEUE)
    return {job_id: states[job_id] for job_id in wanted if job_id in states}


#: Why a job sacct does not list is UNKNOWN (not gone): sacct lags behind a busy controller, and
#: the queue that would list a fresh job did not answer.
_NOT_LISTED_NO_QUEUE = "sacct does not list it yet and squeue did not answer"
#: ... and, without accounting, one the queue does not list when scontrol did not answer.
_NO_SCONTROL = "squeue does not list it and scontrol did not answer"

#: What squeue and scontrol say, failing, about ids they do not know: an answer ("none of
#: these is queued"), not a failure to answer (``squeue -j`` of one purged id exits 1 so;
#: seen on the test cluster, slurm 22.05).
_NO_SUCH_JOB = "Invalid job id specified"


def _bases(job_ids: Iterable[str]) -> list[str]:
    return sorted({job_id.split("_", 1)[0] for job_id in job_ids})


def _for_the_queue(states: Mapping[str, SchedulerState], wanted: list[str]) -> list[str]:
    """Jobs sacct says pend (the queue has their reason) or does not list (it lags)."""
    return [i for i in wanted if i not in states or states[i].state == "PENDING"]


def _parsed(
    parse: Callable[[str], dict[str, SchedulerState]], text: str | None
) -> dict[str, SchedulerState] | None:
    return None if text is None else parse(text)


def _call(run: Runner, command: list[str]) -> str | None:
    """The command's output, or None when it did not answer (a timeout, no controller)."""
    try:
        answer = run(command)
    except (OSError, subprocess.SubprocessError):
        return None
    if answer.returncode == 0:
        return answer.stdout
    return "" if _NO_SUCH_JOB in (answer.stderr or "") else None


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


def _state(
    job_id: str, raw_state: str, reason: str, exit_code: str | None, start: str | None = None
) -> SchedulerState:
    # sacct writes "CANCELLED by 1000": the state, then who
    name, _, by = raw_state.strip().partition(" ")
    detail = by or (reason if reason and reason != "None" else "")
    return SchedulerState(
        job_id, name.rstrip("+"), detail or None, exit_code or None, started=_slurm_time(start)
    )


def _slurm_time(text: str | None) -> float | None:
    """SLURM's ``2026-12-01T02:27:46`` (the controller's local time) as unix time."""
    if not text or not text[0].isdigit():
        return None  # "Unknown", "None": not started
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except (ValueError, OverflowError):
        return None


def parse_sacct(text: str) -> dict[str, SchedulerState]:
    """Parse ``sacct -X -n -P -o JobID,State,Reason,ExitCode[,Start]``."""
    states: dict[str, SchedulerState] = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 4 or not fields[0] or "." in fields[0]:
            continue
        start = fields[4] if len(fields) > 4 else None
        for job_id in expand_job_id(fields[0]):
            states[job_id] = _state(job_id, fields[1], fields[2], fields[3], start)
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
            states[one] = _state(one, pairs["JobState"], reason, exit_code, pairs.get("StartTime"))
    return states


def job_output_folder(job_id: str, *, run: Runner = run_command) -> str | None:
    """The folder a job SLURM still knows writes its standard output to (``scontrol``'s
    ``StdOut``, expanded), or None when it does not say (the job is gone, no ``scontrol``).
    submitit writes a job's logs into the run's submitit folder, so this tells whose job it is.
    """
    if not re.fullmatch(SLURM_JOB_ID, job_id) or shutil.which("scontrol") is None:
        return None
    answer = _call(run, ["scontrol", "-o", "show", "job", job_id])
    first = answer.splitlines()[0] if answer else ""
    # (a value runs to the next " Key=": a run directory's name may hold spaces)
    match = re.search(r"(?:^| )StdOut=(.*?)(?= [A-Za-z]+=|$)", first)
    return os.path.dirname(match.group(1)) if match and match.group(1) else None
