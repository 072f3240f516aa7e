"""The TUI's view of a run: its rebuilt :class:`RunState` plus what the screen derives from it.

Everything here is a pure function of an entry and a clock value, so that rows, elapsed times and
ETAs are tested directly and snapshots are reproducible (the app injects its clock).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from hpc_runner.control.jobfile import JobRecord
from hpc_runner.control.phase import RunPhase, derive_phase
from hpc_runner.control.scheduler import SchedulerState
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.status import TrainingState, TrainingStatus
from hpc_runner.tui.text import literal
from hpc_runner.watch.report import run_summary

STATE_STYLES = {
    TrainingState.IDLE: "yellow",
    TrainingState.TRAINING: "bold cyan",
    TrainingState.DONE: "green",
    TrainingState.STOPPED: "magenta",
    TrainingState.CRASHED: "bold red",
}

#: Sort by state: running first, then waiting, then what needs attention, then what is over.
STATE_ORDER = {
    TrainingState.TRAINING: 0,
    TrainingState.IDLE: 1,
    TrainingState.CRASHED: 2,
    TrainingState.STOPPED: 3,
    TrainingState.DONE: 4,
}

#: What the table can be sorted by, in the order the sort key cycles through them.
SORTS = ("name", "state", "val_loss")

#: State filters, in the order the filter key cycles through them (None = every run).
FILTERS: tuple[TrainingState | None, ...] = (None, *STATE_ORDER)

#: Progress is measured over this much recent record time for the ETA (seconds).
RATE_WINDOW = 600.0


@dataclass(eq=False)
class RunEntry:
    """One run as the TUI knows it.

    Attributes
    ----------
    key : str
        ``str(run_dir)``, the identity used by the watcher, the table and the screens.
    label : str
        Path relative to the watched directory (may hold any character: show with ``literal``).
    run_dir : Path
        The run directory.
    run : RunState
        The state rebuilt from the status file; its ``status`` is the evented model.
    loading : bool
        The file is still being read up to its end.
    error : str | None
        Why the status file could not be read last time.
    samples : deque of (record time, steps done)
        Recent progress, for the ETA.
    job : JobRecord | None
        The run's ``job.json`` (the records' ``job`` is shown before it is read).
    scheduler : SchedulerState | None
        What the scheduler last said about that job.
    """

    key: str
    label: str
    run_dir: Path
    run: RunState = field(default_factory=RunState)
    loading: bool = True
    error: str | None = None
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    job: JobRecord | None = None
    scheduler: SchedulerState | None = None

    @property
    def job_id(self) -> str | None:
        """The current job's id from ``job.json``."""
        return self.job.job_id if self.job is not None else None

    def phase(self, now: float) -> RunPhase:
        """The run's phase (:func:`hpc_runner.control.phase.derive_phase`, as everywhere)."""
        return derive_phase(self.run, self.job, self.scheduler, now=now)

    @property
    def state(self) -> TrainingState:
        """The state the status file says (the phase is what the user sees)."""
        return self.run.status.state

    def note_progress(self) -> None:
        """Remember (time of last record, steps done) after new records were applied."""
        done = steps_done(self.run.status)
        last = self.run.last_time
        if (
            done is not None
            and last is not None
            and (not self.samples or self.samples[-1] != (last, done))
        ):
            self.samples.append((last, done))

    def summary(self) -> dict[str, Any]:
        """The object ``hpc-runner status --json`` prints for this run."""
        return run_summary(
            self.label, self.run, job=self.job, scheduler=self.scheduler, run_dir=self.run_dir
        )


def steps_done(status: TrainingStatus) -> int | None:
    """Batches done over all epochs, if the status says enough to tell."""
    if status.max_batches <= 0 or status.epoch_idx < 0:
        return None
    batch = max(status.batch_idx, -1)
    return status.epoch_idx * status.max_batches + batch + 1


