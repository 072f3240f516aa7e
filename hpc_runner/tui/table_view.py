"""Drawing the runs table with Textual's line API: cached strips, cropped and styled per frame.

Each row is rendered once into a :class:`~textual.strip.Strip` when its text changes and kept;
a frame only crops and styles cached strips. The base of
:class:`~hpc_runner.tui.runs_table.RunsTable`, which says what the rows are.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hpc_runner.tui.table_layout import Layout, fit
from hpc_runner.tui.table_rows import is_group


class TableView(ScrollView):
    """A header line, then one cached strip per row key; the highlighted row styled."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "runs-table--header",
        "runs-table--even-row",
        "runs-table--cursor",
        "runs-table--group",
    }

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.column_layout: Layout = fit(80, {})
        self.empty_text: list[str] = []
        self.cursor_row = 0
        self._rows: list[str] = []
        self._strips: dict[str, Strip] = {}
        self._styles: dict[str, Style] = {}

    # -- provided by the table -----------------------------------------------------------------

    def _row_strip(self, key: str) -> Strip:
        """The row of ``key``, rendered (and cached in ``_strips``)."""
        raise NotImplementedError

    def _header_strip(self) -> Strip:
        raise NotImplementedError

    def _before_draw(self, key: str) -> None:
        """A row is about to be drawn (its cells may be stale)."""

    # -- drawing -------------------------------------------------------------------------------

    def _render_row(self, cells: list[Text], mark: str = " ") -> Strip:
        """Cells padded to the layout's widths, cut with ``…``; ``mark`` before the first."""
        line = Text(no_wrap=True, end="")
        for index, (cell, width) in enumerate(zip(cells, self.column_layout.widths, strict=True)):
            text = cell.copy()
            text.truncate(width, overflow="ellipsis")
            text.align(cell.justify if cell.justify in ("right", "center") else "left", width)
            line.append(mark if index == 0 else " ")
            line.append_text(text)
            line.append(" ")
        return self._strip(line)

    def _strip(self, line: Text) -> Strip:
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
            return self._header_strip().crop_extend(scroll_x, scroll_x + width, header)
        index = scroll_y + y - 1
        if index >= len(self._rows):
            if not self._rows and 0 <= y - 2 < len(self.empty_text):
                line = Text(self.empty_text[y - 2], style="dim")
                return self._strip(line).crop_extend(0, width, self._style(""))
            return Strip.blank(width, self._style(""))
        key = self._rows[index]
        self._before_draw(key)
        if index == self.cursor_row:
            style = self._style("runs-table--cursor")
        elif is_group(key):
            style = self._style("runs-table--group")
        else:
            style = self._style("runs-table--even-row" if index % 2 else "")
        strip = self._row_strip(key).apply_style(style)
        return strip.crop_extend(scroll_x, scroll_x + width, style)

    def notify_style_update(self) -> None:
        """Theme or focus changed: cached styles and rows are stale."""
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()
