"""The TUI's view of a run: its rebuilt :class:`RunState` plus what the screen derives from it.

Everything here is a pure function of an entry and a clock value, so that rows, elapsed times and
ETAs are tested directly and snapshots are reproducible (the app injects its clock).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from hpc_runner.control.jobfile import JobRecord
from hpc_runner.control.phase import Phase, RunPhase, derive_phase, format_duration
from hpc_runner.control.scheduler import SchedulerState
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.status import TrainingState, TrainingStatus
from hpc_runner.tui.text import printable
from hpc_runner.watch.report import run_summary
from hpc_runner.watch.resources import run_forecast

#: How each phase is coloured wherever it is shown (table, status line, detail title).
PHASE_STYLES: dict[Phase, str] = {
    Phase.QUEUED: "yellow",
    Phase.STARTING: "cyan",
    Phase.TRAINING: "bold cyan",
    Phase.REQUEUED: "yellow",
    Phase.STALLED: "bold dark_orange",
    Phase.DONE: "green",
    Phase.STOPPED: "magenta",
    Phase.CRASHED: "bold red",
    Phase.CANCELLED: "magenta",
    Phase.LOST: "bold red",
}

#: Sort by phase: what runs or waits first, then what needs attention, then what is over.
PHASE_ORDER: tuple[Phase, ...] = (
    Phase.TRAINING,
    Phase.STARTING,
    Phase.REQUEUED,
    Phase.QUEUED,
    Phase.STALLED,
    Phase.LOST,
    Phase.CRASHED,
    Phase.CANCELLED,
    Phase.STOPPED,
    Phase.DONE,
)
PHASE_RANK = {phase: rank for rank, phase in enumerate(PHASE_ORDER)}

#: Phases in which the clock alone moves what a row shows (elapsed time; TRAINING to STALLED).
CLOCK_PHASES = frozenset({Phase.TRAINING, Phase.STALLED})

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
    sweep : str | None
        The label of the sweep directory the run belongs to (None: a run of its own).
    params : dict
        The run's sweep values as shown (dotted key -> short text).
    param_values : dict
        The same values as recorded, to sort by (numbers as numbers).
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
    sweep: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    param_values: dict[str, Any] = field(default_factory=dict)

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

    def summary(self, now: float) -> dict[str, Any]:
        """The object ``hpc-runner status --json`` prints for this run, at the app's ``now``.

        Without ``run_dir``: ``run_summary`` would look for checkpoints on disk, which is no
        work for the UI thread (the detail view reads them on a worker, see ``watch.meta``).
        """
        return run_summary(self.label, self.run, job=self.job, scheduler=self.scheduler, now=now)

    def scheduler_age(self, now: float) -> float | None:
        """Seconds since the scheduler answered about this run's job (None: never asked)."""
        asked = self.scheduler.asked if self.scheduler is not None else None
        return None if asked is None else max(0.0, now - asked)


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
    """Seconds of training: until now while the phase says it trains (or stalls), else until
    the last record (a run killed for memory has a file that still says TRAINING)."""
    run = entry.run
    if run.training_since is None:
        return None
    training = entry.phase(now).phase in CLOCK_PHASES
    end = now if training else (run.last_time or now)
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
    """Seconds until the last epoch ends, in phase TRAINING and once a rate is known: from the
    node's throughput samples where it wrote them (the ``resources.eta_s`` of ``status
    --json``), else from the times of its records."""
    status = entry.run.status
    if entry.phase(now).phase is not Phase.TRAINING:
        return None
    if entry.run.resources.latest is not None:
        return run_forecast(entry.run, now).eta_s
    done, total, rate = steps_done(status), steps_total(status), progress_rate(entry)
    if done is None or total is None or not rate:
        return None
    since_last = max(0.0, now - (entry.run.last_time or now))
    return max(0.0, max(0, total - done) / rate - since_last)


def format_progress(index: int, total: int) -> str:
    """``3/10`` for the 0-based ``index`` 2 of 10; ``-`` before the first one."""
    if index < 0:
        return "-"
    return f"{index + 1}/{total}" if total > 0 else str(index + 1)


def phase_text(entry: RunEntry, now: float) -> Text:
    """``QUEUED (Priority)``: the phase coloured, then its reason; ``!`` if the file could not be
    read, ``…`` while it is still being read (before the reason, which the table truncates)."""
    phase = entry.phase(now)
    text = Text()
    text.append(phase.phase.value, style=PHASE_STYLES[phase.phase])  # the phase only
    if entry.error:
        text.append(" !", style="bold red")
    elif entry.loading:
        text.append(" …", style="dim")
    if phase.reason:
        text.append(f" ({printable(phase.reason, one_line=True)})")
    return text


def eta_cell(entry: RunEntry, summary: dict[str, Any], now: float) -> Text:
    """The ETA, flagged ``!`` in yellow when the run will not finish within its time limit
    (``time_limit_warning`` of ``status --json``; the detail view says how far it gets)."""
    text = Text(format_duration(eta(entry, now)), justify="right")
    if summary.get("time_limit_warning"):
        text.append("!", style="bold yellow")
    return text


def present_phases(entries: Iterable[RunEntry], now: float) -> list[Phase]:
    """The phases some run is in, in :data:`PHASE_ORDER` (what the filter key cycles over)."""
    present = {entry.phase(now).phase for entry in entries}
    return [phase for phase in PHASE_ORDER if phase in present]


def next_filter(current: Phase | None, present: list[Phase]) -> Phase | None:
    """The filter after ``current``: every run (None), then each phase present, then all again.

    A filter whose phase has emptied meanwhile moves on to the next present phase after it.
    """
    if current is None:
        return present[0] if present else None
    rank = PHASE_RANK[current]
    later = [phase for phase in present if PHASE_RANK[phase] > rank]
    return later[0] if later else None
