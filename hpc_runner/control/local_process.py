"""Local jobs seen through /proc: is the controller alive, which process trains (Linux).

A local run's ``job.json`` records the pid of submitit's local controller, which runs the training
as its child. Pids get reused, so a pid only counts as the controller while its command line
names submitit. Monitoring side: standard library only.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

#: What the training process' command line contains (``python -m submitit.core._submit``).
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
    """The pid is alive (not a zombie) and is a submitit local controller."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[:1] == ["Z"]:
        return False
    for _ in range(50):
        line = cmdline(pid)
        if line:
            return b"submitit" in line
        time.sleep(0.002)  # reads empty while the process is inside execve (measured: ~20 %
        # of reads right after Popen returns, on a loaded machine)
    return False


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
