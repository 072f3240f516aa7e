"""What the TUI's run actions do: thin calls that a worker thread runs, never the UI thread.

A graceful stop is this module's own job (it only writes the ``STOP`` file that the node's
callback looks for). Cancelling and resubmitting belong to the submission side: they are looked
up at call time as ``hpc_runner.jobs.cancel_run(run_dir)`` and ``resume_run(run_dir)``, so the
TUI neither imports the scheduler code at start nor breaks while that code does not exist yet.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpc_runner.errors import HpcRunnerError
from hpc_runner.runs import STOP_FILE

#: The module that provides ``cancel_run`` and ``resume_run``.
JOBS_MODULE = "hpc_runner.jobs"


class ActionUnavailable(HpcRunnerError):
    """This installation cannot do the action (the scheduler side does not provide it)."""


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


def _jobs_function(name: str, verb: str) -> Callable[[Path], Any]:
    try:
        module = importlib.import_module(JOBS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != JOBS_MODULE:
            raise
        raise ActionUnavailable(
            f"{verb} is not available in this installation ({JOBS_MODULE} is missing); "
            "use the scheduler directly (e.g. scancel JOBID)"
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ActionUnavailable(
            f"{verb} is not available: {JOBS_MODULE} has no {name}(run_dir) function"
        )
    return function


def cancel_run(run_dir: Path) -> str:
    """Cancel the run's scheduler job through ``hpc_runner.jobs.cancel_run``."""
    result = _jobs_function("cancel_run", "cancel")(run_dir)
    return str(result) if result else f"cancel requested for {run_dir.name}"


def resume_run(run_dir: Path) -> str:
    """Resubmit the run from its last checkpoint through ``hpc_runner.jobs.resume_run``.

    That function returns ``(attempt, job id, checkpoint or "")``; anything else is shown as is.
    """
    result = _jobs_function("resume_run", "resume")(run_dir)
    if isinstance(result, tuple) and len(result) == 3:
        attempt, job_id, checkpoint = result
        origin = f"from {checkpoint}" if checkpoint else "from the start: no checkpoint yet"
        return f"resubmitted {run_dir.name}: attempt {attempt}, job {job_id} ({origin})"
    return str(result) if result else f"resubmitted {run_dir.name}"
