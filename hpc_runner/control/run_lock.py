"""One submitting command at a time per run: a POSIX lock on a file in the run directory.

Deciding whether a run may be resumed and submitting its job is one step: two ``resume`` calls
(or a ``resume`` beside a ``cancel``, which rewrites ``job.json``) must not interleave, or one
run trains twice. The lock is an ``fcntl`` record lock (``lockf``) on ``<run>/.hpc-runner.lock``:
it is released when the process ends, however it ends, and NFS honours it through ``lockd``
(NFSv3) or the protocol itself (NFSv4) - the assumption is that the shared filesystem has
locking enabled, which is the default (a ``nolock`` mount makes every lock succeed locally only).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hpc_runner.errors import HpcRunnerError
from hpc_runner.stream.runs import LOCK_FILE


@contextmanager
def run_lock(run_dir: Path, *, timeout_s: float = 30.0) -> Iterator[None]:
    """Hold the run's lock for the ``with`` block; wait up to ``timeout_s`` for another holder.

    Raises
    ------
    HpcRunnerError
        Another command kept the lock for longer, or the lock file cannot be made.
    """
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise HpcRunnerError(f"{path}: cannot lock the run ({exc.strerror})") from None
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise HpcRunnerError(f"{path}: cannot lock the run ({exc.strerror})") from None
                if time.monotonic() > deadline:
                    raise HpcRunnerError(
                        f"{Path(run_dir).name}: another hpc-runner command is submitting or "
                        "cancelling this run; try again when it has finished"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
