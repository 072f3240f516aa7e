"""Following one run on the command line (``submit --watch`` without a terminal UI).

A line whenever the run's phase or progress changes, the node's messages as they come, until
the run reaches a final phase and its job has ended (the node may still report after the
training's final state: PSNR, predictions). The phase is :func:`derive_phase`'s, as everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from hpc_runner.control.jobfile import JobFileError, read_job_file
from hpc_runner.control.phase import RunPhase, derive_phase
from hpc_runner.control.scheduler import SchedulerPoller
from hpc_runner.stream.run_state import RunState, follow
from hpc_runner.stream.runs import STATUS_FILE
from hpc_runner.stream.tail import StatusTail


def follow_run(
    run_dir: Path,
    *,
    interval_s: float = 2.0,
    scheduler_interval_s: float = 10.0,
    print_line: Callable[[str], None] = print,
    reports_limit_s: float = 300.0,
) -> RunPhase:
    """Print the run's progress until it reaches a final phase; return that phase.

    The node's messages are shown as they come (attempts, requeues, stop requests), except the
    per-checkpoint ones. After the final phase the job may still report (PSNR, predictions):
    those are awaited until the job has ended (at most ``reports_limit_s``).
    """
    tail, run = StatusTail(run_dir / STATUS_FILE), RunState()
    # one job: no back-off (a dead job must end the loop soon, and one query costs little)
    poller = SchedulerPoller(scheduler_interval_s, max_interval_s=scheduler_interval_s)
    last, shown = "", float("-inf")
    final: RunPhase | None = None
    deadline = float("inf")
    while True:
        try:
            job = read_job_file(run_dir)
        except JobFileError:
            job = None
        scheduler = poller.states({run_dir: job}).get(run_dir) if job else None
        follow(tail, run)
        phase = derive_phase(run, job, scheduler, now=time.time())
        if final is None:
            line = progress_line(run, phase)
            if line != last:
                print_line(line)
                last = line
        for moment, message in list(run.debug):
            if moment > shown:
                shown = moment
                if not message.startswith("checkpoint saved"):
                    print_line(f"  {message}")
        if final is None and phase.phase.final:
            final = phase
            soon = min(3.0, scheduler_interval_s)  # the job is about to end
            poller = SchedulerPoller(soon, max_interval_s=soon)
            deadline = time.monotonic() + reports_limit_s
        if final is not None and (
            scheduler is None or scheduler.ended or time.monotonic() > deadline
        ):
            return final
        time.sleep(interval_s)


def progress_line(run: RunState, phase: RunPhase) -> str:
    """``TRAINING  epoch 3/60  batch 5/10  loss 0.1234  val 0.2345  attempt 0``, the phase's
    reason last."""
    status = run.status
    parts = [phase.phase.value]
    if status.epoch_idx >= 0:
        parts.append(f"epoch {status.epoch_idx + 1}/{status.max_epochs}")
    if status.batch_idx >= 0:
        parts.append(f"batch {status.batch_idx + 1}/{status.max_batches}")
    if status.loss != -1:
        parts.append(f"loss {status.loss:.4g}")
    if status.val_loss != -1:
        parts.append(f"val {status.val_loss:.4g}")
    parts.append(f"attempt {run.attempt}")
    if phase.reason:
        parts.append(f"({phase.reason})")
    return "  ".join(parts)
