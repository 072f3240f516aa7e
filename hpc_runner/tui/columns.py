"""The runs table's columns: what each cell shows and how each column sorts, in one place.

Every value comes from :func:`hpc_runner.watch.report.run_summary` (the ``status --json``
object) or the entry's own derived facts (elapsed, ETA), so that the table cannot tell a run's
story differently from ``status``. A sweep's varied parameters are columns too
(:func:`param_column`), named ``param:<dotted key>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.console import JustifyMethod
from rich.text import Text

from hpc_runner.control.phase import RunPhase, format_duration
from hpc_runner.tui.model import (
    PHASE_RANK,
    RunEntry,
    elapsed,
    eta,
    format_number,
    format_progress,
    phase_text,
    steps_done,
)
from hpc_runner.tui.text import literal


@dataclass(frozen=True)
class Column:
    """One column of the runs table.

    Attributes
    ----------
    key : str
        Its name in code, tests and the sort label (``param:training.lr`` for a parameter).
    header : str
        What the header row says.
    width : int
        The least width; a cell beyond it is cut with ``…`` (unless the column ``grows``).
    right : bool
        Numbers are right-aligned, their headers too.
    grows : bool
        As wide as its widest cell: a count cut short (``198/30…``) is wrong.
    natural : int
        A flexible column (run name, phase) widens up to this when the terminal has room.
    """

    key: str
    header: str
    width: int
    right: bool = False
    grows: bool = False
    natural: int = 0


#: Every fixed column, in the order :func:`row_cells` returns cells and the table shows them.
FIXED: tuple[Column, ...] = (
    Column("name", "Run", 12, natural=48),
    Column("phase", "Phase", 11, natural=64),
    Column("epoch", "Epoch", 5, grows=True),
    Column("batch", "Batch", 5, grows=True),
    Column("loss", "Loss", 9, right=True),
    Column("best", "Best val", 9, right=True),
    Column("psnr", "PSNR", 6, right=True),
    Column("elapsed", "Time", 7, right=True),
    Column("eta", "ETA", 7, right=True),
    Column("gpu", "GPU", 4, right=True),
    Column("mem", "Mem", 7, right=True),
    Column("attempt", "Try", 3, right=True),
)
COLUMN_KEYS = tuple(column.key for column in FIXED)
BY_KEY = {column.key: column for column in FIXED}

#: Shown at any width (at 80 columns: run, phase, progress, loss, best val_loss).
ESSENTIAL = ("name", "phase", "epoch", "batch", "loss", "best")
#: Added while the terminal has room, most wanted first; ``params`` are a sweep's values.
EXTRAS = ("psnr", "eta", "elapsed", "params", "gpu", "mem", "attempt")
#: Shown only when some run has a value for them (no column of dashes).
SPARSE = frozenset({"psnr"})

PARAM_PREFIX = "param:"
#: A parameter column is at most this wide (a path value is its file name, cut with ``…``).
PARAM_WIDTH = 16


def param_column(key: str, header: str, widest: int) -> Column:
    """The column of one sweep parameter (``training.lr`` headed ``lr``)."""
    return Column(PARAM_PREFIX + key, header, max(len(header), min(PARAM_WIDTH, widest)))


def param_headers(keys: list[str]) -> dict[str, str]:
    """Short headers for dotted keys: the last part, or more where two would read the same."""
    headers = {}
    for key in keys:
        parts = key.split(".")
        for size in range(1, len(parts) + 1):
            short = ".".join(parts[-size:])
            if sum(1 for other in keys if other.split(".")[-size:] == parts[-size:]) == 1:
                break
        headers[key] = short
    return headers


# -- resources (issue 12's telemetry: read only through run_summary) ---------------------------


def resources_of(summary: dict[str, Any]) -> tuple[float | None, float | None]:
    """(GPU use in %, memory in bytes) from ``summary["resources"]``; None where unknown.

    The GPU figure is the mean use of the run's GPUs; memory is the GPUs' memory in use (or
    the peak torch reserved), else the process's resident memory.
    """
    resources = summary.get("resources")
    if not isinstance(resources, dict):
        return None, None
    gpus = [gpu for gpu in resources.get("gpus") or () if isinstance(gpu, dict)]
    use = [value for item in gpus if (value := _number(item.get("util_percent"))) is not None]
    gpu = math.fsum(use) / len(use) if use else _number(resources.get("gpu_util_percent"))
    used = [value for item in gpus if (value := _number(item.get("mem_used_bytes"))) is not None]
    memory = math.fsum(used) if used else None
    for key in ("gpu_mem_used_bytes", "torch_peak_bytes", "rss_bytes"):
        if memory is None:
            memory = _number(resources.get(key))
    return gpu, memory


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def format_bytes(value: float | None) -> str:
    """``512M``, ``7.9G``; ``-`` when unknown."""
    if value is None:
        return "-"
    for unit, size in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if value >= size:
            scaled = value / size
            return f"{scaled:.1f}{unit}" if scaled < 10 else f"{scaled:.0f}{unit}"
    return f"{value:.0f}B"


# -- cells -------------------------------------------------------------------------------------


def row_cells(entry: RunEntry, now: float) -> tuple[Text, ...]:
    """The cells of one run, in :data:`FIXED` order (parameters: :func:`param_cells`)."""
    summary = entry.summary(now)
    gpu, memory = resources_of(summary)
    psnr = summary.get("psnr")
    right: JustifyMethod = "right"
    return (
        literal(entry.label),
        phase_text(entry, now),
        Text(format_progress(summary["epoch_idx"], summary["max_epochs"])),
        Text(format_progress(summary["batch_idx"], summary["max_batches"])),
        Text(format_number(summary["loss"]), justify=right),
        Text(format_number(summary["best_val_loss"]), justify=right),
        Text("-" if psnr is None else f"{psnr:.2f}", justify=right),
        Text(format_duration(elapsed(entry, now)), justify=right),
        Text(format_duration(eta(entry, now)), justify=right),
        Text("-" if gpu is None else f"{gpu:.0f}%", justify=right),
        Text(format_bytes(memory), justify=right),
        Text(str(summary["attempt"]), justify=right),
    )


def param_cells(entry: RunEntry, keys: list[str]) -> tuple[Text, ...]:
    """The run's value of each parameter column (empty: not a run of a sweep with that key)."""
    return tuple(literal(entry.params.get(key, "")) for key in keys)


