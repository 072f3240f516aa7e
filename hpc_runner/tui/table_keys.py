"""The runs table's keys and mouse, as k9s, less and vim users expect them.

``j``/``k`` and the arrows move, ``g``/``G`` (and Home/End) jump to the first and last run,
PgUp/PgDn page; ``<``/``>`` (or ←/→) choose the column that ``o`` sorts by ascending and
``O`` descending; a click on a header sorts by it (again: the other way round). ``space`` marks
runs to compare, ``z`` folds a sweep. A mixin of :class:`~hpc_runner.tui.runs_table.RunsTable`,
so that the table's module stays about drawing.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType

from hpc_runner.tui.messages import RunSelected, TableChanged
from hpc_runner.tui.table_rows import is_group, sweep_of
from hpc_runner.tui.table_view import TableView


class TableKeys(TableView):
    """Key bindings and mouse handling of the runs table (what they change is the table's)."""

    focus_column: str
    sort_by: str
    reverse: bool

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, tooltip="highlight the run above"),
        Binding("down,j", "cursor(1)", "Down", show=False, tooltip="highlight the run below"),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False, tooltip="one screen up"),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False, tooltip="one screen down"),
        Binding("home,g", "to(0)", "First", show=False, tooltip="highlight the first run"),
        Binding("end,G", "to(-1)", "Last", show=False, tooltip="highlight the last run"),
        Binding(
            "left,less_than_sign",
            "focus_column(-1)",
            "Column left",
            show=False,
            tooltip="choose the column to sort by (underlined in the header)",
        ),
        Binding(
            "right,greater_than_sign",
            "focus_column(1)",
            "Column right",
            show=False,
            tooltip="choose the column to sort by (underlined in the header)",
        ),
        Binding(
            "o", "sort_focused(False)", "Sort", show=False, tooltip="sort by the underlined column"
        ),
        Binding(
            "O",
            "sort_focused(True)",
            "Sort reversed",
            show=False,
            tooltip="sort by the underlined column, largest first",
        ),
        Binding(
            "space",
            "mark",
            "Mark",
            show=False,
            tooltip="mark the run to compare (on a sweep: all)",
        ),
        Binding("z", "fold", "Fold", show=False, tooltip="fold or unfold the highlighted sweep"),
    ]

    def move_cursor(self, row: int, *, scroll: bool = True) -> None:
        """Highlight a row (clamped) and, by default, scroll it into view."""
        if not self._rows:
            self.cursor_row = 0
            self._set_selected(None)
            return
        self.cursor_row = max(0, min(row, len(self._rows) - 1))
        self._set_selected(self._rows[self.cursor_row])
        if scroll:
            self._scroll_to_cursor()
        self.refresh()

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
        self.move_cursor(row if row >= 0 else len(self._rows) - 1)

    def action_focus_column(self, step: int) -> None:
        keys = list(self.column_layout.keys)
        index = keys.index(self.focus_column) if self.focus_column in keys else 0
        self.focus_column = keys[max(0, min(index + step, len(keys) - 1))]
        self.refresh()

    def action_sort_focused(self, reverse: bool) -> None:
        focused = self.focus_column if self.focus_column in self.column_layout.keys else "name"
        self.sort(focused, reverse=reverse)
        self.post_message(TableChanged())

    def action_mark(self) -> None:
        self.toggle_mark()
        self.post_message(TableChanged())

    def action_fold(self) -> None:
        sweep = self.selected_sweep
        if sweep is None:
            self.notify("not a run of a sweep: nothing to fold", timeout=3)
        else:
            self.toggle_group(sweep)

    def on_focus(self) -> None:
        self.refresh()  # the chosen column is underlined while the table has the focus

    def on_blur(self) -> None:
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        scroll_x, scroll_y = self.scroll_offset
        if event.y == 0:
            column = self.column_layout.column_at(event.x + scroll_x)
            if column is not None:
                again = column == self.sort_by
                self.sort(column, reverse=not self.reverse if again else False)
                self.post_message(TableChanged())
            return
        index = scroll_y + event.y - 1
        if index >= len(self._rows):
            return
        key = self._rows[index]
        if index == self.cursor_row or event.chain > 1:
            if is_group(key):
                self.toggle_group(sweep_of(key))
            else:
                self.post_message(RunSelected(key))
        else:
            self.move_cursor(index, scroll=False)

    # -- provided by the table -----------------------------------------------------------------

    @property
    def selected_sweep(self) -> str | None:
        raise NotImplementedError

    def _set_selected(self, key: str | None) -> None:
        raise NotImplementedError

    def sort(self, column: str, *, reverse: bool = False) -> None:
        raise NotImplementedError

    def toggle_mark(self) -> None:
        raise NotImplementedError

    def toggle_group(self, sweep: str) -> None:
        raise NotImplementedError
