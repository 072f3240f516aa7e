"""What the TUI's run actions do: thin calls that a worker thread runs, never the UI thread.

A graceful stop is this module's own job (it only writes the ``STOP`` file that the node's
callback looks for). Cancelling and resubmitting belong to the submission side
(:mod:`hpc_runner.control.jobs`), imported when first used so that the TUI starts without it.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from hpc_runner.stream.runs import STOP_FILE


def request_stop(run_dir: Path) -> str:
    """Write ``<run_dir>/STOP``: the training stops after the current batch and checkpoints.

    Returns
    -------
    str
        What was done, for a notification.
    """
    path = run_dir / STOP_FILE
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    text = f"stop requested with hpc-runner watch on {socket.gethostname()} at {stamp}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return f"wrote {path}: the training stops after its current batch"


def cancel_run(run_dir: Path) -> str:
    """Cancel the run's scheduler job (``scancel``, or the local process)."""
    from hpc_runner.control.jobs import cancel_run as cancel

    result = cancel(run_dir)
    return str(result) if result else f"cancel requested for {run_dir.name}"


def resume_run(run_dir: Path) -> str:
    """Resubmit the run from its last checkpoint.

    A ``debug`` run trains inside the process that resumes it, which here would be this TUI:
    it is resumed as a ``local`` process instead.
    """
    from hpc_runner.control.jobfile import read_job_file
    from hpc_runner.control.jobs import resume_run as resume

    record = read_job_file(run_dir)
    cluster = "local" if record is not None and record.scheduler == "debug" else None
    attempt, job_id, checkpoint = resume(run_dir, cluster=cluster)
    origin = f"from {checkpoint}" if checkpoint else "from the start: no checkpoint yet"
    return f"resubmitted {run_dir.name}: attempt {attempt}, job {job_id} ({origin})"