def steps_total(status: TrainingStatus) -> int | None:
    """Batches of the whole training, if the status says enough to tell."""
    if status.max_batches <= 0 or status.max_epochs <= 0:
        return None
    return status.max_epochs * status.max_batches


def elapsed(entry: RunEntry, now: float) -> float | None:
    """Seconds of training: until now while TRAINING, else until the last record."""
    run = entry.run
    if run.training_since is None:
        return None
    end = now if entry.state is TrainingState.TRAINING else (run.last_time or now)
    return max(0.0, end - run.training_since)


def progress_rate(entry: RunEntry) -> float | None:
    """Steps per second: over recent samples, else over a first attempt's whole history."""
    samples = entry.samples
    if len(samples) >= 2:
        last_time, last_done = samples[-1]
        for then, done_then in samples:
            if last_time - then <= RATE_WINDOW and last_time > then and last_done > done_then:
                return (last_done - done_then) / (last_time - then)
    run = entry.run
    done = steps_done(run.status)
    since, last = run.training_since, run.last_time
    if run.attempt == 0 and done and since is not None and last is not None and last > since:
        return done / (last - since)
    return None


def eta(entry: RunEntry, now: float) -> float | None:
    """Seconds until the last epoch ends, while TRAINING and once a rate is known."""
    status = entry.run.status
    if entry.state is not TrainingState.TRAINING:
        return None
    done, total, rate = steps_done(status), steps_total(status), progress_rate(entry)
    if done is None or total is None or not rate:
        return None
    since_last = max(0.0, now - (entry.run.last_time or now))
    return max(0.0, max(0, total - done) / rate - since_last)


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def format_number(value: float | None) -> str:
    """Losses with four significant digits; ``-`` for unknown (-1) or missing values."""
    if value is None or value == -1:
        return "-"
    return f"{value:.4g}"


def format_progress(index: int, total: int) -> str:
    """``3/10`` for the 0-based ``index`` 2 of 10; ``-`` before the first one."""
    if index < 0:
        return "-"
    return f"{index + 1}/{total}" if total > 0 else str(index + 1)


class NameCell(Text):
    """The name cell of a row; carries the run's key so that the table can re-sort by key."""

    run_key: str


def state_text(entry: RunEntry) -> Text:
    """The coloured state, with ``!`` if the file could not be read, ``…`` while loading."""
    state = entry.state
    text = Text(state.name, style=STATE_STYLES[state])
    if entry.error:
        text.append(" !", style="bold red")
    elif entry.loading:
        text.append(" …", style="dim")
    return text


def row_cells(entry: RunEntry, now: float) -> tuple[Text, ...]:
    """The cells of the runs table, in :data:`hpc_runner.tui.runs_table.COLUMNS` order."""
    summary = entry.summary()
    name = NameCell(literal(entry.label).plain)
    name.run_key = entry.key
    scheduler = summary.get("scheduler_state")
    return (
        name,
        state_text(entry),
        literal(str(scheduler)) if scheduler else Text("-", style="dim"),
        Text(format_progress(summary["epoch_idx"], summary["max_epochs"])),
        Text(format_progress(summary["batch_idx"], summary["max_batches"])),
        Text(format_number(summary["loss"]), justify="right"),
        Text(format_number(summary["best_val_loss"]), justify="right"),
        Text(format_duration(elapsed(entry, now)), justify="right"),
        Text(format_duration(eta(entry, now)), justify="right"),
        Text(str(summary["attempt"]), justify="right"),
    )


def sort_key(entry: RunEntry, by: str) -> tuple[Any, ...]:
    """Sort key of a run for one of :data:`SORTS`; ties are broken by name."""
    name = entry.label.casefold()
    if by == "state":
        return (STATE_ORDER[entry.state], name)
    if by == "val_loss":
        best = entry.run.best_val_loss
        return (best is None, best if best is not None else 0.0, name)
    return (name,)
