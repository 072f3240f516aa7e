"""The main screen: the status line, the runs table, and the keys."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer

from hpc_runner.tui.messages import RunHighlighted, RunSelected
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
        Binding("o", "cycle_sort", "Sort", tooltip="sort by name, phase, best val_loss (cycles)"),
        Binding(
            "f",
            "cycle_filter",
            "Filter",
            tooltip="show one phase only (cycles over those present)",
        ),
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
        now = self.clock() if now is None else now
        self.table.sync(changed, now)
        self._show_status(now)
        self.offer_actions(now)

    def tick(self, now: float) -> None:
        """Move elapsed times, ETAs (visible rows only, see :meth:`RunsTable.tick`) and the age
        of the scheduler's answers on."""
        self.table.tick(now)
        self._show_status(now)
        self.offer_actions(now)

    def _show_status(self, now: float) -> None:
        table = self.table
        self.query_one(StatusBar).show(
            self.root_label,
            self.entries.values(),
            now=now,
            sort_by=table.sort_by,
            phase_filter=table.phase_filter,
            watching=self.watching,
            scanning=self.scanning,
        )

    def on_run_highlighted(self, message: RunHighlighted) -> None:
        """Another run is highlighted: offer the keys that fit its phase."""
        message.stop()
        if self.is_mounted:
            self.offer_actions(self.clock())

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
