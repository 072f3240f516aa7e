"""The runs table's commands in Textual's command palette (``:``): sort by any column either
way, show one phase, open a run by name, compare the marked runs, refresh."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from textual.app import SystemCommand

from hpc_runner.control.phase import Phase
from hpc_runner.tui.runs_screen import RunsScreen
from hpc_runner.tui.text import literal


def table_commands(screen: RunsScreen) -> Iterator[SystemCommand]:
    """One command per thing the runs table can be told (names and values shown literally)."""
    table = screen.table

    def sort(column: str, reverse: bool) -> None:
        table.sort(column, reverse=reverse)
        screen.refresh_runs(())

    def show(phase: Phase | None) -> None:
        table.phase_filter = phase
        screen.refresh_runs(())

    def open_run(key: str) -> None:
        table.move_cursor(table.row_index(key))
        screen.action_open_run()

    for column in table.column_layout.columns:
        header = table.header_of(column.key)
        yield SystemCommand(
            f"Sort by {header}", f"smallest first ({column.key})", partial(sort, column.key, False)
        )
        yield SystemCommand(
            f"Sort by {header}, reversed", "largest first", partial(sort, column.key, True)
        )
    yield SystemCommand("Show every phase", "clear the phase filter", partial(show, None))
    for phase in Phase:
        yield SystemCommand(f"Show {phase.value} runs only", "phase filter", partial(show, phase))
    for key in table.visible_keys:
        label = literal(screen.entries[key].label).plain
        yield SystemCommand(f"Open {label}", "the run's details", partial(open_run, key))
    yield SystemCommand("Compare marked runs", "one plot of their curves", screen.action_compare)
    yield SystemCommand(
        "Refresh",
        "re-read every run, ask the scheduler now",
        partial(screen.app.run_action, "rescan"),
    )
