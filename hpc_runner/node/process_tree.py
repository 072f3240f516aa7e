"""CPU and memory of the training's process tree: the training process and its data-loader
workers (psutil), as the scheduler would charge them.

CPU time is cumulative since the process started, so the CPU share between two samples and the
CPU efficiency of the whole attempt both follow from it. A worker that ended and was reaped
has its time counted in its parent's ``children_*`` times, so the total does not drop when
workers are restarted each epoch; a worker that ended and is not reaped yet is missing for one
sample, which :class:`ProcessTree` absorbs by never letting the total go down.

RSS is summed over the tree. Forked workers share pages with their parent, so the sum is an
upper bound of what the tree holds - the safe side for "how much memory to ask for".
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any


class ProcessQueryError(RuntimeError):
    """The process tree could not be read (psutil missing, /proc unreadable)."""


@dataclass(frozen=True)
class TreeSample:
    """CPU time since start (s), CPU use since the previous sample (%), resident memory (B)."""

    cpu_time_s: float
    cpu_percent: float | None
    rss_bytes: int


class ProcessTree:
    """Samples one process and its descendants.

    Parameters
    ----------
    pid : int
        The root: the training process (default: this one).
    """

    def __init__(self, pid: int | None = None) -> None:
        try:
            import psutil
        except ImportError as exc:
            raise ProcessQueryError("psutil is not installed (pip install psutil)") from exc
        self.psutil: Any = psutil
        try:
            self.root = psutil.Process(pid or os.getpid())
        except psutil.Error as exc:
            raise ProcessQueryError(f"{type(exc).__name__}: {exc}") from exc
        self._last: tuple[float, float] | None = None  # (monotonic time, cpu time)

    def sample(self) -> TreeSample:
        """The tree now; CPU % is relative to the previous call (None the first time)."""
        psutil = self.psutil
        try:
            times = self.root.cpu_times()
            cpu = times.user + times.system + times.children_user + times.children_system
            rss = self.root.memory_info().rss
            children = self.root.children(recursive=True)
        except psutil.Error as exc:
            raise ProcessQueryError(f"{type(exc).__name__}: {exc}") from exc
        for child in children:
            try:  # a worker may end between listing and asking: it is simply not counted
                child_times = child.cpu_times()
                cpu += child_times.user + child_times.system
                rss += child.memory_info().rss
            except psutil.Error:
                continue
        now = time.monotonic()
        percent = None
        if self._last is not None:
            then, cpu_then = self._last
            cpu = max(cpu, cpu_then)  # an ended, unreaped worker: never count time backwards
            if now > then:
                percent = 100.0 * (cpu - cpu_then) / (now - then)
        self._last = (now, cpu)
        return TreeSample(cpu_time_s=cpu, cpu_percent=percent, rss_bytes=int(rss))
