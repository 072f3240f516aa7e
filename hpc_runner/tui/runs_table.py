"""The runs table: one row per run, sweeps grouped, sortable by any column, filtered, marked.

Why not Textual's ``DataTable``: its render cache is keyed by a table-wide update counter, so
changing one cell (an elapsed time, every second) re-renders every visible cell, ~80 ms per frame
with a screenful of runs. Here rows are cached strips (:mod:`.table_view`); which rows
(:mod:`.table_rows`), which columns at this width (:mod:`.table_layout`) and what each cell says
(:mod:`.columns`) are pure functions; this widget keeps them in sync with the app's entries.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.strip import Strip

from hpc_runner.control.phase import Phase
from hpc_runner.tui.columns import (
    BY_KEY,
    COLUMN_KEYS,
    PARAM_PREFIX,
    param_headers,
    row_cells,
)
from hpc_runner.tui.messages import RunHighlighted
from hpc_runner.tui.model import CLOCK_PHASES, RunEntry, next_filter, present_phases
from hpc_runner.tui.table_keys import TableKeys
from hpc_runner.tui.table_layout import layout_for
from hpc_runner.tui.table_rows import arrange, group_key, group_text, is_group, sweep_of
from hpc_runner.tui.text import literal, name_text

__all__ = ["COLUMN_KEYS", "RunsTable"]

SORT_MARK = {False: " ▲", True: " ▼"}


class RunsTable(TableKeys, can_focus=True):
    """Every run below the watched directory, kept in sync with the app's entries by :meth:`sync`.

    Parameters
    ----------
    entries : Mapping[str, RunEntry]
        The app's runs by key (read, never changed here).
    clock : callable
        Current time for elapsed and ETA (injected so that tests are reproducible).
    """

    DEFAULT_CSS = """
    RunsTable { height: 1fr; background: $surface; }
    RunsTable > .runs-table--header { text-style: bold; background: $panel; color: $foreground; }
    RunsTable > .runs-table--even-row { background: $surface-lighten-1 50%; }
    RunsTable > .runs-table--group { background: $boost; }
    RunsTable > .runs-table--cursor {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
    }
    RunsTable:focus > .runs-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    """

    def __init__(
        self, entries: Mapping[str, RunEntry], clock: Callable[[], float], **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.entries = entries
        self.clock = clock
        self.sort_by = "name"
        self.reverse = False
        self.focus_column = "name"
        self.phase_filter: Phase | None = None
        self.filter_text = ""
        self.collapsed: set[str] = set()
        self.marked: set[str] = set()
        self.param_keys: list[str] = []
        self._groups: dict[str, list[str]] = {}
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._widths: dict[str, tuple[int, ...]] = {}  # the cells' widths, made with them
        self._group_texts: dict[str, Text] = {}
        self._selected: str | None = None
        self._stale: set[str] = set()  # rows whose clock-driven cells are redone when shown

    # -- what tests and screens ask ------------------------------------------------------------

    @property
    def visible_keys(self) -> list[str]:
        """Keys of the runs shown, top to bottom (group headers left out)."""
        return [key for key in self._rows if not is_group(key)]

    @property
    def rows(self) -> list[str]:
        """Every row's key, top to bottom, group headers included."""
        return list(self._rows)

    @property
    def selected_key(self) -> str | None:
        """Key of the highlighted run; None if the table is empty or a sweep is highlighted."""
        key = self._rows[self.cursor_row] if self._rows else None
        return None if key is None or is_group(key) else key

    @property
    def selected_sweep(self) -> str | None:
        """The sweep whose header is highlighted, or whose run is."""
        key = self._rows[self.cursor_row] if self._rows else None
        if key is None:
            return None
        return sweep_of(key) if is_group(key) else self.entries[key].sweep

    @property
    def sort_label(self) -> str:
        """``Best val ▼``: the header of the sort column and the direction (as the header)."""
        return self.header_of(self.sort_by) + SORT_MARK[self.reverse]

    def row_index(self, key: str) -> int:
        """Where a run (or a group key) is shown (0 = first row); ValueError if it is not."""
        return self._rows.index(key)

    def cell(self, key: str, column: str) -> Text:
        """What a cell shows (``column``: one of :data:`COLUMN_KEYS`, or ``param:KEY``)."""
        if column.startswith(PARAM_PREFIX):
            return literal(self.entries[key].params.get(column.removeprefix(PARAM_PREFIX), ""))
        return self._cells[key][COLUMN_KEYS.index(column)]

    def column_x(self, column: str) -> int:
        """Where a column starts, in cells from the table's left edge."""
        return self.column_layout.x_of(column)

    def group_text(self, sweep: str) -> Text:
        """What a sweep's header row says."""
        return self._group_texts[group_key(sweep)]

    # -- changing what is shown ----------------------------------------------------------------

    def sort(self, column: str, *, reverse: bool = False) -> None:
        """Sort by a column (``reverse``: descending); runs without a value stay last."""
        self.sort_by, self.reverse, self.focus_column = column, reverse, column
        self.sync()

    def cycle_filter(self) -> Phase | None:
        """Show the next phase some run is in (None: every run); returns the new filter."""
        now = self.clock()
        present = present_phases(self.entries.values(), now)
        self.phase_filter = next_filter(self.phase_filter, present)
        self.sync(now=now)
        return self.phase_filter

    def set_filter_text(self, query: str) -> None:
        """Show only the runs matching every word of ``query`` (name, phase, sweep values)."""
        if query != self.filter_text:
            self.filter_text = query
            self.sync()

    def toggle_group(self, sweep: str) -> None:
        """Fold or unfold a sweep; the highlight moves to its header when it folds."""
        if sweep in self.collapsed:
            self.collapsed.discard(sweep)
        else:
            self.collapsed.add(sweep)
            self._selected = group_key(sweep)
        self.sync()

    def toggle_mark(self) -> None:
        """Mark or unmark the highlighted run (on a sweep's header: all its runs shown)."""
        key = self._rows[self.cursor_row] if self._rows else None
        if key is None:
            return
        keys = set(self._groups.get(key, [])) if is_group(key) else {key}
        if keys <= self.marked:
            self.marked -= keys
        else:
            self.marked |= keys
        for changed in keys:
            self._strips.pop(changed, None)
        self.refresh()

    # -- keeping up with the entries -----------------------------------------------------------

    def sync(self, changed: Collection[str] = (), now: float | None = None) -> None:
        """Show the app's entries: new rows, removed rows, order, groups and changed cells.

        Only rows whose text changed are rendered again; the highlighted run stays highlighted
        wherever sorting moves it.
        """
        now = self.clock() if now is None else now
        entries = list(self.entries.values())
        phases = {entry.key: entry.phase(now) for entry in entries}
        arranged = arrange(
            entries, phases, now=now, column=self.sort_by, reverse=self.reverse,
            query=self.filter_text, phase_filter=self.phase_filter, collapsed=self.collapsed,
        )  # fmt: skip
        for key in [key for key in self._cells if key not in self.entries]:
            del self._cells[key], self._widths[key]
            self._strips.pop(key, None)
        self.marked &= self.entries.keys()
        rows = arranged.rows
        redrawn = [
            key
            for key in rows
            if not is_group(key)
            and (key in changed or key not in self._cells)
            and self._recompute(self.entries[key], now)
        ]
        for group, members in arranged.groups.items():
            sweep = sweep_of(group)
            total = sum(1 for entry in entries if entry.sweep == sweep)
            shown = [self.entries[key] for key in members]
            text = group_text(sweep, shown, phases, total=total, collapsed=sweep in self.collapsed)
            if self._group_texts.get(group) != text:
                self._group_texts[group] = text
                self._strips.pop(group, None)
                redrawn.append(group)
        self._groups = arranged.groups
        before = (self._rows, self.column_layout, self.cursor_row)
        self._rows = rows
        self._fit_columns(now)
        if self._selected in self._rows:
            self.cursor_row = self._rows.index(self._selected)
        self.cursor_row = max(0, min(self.cursor_row, len(self._rows) - 1))
        self._set_selected(self._rows[self.cursor_row] if self._rows else None)
        self.virtual_size = Size(self.column_layout.total, len(self._rows) + 1)
        if before != (self._rows, self.column_layout, self.cursor_row):
            self.refresh()
        else:  # same rows in the same places: repaint only the lines whose text changed
            for key in redrawn:
                self.refresh_line(self._rows.index(key) + 1)

    def tick(self, now: float) -> None:
        """Move elapsed times and ETAs of training runs on; rows off screen wait until shown.

        Every second, for a screenful of rows at most: with hundreds of trainings running,
        recomputing rows nobody sees would be most of the idle CPU. Only the phases in which
        the clock moves a row (TRAINING, and STALLED, which it may turn into) are looked at.
        """
        first = self.scroll_offset.y
        visible = range(first, first + max(0, self.size.height - 1))
        for index, key in enumerate(self._rows):
            entry = self.entries.get(key)
            if entry is None or entry.phase(now).phase not in CLOCK_PHASES:
                continue
            if index not in visible:
                self._stale.add(key)
            elif self._recompute(entry, now):
                self.refresh_line(index + 1)

    def _recompute(self, entry: RunEntry, now: float) -> bool:
        """Renew a row's cells; True if its text changed (its cached strip is then dropped)."""
        self._stale.discard(entry.key)
        cells = row_cells(entry, now)
        if entry.sweep is not None:  # under its sweep's header: its own name, indented
            inside = entry.label.removeprefix(entry.sweep + "/")
            cells = (Text("  ").append_text(name_text(inside)), *cells[1:])
        if self._cells.get(entry.key) == cells:
            return False
        self._cells[entry.key] = cells
        self._widths[entry.key] = tuple(cell.cell_len for cell in cells)
        self._strips.pop(entry.key, None)
        return True

    def _set_selected(self, key: str | None) -> None:
        """Remember the highlighted row; tell the screen when it is another one (its keys)."""
        if key != self._selected:
            self._selected = key
            self.post_message(RunHighlighted(key if key and not is_group(key) else None))

    def header_of(self, key: str) -> str:
        """What a column's header says (a parameter: its short key)."""
        if key.startswith(PARAM_PREFIX):
            return param_headers(self.param_keys).get(key.removeprefix(PARAM_PREFIX), key)
        return BY_KEY[key].header

    def _fit_columns(self, now: float) -> None:
        """Choose the columns for this width (see :func:`.table_layout.layout_for`)."""
        runs = [self.entries[key] for key in self._rows if not is_group(key)]
        width = self.scrollable_content_region.width or self.size.width or 80
        layout, self.param_keys = layout_for(runs, self._widths, width, self.sort_by)
        if layout != self.column_layout:
            self.column_layout = layout
            self._strips.clear()

    # -- drawing -------------------------------------------------------------------------------

    def _row_strip(self, key: str) -> Strip:
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        if is_group(key):
            text = self._group_texts[key].copy()
            text.truncate(max(self.column_layout.total, self.size.width) - 1, overflow="ellipsis")
            cached = self._strip(Text(" ", end="").append_text(text))
        else:
            cells = [self.cell(key, column) for column in self.column_layout.keys]
            cached = self._render_row(cells, "●" if key in self.marked else " ")
        self._strips[key] = cached
        return cached

    def _before_draw(self, key: str) -> None:
        if key in self._stale and key in self.entries:  # scrolled into view since a tick
            self._recompute(self.entries[key], self.clock())

    def _header_strip(self) -> Strip:
        labels = []
        for column in self.column_layout.columns:
            label = self.header_of(column.key)
            label += SORT_MARK[self.reverse] if column.key == self.sort_by else ""
            text = Text(label, justify="right" if column.right else "left")
            if column.key == self.focus_column and self.has_focus:
                text.stylize("underline")
            labels.append(text)
        return self._render_row(labels).apply_style(self._style("runs-table--header"))

    def on_resize(self, event: events.Resize) -> None:
        self.sync()
