"""The runs table's columns: what each cell shows and how each column sorts, in one place.

Every value comes from :func:`hpc_runner.watch.report.run_summary` (the ``status --json``
object) or the entry's own derived facts (elapsed, ETA), so that the table cannot tell a run's
story differently from ``status``. A sweep's varied parameters are columns too
(:func:`param_column`), named ``param:<dotted key>``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from hpc_runner.control.phase import RunPhase, format_duration
from hpc_runner.stream.resources import gpu_figures
from hpc_runner.tui.model import (
    PHASE_RANK,
    RunEntry,
    elapsed,
    eta,
    eta_cell,
    format_progress,
    phase_text,
    steps_done,
)
from hpc_runner.tui.text import literal, name_text
from hpc_runner.watch.numbers import format_loss
from hpc_runner.watch.resources import gpu_cell, memory_cell

#: What a cell shows: the run, its ``status --json`` summary, the time.
CellFn = Callable[[RunEntry, dict[str, Any], float], Text]
#: What a run sorts by: the run, the time, its phase (if known); None sorts last.
ValueFn = Callable[[RunEntry, float, RunPhase | None], Any]


def _no_value(entry: RunEntry, now: float, phase: RunPhase | None) -> Any:
    return None


def _blank(entry: RunEntry, summary: dict[str, Any], now: float) -> Text:
    return Text("")


@dataclass(frozen=True)
class Column:
    """One column of the runs table: a new column is one more :data:`FIXED` entry (and, to be
    shown, its key in :data:`ESSENTIAL` or :data:`EXTRAS`).

    Attributes
    ----------
    key : str
        Its name in code, tests and the sort label (``param:training.lr`` for a parameter).
    header : str
        What the header row says.
    width : int
        The least width; a cell beyond it is cut with ``…`` (unless the column ``grows``).
    cell : callable
        The cell of a run (from its summary: one truth with ``status``).
    value : callable
        What a run sorts by in this column (None: no value, sorted last).
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
    cell: CellFn = _blank
    value: ValueFn = _no_value
    right: bool = False
    grows: bool = False
    natural: int = 0


def _number_cell(text: str) -> Text:
    return Text(text, justify="right")


def _loss(entry: RunEntry, now: float, phase: RunPhase | None) -> float | None:
    loss = entry.run.status.loss
    return loss if loss != -1 and math.isfinite(loss) else None


def _epoch(entry: RunEntry) -> int | None:
    epoch = entry.run.status.epoch_idx
    return epoch if epoch >= 0 else None


def _psnr(entry: RunEntry, now: float, phase: RunPhase | None) -> float | None:
    evaluation = entry.run.evaluation
    return evaluation.psnr_after if evaluation is not None else None


def _latest_figure(entry: RunEntry, index: int) -> float | None:
    """GPU utilisation (0) or memory in use (1: the GPUs', else the process tree's) of the
    newest sample; None before the first."""
    latest = entry.run.resources.latest
    if latest is None:
        return None
    util, used, _ = gpu_figures(latest)
    return util if index == 0 else used if used is not None else latest.rss_bytes


def _psnr_cell(entry: RunEntry, summary: dict[str, Any], now: float) -> Text:
    psnr = summary.get("psnr")
    return _number_cell("-" if psnr is None else f"{psnr:.2f}")


#: Every fixed column, in the order :func:`row_cells` returns cells and the table shows them.
FIXED: tuple[Column, ...] = (
    Column(
        "name",
        "Run",
        12,
        lambda entry, summary, now: name_text(entry.label),
        lambda entry, now, phase: entry.label.casefold(),
        natural=48,
    ),
    Column(
        "phase",
        "Phase",
        11,
        lambda entry, summary, now: phase_text(entry, now),
        lambda entry, now, phase: PHASE_RANK[(phase or entry.phase(now)).phase],
        natural=64,
    ),
    Column(
        "epoch",
        "Epoch",
        5,
        lambda entry, s, now: Text(format_progress(s["epoch_idx"], s["max_epochs"])),
        lambda entry, now, phase: _epoch(entry),
        grows=True,
    ),
    Column(
        "batch",
        "Batch",
        5,
        lambda entry, s, now: Text(format_progress(s["batch_idx"], s["max_batches"])),
        lambda entry, now, phase: steps_done(entry.run.status),
        grows=True,
    ),
    Column(
        "loss",
        "Loss",
        9,
        lambda entry, s, now: _number_cell(format_loss(s["loss"])),
        _loss,
        right=True,
    ),
    Column(
        "best",
        "Best val",
        9,
        lambda entry, s, now: _number_cell(format_loss(s["best_val_loss"])),
        lambda entry, now, phase: entry.run.best_val_loss,
        right=True,
    ),
    Column("psnr", "PSNR", 6, _psnr_cell, _psnr, right=True),
    Column(
        "elapsed",
        "Time",
        7,
        lambda entry, s, now: _number_cell(format_duration(elapsed(entry, now))),
        lambda entry, now, phase: elapsed(entry, now),
        right=True,
    ),
    Column(
        "eta",
        "ETA",
        7,
        eta_cell,
        lambda entry, now, phase: eta(entry, now),
        right=True,
    ),
    Column(
        "attempt",
        "Try",
        3,
        lambda entry, s, now: _number_cell(str(s["attempt"])),
        lambda entry, now, phase: entry.run.attempt,
        right=True,
    ),
    Column(
        "gpu",
        "GPU%",
        4,
        lambda entry, s, now: _number_cell(gpu_cell(s["resources"])),
        lambda entry, now, phase: _latest_figure(entry, 0),
        right=True,
    ),
    Column(
        "mem",
        "Mem",
        8,
        lambda entry, s, now: _number_cell(memory_cell(s["resources"])),
        lambda entry, now, phase: _latest_figure(entry, 1),
        right=True,
    ),
)
COLUMN_KEYS = tuple(column.key for column in FIXED)
BY_KEY = {column.key: column for column in FIXED}

#: Shown at any width (at 80 columns: run, phase, progress, loss, best val_loss).
ESSENTIAL = ("name", "phase", "epoch", "batch", "loss", "best")
#: Added while the terminal has room, most wanted first; ``params`` are a sweep's values.
EXTRAS = ("psnr", "eta", "elapsed", "gpu", "mem", "params", "attempt")
#: Shown only when some run has a value for them (no column of dashes).
SPARSE = frozenset({"psnr", "gpu", "mem"})

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


# -- cells -------------------------------------------------------------------------------------


def row_cells(entry: RunEntry, now: float) -> tuple[Text, ...]:
    """The cells of one run, in :data:`FIXED` order (parameters: :func:`param_cells`)."""
    summary = entry.summary(now)
    return tuple(column.cell(entry, summary, now) for column in FIXED)


def param_cells(entry: RunEntry, keys: list[str]) -> tuple[Text, ...]:
    """The run's value of each parameter column (empty: not a run of a sweep with that key)."""
    return tuple(literal(entry.params.get(key, "")) for key in keys)


def has_value(entry: RunEntry, column: str) -> bool:
    """Whether a sparse column (PSNR) has something to show for this run."""
    return BY_KEY[column].value(entry, 0.0, None) is not None


# -- sorting -----------------------------------------------------------------------------------


def sort_value(entry: RunEntry, column: str, now: float, phase: RunPhase | None = None) -> Any:
    """What a run sorts by in ``column``; None when it has no value (such runs go last)."""
    if column.startswith(PARAM_PREFIX):
        return entry.param_values.get(column.removeprefix(PARAM_PREFIX))
    return BY_KEY[column].value(entry, now, phase)


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
