"""The runs table: one row per run, sortable, filterable by phase, selection kept across updates.

Why not Textual's ``DataTable``: its render cache is keyed by a table-wide update counter, so
changing one cell (an elapsed time, every second) re-renders every visible cell, ~80 ms per frame
with a screenful of runs; a flood of records would keep a core busy. Here each row is rendered
once into a :class:`~textual.strip.Strip` when its cells change and cached; drawing a frame only
crops and styles cached strips (Textual's line API).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hpc_runner.control.phase import Phase
from hpc_runner.tui.messages import RunHighlighted, RunSelected
from hpc_runner.tui.model import (
    CLOCK_PHASES,
    SORTS,
    RunEntry,
    next_filter,
    present_phases,
    row_cells,
    sort_key,
)

#: (key, header, width); the name column is as wide as the longest name, up to MAX_NAME_WIDTH.
#: The phase column shows the phase and the start of its reason (the detail view has it all).
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("name", "Run", 0),
    ("phase", "Phase", 24),
    ("epoch", "Epoch", 7),
    ("batch", "Batch", 11),
    ("loss", "Loss", 9),
    ("best", "Best val", 9),
    ("elapsed", "Elapsed", 8),
    ("eta", "ETA", 7),
    ("attempt", "Try", 3),
    ("gpu", "GPU%", 4),
    ("mem", "Mem", 8),
)
COLUMN_KEYS = tuple(key for key, _, _ in COLUMNS)
#: Numbers are right-aligned, their headers too.
RIGHT_ALIGNED = frozenset({"loss", "best", "elapsed", "eta", "attempt", "gpu", "mem"})
MAX_NAME_WIDTH = 48
#: Columns that widen to their widest cell instead of cutting it: a count cut short is wrong.
GROWING = frozenset({"epoch", "batch"})
#: Resource columns (issue 12): shown only when some run shown sampled its resources and the
#: table is wide enough for them beside every other column (hidden columns take no room).
OPTIONAL = frozenset({"gpu", "mem"})

#: Clicking these headers sorts by: run name, phase, best val_loss.
HEADER_SORTS = {"name": "name", "phase": "phase", "best": "val_loss"}


class RunsTable(ScrollView, can_focus=True):
    """Every run below the watched directory, kept in sync with the app's entries by :meth:`sync`.

    Parameters
    ----------
    entries : Mapping[str, RunEntry]
        The app's runs by key (read, never changed here).
    clock : callable
        Current time for elapsed and ETA (injected so that tests are reproducible).
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "runs-table--header",
        "runs-table--even-row",
        "runs-table--cursor",
    }

    DEFAULT_CSS = """
    RunsTable { height: 1fr; background: $surface; }
    RunsTable > .runs-table--header { text-style: bold; background: $panel; color: $foreground; }
    RunsTable > .runs-table--even-row { background: $surface-lighten-1 50%; }
    RunsTable > .runs-table--cursor {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
    }
    RunsTable:focus > .runs-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False, tooltip="highlight the run above"),
        Binding("down", "cursor(1)", "Down", show=False, tooltip="highlight the run below"),
        Binding("pageup", "page(-1)", "Page up", show=False, tooltip="one screen up"),
        Binding("pagedown", "page(1)", "Page down", show=False, tooltip="one screen down"),
        Binding("home", "to(0)", "First", show=False, tooltip="highlight the first run"),
        Binding("end", "to(-1)", "Last", show=False, tooltip="highlight the last run"),
    ]

    def __init__(
        self, entries: Mapping[str, RunEntry], clock: Callable[[], float], **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.entries = entries
        self.clock = clock
        self.sort_by = "name"
        self.phase_filter: Phase | None = None
        self._order: list[str] = []
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._strips: dict[str, Strip] = {}
        self._widths = [max(width, cell_len(header)) for _, header, width in COLUMNS]
        self._selected: str | None = None
        self._styles: dict[str, Style] = {}
        self._stale: set[str] = set()  # rows whose clock-driven cells are redone when shown
        self.cursor_row = 0

    # -- what tests and screens ask ------------------------------------------------------------

    @property
    def visible_keys(self) -> list[str]:
        """Keys of the rows shown, top to bottom."""
        return list(self._order)

    @property
    def selected_key(self) -> str | None:
        """Key of the highlighted run, None if the table is empty."""
        return self._order[self.cursor_row] if self._order else None

    def row_index(self, key: str) -> int:
        """Where a run is shown (0 = first row); ValueError if it is filtered out."""
        return self._order.index(key)

    def cell(self, key: str, column: str) -> Text:
        """What a cell shows (``column`` is one of :data:`COLUMN_KEYS`)."""
        return self._cells[key][COLUMN_KEYS.index(column)]

    def column_x(self, column: str) -> int:
        """Where a column starts, in cells from the table's left edge."""
        index = COLUMN_KEYS.index(column)
        return sum(width + 2 for width in self._widths[:index] if width)

    def move_cursor(self, row: int, *, scroll: bool = True) -> None:
        """Highlight a row (clamped) and, by default, scroll it into view."""
        if not self._order:
            self.cursor_row = 0
            self._set_selected(None)
            return
        self.cursor_row = max(0, min(row, len(self._order) - 1))
        self._set_selected(self._order[self.cursor_row])
        if scroll:
            self._scroll_to_cursor()
        self.refresh()

    def cycle_sort(self) -> str:
        """Sort by the next of name, phase, best val_loss; returns the new order's name."""
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.sync()
        return self.sort_by

    def cycle_filter(self) -> Phase | None:
        """Show the next phase some run is in (None: every run); returns the new filter."""
        now = self.clock()
        present = present_phases(self.entries.values(), now)
        self.phase_filter = next_filter(self.phase_filter, present)
        self.sync(now=now)
        return self.phase_filter

    # -- keeping up with the entries -----------------------------------------------------------

    def sync(self, changed: Collection[str] = (), now: float | None = None) -> None:
        """Show the app's entries: new rows, removed rows, order, and the changed runs' cells.

        Only rows whose text changed are rendered again; the highlighted run stays highlighted
        wherever sorting moves it.
        """
        now = self.clock() if now is None else now
        shown = [
            entry
            for entry in self.entries.values()
            if self.phase_filter is None or entry.phase(now).phase is self.phase_filter
        ]
        shown.sort(key=lambda entry: sort_key(entry, self.sort_by, now))
        for key in [key for key in self._cells if key not in self.entries]:
            del self._cells[key]
            self._strips.pop(key, None)
        redrawn = [
            entry.key
            for entry in shown
            if (entry.key in changed or entry.key not in self._cells)
            and self._recompute(entry, now)
        ]
        order = [entry.key for entry in shown]
        layout = (order, list(self._widths), self.cursor_row)
        self._order = order
        self._fit_columns()
        if self._selected in self._order:
            self.cursor_row = self._order.index(self._selected)
        self.cursor_row = max(0, min(self.cursor_row, len(self._order) - 1))
        self._set_selected(self._order[self.cursor_row] if self._order else None)
        self.virtual_size = Size(
            sum(width + 2 for width in self._widths if width), len(self._order) + 1
        )
        if layout != (self._order, self._widths, self.cursor_row):
            self.refresh()
        else:  # same rows in the same places: repaint only the lines whose text changed
            for key in redrawn:
                self.refresh_line(self._order.index(key) + 1)

    def tick(self, now: float) -> None:
        """Move elapsed times and ETAs of training runs on; rows off screen wait until shown.

        Every second, for a screenful of rows at most: with hundreds of trainings running,
        recomputing rows nobody sees would be most of the idle CPU. Only the phases in which
        the clock moves a row (TRAINING, and STALLED, which it may turn into) are looked at.
        """
        first = self.scroll_offset.y
        visible = range(first, first + max(0, self.size.height - 1))
        for index, key in enumerate(self._order):
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
        if self._cells.get(entry.key) == cells:
            return False
        self._cells[entry.key] = cells
        self._strips.pop(entry.key, None)
        return True

    def _set_selected(self, key: str | None) -> None:
        """Remember the highlighted run; tell the screen when it is another one (its keys)."""
        if key != self._selected:
            self._selected = key
            self.post_message(RunHighlighted(key))

    def _fit_columns(self) -> None:
        """The name column as wide as the longest name (up to MAX_NAME_WIDTH); progress columns
        as wide as their widest cell, so that ``198/3000`` is never cut to ``198/30…``."""
        widths = list(self._widths)
        for index, (key, header, width) in enumerate(COLUMNS):
            if index == 0 or key in GROWING:
                cells = [self._cells[row][index].cell_len for row in self._order]
                widest = max([cell_len(header), width, *cells])
                widths[index] = min(MAX_NAME_WIDTH, widest) if index == 0 else widest
        self._fit_optional(widths)
        if widths != self._widths:
            self._widths = widths
            self._strips.clear()

    def _fit_optional(self, widths: list[int]) -> None:
        """Give the :data:`OPTIONAL` columns their width, or 0 (hidden) when no row shown has a
        figure for them or the table is too narrow for them (a narrow terminal)."""
        optional = [i for i, (key, _, _) in enumerate(COLUMNS) if key in OPTIONAL]
        sampled = any(
            self._cells[row][index].plain not in ("", "-")
            for row in self._order
            for index in optional
        )
        wanted = [max(width, cell_len(header)) for key, header, width in COLUMNS]
        needed = sum(w + 2 for i, w in enumerate(widths) if i not in optional)
        needed += sum(wanted[i] + 2 for i in optional)
        shown = sampled and needed <= self.size.width
        for index in optional:
            widths[index] = wanted[index] if shown else 0

    def on_resize(self) -> None:
        """The resource columns come and go with the width (:meth:`_fit_optional`)."""
        self.sync()

    # -- drawing -------------------------------------------------------------------------------

    def _render_row(self, cells: tuple[Text, ...]) -> Strip:
        line = Text(no_wrap=True, end="")
        for cell, width in zip(cells, self._widths, strict=True):
            if not width:  # a hidden column
                continue
            text = cell.copy()
            text.truncate(width, overflow="ellipsis")
            text.align(cell.justify if cell.justify in ("right", "center") else "left", width)
            line.append(" ")
            line.append_text(text)
            line.append(" ")
        return Strip(list(line.render(self.app.console)), line.cell_len)

    def _style(self, name: str) -> Style:
        """The widget's style, or a component style over it (cached until theme or focus change)."""
        style = self._styles.get(name)
        if style is None:
            style = self.rich_style
            if name:
                style = style + self.get_component_rich_style(name)
            self._styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            header = self._style("runs-table--header")
            labels = tuple(
                Text(label, justify="right" if key in RIGHT_ALIGNED else "left")
                for key, label, _ in COLUMNS
            )
            heading = self._render_row(labels).apply_style(header)
            return heading.crop_extend(scroll_x, scroll_x + width, header)
        index = scroll_y + y - 1
        if index >= len(self._order):
            return Strip.blank(width, self._style(""))
        key = self._order[index]
        if key in self._stale and key in self.entries:  # scrolled into view since a tick
            self._recompute(self.entries[key], self.clock())
        cached = self._strips.get(key)
        if cached is None:
            cached = self._strips[key] = self._render_row(self._cells[key])
        if index == self.cursor_row:
            style = self._style("runs-table--cursor")
        else:
            style = self._style("runs-table--even-row" if index % 2 else "")
        return cached.apply_style(style).crop_extend(scroll_x, scroll_x + width, style)

    def notify_style_update(self) -> None:
        """Theme or focus changed: cached styles and rows are stale."""
        super().notify_style_update()
        self._styles.clear()  # theme or focus changed
        self._strips.clear()

    # -- keys and mouse ------------------------------------------------------------------------

    def _scroll_to_cursor(self) -> None:
        rows = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + rows:
            self.scroll_to(y=self.cursor_row - rows + 1, animate=False)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self.size.height - 2))

    def action_to(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self._order) - 1)

    def on_click(self, event: events.Click) -> None:
        scroll_x, scroll_y = self.scroll_offset
        if event.y == 0:
            x = event.x + scroll_x
            column = next((key for key in reversed(COLUMN_KEYS) if x >= self.column_x(key)), "name")
            sort = HEADER_SORTS.get(column)
            if sort is None:
                self.notify("click Run, Phase or Best val to sort", timeout=3)
            else:
                self.sort_by = sort
                self.sync()
            return
        index = scroll_y + event.y - 1
        if index >= len(self._order):
            return
        if index == self.cursor_row or event.chain > 1:
            self.post_message(RunSelected(self._order[index]))
        else:
            self.move_cursor(index, scroll=False)
