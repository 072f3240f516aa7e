"""Run control from the submitting machine: stop, cancel, resume, logs, and following a run.

``stop`` asks the training to end gracefully (the ``STOP`` file; the status callback ends after
the current batch, saves the last checkpoint and records STOPPED). ``cancel`` asks the scheduler
(``scancel``) or, for a local run, signals the controller's process group. ``resume`` submits a
new job for the run: the next attempt, from the newest checkpoint. ``logs`` are submitit's
stdout/stderr files of the run's current job.

Importing this module is cheap (standard library and the monitoring modules); submitit and the
spec machinery are imported only by :func:`resume_run`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpc_runner.control.jobfile import JobFileError, JobRecord, read_job_file, write_job_file
from hpc_runner.control.local_process import hostname, is_controller, training_processes
from hpc_runner.control.scheduler import (
    SchedulerPoller,
    SchedulerState,
    reconcile,
    scheduler_states,
)
from hpc_runner.errors import HpcRunnerError, UsageError
from hpc_runner.stream.run_state import RunState, follow, replay
from hpc_runner.stream.runs import JOB_FILE, RUN_SPEC_FILE, STATUS_FILE, STOP_FILE, default_runs_dir
from hpc_runner.stream.status import TrainingState
from hpc_runner.stream.tail import StatusTail

FINAL_STATES = (TrainingState.DONE, TrainingState.STOPPED, TrainingState.CRASHED)


def resolve_run(run: str, runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """A run directory from a path, or from a name below the runs directory.

    Raises
    ------
    UsageError
        Neither is a run directory (one holding ``run.yaml``, ``job.json`` or ``status.jsonl``).
    """
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    for candidate in (Path(run), root / run):
        if candidate.is_dir() and any(
            (candidate / name).exists() for name in (RUN_SPEC_FILE, JOB_FILE, STATUS_FILE)
        ):
            return candidate.absolute()
    raise UsageError(
        f"{run}: no such run (give a run directory, or a run name below {root}; "
        "`hpc-runner status` lists them)"
    )


def job_record(run_dir: Path) -> JobRecord:
    """The run's ``job.json``, or a UsageError saying why there is none."""
    try:
        record = read_job_file(run_dir)
    except JobFileError as error:
        raise HpcRunnerError(str(error)) from None
    if record is None:
        raise UsageError(f"{run_dir}: no {JOB_FILE} (this run was not submitted by hpc-runner)")
    return record


@dataclass(frozen=True)
class RunView:
    """A run's state as the status file and the scheduler see it together."""

    state: TrainingState
    reason: str | None
    run: RunState
    scheduler: SchedulerState | None


def view_run(run_dir: Path, record: JobRecord | None) -> RunView:
    """Replay the status file and reconcile it with the scheduler (one query)."""
    run = replay(run_dir / STATUS_FILE)
    scheduler = scheduler_states({run_dir: record}).get(run_dir) if record else None
    state, reason = reconcile(run.status.state, scheduler)
    return RunView(state, reason, run, scheduler)


