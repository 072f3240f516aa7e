"""``hpc-runner status DIR --summary``: a sweep's runs ranked by best val_loss, and the winner.

Kept out of ``status_cmd`` so that the plain status table stays as it is; standard library
only at import, like every command module. Everything printed goes through
:func:`hpc_runner.stream.text.terminal_safe` (run names, model paths and exception messages come
from run directories); CSV cells are also guarded against spreadsheet formulas.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

SUMMARY_COLUMNS = ("RANK", "RUN", "PHASE", "PSNR", "BEST_VAL_LOSS", "EPOCH", "ATTEMPT", "MODEL")


def print_summary(
    root: Path, *, as_json: bool = False, as_csv: bool = False, cache: bool = True
) -> int:
    """Print the ranked runs below ``root`` (table, JSON object or CSV); exit code 0."""
    from hpc_runner.stream.text import json_text, terminal_safe
    from hpc_runner.watch.efficiency import efficiency_json
    from hpc_runner.watch.numbers import format_loss
    from hpc_runner.watch.results import (
        best,
        metric_text,
        ranking_metric,
        sweep_results,
        tied_with,
        to_csv,
    )

    rows = sweep_results(root, cache=cache)
    winner = best(rows)
    metric = ranking_metric(rows)
    efficiency = sweep_efficiency(rows)
    if as_json:
        payload = {
            "best": winner,
            "tied_with": tied_with(rows, winner) if winner else [],
            "ranked_by": metric,
            "runs": rows,
            "efficiency": efficiency_json(efficiency),
        }
        print(json_text(payload))
        return 0
    if as_csv:
        print(terminal_safe(to_csv(rows)), end="")
        return 0
    if not rows:
        print(f"no runs below {_printable(str(root))}")
        return 0
    table = [SUMMARY_COLUMNS, *(_summary_row(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(SUMMARY_COLUMNS))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    for row in rows:
        if row.get("error"):
            print(_printable(f"{row['run']}: {row['error']}"))
    for note in _quality_notes(rows, metric):
        print(note)
    _print_efficiency(efficiency, len(rows))
    if winner is None:
        print("best: none yet (no run is DONE with a value to rank by)")
        return 0
    print(f"best: {_printable(winner['run'])} ({metric_text(winner, metric)})")
    tied = tied_with(rows, winner)
    if tied:
        print(f"  tied with: {', '.join(_printable(name) for name in tied)} (as good; named first)")
    saved = ""
    if winner["best_epoch"] is not None and winner["model_val_loss"] is not None:
        val_loss = format_loss(winner["model_val_loss"], digits=6)
        saved = f" (saved at epoch {winner['best_epoch'] + 1}, val_loss {val_loss})"
    print(f"  model: {_printable(winner['model'] or '-')}{saved}{_gone(winner['model'])}")
    for key in ("bmz_archive", "predictions"):
        if winner[key]:
            print(f"  {key.replace('_', ' ')}: {_printable(winner[key])}{_gone(winner[key])}")
    return 0


def _gone(path: str | None) -> str:
    """A note for a file the run recorded that is no longer there (checkpoints deleted to free
    space, a run directory copied without them): the summary is read days later, and must not
    send the user to a model that does not exist."""
    if not path or os.path.lexists(path):
        return ""
    return " - not on disk any more"


def sweep_efficiency(rows: list[dict[str, Any]]) -> Any:
    """The efficiency of every ended run that sampled its resources, added up
    (:func:`hpc_runner.watch.efficiency.combine`); None when there is none."""
    from hpc_runner.watch.efficiency import EfficiencyFacts, combine

    facts = [EfficiencyFacts.from_json(row["efficiency"]) for row in rows if row.get("efficiency")]
    return combine(facts)


def _print_efficiency(efficiency: Any, runs: int) -> None:
    from hpc_runner.watch.efficiency import report_lines

    if efficiency is None:
        return
    which = "the run" if runs == 1 else f"{efficiency.runs} of {runs} runs (ended, sampled)"
    print(f"efficiency of {which}:")
    for line in report_lines(efficiency):
        print(f"  {line}")


def _quality_notes(rows: list[dict[str, Any]], metric: str) -> list[str]:
    """Say what the ranking means: Noise2Void's val_loss predicts masked noisy pixels, so it says
    little about how clean the result is; a PSNR against ground truth does."""
    if not any(row.get("algorithm") == "n2v" for row in rows):
        return []
    if metric != "best_val_loss":
        from hpc_runner.watch.results import METRIC_NAMES

        return [f"ranked by {METRIC_NAMES[metric]} (Noise2Void's val_loss is no measure of "
                "image quality)"]  # fmt: skip
    return [
        "note: Noise2Void's val_loss is a self-supervised loss, not a measure of image quality; "
        "give the spec an `evaluate: ground_truth:` image to rank by PSNR"
    ]


def _summary_row(row: dict[str, Any]) -> tuple[str, ...]:
    from hpc_runner.watch.numbers import format_loss

    return (
        str(row["rank"]) if row["rank"] is not None else "-",
        _printable(row["run"]),
        row["phase"],
        "-" if row.get("psnr") is None else f"{row['psnr']:.2f}",
        format_loss(row["best_val_loss"], digits=6),
        f"{row['epoch']}/{row['max_epochs']}" if row["max_epochs"] else str(row["epoch"] or "-"),
        str(row["attempt"]),
        _printable(row["model"] or "-"),
    )


def _printable(text: str) -> str:
    """Run names and paths come from run directories: control characters shown escaped."""
    from hpc_runner.stream.text import cell_text

    return cell_text(text)


def status_csv(summaries: list[dict[str, Any]]) -> str:
    """``status --csv``: the ``status --json`` objects as CSV, ``model`` split into columns.

    Text cells are safe on a terminal and in a spreadsheet (see :func:`_cell`); ``--json`` is
    the exact export.
    """
    model_keys: list[str] = []
    for summary in summaries:
        model_keys += [key for key in summary.get("model") or {} if key not in model_keys]
    columns = [key for key in (summaries[0] if summaries else {}) if key != "model"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*columns, *(f"model.{key}" for key in model_keys)])
    for summary in summaries:
        model = summary.get("model") or {}
        writer.writerow(
            [_cell(summary.get(column)) for column in columns]
            + [_cell(model.get(key)) for key in model_keys]
        )
    return out.getvalue()


def _cell(value: Any) -> str:
    from hpc_runner.stream.text import spreadsheet_safe, terminal_safe

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""  # as --json's null: a loss that diverged (see watch.numbers)
    if isinstance(value, str):  # numbers stay numbers: a negative loss is not a formula
        return terminal_safe(spreadsheet_safe(value))
    return str(value)
