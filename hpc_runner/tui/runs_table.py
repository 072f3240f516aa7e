"""The runs table: one row per run, sortable, filterable by state, selection kept across updates."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from rich.text import Text
from textual import on
from textual.widgets import DataTable

from hpc_runner.status import TrainingState
from hpc_runner.tui.model import FILTERS, SORTS, RunEntry, row_cells, sort_key

#: (key, header, width); None = as wide as the widest name.
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("name", "Run", None),
    ("state", "State", 10),
    ("scheduler", "Scheduler", 10),
    ("epoch", "Epoch", 7),
    ("batch", "Batch", 9),
    ("loss", "Loss", 9),
    ("best", "Best val", 9),
    ("elapsed", "Elapsed", 8),
    ("eta", "ETA", 7),
    ("attempt", "Try", 3),
)
COLUMN_KEYS = tuple(key for key, _, _ in COLUMNS)

#: Clicking these headers sorts by: run name, state, best val_loss.
HEADER_SORTS = {"name": "name", "state": "state", "best": "val_loss"}

#: Removing rows one by one costs O(rows) each: past this many, the table is rebuilt instead.
_REBUILD_AFTER = 32


class RunsTable(DataTable[Text]):
    """Every run below the watched directory, kept in sync with the app's entries by :meth:`sync`.

    Parameters
    ----------
    entries : Mapping[str, RunEntry]
        The app's runs by key (read, never changed here).
    clock : callable
        Current time for elapsed and ETA (injected so that tests are reproducible).
    """

    DEFAULT_CSS = """
    RunsTable { height: 1fr; }
    """

    def __init__(
        self, entries: Mapping[str, RunEntry], clock: Callable[[], float], **kwargs: object
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.entries = entries
        self.clock = clock
        self.sort_by = "name"
        self.state_filter: TrainingState | None = None
        self._cells: dict[str, tuple[Text, ...]] = {}

    def on_mount(self) -> None:
        for key, header, width in COLUMNS:
            self.add_column(Text(header), key=key, width=width)
        self.sync()

    @property
    def selected_key(self) -> str | None:
        """Key of the highlighted run, None if the table is empty."""
        if not self._cells or not self.is_valid_row_index(self.cursor_row):
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    @property
    def visible_keys(self) -> list[str]:
        """Keys of the rows shown, top to bottom."""
        return [row.key.value or "" for row in self.ordered_rows]

    def cycle_sort(self) -> str:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.sync()
        return self.sort_by

    def cycle_filter(self) -> TrainingState | None:
        self.state_filter = FILTERS[(FILTERS.index(self.state_filter) + 1) % len(FILTERS)]
        self.sync()
        return self.state_filter

    @on(DataTable.HeaderSelected)
    def _sort_by_header(self, event: DataTable.HeaderSelected) -> None:
        sort = HEADER_SORTS.get(event.column_key.value or "")
        if sort is None:
            self.notify("click Run, State or Best val to sort", timeout=3)
        else:
            self.sort_by = sort
            self.sync()

    def sync(self, changed: Collection[str] = (), now: float | None = None) -> None:
        """Show the app's entries: add, remove and re-sort rows, rewrite the changed cells.

        Only cells whose text changed are written, and the highlighted run stays highlighted
        wherever sorting moves it.
        """
        if not self.columns:
            return
        now = self.clock() if now is None else now
        shown = [
            entry
            for entry in self.entries.values()
            if self.state_filter is None or entry.state is self.state_filter
        ]
        shown.sort(key=lambda entry: sort_key(entry, self.sort_by))
        wanted = [entry.key for entry in shown]
        selected = self.selected_key
        wanted_set = set(wanted)
        stale = [key for key in self._cells if key not in wanted_set]
        if len(stale) > _REBUILD_AFTER:
            self._rebuild(shown, now, selected)
            return
        for key in stale:
            self.remove_row(key)
            del self._cells[key]
        for entry in shown:
            if entry.key not in self._cells:
                self._cells[entry.key] = cells = row_cells(entry, now)
                self.add_row(*cells, key=entry.key)
            elif entry.key in changed:
                self._update_row(entry, now)
        if self.visible_keys != wanted:
            position = {key: index for index, key in enumerate(wanted)}
            self.sort("name", key=lambda cell: position[cell.run_key])
        self._keep_selection(selected, scroll=False)

    def _update_row(self, entry: RunEntry, now: float) -> None:
        new = row_cells(entry, now)
        old = self._cells[entry.key]
        for column, before, after in zip(COLUMN_KEYS, old, new, strict=True):
            if before != after or before.style != after.style:
                self.update_cell(entry.key, column, after, update_width=column == "name")
        self._cells[entry.key] = new

    def _rebuild(self, shown: list[RunEntry], now: float, selected: str | None) -> None:
        self.clear()
        self._cells = {}
        for entry in shown:
            self._cells[entry.key] = cells = row_cells(entry, now)
            self.add_row(*cells, key=entry.key)
        self._keep_selection(selected, scroll=True)

    def _keep_selection(self, selected: str | None, *, scroll: bool) -> None:
        if selected is None or selected not in self._cells:
            return
        index = self.get_row_index(selected)
        if index != self.cursor_row:
            self.move_cursor(row=index, scroll=scroll)
