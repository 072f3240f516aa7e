"""Results of a sweep: one row per run, ranked by best validation loss, exportable as CSV/JSON.

Rows come from the same place as ``hpc-runner status``: each run's status file, reconciled
with the scheduler (:mod:`hpc_runner.watch.report`), plus the values the sweep set for the run,
as the run itself records them (:func:`hpc_runner.control.sweep_runs.recorded_run`: its
``sweep_run.json``, else its entry in an older sweep's ``sweep.yaml`` checked against its
``run.yaml``). The best run is the DONE run with the lowest validation
loss it reached; its model is its best checkpoint (else its last one). Monitoring side: no
torch, no careamics.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: The columns of a result row, in CSV order (the sweep's keys follow as ``set:KEY`` columns).
COLUMNS = (
    "rank",
    "run",
    "state",
    "best_val_loss",
    "val_loss",
    "epoch",
    "max_epochs",
    "attempt",
    "scheduler_state",
    "reason",
    "model",
    "checkpoint",
    "best_checkpoint",
    "bmz_archive",
    "predictions",
)


def result_row(
    summary: dict[str, Any],
    overrides: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A result row from a ``status --json`` object (see :mod:`hpc_runner.watch.report`), with
    the values the sweep set for the run: ``overrides`` as the sweep file wrote them, ``values``
    with file paths absolute (what the run trained on)."""
    model = summary.get("model") or {}
    return {
        "rank": None,
        "run": summary["run"],
        "state": summary["state"],
        "best_val_loss": summary.get("best_val_loss"),
        "val_loss": summary.get("val_loss"),
        "epoch": summary["epoch_idx"] + 1 if summary["epoch_idx"] >= 0 else 0,
        "max_epochs": max(summary["max_epochs"], 0),
        "attempt": summary["attempt"],
        "scheduler_state": summary.get("scheduler_state"),
        "reason": summary.get("reason") or summary.get("exception"),
        "model": model.get("best_checkpoint")
        or model.get("checkpoint")
        or model.get("bmz_archive"),
        "checkpoint": model.get("checkpoint"),
        "best_checkpoint": model.get("best_checkpoint"),
        "bmz_archive": model.get("bmz_archive"),
        "predictions": model.get("predictions"),
        "overrides": dict(overrides or {}),
        "values": dict(values if values is not None else overrides or {}),
    }


def rank(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by best validation loss (lowest first; runs without one last, by name);
    ``rank`` numbers the runs that have one, 1 = best."""
    ordered = sorted(rows, key=lambda row: (_loss_key(row["best_val_loss"]), row["run"]))
    place = 0
    for row in ordered:
        if _loss_key(row["best_val_loss"]) != math.inf:
            place += 1
            row["rank"] = place
        else:
            row["rank"] = None
    return ordered


def _loss_key(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.inf


def best(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The DONE run with the lowest best validation loss, or None when no run is DONE with one."""
    candidates = [
        row
        for row in rows
        if row["state"] == "DONE" and _loss_key(row["best_val_loss"]) != math.inf
    ]
    return min(
        candidates, key=lambda row: (_loss_key(row["best_val_loss"]), row["run"]), default=None
    )


def sweep_results(root: str | Path, *, ask_scheduler: bool = True) -> list[dict[str, Any]]:
    """Ranked result rows of every run below ``root`` (a sweep directory, or a runs directory
    holding several sweeps: runs are then labelled ``sweep/run``)."""
    from hpc_runner.control.scheduler import job_records, scheduler_states
    from hpc_runner.control.sweep_runs import read_sweep_file, recorded_run
    from hpc_runner.watch.report import collect, run_summary

    root = Path(root)
    runs = collect(root)
    jobs = job_records(run_dir for _, run_dir, _ in runs)
    schedulers = scheduler_states(jobs) if ask_scheduler else {}
    manifests: dict[Path, dict[str, Any]] = {}
    rows = []
    for label, run_dir, state in runs:
        job = jobs.get(run_dir)
        scheduler = schedulers.get(run_dir)
        summary = run_summary(label, state, scheduler=scheduler, job=job.job_id if job else None)
        if run_dir.parent not in manifests:
            manifests[run_dir.parent] = read_sweep_file(run_dir.parent)
        # credited by what the run records it was made with, never by its name or position
        recorded = recorded_run(run_dir, manifests[run_dir.parent])
        rows.append(result_row(summary, recorded.overrides, recorded.values))
    return rank(rows)


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of result rows: :data:`COLUMNS`, then one ``set:KEY`` column per sweep key."""
    keys: list[str] = []
    for row in rows:
        keys += [key for key in row.get("overrides", {}) if key not in keys]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, *(f"set:{key}" for key in keys)])
    for row in rows:
        values = [_cell(row.get(column)) for column in COLUMNS]
        overrides = row.get("overrides", {})
        values += [_cell(overrides.get(key)) if key in overrides else "" for key in keys]
        writer.writerow(values)
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        import json

        return json.dumps(value)
    return str(value)
