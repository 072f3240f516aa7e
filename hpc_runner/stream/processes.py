"""The processes of a local or debug job: which ones run it, since when, and how they ended.

A local run has no scheduler to ask. Its controller (:mod:`hpc_runner.node.local_controller`)
writes ``<submitit folder>/<job id>_processes.json`` as plain JSON whenever its tasks start or
end, and the monitor reads it - it never unpickles submitit's result files, which would run
code from a run directory as whoever looks at the run. A ``debug`` run records the ``submit``
process itself.

A pid alone is not an identity (pids are reused): a process is its pid plus its start time in
clock ticks since boot (``/proc/PID/stat`` field 22), so a check can tell "still running" from
"another program got the same pid". Linux only; elsewhere nothing is known alive.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from hpc_runner.stream.files import read_regular, replace_file
from hpc_runner.stream.record_values import Int64

#: The file's name in the submitit folder, after the job id.
PROCESSES_SUFFIX = "_processes.json"

#: The file names a few processes; anything larger is not one the controller wrote.
MAX_PROCESSES_BYTES = 1 << 20


class ProcessId(msgspec.Struct, frozen=True):
    """One process: pid and start time (clock ticks since boot)."""

    pid: Int64
    start: Int64


class JobProcesses(msgspec.Struct, kw_only=True):
    """What ``<job id>_processes.json`` says.

    Attributes
    ----------
    host : str
        Where the processes run; pids mean nothing elsewhere.
    controller : ProcessId
        The process that started the tasks (submitit's local controller, or ``submit`` for a
        ``debug`` run).
    tasks : list of ProcessId
        The training processes of the newest start (a local requeue starts new ones).
    started : float
        Unix time the newest tasks started: records older than this belong to an earlier run.
    exit_codes : list of int | None, or None
        How each task ended (negative: killed by that signal), once the controller saw it.
    """

    host: str
    controller: ProcessId
    tasks: list[ProcessId] = msgspec.field(default_factory=list)
    started: float = 0.0
    exit_codes: list[Int64 | None] | None = None


class PathId(msgspec.Struct, frozen=True):
    """One file or directory as the filesystem knows it (device and inode): a copy of it has
    another, a rename keeps it."""

    device: Int64
    inode: Int64


def identify_path(path: str | os.PathLike[str]) -> PathId | None:
    """The identity of ``path`` (links followed); None if it cannot be looked at."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):  # (ValueError: a NUL byte in a name)
        return None
    return PathId(found.st_dev, found.st_ino)


def identify(pid: int) -> ProcessId | None:
    """The running process ``pid`` (None if there is none, or it is a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return ProcessId(pid, int(fields[19]))  # field 22 of stat; [0] here is field 3


def alive(process: ProcessId) -> bool:
    """The very process (same pid, same start time) is still running."""
    return identify(process.pid) == process


def processes_file(folder: Path, job_id: str) -> Path:
    """Where the processes of job ``job_id`` are recorded."""
    return Path(folder) / f"{job_id}{PROCESSES_SUFFIX}"


_DECODER = msgspec.json.Decoder(JobProcesses)


def read_processes(folder: Path, job_id: str) -> JobProcesses | None:
    """The recorded processes of a job; None if there is no usable file (never raises).

    Only a regular file of at most :data:`MAX_PROCESSES_BYTES` is read: a FIFO or a device
    planted in its place must not block a monitor, nor ``[[[[...`` (RecursionError) stop it.
    """
    try:
        return _DECODER.decode(read_regular(processes_file(folder, job_id), MAX_PROCESSES_BYTES))
    except (OSError, msgspec.DecodeError, RecursionError):
        return None


def write_processes(folder: Path, job_id: str, record: JobProcesses) -> None:
    """Replace the file atomically (a reader sees the old or the new content, never half)."""
    replace_file(processes_file(folder, job_id), msgspec.json.encode(record))


def this_process() -> ProcessId:
    """The calling process' identity."""
    found = identify(os.getpid())
    return found if found is not None else ProcessId(os.getpid(), 0)
