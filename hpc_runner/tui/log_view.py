"""One job log, as ``less +F`` shows it: following its end, searchable, scrollable.

Lines arrive already printable (:mod:`hpc_runner.watch.log_tail`); they are drawn with
Textual's line API, so a log of 100,000 lines costs no more per frame than a screenful. While
following, each append scrolls to the end; scrolling up (or jumping to a match) stops that,
``f`` or ``G`` starts it again. A search marks every match and moves among them with ``n`` /
``N``.
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hpc_runner.tui.text import printable

#: Lines kept at most (the oldest are dropped; the file still has them).
MAX_LINES = 100_000

#: The first sign of trouble in a log: a Python traceback, else an error line.
TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
ERROR = re.compile(r"\b\w*(Error|Exception)\b|\berror\b|\bERROR\b|\bKilled\b|\bOOM\b")


def first_trouble(lines: list[str]) -> int | None:
    """The index of the first ``Traceback`` line, else of the first error line; None if none."""
    for pattern in (TRACEBACK, ERROR):
        for index, line in enumerate(lines):
            if pattern.search(line):
                return index
    return None


class LogView(ScrollView, can_focus=True):
    """The lines of one log, followed at the end unless the user scrolls away."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"log-view--match", "log-view--current"}

    DEFAULT_CSS = """
    LogView { height: 1fr; background: $surface; }
    LogView > .log-view--match { background: $warning 40%; }
    LogView > .log-view--current { background: $accent; color: $text; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "scroll_by(-1)", "Up", show=False, tooltip="one line up"),
        Binding("down,j", "scroll_by(1)", "Down", show=False, tooltip="one line down"),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False, tooltip="one screen up"),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False, tooltip="one screen down"),
        Binding("home,g", "top", "Top", show=False, tooltip="the first line (stops following)"),
        Binding("end,G", "bottom", "End", show=False, tooltip="the last line, and follow it"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []
        self.partial = ""
        self.message: str | None = None
        self.follow = True
        self.search = ""
        self.matches: list[int] = []
        self.current: int | None = None  # index into matches
        self._width = 0
        self._match_lines: set[int] = set()

    @property
    def text(self) -> str:
        """The lines shown, each with its newline (what the file holds, made printable)."""
        return "".join(line + "\n" for line in self.lines) + self.partial

    # -- content -------------------------------------------------------------------------------

    def show_message(self, message: str) -> None:
        """No log to show: say why instead (``no log yet: ...``)."""
        self.message = message
        self.lines, self.partial = [], ""
        self._changed(reset=True)

    def add(self, lines: list[str], *, reset: bool = False, partial: str = "") -> None:
        """Append complete lines (``reset``: replace everything); ``partial`` is the unfinished
        last line as it reads now."""
        self.message = None
        if reset:
            self.lines = []
        start = len(self.lines)
        self.lines.extend(line.replace("\t", "    ") for line in lines)
        self.partial = partial.replace("\t", "    ")
        dropped = max(0, len(self.lines) - MAX_LINES)
        if dropped:
            del self.lines[:dropped]
            start -= dropped
        if self.search and not reset and not dropped:
            self.matches += self._find(self.search, max(0, start))
        elif self.search:
            self.matches = self._find(self.search)
            self.current = None
        self._match_lines = set(self.matches)
        self._changed(reset=reset)

    def _changed(self, *, reset: bool) -> None:
        widths = [len(line) for line in self.lines[-1000:]] if not reset else map(len, self.lines)
        self._width = max(self._width if not reset else 0, max(widths, default=0))
        self.virtual_size = Size(self._width + 1, self.line_count)
        if self.follow:
            self.scroll_end(animate=False, immediate=True)
            # and again once the new size is laid out, where the end may lie further on
            self.call_after_refresh(self._follow_end)
        self.refresh()

    def _follow_end(self) -> None:
        if self.follow:
            self.scroll_end(animate=False, immediate=True)

    @property
    def line_count(self) -> int:
        """Lines drawn (the message, or the log's lines and its unfinished last one)."""
        if self.message is not None:
            return 1
        return len(self.lines) + (1 if self.partial else 0)

    # -- search --------------------------------------------------------------------------------

    def _find(self, needle: str, start: int = 0) -> list[int]:
        folded = needle.casefold()
        return [i for i in range(start, len(self.lines)) if folded in self.lines[i].casefold()]

    def set_search(self, needle: str) -> int:
        """Mark every line holding ``needle`` (case-insensitive); returns how many."""
        self.search = needle
        self.matches = self._find(needle) if needle else []
        self._match_lines = set(self.matches)
        self.current = None
        self.refresh()
        return len(self.matches)

    def next_match(self, step: int = 1) -> int | None:
        """Go to the next (``step`` 1) or previous (-1) match, round the end; its line index."""
        if not self.matches:
            return None
        if self.current is None:
            top = int(self.scroll_offset.y)
            after = [i for i, line in enumerate(self.matches) if line >= top]
            before = [i for i, line in enumerate(self.matches) if line < top]
            if step > 0:
                self.current = after[0] if after else 0
            else:
                self.current = before[-1] if before else len(self.matches) - 1
        else:
            self.current = (self.current + step) % len(self.matches)
        line = self.matches[self.current]
        self.goto(line)
        return line

    def goto(self, line: int) -> None:
        """Show ``line`` a few lines below the top, and stop following."""
        self.follow = False
        self.scroll_to(y=max(0, line - 3), animate=False, immediate=True)
        self.refresh()

    # -- scrolling -----------------------------------------------------------------------------

    def action_scroll_by(self, step: int) -> None:
        if step < 0:
            self.follow = False
        self.scroll_to(y=self.scroll_offset.y + step, animate=False, immediate=True)

    def action_page(self, direction: int) -> None:
        if direction < 0:
            self.follow = False
        target = self.scroll_offset.y + direction * max(1, self.size.height - 1)
        self.scroll_to(y=target, animate=False, immediate=True)

    def action_top(self) -> None:
        self.follow = False
        self.scroll_home(animate=False, immediate=True)

    def action_bottom(self) -> None:
        self.follow = True
        self.scroll_end(animate=False, immediate=True)

    def on_resize(self) -> None:
        """Laid out (the first lines may arrive before) or resized: still at the end."""
        if self.follow:
            self.scroll_end(animate=False)  # after the refresh: once the new size is known

    def on_mouse_scroll_up(self) -> None:
        self.follow = False  # the user scrolled up to read: stop following

    # -- drawing -------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self.rich_style
        if self.message is not None:
            # (the reason may name the run directory: its name is shown as characters)
            shown = printable(self.message, one_line=True) if y == 0 else ""
            text = Text(shown, style="dim italic", end="")
        elif index < len(self.lines):
            text = Text(self.lines[index], end="")
            if self.search and index in self._match_lines:
                current = self.current is not None and self.matches[self.current] == index
                name = "log-view--current" if current else "log-view--match"
                style = self.get_component_rich_style(name)
                for found in re.finditer(re.escape(self.search), text.plain, re.IGNORECASE):
                    text.stylize(style, found.start(), found.end())
        elif index == len(self.lines) and self.partial:
            text = Text(self.partial, style="dim", end="")
        else:
            return Strip.blank(width, base)
        segments = [
            Segment(part.text, base + part.style if part.style else base)
            for part in text.render(self.app.console)
        ]
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, base)
