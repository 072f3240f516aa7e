"""Ctrl+C and ``cancel``'s SIGINT reach a job, whatever the process that started it ignored.

A shell script that starts ``hpc-runner submit job.yaml &`` runs it with SIGINT ignored (POSIX:
without job control, background commands ignore it), the local job's controller and tasks
inherit that, and Python then never raises ``KeyboardInterrupt``: ``cancel``'s SIGINT, which
lets Lightning stop and the status callback record STOPPED, did nothing, and the job was killed
15 s later without a final record. Standard library only: the local controller imports it.
"""

from __future__ import annotations

import signal
from typing import Any


def take_interrupts() -> Any:
    """Make SIGINT raise ``KeyboardInterrupt`` in this process if it was ignored; return the
    handler found (a handler someone installed on purpose is kept)."""
    found = signal.getsignal(signal.SIGINT)
    if found == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return found
