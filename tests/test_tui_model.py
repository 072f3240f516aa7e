"""The TUI's pure parts: literal text, durations, ETA, rows, sort keys, status line."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from hpc_runner.control.jobfile import JobRecord, Submission
from hpc_runner.control.phase import Phase, format_duration
from hpc_runner.control.scheduler import SchedulerState
from hpc_runner.stream.records import ExceptionData, Record, make_record
from hpc_runner.stream.status import TrainUpdateType
from hpc_runner.tui.columns import COLUMN_KEYS, row_cells, sort_key
from hpc_runner.tui.model import (
    RunEntry,
    elapsed,
    eta,
    format_progress,
    next_filter,
    present_phases,
)
from hpc_runner.tui.status_bar import scheduler_freshness, status_line
from hpc_runner.tui.text import literal, printable, strip_ansi
from hpc_runner.watch.numbers import format_loss


def record(kind: str, value: object, t: float, attempt: int = 0) -> Record:
    return make_record(TrainUpdateType(kind), value, t=t, seq=0, attempt=attempt)


def entry_with(*records: Record, label: str = "run") -> RunEntry:
    entry = RunEntry(label, label, Path(label))
    entry.run.apply(list(records))
    entry.note_progress()
    entry.loading = False
    return entry


def training(now_done: int = 10, *, t_start: float = 100.0, t_last: float = 150.0) -> RunEntry:
    """Epoch 0 of 2, 50 batches each; ``now_done`` batches done at ``t_last``."""
    return entry_with(
        record("max_epochs", 2, t_start),
        record("max_batches", 50, t_start),
        record("state", "TRAINING", t_start),
        record("epoch_idx", 0, t_start),
        record("batch_idx", now_done - 1, t_last),
    )


def test_printable_makes_every_control_character_visible() -> None:
    # one sanitiser for the TUI and the command line: hpc_runner.stream.text.terminal_safe
    assert printable("a\x1b[31mb\x07c\x7f\x9bd") == "a\\u001b[31mb\\u0007c\\u007f\\u009bd"
    assert printable("line1\nline2\tx") == "line1\nline2    x"
    assert printable("line1\r\nline2", one_line=True) == "line1\\r ⏎ line2"
    assert printable("\u202eevil") == "\\u202eevil"  # a right-to-left override reorders text
    text = literal("[bold red]x[/]")
    assert text.plain == "[bold red]x[/]" and text.spans == []


def test_strip_ansi_keeps_what_a_terminal_would_show() -> None:
    assert strip_ansi("\x1b[32mok\x1b[0m \x1b]0;title\x07done") == "ok done"
    assert strip_ansi("epoch 1:  10%\repoch 1:  50%\repoch 1: 100%\n") == "epoch 1: 100%\n"
    assert strip_ansi("windows\r\nline\r\n") == "windows\nline\n"
    assert strip_ansi("bell\x07 stays visible") == "bell\\u0007 stays visible"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (math.nan, "-"), (0, "0s"), (59.9, "59s"), (61, "1m01s"), (3600, "1h00m"),
     (7325, "2h02m"), (90000, "1d01h")],
)  # fmt: skip
def test_durations(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_progress_and_numbers() -> None:
    assert format_progress(-1, 10) == "-"
    assert format_progress(2, 10) == "3/10"
    assert format_progress(4, -1) == "5"
    assert format_loss(-1) == format_loss(None) == "-"
    assert format_loss(0.000123456) == "0.0001235"
    assert format_loss(0.000123456, digits=6) == "0.000123456"


def test_elapsed_and_eta_follow_the_clock_while_training() -> None:
    entry = training(10)
    assert elapsed(entry, now=160.0) == 60.0
    # 10 of 100 batches in 50 s: 90 left at 0.2/s = 450 s, 10 s of which passed since.
    assert eta(entry, now=160.0) == pytest.approx(440.0)
    assert eta(entry, now=10_000.0) is None  # no record for hours: STALLED, no countdown
    # Later samples give the recent rate: 40 more batches in 10 s.
    entry.run.apply([record("batch_idx", 49, 160.0)])
    entry.note_progress()
    assert eta(entry, now=160.0) == pytest.approx(50 / 4.0)
    entry.run.apply([record("state", "DONE", 170.0)])
    assert eta(entry, now=200.0) is None
    assert elapsed(entry, now=999.0) == 70.0  # frozen at the last record


def test_a_resumed_attempt_waits_for_samples_before_an_eta() -> None:
    entry = entry_with(
        record("max_epochs", 2, 0.0, 1),
        record("max_batches", 50, 0.0, 1),
        record("state", "TRAINING", 100.0, 1),
        record("epoch_idx", 1, 100.0, 1),
        record("batch_idx", 9, 110.0, 1),
    )
    assert eta(entry, now=110.0) is None  # epoch 1 was done by attempt 0: no rate from history


def with_job(entry: RunEntry, state: SchedulerState, asked: float | None = None) -> RunEntry:
    entry.job = JobRecord(
        scheduler="slurm", submissions=[Submission(0, state.job_id, 0.0)], host="login"
    )
    entry.scheduler = replace(state, asked=asked)
    return entry


def cells_of(entry: RunEntry, now: float) -> dict[str, str]:
    return dict(zip(COLUMN_KEYS, (cell.plain for cell in row_cells(entry, now)), strict=True))


def test_the_row_shows_the_phase_with_its_reason_and_the_clock_stops_for_a_dead_job() -> None:
    entry = with_job(training(10), SchedulerState("42", "OUT_OF_MEMORY", None, "0:125"))
    assert entry.state.name == "TRAINING"  # what the file says
    cells = cells_of(entry, 160.0)
    assert cells["phase"] == "LOST (out of memory)"
    assert cells["eta"] == "-" and cells["elapsed"] == "50s"  # frozen at the last record
    # The same run while its job runs: the clock moves elapsed and ETA on.
    entry.scheduler = SchedulerState("42", "RUNNING", started=90.0)
    cells = cells_of(entry, 160.0)
    assert cells["phase"] == "TRAINING" and cells["elapsed"] == "1m00s" and cells["eta"] != "-"
    # Loading and unreadable markers come before the reason (the table truncates the reason).
    entry.scheduler, entry.loading = SchedulerState("42", "PENDING", "Priority"), True
    assert cells_of(entry, 160.0)["phase"] == "REQUEUED … (attempt 1 waits; Priority)"
    entry.loading, entry.error = False, "unreadable"
    assert cells_of(entry, 160.0)["phase"] == "REQUEUED ! (attempt 1 waits; Priority)"


def test_the_phase_column_shows_a_reason_from_a_file_literally() -> None:
    entry = entry_with(
        record("state", "TRAINING", 1.0),
        record("exception", ExceptionData("ValueError", "axes\x1b[31m YX\n2nd line"), 2.0),
        record("state", "CRASHED", 2.0),
    )
    phase = cells_of(entry, 3.0)["phase"]
    assert phase == "CRASHED (ValueError: axes\\u001b[31m YX)"


def test_sort_keys() -> None:
    done = entry_with(record("state", "DONE", 1.0), record("val_loss", 0.3, 1.0), label="b")
    best = entry_with(record("state", "CRASHED", 1.0), record("val_loss", 0.1, 1.0), label="c")
    nothing = entry_with(record("state", "TRAINING", 1.0), label="A")
    waiting = with_job(entry_with(label="W"), SchedulerState("7", "PENDING", "Priority"))
    runs = [done, best, nothing, waiting]

    def order(by: str) -> list[str]:
        return [e.label for e in sorted(runs, key=lambda e: sort_key(e, by, 100.0))]

    assert order("name") == ["A", "b", "c", "W"]
    # by phase: training, then waiting, then what needs attention, then what is over
    assert order("phase") == ["A", "W", "c", "b"]
    assert order("val_loss") == ["c", "b", "A", "W"]


def test_the_filter_cycles_over_the_phases_present() -> None:
    runs = [
        entry_with(record("state", "DONE", 1.0)),
        entry_with(record("state", "CRASHED", 1.0)),
        entry_with(record("state", "DONE", 2.0)),
    ]
    present = present_phases(runs, 10.0)
    assert present == [Phase.CRASHED, Phase.DONE]
    seen, current = [], None
    for _ in range(3):
        current = next_filter(current, present)
        seen.append(current)
    assert seen == [Phase.CRASHED, Phase.DONE, None]
    # The phase filtered on emptied meanwhile: the next present one after it.
    assert next_filter(Phase.TRAINING, present) is Phase.CRASHED
    assert next_filter(Phase.STOPPED, present) is Phase.DONE
    assert next_filter(None, []) is None


def test_status_line() -> None:
    runs = [training(), entry_with(record("state", "DONE", 1.0))]
    line = status_line(
        "runs", runs, now=160.0, sort_by="name", phase_filter=None, watching="inotify",
        scanning=False,
    )  # fmt: skip
    assert line.plain.startswith("runs  2 runs · 1 training · 1 done")
    assert line.plain.endswith("sort: name · show: all │ inotify")
    empty = status_line("runs", [], now=0.0, sort_by="phase", phase_filter=Phase.CRASHED,
                        watching="inotify", scanning=False)  # fmt: skip
    assert "none yet" in empty.plain and "show: crashed" in empty.plain
    scanning = status_line(
        "[red]x", [], now=0.0, sort_by="name", phase_filter=None, watching="", scanning=True
    )
    assert "scanning" in scanning.plain


def test_the_status_line_says_how_old_the_scheduler_answers_are() -> None:
    fresh = with_job(training(), SchedulerState("1", "RUNNING", started=90.0), asked=150.0)
    old = with_job(training(), SchedulerState("2", "PENDING", "Priority"), asked=95.0)
    ended = with_job(training(), SchedulerState("3", "COMPLETED"), asked=10.0)
    never = training()
    assert scheduler_freshness([fresh], 162.0) == "scheduler 12s ago"
    # newest-oldest; an ended job's answer is final (never asked again), its age says nothing
    assert scheduler_freshness([fresh, old, ended, never], 162.0) == "scheduler 12s-1m07s ago"
    assert scheduler_freshness([ended, never], 162.0) is None
    line = status_line(
        "runs", [fresh, old], now=162.0, sort_by="name", phase_filter=None, watching="inotify",
        scanning=False,
    )  # fmt: skip
    assert "│ scheduler 12s-1m07s ago │ inotify" in line.plain
