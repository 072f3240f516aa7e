"""Ctrl+C held back while a job exists that ``job.json`` does not name yet.

Between the scheduler accepting a job and ``job.json`` naming it, an interrupt left a job that
no command knows of: ``cancel`` never ends it, and the next ``resume`` gave the run a second
job training into the same files (found with an ``sbatch`` that answered slowly). The
submitting commands hold SIGINT over that window and act on it right after.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def interrupts_held(hold: bool = True) -> Iterator[None]:
    """Run the block with SIGINT held; one that arrived meanwhile is acted on at its end, as
    the handler before would have (KeyboardInterrupt, by default).

    Not held when ``hold`` is False (a ``debug`` job trains inside the block: the user must be
    able to interrupt it) or off the main thread (Python handles signals only there).
    """
    if not hold or threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[FrameType | None] = []
    previous = signal.signal(signal.SIGINT, lambda _signum, frame: arrived.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if not arrived or previous == signal.SIG_IGN:
        return
    if callable(previous):
        previous(signal.SIGINT, arrived[0])  # (Python's default handler raises KeyboardInterrupt)
    else:  # SIG_DFL: end as the signal would have ended us
        os.kill(os.getpid(), signal.SIGINT)
