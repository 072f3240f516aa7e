"""Plain summaries of runs for scripts: the objects of ``hpc-runner status --json``.

Every view that prints runs - ``status`` (table, ``--json``, ``--csv``), ``--summary``, the
Python API - builds them here, with the run's phase from :func:`hpc_runner.control.phase.
derive_phase`, so that no two views can tell a run's story differently.

Values: the TrainingStatus fields (``max_epochs``, ``epoch_idx``, ``max_batches``,
``batch_idx``, ``loss``, ``val_loss``) keep the seed's ``-1`` for "unknown", as the contract in
shared/DESIGN.md says; every key beyond them is ``null`` (None) when unknown. A loss that was
recorded but is not finite (the training diverged) stays NaN (or infinity) in these objects, so
that a text view can say so (:func:`hpc_runner.watch.numbers.format_loss`); JSON, which cannot
write it, has ``null`` (:func:`hpc_runner.stream.text.json_text`), CSV an empty cell.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import msgspec

from hpc_runner.control.jobfile import JobRecord
from hpc_runner.control.phase import Phase, derive_phase
from hpc_runner.control.scheduler import SchedulerState
from hpc_runner.stream.previews import preview_file, preview_history, psnr_curve
from hpc_runner.stream.record_values import ModelLocation
from hpc_runner.stream.run_reader import read_runs
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.runs import (
    BEST_CHECKPOINT_DIR,
    STATUS_FILE,
    WORK_DIR,
    find_runs,
    latest_checkpoint,
    run_label,
)
from hpc_runner.watch.efficiency import efficiency_json, facts_of
from hpc_runner.watch.resources import environment_json, resources_json, run_forecast


def best_val_loss(run: RunState) -> float | None:
    """The lowest finite val_loss; NaN when every val_loss recorded was not finite (the
    training diverged before its first finite validation), None before the first one. Ranking
    passes over both (:mod:`hpc_runner.watch.results`); a text view shows them apart."""
    best = run.best_val_loss
    return math.nan if best is None and run.val_losses else best


def run_summary(
    label: str,
    run: RunState,
    *,
    job: JobRecord | None = None,
    scheduler: SchedulerState | None = None,
    run_dir: Path | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The JSON object of one run (keys fixed by shared/DESIGN.md, then hpc-runner's own).

    ``job`` is the run's ``job.json`` and ``scheduler`` what the scheduler says about its
    current job; together with the status file they give ``phase`` and ``reason``. With
    ``run_dir``, a run that ended without recording its model names the checkpoints on disk.
    """
    now = time.time() if now is None else now
    status = run.status
    phase = derive_phase(run, job, scheduler, now=now)
    look = phase.phase.final or run.model is not None
    on_disk = checkpoints_on_disk(run_dir) if run_dir and look and needs_disk(run) else None
    model = offered_model(run, on_disk)
    evaluation = run.evaluation
    outlook = run_forecast(run, now) if phase.phase is Phase.TRAINING else None
    return {
        "run": label,
        "state": status.state.name,
        "phase": phase.phase.value,
        "reason": phase.reason,
        "max_epochs": status.max_epochs,
        "epoch_idx": status.epoch_idx,
        "max_batches": status.max_batches,
        "batch_idx": status.batch_idx,
        "loss": status.loss,
        "val_loss": status.val_loss,
        "best_val_loss": best_val_loss(run),
        "attempt": run.attempt,
        "skipped_lines": run.skipped_lines,
        "error": run.error,
        "scheduler_state": scheduler.state if scheduler else None,
        "scheduler_reason": scheduler.reason if scheduler else None,
        "scheduler_age_s": _age(scheduler, now),
        "job": job.job_id if job else run.job,
        "host": run.host,
        "updated": run.last_time,
        "exception": _exception(run),
        "model": model.to_json() if model else None,
        "psnr": evaluation.psnr_after if evaluation else None,
        "evaluation": {
            "ground_truth": evaluation.ground_truth,
            "psnr_before": evaluation.psnr_before,
            "psnr_after": evaluation.psnr_after,
        }
        if evaluation
        else None,
        "environment": environment_json(run),
        "resources": resources_json(run, outlook),
        "time_limit_warning": outlook.warning if outlook else None,
        "efficiency": efficiency_json(facts_of(run)) if phase.phase.final else None,
        **preview_facts(run, run_dir),
    }


