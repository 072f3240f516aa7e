"""``job.json``: which scheduler runs a run, under which job id(s), since when.

The status file says what the training did; this file says where to ask the scheduler about the
job that runs it (``status`` reconciliation, ``cancel``, ``resume``, ``logs``). It is written on
the submitting machine only (submit, resume, cancel), never by the node, so it has one writer;
each write replaces the whole file atomically. Requeues keep their job id and show up in the
status file as ``attempt`` + 1; a ``resume`` is a new submission and adds an entry here.

Monitoring side: standard library and msgspec only.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import msgspec

from hpc_runner.control.slurm_query import SLURM_JOB_ID
from hpc_runner.errors import HpcRunnerError
from hpc_runner.stream.files import read_regular, replace_file
from hpc_runner.stream.processes import PathId, ProcessId
from hpc_runner.stream.runs import JOB_FILE, SUBMITIT_DIR

#: Version of the job.json layout; a reader treats a file of a newer version as unreadable.
JOB_FILE_VERSION = 1

#: The executors a run can be submitted with (``--cluster`` minus ``auto``).
SCHEDULERS = ("slurm", "local", "debug")

#: A job id as submitit gives it: SLURM's, a local controller's pid, or ``DEBUG_<number>``. A
#: job.json holding anything else is not one hpc-runner wrote: the id is handed to ``sacct``,
#: ``scancel`` and file names (a comma, a NUL byte or a ``/`` there would act on other jobs).
JOB_ID = re.compile(rf"(?:{SLURM_JOB_ID}|DEBUG_[0-9]+)")


class Submission(msgspec.Struct, frozen=True):
    """One submission of a run: the first one, or a ``resume``.

    Attributes
    ----------
    attempt : int
        The attempt number its status records start with.
    job_id : str
        Scheduler job id (SLURM ``1234`` or ``1234_7`` for an array task; the controller's pid
        for a local run).
    submitted : float
        Unix time of the submission.
    how : str
        ``submit`` or ``resume``.
    process : ProcessId | None
        Local and debug runs: the process that runs the job (pid and start time, so that a
        reused pid is never taken for it).
    folder : str | None
        submitit's folder of this job, relative to the run directory (a sweep's array shares
        ``../submitit``; a resumed run uses its own): each attempt's logs stay findable.
    directory : PathId | None
        The run directory's identity when it was submitted (None in files of older versions).
        The job trains that directory, not a copy of it (``cp -a`` of a training run copies
        this file, and the copy's ``cancel`` must not stop the original's training).
    scheduler : str | None
        The scheduler of this job, one of :data:`SCHEDULERS` (None in files of older versions:
        see :meth:`JobRecord.scheduler_of`). A run submitted locally can be resumed on SLURM.
    """

    attempt: int
    job_id: str
    submitted: float
    how: str = "submit"
    process: ProcessId | None = None
    folder: str | None = None
    directory: PathId | None = None
    scheduler: str | None = None

    @property
    def debug(self) -> bool:
        """Whether this submission ran in the submitting process (``--cluster debug``)."""
        return self.job_id.startswith("DEBUG_")


class JobRecord(msgspec.Struct, kw_only=True):
    """The content of ``job.json``.

    Attributes
    ----------
    scheduler : str
        One of :data:`SCHEDULERS`.
    submissions : list of Submission
        Oldest first; the last one is the job that runs (or ran) the run now.
    host : str
        Host the run was submitted from: a local run's pid only means something there.
    submitit_folder : str
        submitit's folder, relative to the run directory (runs of one job array share one).
    python : str
        Interpreter the job runs with (submitit starts the node with the submitter's).
    cancelled : float | None
        When ``hpc-runner cancel`` was asked for the current job, if it was.
    """

    v: int = JOB_FILE_VERSION
    scheduler: str
    submissions: list[Submission]
    host: str = msgspec.field(default_factory=socket.gethostname)
    submitit_folder: str = SUBMITIT_DIR
    python: str = ""
    cancelled: float | None = None

    @property
    def current(self) -> Submission:
        """The latest submission."""
        return self.submissions[-1]

    def scheduler_of(self, submission: Submission) -> str:
        """The scheduler that runs ``submission``'s job: its own, recorded with it.

        ``scheduler`` above is the newest submission's. A run submitted locally and resumed on
        SLURM had its local pid asked of ``sacct`` (another user's job of that number alive:
        ``cancel`` refused, naming a stranger's job), a SLURM job id looked up as a pid. Files
        of older versions record none: a debug job is told by its id, a local one by its
        recorded process, the rest took the file's one scheduler.
        """
        if submission.scheduler is not None:
            return submission.scheduler
        if submission.debug:
            return "debug"
        return "local" if submission.process is not None else self.scheduler

    @property
    def job_id(self) -> str:
        """Job id of the latest submission."""
        return self.current.job_id

    @property
    def pid(self) -> int | None:
        """The local job controller's pid (local runs only)."""
        job_id = self.current.job_id
        return int(job_id) if self.scheduler == "local" and job_id.isdigit() else None

    def folder(self, run_dir: Path, submission: Submission | None = None) -> Path:
        """submitit's folder of a submission's job (default: the current one): logs, pickles."""
        relative = (submission or self.current).folder or self.submitit_folder
        return (Path(run_dir) / relative).resolve()

    def add_submission(
        self,
        attempt: int,
        job_id: str,
        how: str,
        process: ProcessId | None = None,
        directory: PathId | None = None,
    ) -> None:
        folder = self.submitit_folder  # set by the caller for this submission
        self.submissions.append(
            Submission(
                attempt, job_id, time.time(), how, process, folder, directory, self.scheduler
            )
        )
        self.cancelled = None


class JobFileError(HpcRunnerError, ValueError):
    """``job.json`` exists but cannot be used (corrupt, newer version, not a regular file)."""


_DECODER = msgspec.json.Decoder(JobRecord)

#: A job.json is a few hundred bytes per submission; anything this large is not one.
MAX_JOB_FILE_BYTES = 4 << 20


def read_job_file(run_dir: str | os.PathLike[str]) -> JobRecord | None:
    """The run's job record, or None if it has none (e.g. a run made by the Python API).

    Raises
    ------
    JobFileError
        The file exists but is not a job record this version understands.
    """
    path = Path(run_dir) / JOB_FILE
    try:
        data = read_regular(path, max_bytes=MAX_JOB_FILE_BYTES)  # never blocks on a FIFO
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JobFileError(f"cannot read {exc}") from None
    try:
        record = _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: [[[[... nesting
        reason = str(exc) if isinstance(exc, msgspec.DecodeError) else "nested too deeply"
        raise JobFileError(f"{path}: not a valid job file ({reason})") from None
    problem = _unusable(record)
    if problem is not None:
        raise JobFileError(f"{path}: {problem}")
    return record


def _unusable(record: JobRecord) -> str | None:
    """Why a decoded job record cannot be used, or None: its ids go to scheduler commands and
    file names, its folders to paths (a NUL byte made ``status`` fail: "embedded null byte")."""
    if record.v > JOB_FILE_VERSION or record.scheduler not in SCHEDULERS or not record.submissions:
        return f"unsupported job file (v={record.v}, scheduler={record.scheduler!r})"
    for index, submission in enumerate(record.submissions):
        if submission.scheduler not in (None, *SCHEDULERS):
            return f"submissions[{index}].scheduler {submission.scheduler!r} is not one of ours"
        if not JOB_ID.fullmatch(submission.job_id):
            return (
                f"submissions[{index}].job_id {submission.job_id!r} is not a job id hpc-runner "
                "writes (this file was edited or planted)"
            )
    texts = {
        "host": record.host,
        "submitit_folder": record.submitit_folder,
        "python": record.python,
    }
    texts |= {f"submissions[{i}].folder": s.folder or "" for i, s in enumerate(record.submissions)}
    for key, text in texts.items():
        if "\x00" in text:
            return f"{key} holds a NUL byte (no path can)"
    return None


def write_job_file(run_dir: str | os.PathLike[str], record: JobRecord) -> Path:
    """Replace ``job.json`` atomically: a reader sees the old or the new file, never half."""
    path = Path(run_dir) / JOB_FILE
    replace_file(path, msgspec.json.format(msgspec.json.encode(record)) + b"\n")
    return path
