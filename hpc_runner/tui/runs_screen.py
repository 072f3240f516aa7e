"""The main screen: the status line, the runs table, the filter prompt, and the keys."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input

from hpc_runner.tui.messages import RunHighlighted, RunSelected, TableChanged
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.prompt_bar import PromptBar
from hpc_runner.tui.run_screen import RunScreen
from hpc_runner.tui.runs_table import RunsTable
from hpc_runner.tui.status_bar import StatusBar


def empty_text(root: str, query: str) -> list[str]:
    """What the table says when it has no row: how to submit a first run, or that the filter
    hides every run."""
    if query:
        return [f"No run matches {query!r}: esc clears the filter."]
    return [
        f"No runs below {root} yet. To submit a first one:",
        "",
        f"    hpc-runner submit job.yaml --runs-dir {root}",
        "",
        "(a commented job spec: examples/n2v_demo.yaml in hpc-runner's repository; every key",
        " is in slurm_templates/README.md; `hpc-runner submit --help` shows the options).",
        "It shows up here as soon as its directory is written.",
    ]


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
        Binding(
            "enter",
            "open_run",
            "Details",
            tooltip="open the highlighted run's details (on a sweep: fold or unfold it)",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            key_display="/",
            tooltip="show only runs whose name, phase or sweep values hold what you type",
        ),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="show every run"),
        Binding("f", "cycle_filter", "Phase", show=False, tooltip="show one phase only (cycles)"),
        Binding(
            "p", "compare", "Compare", show=False, tooltip="plot the marked runs' curves together"
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
        yield PromptBar(placeholder="filter: name, phase or sweep value (esc clears)")
        yield Footer()

    @property
    def table(self) -> RunsTable:
        """The runs table widget."""
        return self.query_one(RunsTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.refresh_runs(())

    def current_entry(self) -> RunEntry | None:
        """The highlighted run."""
        key = self.table.selected_key
        return self.entries.get(key) if key is not None else None

    def refresh_runs(self, changed: Collection[str], now: float | None = None) -> None:
        """Bring table and status line up to date (called by the app's coalesced refresh)."""
        now = self.clock() if now is None else now
        table = self.table
        table.empty_text = [] if self.scanning else empty_text(self.root_label, table.filter_text)
        table.sync(changed, now)
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
            sort_by=table.sort_label,
            phase_filter=table.phase_filter,
            watching=self.watching,
            scanning=self.scanning,
            query=table.filter_text,
            marked=len(table.marked),
        )

    def on_run_highlighted(self, message: RunHighlighted) -> None:
        """Another run is highlighted: offer the keys that fit its phase."""
        message.stop()
        if self.is_mounted:
            self.offer_actions(self.clock())

    def on_table_changed(self, message: TableChanged) -> None:
        message.stop()
        self._show_status(self.clock())

    def action_open_run(self) -> None:
        from hpc_runner.tui.detail_screen import DetailScreen

        table = self.table
        entry = self.current_entry()
        if entry is not None:
            self.app.push_screen(DetailScreen(entry, self.entries, self.clock))
        elif table.selected_sweep is not None:
            table.toggle_group(table.selected_sweep)

    def on_run_selected(self, message: RunSelected) -> None:
        message.stop()
        self.action_open_run()

    def action_cycle_filter(self) -> None:
        self.table.cycle_filter()
        self.refresh_runs(())

    # -- the text filter -----------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one(PromptBar).open()

    def action_clear_filter(self) -> None:
        bar = self.query_one(PromptBar)
        if bar.value or self.table.filter_text:
            bar.action_cancel()

    def on_input_changed(self, message: Input.Changed) -> None:
        """Filter as the user types (incremental, as in less and k9s)."""
        message.stop()
        self.table.set_filter_text(message.value)
        self.refresh_runs(())

    def on_input_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        self.query_one(PromptBar).close()
        self.table.focus()

    def on_prompt_bar_cancelled(self, message: PromptBar.Cancelled) -> None:
        message.stop()
        self.table.set_filter_text("")
        self.table.focus()
        self.refresh_runs(())

    # -- compare -------------------------------------------------------------------------------

    def action_compare(self) -> None:
        """Open one plot of the marked runs' curves (space marks; the highlighted run if none)."""
        from hpc_runner.tui.compare_screen import CompareScreen

        table = self.table
        keys = [key for key in table.visible_keys if key in table.marked]
        keys += sorted(table.marked - set(keys))
        if not keys and table.selected_key is not None:
            keys = [table.selected_key]
        if not keys:
            self.notify("mark runs with space first", severity="warning", timeout=4)
            return
        self.app.push_screen(CompareScreen([self.entries[key] for key in keys], self.clock))