def stop_run(run_dir: Path) -> Path:
    """Ask the training to stop gracefully after the current batch (writes ``STOP``)."""
    stop = run_dir / STOP_FILE
    stop.write_text(f"stop requested at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    return stop


def cancel_run(run_dir: Path, *, wait_s: float = 5.0) -> str:
    """Cancel the run's current job through its scheduler; returns what was done."""
    record = job_record(run_dir)
    job_id = record.job_id
    if record.scheduler == "debug":
        raise UsageError(f"{run_dir}: a debug run ran inside `submit`; there is nothing to cancel")
    if record.scheduler == "slurm":
        if shutil.which("scancel") is None:
            raise HpcRunnerError("scancel is not on PATH: cancel from a machine with SLURM")
        answer = subprocess.run(["scancel", job_id], capture_output=True, text=True, check=False)
        if answer.returncode != 0:
            raise HpcRunnerError(f"scancel {job_id} failed: {answer.stderr.strip()}")
        done = f"scancel {job_id}"
    else:
        done = _cancel_local(record, wait_s)
    record.cancelled = time.time()
    write_job_file(run_dir, record)
    return done


def _cancel_local(record: JobRecord, wait_s: float) -> str:
    """Interrupt the local job's training process (it records STOPPED), then kill what is left."""
    pid = record.pid
    if pid is None or record.host != hostname():
        raise HpcRunnerError(f"the local job {record.job_id} ran on {record.host}: cancel it there")
    if not is_controller(pid):
        return f"local job {pid} had already ended"
    # SIGINT to the training process only, as Ctrl+C would: Lightning shuts down gracefully and
    # the status callback records STOPPED; the controller then sees its task end and exits.
    # (Signalling the controller too would make it interrupt the task a second time.)
    tasks = training_processes(pid)
    for task in tasks:
        os.kill(task, signal.SIGINT)
    if not tasks:  # not started yet: the controller's process group (its own session)
        os.killpg(pid, signal.SIGINT)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and is_controller(pid):
        time.sleep(0.1)
    if is_controller(pid):
        os.killpg(pid, signal.SIGKILL)
        return f"killed local job {pid}"
    return f"interrupted local job {pid}"


def resume_run(run_dir: Path, *, cluster: str | None = None) -> tuple[int, str, str]:
    """Submit the run's next attempt from its newest checkpoint.

    Returns
    -------
    (attempt, job id, checkpoint or "")

    Raises
    ------
    UsageError
        The run is still queued or running, or already DONE.
    """
    from hpc_runner.control.submit import resubmit
    from hpc_runner.stream.runs import latest_checkpoint

    record = read_job_file(run_dir)
    view = view_run(run_dir, record)
    if (
        view.scheduler is not None
        and not view.scheduler.ended
        and view.scheduler.state != "UNKNOWN"
    ):
        raise UsageError(
            f"{run_dir.name}: its job {view.scheduler.job_id} is {view.scheduler.describe()}; "
            "stop or cancel it first"
        )
    if view.state is TrainingState.DONE:
        raise UsageError(f"{run_dir.name}: the training is DONE; there is nothing to resume")
    attempts = [submission.attempt for submission in record.submissions] if record else []
    attempt = max([view.run.attempt, *attempts]) + 1
    checkpoint = latest_checkpoint(run_dir)
    submitted = resubmit(
        run_dir, attempt=attempt, checkpoint=str(checkpoint) if checkpoint else None,
        cluster=cluster,
    )  # fmt: skip
    if submitted.scheduler == "debug":
        from hpc_runner.control.submit import run_debug

        run_debug(submitted)
    return attempt, submitted.job_id, str(checkpoint or "")


def log_files(run_dir: Path) -> list[Path]:
    """submitit's stdout and stderr files of the run's current job (those that exist)."""
    record = job_record(run_dir)
    folder = record.folder(run_dir)
    names = [f"{record.job_id}_0_log.out", f"{record.job_id}_0_log.err"]
    return [folder / name for name in names if (folder / name).exists()]


def follow_run(
    run_dir: Path,
    *,
    interval_s: float = 2.0,
    scheduler_interval_s: float = 15.0,
    print_line: Callable[[str], None] = print,
    reports_limit_s: float = 300.0,
) -> RunView:
    """Print a line whenever the run's progress changes, until it reaches a final state.

    The node's messages are shown as they come (attempts, requeues, stop requests), except the
    per-checkpoint ones. After the final state the job may still report (PSNR, predictions):
    those are awaited until the job has ended (at most ``reports_limit_s``). The scheduler is
    asked every ``scheduler_interval_s`` so that a job that died without a final record
    (killed, cancelled before it started) ends the loop too.
    """
    record = read_job_file(run_dir)
    tail, run = StatusTail(run_dir / STATUS_FILE), RunState()
    poller = SchedulerPoller(scheduler_interval_s)
    last, shown = "", float("-inf")
    final: RunView | None = None
    deadline = float("inf")
    while True:
        scheduler = poller.states({run_dir: record}).get(run_dir) if record else None
        follow(tail, run)
        if final is None:
            state, reason = reconcile(run.status.state, scheduler)
            line = progress_line(run, state, scheduler)
            if line != last:
                print_line(line)
                last = line
        for moment, message in list(run.debug):
            if moment > shown:
                shown = moment
                if not message.startswith("checkpoint saved"):
                    print_line(f"  {message}")
        if final is None and state in FINAL_STATES:
            if reason or run.exception:
                print_line(f"  {reason or run.exception}")
            final = RunView(state, reason, run, scheduler)
            poller = SchedulerPoller(min(3.0, scheduler_interval_s))  # the job is about to end
            deadline = time.monotonic() + reports_limit_s
        if final is not None and (
            scheduler is None or scheduler.ended or time.monotonic() > deadline
        ):
            return final
        time.sleep(interval_s)


def progress_line(run: RunState, state: TrainingState, scheduler: SchedulerState | None) -> str:
    """``TRAINING  epoch 3/60  batch 5/10  loss 0.1234  val 0.2345  attempt 0  [RUNNING]``."""
    status = run.status
    parts = [state.name]
    if status.epoch_idx >= 0:
        parts.append(f"epoch {status.epoch_idx + 1}/{status.max_epochs}")
    if status.batch_idx >= 0:
        parts.append(f"batch {status.batch_idx + 1}/{status.max_batches}")
    if status.loss != -1:
        parts.append(f"loss {status.loss:.4g}")
    if status.val_loss != -1:
        parts.append(f"val {status.val_loss:.4g}")
    parts.append(f"attempt {run.attempt}")
    if scheduler is not None:
        parts.append(f"[{scheduler.describe()}]")
    return "  ".join(parts)
