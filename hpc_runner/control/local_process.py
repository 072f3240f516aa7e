"""Local and debug jobs seen through /proc: which processes belong to a run, and ending them.

A local run's ``job.json`` records its controller (pid and start time); the controller records
its training tasks in ``<job id>_processes.json`` (:mod:`hpc_runner.stream.processes`). Their
descendants (data loader workers) are found through /proc's parent pids. A process is only
ever signalled while it is still the very process recorded (same start time): a pid reused by
another program is left alone. Monitoring side: standard library only (Linux /proc).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import time
from pathlib import Path

from hpc_runner.stream.files import same_file
from hpc_runner.stream.processes import ProcessId, alive, identify, read_processes

#: What a training process' command line contains (``python -m submitit.core._submit``).
TASK_MARKER = b"submitit.core._submit"


def hostname() -> str:
    """This machine's name, as recorded in ``job.json`` by the submitter."""
    return socket.gethostname()


def cmdline(pid: int) -> bytes:
    """The NUL-separated command line of a process (empty if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def is_controller(pid: int) -> bool:
    """The pid is alive (not a zombie) and is a submitit local controller.

    For ``job.json`` files of older versions, which recorded the pid without its start time.
    """
    if identify(pid) is None:
        return False
    line = settled_cmdline(pid)
    return b"submitit" in line or b"local_controller" in line


def settled_cmdline(pid: int) -> bytes:
    """:func:`cmdline`, read again for up to 0.1 s while it reads empty: it does while the
    process is inside execve (measured: ~20 % of reads right after Popen returns, on a loaded
    machine), and a job just started must not look like a stranger (or a dead job)."""
    for _ in range(50):
        line = cmdline(pid)
        if line:
            return line
        time.sleep(0.002)
    return b""


def names_folder(pid: int, folder: Path) -> bool:
    """Whether a process' command line names ``folder``, the job's submitit folder.

    A local job's controller and tasks are started with it as an argument (``-m
    hpc_runner.node.local_controller FOLDER``, ``-m submitit.core._submit FOLDER``, maybe inside
    ``sh -c`` with the profile's setup lines). ``job.json`` and the processes file lie in the
    run directory, which whoever can write there controls: a process they name is signalled
    only if it says itself that it runs this job (a planted job.json got any of the user's
    processes killed by ``cancel``).
    """
    words = _words(settled_cmdline(pid))
    return any(word.startswith(os.sep) and same_file(word, folder) for word in words)


def is_hpc_runner(pid: int) -> bool:
    """Whether a process is an hpc-runner command (a ``debug`` job runs inside ``submit``)."""
    line = settled_cmdline(pid)
    return b"hpc_runner" in line or b"hpc-runner" in line


def runs_job(process: ProcessId, folder: Path, *, debug_status: Path | None = None) -> bool:
    """The very process recorded is alive and runs this job, by what it says itself: what
    ``cancel`` signals and what the monitor counts as the job still running.

    A local job's processes name its submitit ``folder`` (:func:`names_folder`). A ``debug``
    job runs inside the process that submitted it (``debug_status``: the run's status file),
    an hpc-runner command or a script using the API: it is an hpc-runner command, or it holds
    the run's status file open (the status writer keeps it open while training). That a copy
    of the run directory names the same process is told before, by the directory's identity
    (:func:`hpc_runner.control.scheduler.copied_state`).
    """
    if not alive(process):
        return False
    if debug_status is not None:
        return is_hpc_runner(process.pid) or holds_open(process.pid, debug_status)
    return names_folder(process.pid, folder)


def holds_open(pid: int, path: Path) -> bool:
    """Whether the process has ``path`` open (one of its /proc descriptors is that file)."""
    try:
        wanted = os.stat(path)
        descriptors = list(os.scandir(f"/proc/{pid}/fd"))
    except OSError:
        return False
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            found = os.stat(descriptor.path)  # (follows the link to the open file)
            if (found.st_dev, found.st_ino) == (wanted.st_dev, wanted.st_ino):
                return True
    return False


def _words(line: bytes) -> list[str]:
    words: list[str] = []
    for argument in line.split(b"\0"):
        text = os.fsdecode(argument)
        try:
            words += shlex.split(text)
        except ValueError:  # (unbalanced quotes in a setup line)
            words += text.split()
    return words


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc's parent pids."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended while we looked
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def training_processes(controller: int) -> list[int]:
    """The processes a local controller runs the training in (none before it started them)."""
    return [pid for pid in descendants(controller) if TASK_MARKER in cmdline(pid)]


def job_processes(
    folder: Path, job_id: str, controller: ProcessId | None, *, debug_status: Path | None = None
) -> tuple[list[ProcessId], list[ProcessId]]:
    """The living processes of one local or debug job: (training tasks, everything else).

    Everything else is the controller and the descendants of all of them (data loader workers,
    a setup shell); tasks whose controller was killed (orphans) are found too, through the
    job's processes file. A recorded process counts only if it confirms it (:func:`runs_job`).
    """

    def ours(process: ProcessId) -> bool:
        return runs_job(process, folder, debug_status=debug_status)

    record = read_processes(folder, job_id)
    tasks = [task for task in (record.tasks if record else []) if ours(task)]
    heads = [controller, record.controller if record else None]
    others = [head for head in dict.fromkeys(heads) if head is not None and ours(head)]
    if not tasks and others:  # a controller of an older version, or tasks not recorded yet
        for head in others:
            tasks += [p for p in map(identify, training_processes(head.pid)) if p is not None]
    seen = {process.pid for process in tasks + others}
    for root in [*tasks, *others]:
        for pid in descendants(root.pid):
            found = identify(pid)
            if found is not None and pid not in seen:
                seen.add(pid)
                others.append(found)
    return tasks, others


def end_processes(tasks: list[ProcessId], others: list[ProcessId], wait_s: float = 15.0) -> str:
    """Interrupt the training tasks (as Ctrl+C would: Lightning stops, the status callback
    records STOPPED), then kill whatever of the job is still there after ``wait_s`` (like
    SLURM's KillWait: a loaded node needs seconds to end an epoch's step and write the record).
    A process found twice (the controller both given and recorded) is named and signalled once."""
    tasks = list(dict.fromkeys(tasks))
    others = [process for process in dict.fromkeys(others) if process not in tasks]
    if not tasks and not others:
        return "no process of the run was running"
    for task in tasks or others[:1]:  # no task yet: interrupt the controller
        _signal(task, signal.SIGINT)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(alive(process) for process in [*tasks, *others]):
        time.sleep(0.1)
    left = [process for process in [*tasks, *others] if alive(process)]
    for process in left:
        _signal(process, signal.SIGKILL)
    pids = ", ".join(str(process.pid) for process in [*tasks, *others])
    return f"killed processes {pids}" if left else f"interrupted processes {pids}"


def _signal(process: ProcessId, signum: signal.Signals) -> None:
    if alive(process):  # still the very process recorded, not a reused pid
        with contextlib.suppress(ProcessLookupError):  # ended in between
            os.kill(process.pid, signum)
