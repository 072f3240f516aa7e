"""Results of a sweep: one row per run, ranked, exportable as CSV/JSON.

Rows come from the same place as ``hpc-runner status``: each run's status file, job.json and
the scheduler, with its phase (:mod:`hpc_runner.watch.report`), plus the values the sweep set
for the run, as the run itself records them (:func:`hpc_runner.control.sweep_runs.recorded_run`:
its ``sweep_run.json``, else its entry in an older sweep's ``sweep.yaml`` checked against its
``run.yaml``). Runs are ranked by PSNR against the spec's ground truth when every finished run
has one - for Noise2Void the validation loss is a self-supervised loss that says little about
image quality - else by the lowest validation loss each reached. The best run is the DONE run
ranked first; its model is its best-val_loss checkpoint (else its last one). Monitoring side:
no torch, no careamics.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hpc_runner.stream.files import open_regular
from hpc_runner.stream.runs import RUN_SPEC_FILE
from hpc_runner.watch.numbers import format_loss

#: The columns of a result row, in CSV order (the sweep's keys follow as ``set:KEY`` columns).
COLUMNS = (
    "rank",
    "run",
    "phase",
    "state",
    "psnr",
    "best_val_loss",
    "val_loss",
    "preview_psnr",
    "epoch",
    "max_epochs",
    "attempt",
    "scheduler_state",
    "reason",
    "model",
    "checkpoint",
    "best_checkpoint",
    "best_epoch",
    "model_val_loss",
    "algorithm",
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
    model_val_loss = model.get("best_val_loss")
    return {
        "rank": None,
        "run": summary["run"],
        "phase": summary["phase"],
        "state": summary["state"],
        "psnr": summary.get("psnr"),
        # measured against the ground truth: a null psnr then means a prediction that is not
        # finite (a training that diverged), not a run that cannot be compared
        "evaluated": summary.get("evaluation") is not None,
        "preview_psnr": summary.get("preview_psnr"),
        "preview": summary.get("preview"),
        # the val_loss of the model the run offers (its best checkpoint), where recorded: a
        # restart without a checkpoint hand-over trains afresh, and its best.ckpt is not the
        # lowest val_loss of every attempt, which would rank a model by another's loss
        "best_val_loss": model_val_loss
        if _finite(model_val_loss)
        else summary.get("best_val_loss"),
        "val_loss": summary.get("val_loss"),
        "epoch": summary["epoch_idx"] + 1 if summary["epoch_idx"] >= 0 else 0,
        "max_epochs": max(summary["max_epochs"], 0),
        "attempt": summary["attempt"],
        "scheduler_state": summary.get("scheduler_state"),
        "reason": summary.get("reason"),
        "error": summary.get("error"),
        "model": model.get("best_checkpoint")
        or model.get("checkpoint")
        or model.get("bmz_archive"),
        "checkpoint": model.get("checkpoint"),
        "best_checkpoint": model.get("best_checkpoint"),
        "bmz_archive": model.get("bmz_archive"),
        "predictions": model.get("predictions"),
        "best_epoch": model.get("best_epoch"),
        "model_val_loss": model.get("best_val_loss"),
        "algorithm": summary.get("algorithm"),
        "efficiency": summary.get("efficiency"),
        "overrides": dict(overrides or {}),
        "values": dict(values if values is not None else overrides or {}),
    }


#: What each ranking metric is, in a summary's words.
METRIC_NAMES = {
    "psnr": "PSNR against the ground truth",
    "preview_psnr": "PSNR of the last preview's crop against the ground truth",
    "best_val_loss": "best val_loss",
}


def ranking_metric(rows: Iterable[dict[str, Any]]) -> str:
    """What runs are ranked by: a quality measure where every DONE run has one, the training's
    loss otherwise.

    ``psnr`` (the whole image's, measured after training) when every DONE run has one; else
    ``preview_psnr`` (the crop's, of the last preview) when every DONE run has that; else
    ``best_val_loss``. Never a mix: a crop's PSNR is not comparable with a whole image's.
    A DONE run that diverged has no say: it is ranked last, and must not switch the whole sweep
    to val_loss. That is a run with no finite value of any of them, and, for ``psnr``, a run
    that was measured against the ground truth and got no finite PSNR (its early val_losses may
    well be finite).
    """
    done = [
        row
        for row in rows
        if row.get("phase", row["state"]) == "DONE"
        and any(_finite(row.get(metric)) for metric in METRIC_NAMES)
    ]
    if any(_finite(row.get("psnr")) for row in done) and all(
        _finite(row.get("psnr")) or row.get("evaluated") for row in done
    ):
        return "psnr"
    if done and all(_finite(row.get("preview_psnr")) for row in done):
        return "preview_psnr"
    return "best_val_loss"


def metric_text(row: dict[str, Any], metric: str) -> str:
    """``PSNR 25.61 dB``, ``preview PSNR 24.10 dB`` or ``best val_loss 0.0123``: a row's value."""
    value = row.get(metric)
    if not _finite(value):
        return f"{METRIC_NAMES[metric]}: none"
    if metric == "best_val_loss":
        return f"best val_loss {format_loss(value, digits=6)}"
    return f"{'preview ' if metric == 'preview_psnr' else ''}PSNR {value:.2f} dB"


def rank(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by :func:`ranking_metric` (best first; runs without a value last, by name);
    ``rank`` numbers the runs that have one, 1 = best. Runs of equal value share a rank (1, 1,
    3): the name that sorts first is no better than the other."""
    rows = list(rows)
    metric = ranking_metric(rows)
    ordered = sorted(rows, key=lambda row: (_key(row, metric), row["run"]))
    previous: tuple[float, int] | None = None
    for place, row in enumerate(ordered, start=1):
        key = _key(row, metric)
        if key == math.inf:
            row["rank"] = None
            continue
        if previous is None or previous[0] != key:
            previous = (key, place)
        row["rank"] = previous[1]
    return ordered


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _key(row: dict[str, Any], metric: str) -> float:
    """Lower is better: the loss itself, or the PSNR negated."""
    value = row.get(metric)
    if not isinstance(value, int | float) or not math.isfinite(value):
        return math.inf
    return float(value) if metric == "best_val_loss" else -float(value)


def _contenders(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """The runs that can be named best: DONE, with a value to rank by."""
    return [
        row
        for row in rows
        if row.get("phase", row["state"]) == "DONE" and _key(row, metric) != math.inf
    ]


def best(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The DONE run ranked first, or None when no run is DONE with a value to rank by."""
    rows = list(rows)
    metric = ranking_metric(rows)
    candidates = _contenders(rows, metric)
    return min(candidates, key=lambda row: (_key(row, metric), row["run"]), default=None)


def tied_with(rows: Iterable[dict[str, Any]], winner: dict[str, Any]) -> list[str]:
    """The other DONE runs exactly as good as ``winner`` (:func:`best` names one of them, the
    first by name), by name."""
    rows = list(rows)
    metric = ranking_metric(rows)
    key = _key(winner, metric)
    return sorted(
        row["run"]
        for row in _contenders(rows, metric)
        if row is not winner and _key(row, metric) == key
    )


def sweep_results(
    root: str | Path, *, ask_scheduler: bool = True, cache: bool = True
) -> list[dict[str, Any]]:
    """Ranked result rows of every run below ``root`` (a sweep directory, or a runs directory
    holding several sweeps: runs are then labelled ``sweep/run``)."""
    from hpc_runner.control.scheduler import job_records, scheduler_states
    from hpc_runner.control.sweep_runs import read_sweep_file, recorded_run
    from hpc_runner.watch.report import collect, run_summary

    root = Path(root)
    runs = collect(root, cache=cache)
    jobs = job_records(run_dir for _, run_dir, _ in runs)
    schedulers = scheduler_states(jobs) if ask_scheduler else {}
    manifests: dict[Path, dict[str, Any]] = {}
    rows = []
    for label, run_dir, state in runs:
        job = jobs.get(run_dir)
        scheduler = schedulers.get(run_dir)
        summary = run_summary(label, state, job=job, scheduler=scheduler, run_dir=run_dir)
        summary["algorithm"] = run_algorithm(run_dir)
        if run_dir.parent not in manifests:
            manifests[run_dir.parent] = read_sweep_file(run_dir.parent)
        # credited by what the run records it was made with, never by its name or position
        recorded = recorded_run(run_dir, manifests[run_dir.parent])
        rows.append(result_row(summary, recorded.overrides, recorded.values))
    return rank(rows)


_ALGORITHM = re.compile(rb"^\s+algorithm:\s*([\w-]+)\s*$", re.M)


def run_algorithm(run_dir: Path) -> str | None:
    """The careamics algorithm of a run (``n2v``, ``care``, ``n2n``) from its ``run.yaml``.

    A pattern over the text rather than a YAML parse: a summary of hundreds of runs must not
    parse hundreds of careamics configurations to learn one word each.
    """
    try:  # a regular file only: a FIFO there would block the summary (and api.results)
        with os.fdopen(open_regular(Path(run_dir) / RUN_SPEC_FILE), "rb") as handle:
            match = _ALGORITHM.search(handle.read(1 << 16))
    except OSError:
        return None
    return match.group(1).decode() if match else None


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
    """A CSV cell; text a spreadsheet would run as a formula is made text (``spreadsheet_safe``)."""
    from hpc_runner.stream.text import spreadsheet_safe

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""  # as --json's null: a loss that diverged (see watch.numbers)
    if isinstance(value, list | dict):
        import json

        return json.dumps(value)
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return str(value)