def has_value(entry: RunEntry, column: str) -> bool:
    """Whether a sparse column (PSNR) has something to show for this run."""
    evaluation = entry.run.evaluation
    return column == "psnr" and evaluation is not None and evaluation.psnr_after is not None


# -- sorting -----------------------------------------------------------------------------------


def sort_value(entry: RunEntry, column: str, now: float, phase: RunPhase | None = None) -> Any:
    """What a run sorts by in ``column``; None when it has no value (such runs go last)."""
    run = entry.run
    status = run.status
    if column == "name":
        return entry.label.casefold()
    if column == "phase":
        return PHASE_RANK[(phase or entry.phase(now)).phase]
    if column == "epoch":
        return status.epoch_idx if status.epoch_idx >= 0 else None
    if column == "batch":
        return steps_done(status)
    if column == "loss":
        return status.loss if status.loss != -1 and math.isfinite(status.loss) else None
    if column == "best":
        return run.best_val_loss
    if column == "psnr":
        return run.evaluation.psnr_after if run.evaluation is not None else None
    if column == "elapsed":
        return elapsed(entry, now)
    if column == "eta":
        return eta(entry, now)
    if column == "attempt":
        return run.attempt
    if column in ("gpu", "mem"):
        gpu, memory = resources_of(entry.summary(now))
        return gpu if column == "gpu" else memory
    if column.startswith(PARAM_PREFIX):
        return entry.param_values.get(column.removeprefix(PARAM_PREFIX))
    raise KeyError(column)


def comparable(value: Any) -> tuple[int, Any]:
    """Parameter values of mixed types sort numbers first, then text (never a TypeError)."""
    if isinstance(value, bool):
        return (1, str(value).lower())
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))


def sorted_keys(
    entries: list[RunEntry],
    column: str,
    now: float,
    *,
    reverse: bool = False,
    phases: dict[str, RunPhase] | None = None,
) -> list[str]:
    """Keys of ``entries`` sorted by ``column``: ``reverse`` turns the known values round
    exactly (ties keep name order), runs without a value stay last either way."""
    by_name = sorted(entries, key=lambda entry: entry.label.casefold())
    known: list[tuple[Any, str]] = []
    unknown: list[str] = []
    for entry in by_name:
        phase = phases.get(entry.key) if phases is not None else None
        value = sort_value(entry, column, now, phase)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            unknown.append(entry.key)
        else:
            known.append((comparable(value), entry.key))
    known.sort(key=lambda pair: pair[0], reverse=reverse)  # stable: ties keep name order
    return [key for _, key in known] + unknown


def sort_key(entry: RunEntry, by: str, now: float) -> tuple[Any, ...]:
    """Ascending sort key of one run (``val_loss`` is the ``best`` column); ties by name."""
    value = sort_value(entry, {"val_loss": "best"}.get(by, by), now)
    return (value is None, comparable(value) if value is not None else (0, 0), entry.label)
