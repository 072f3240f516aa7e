"""Plain summaries of runs for scripts: the objects of ``hpc-runner status --json``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hpc_runner.control.scheduler import SchedulerState, reconcile
from hpc_runner.stream.run_state import RunState, replay
from hpc_runner.stream.runs import STATUS_FILE, find_runs, run_label


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run_summary(
    label: str,
    run: RunState,
    *,
    scheduler: SchedulerState | None = None,
    job: str | None = None,
) -> dict[str, Any]:
    """The JSON object of one run (keys fixed by shared/DESIGN.md; NaN losses become null).

    ``scheduler`` is what the scheduler says about the run's current job (``job``, from its
    job.json): a file still saying IDLE or TRAINING about a job that ended is shown STOPPED or
    CRASHED, with ``reason`` saying why (see :func:`hpc_runner.control.scheduler.reconcile`).
    """
    status = run.status
    state, reason = reconcile(status.state, scheduler)
    return {
        "run": label,
        "state": state.name,
        "max_epochs": status.max_epochs,
        "epoch_idx": status.epoch_idx,
        "max_batches": status.max_batches,
        "batch_idx": status.batch_idx,
        "loss": _finite_or_none(status.loss),
        "val_loss": _finite_or_none(status.val_loss),
        "best_val_loss": run.best_val_loss,
        "attempt": run.attempt,
        "skipped_lines": run.skipped_lines,
        "error": run.error,
        "scheduler_state": scheduler.state if scheduler else None,
        "scheduler_reason": scheduler.reason if scheduler else None,
        "reason": reason,
        "job": job or run.job,
        "host": run.host,
        "updated": run.last_time,
        "exception": run.exception.exc_type + ": " + run.exception.message
        if run.exception
        else None,
        "model": run.model.to_json() if run.model else None,
    }


def collect(root: str | Path) -> list[tuple[str, Path, RunState]]:
    """Every run below ``root``, replayed from its status file, sorted by label."""
    root = Path(root)
    return [
        (run_label(root, run_dir), run_dir, replay(run_dir / STATUS_FILE))
        for run_dir in find_runs(root)
    ]
