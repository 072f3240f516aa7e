"""Following one run on the command line (``submit --watch`` without a terminal UI), and the
summary ``submit --watch`` ends with (also after the TUI).

A line whenever the run's phase or progress changes, the node's messages as they come, until
the run reaches a final phase and its job has ended (the node may still report after the
training's final state: PSNR, predictions). The phase is :func:`derive_phase`'s, as everywhere;
the summary's facts are ``status --json``'s (:func:`hpc_runner.watch.report.run_summary`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from hpc_runner.control.jobfile import JobFileError, read_job_file
from hpc_runner.control.phase import RunPhase, derive_phase, format_duration
from hpc_runner.control.scheduler import SchedulerPoller, scheduler_states
from hpc_runner.stream.files import reason_of
from hpc_runner.stream.run_state import RunState, follow, replay
from hpc_runner.stream.runs import STATUS_FILE
from hpc_runner.stream.tail import StatusTail
from hpc_runner.watch.events import EVENT_PHASES, EventCommand, RunEvent
from hpc_runner.watch.numbers import format_loss
from hpc_runner.watch.report import run_summary


def follow_run(
    run_dir: Path,
    *,
    interval_s: float = 2.0,
    scheduler_interval_s: float = 10.0,
    print_line: Callable[[str], None] = print,
    reports_limit_s: float = 300.0,
    on_event: EventCommand | None = None,
) -> RunPhase:
    """Print the run's progress until it reaches a final phase; return that phase.

    The node's messages are shown as they come (attempts, requeues, stop requests), except the
    per-checkpoint ones. After the final phase the job may still report (PSNR, predictions):
    those are awaited until the job has ended (at most ``reports_limit_s``). ``on_event`` is
    run once when the run reaches DONE, CRASHED, LOST or STOPPED.
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
        scheduler = poller.states({run_dir: job}).get(run_dir)
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
            if on_event is not None and phase.phase.value in EVENT_PHASES:
                event = RunEvent(run_dir.name, phase.phase.value, phase.reason, run_dir)
                try:
                    on_event.run(event)
                except OSError as exc:
                    print_line(f"--on-event {on_event.describe()}: {reason_of(exc)}")
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
        parts.append(f"loss {format_loss(status.loss)}")
    if status.val_loss != -1:
        parts.append(f"val {format_loss(status.val_loss)}")
    parts.append(f"attempt {run.attempt}")
    if phase.reason:
        parts.append(f"({phase.reason})")
    return "  ".join(parts)


def final_summary(run_dir: Path) -> tuple[list[str], RunPhase]:
    """What ``submit --watch`` ends with: the phase and how long it trained, the PSNR, the best
    model, and what to do next; lines to print (through ``terminal_safe``) and the phase.

    Read afresh (the status file, ``job.json``, one scheduler query), so that it tells the
    same story as ``hpc-runner status --json`` would.
    """
    run = replay(run_dir / STATUS_FILE)
    try:
        job = read_job_file(run_dir)
    except JobFileError:
        job = None
    scheduler = scheduler_states({run_dir: job}).get(run_dir)
    summary = run_summary(run_dir.name, run, job=job, scheduler=scheduler, run_dir=run_dir)
    phase = derive_phase(run, job, scheduler, now=time.time())
    took = None
    if run.first_time is not None and run.last_time is not None:
        took = run.last_time - run.first_time
    head = f"{phase.describe()}: {run_dir.name}"
    if took is not None:
        head += f" after {format_duration(took)}"
    if summary["job"]:
        head += f" (job {summary['job']})"
    lines = [head]
    evaluation = summary["evaluation"]
    if evaluation is not None and evaluation["psnr_after"] is not None:
        before = evaluation["psnr_before"]
        noisy = f" (input {before:.2f} dB)" if before is not None else ""
        truth = Path(evaluation["ground_truth"]).name
        lines.append(f"  PSNR: {evaluation['psnr_after']:.2f} dB{noisy} against {truth}")
    model = summary["model"] or {}
    best = model.get("best_checkpoint") or model.get("checkpoint")
    if best:
        saved = []
        if model.get("best_val_loss") is not None:
            saved.append(f"val_loss {format_loss(model['best_val_loss'])}")
        if model.get("best_epoch") is not None:
            saved.append(f"epoch {model['best_epoch'] + 1}")
        lines.append(f"  model: {best}" + (f" ({', '.join(saved)})" if saved else ""))
    for key in ("bmz_archive", "predictions"):
        if model.get(key):
            lines.append(f"  {key.replace('_', ' ')}: {model[key]}")
    lines.append(f"  run directory: {run_dir}")
    if phase.phase.live:
        lines.append(f"  still {phase.phase.value.lower()}: hpc-runner watch {run_dir}")
    elif phase.phase.value in ("CRASHED", "LOST"):
        lines.append(f"  its output: hpc-runner logs {run_dir}")
    return lines, phase
