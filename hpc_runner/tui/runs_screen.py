"""The main screen: the status line, the runs table, and the keys."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer

from hpc_runner.tui.messages import RunSelected
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.run_screen import RunScreen
from hpc_runner.tui.runs_table import RunsTable
from hpc_runner.tui.status_bar import StatusBar


class RunsScreen(RunScreen):
    """Every run in a table; Enter (or a click on the highlighted row) opens its details.

    Parameters
    ----------
    entries : Mapping[str, RunEntry]
        The app's runs (shared, read-only here).
    clock : callable
        Current time for elapsed and ETA.
    root_label : str
        How the watched directory is named in the status line.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_run", "Details", tooltip="open the highlighted run's details"),
        Binding("o", "cycle_sort", "Sort", tooltip="sort by name, state, best val_loss (cycles)"),
        Binding("f", "cycle_filter", "Filter", tooltip="show one state only (cycles; all first)"),
    ]

    def __init__(
        self, entries: Mapping[str, RunEntry], clock: Callable[[], float], root_label: str
    ) -> None:
        super().__init__()
        self.entries = entries
        self.clock = clock
        self.root_label = root_label
        self.watching = ""
        self.scanning = True

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield RunsTable(self.entries, self.clock)
        yield Footer()

    @property
    def table(self) -> RunsTable:
        """The runs table widget."""
        return self.query_one(RunsTable)

    def on_mount(self) -> None:
        self.refresh_runs(())

    def current_entry(self) -> RunEntry | None:
        """The highlighted run."""
        key = self.table.selected_key
        return self.entries.get(key) if key is not None else None

    def refresh_runs(self, changed: Collection[str], now: float | None = None) -> None:
        """Bring table and status line up to date (called by the app's coalesced refresh)."""
        table = self.table
        table.sync(changed, now)
        self.query_one(StatusBar).show(
            self.root_label,
            self.entries.values(),
            sort_by=table.sort_by,
            state_filter=table.state_filter,
            watching=self.watching,
            scanning=self.scanning,
        )

    def tick(self, now: float) -> None:
        """Move elapsed times and ETAs on (visible rows only, see :meth:`RunsTable.tick`)."""
        self.table.tick(now)

    def action_open_run(self) -> None:
        from hpc_runner.tui.detail_screen import DetailScreen

        entry = self.current_entry()
        if entry is not None:
            self.app.push_screen(DetailScreen(entry, self.entries, self.clock))

    def on_run_selected(self, message: RunSelected) -> None:
        message.stop()
        self.action_open_run()

    def action_cycle_sort(self) -> None:
        self.table.cycle_sort()
        self.refresh_runs(())

    def action_cycle_filter(self) -> None:
        self.table.cycle_filter()
        self.refresh_runs(())