def preview_facts(run: RunState, run_dir: Path | None) -> dict[str, Any]:
    """``preview`` (the newest picture: absolute with ``run_dir``, else relative to the run),
    ``preview_epoch``, ``preview_psnr`` (its crop's PSNR) and ``psnr_history``
    (``[[epoch, psnr], ...]`` of every preview that measured one); null where none."""
    latest = run.preview
    if latest is None:
        return {"preview": None, "preview_epoch": None, "preview_psnr": None, "psnr_history": None}
    found = preview_file(run_dir or "", latest.path)  # a name the node never writes: none
    path = None if found is None else str(found.absolute()) if run_dir else latest.path
    curve = psnr_curve(preview_history(run.preview_epochs, run.preview_psnrs))
    return {
        "preview": path,
        "preview_epoch": latest.epoch,
        "preview_psnr": latest.psnr,
        "psnr_history": curve or None,
    }


def _age(scheduler: SchedulerState | None, now: float) -> float | None:
    if scheduler is None or scheduler.asked is None:
        return None
    return round(max(0.0, now - scheduler.asked), 1)


def _exception(run: RunState) -> str | None:
    if run.exception is None:
        return None
    return f"{run.exception.exc_type}: {run.exception.message}"


def needs_disk(run: RunState) -> bool:
    """Whether the checkpoints on disk say more than the run recorded: it recorded no model (it
    was killed, or still trains), or an earlier attempt did and a newer one trained since."""
    return run.model is None or run.model_attempt < run.attempt


def offered_model(run: RunState, on_disk: ModelLocation | None) -> ModelLocation | None:
    """The model a run offers, for every view: the one it recorded, else what is on disk
    (:func:`checkpoints_on_disk`, looked up by the caller where :func:`needs_disk`).

    A model recorded by an earlier attempt is taken as it stands after the newer attempts
    (they train, crashed or were killed without recording theirs): the last checkpoint is the
    newest on disk, where a resume continues from. The best one keeps its path, but its
    recorded val_loss and epoch hold only while no newer validation was lower; else the best
    checkpoint may be a newer model, whose loss is not recorded, and they are unknown.
    """
    model = run.model
    if model is None or run.model_attempt >= run.attempt:
        return model if model is not None else on_disk
    best, recorded = run.best_val_loss, model.best_val_loss
    stale = recorded is not None and best is not None and best < recorded
    newest = on_disk.checkpoint if on_disk is not None else None
    return msgspec.structs.replace(
        model,
        checkpoint=newest or model.checkpoint,
        best_val_loss=None if stale else recorded,
        best_epoch=None if stale else model.best_epoch,
    )


def checkpoints_on_disk(run_dir: Path) -> ModelLocation | None:
    """The checkpoints a run left without recording them (it crashed, or was killed): the newest
    one, and the best-val_loss one hpc-runner keeps (``checkpoints/best/``), if any."""
    work = Path(run_dir) / WORK_DIR
    try:
        found = [path for path in work.rglob("*.ckpt") if path.is_file()]
    except OSError:
        return None
    if not found:
        return None
    newest = latest_checkpoint(run_dir)
    best = [path for path in found if path.parent.name == BEST_CHECKPOINT_DIR]
    return ModelLocation(
        checkpoint=str(newest.absolute()) if newest else None,
        best_checkpoint=str(best[0].absolute()) if best else None,
        work_dir=str(work.absolute()),
    )


def collect(root: str | Path, *, cache: bool = True) -> list[tuple[str, Path, RunState]]:
    """Every run below ``root``, folded from its status file, sorted by label.

    With ``cache``, a file read before decodes only what was appended since (see
    :mod:`hpc_runner.stream.run_reader`); the result is the same either way.
    """
    root = Path(root)
    run_dirs = find_runs(root)
    read = read_runs([run_dir / STATUS_FILE for run_dir in run_dirs], cache=cache)
    return [
        (run_label(root, run_dir), run_dir, item.run)
        for run_dir, item in zip(run_dirs, read, strict=True)
    ]


def summaries(root: str | Path, *, cache: bool = True) -> list[dict[str, Any]]:
    """``status --json``: every run below ``root`` with one batched scheduler query."""
    from hpc_runner.control.scheduler import job_records, scheduler_states

    runs = collect(root, cache=cache)
    jobs = job_records(run_dir for _, run_dir, _ in runs)
    schedulers = scheduler_states(jobs)  # one batched query; none without SLURM jobs
    now = time.time()
    return [
        run_summary(
            label,
            state,
            job=jobs.get(run_dir),
            scheduler=schedulers.get(run_dir),
            run_dir=run_dir,
            now=now,
        )
        for label, run_dir, state in runs
    ]
