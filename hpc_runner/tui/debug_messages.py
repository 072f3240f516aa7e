"""The run's recent debug messages, newest last, shown literally."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.text import Text

from hpc_runner.tui.text import literal
from hpc_runner.tui.text_panel import TextPanel

#: Messages shown (the run state keeps the last hundred).
SHOWN = 50


def debug_text(messages: Iterable[tuple[float, str]]) -> Text:
    """``HH:MM:SS message`` lines (local time); control characters made visible, no markup."""
    lines = list(messages)[-SHOWN:]
    if not lines:
        return Text("no debug messages", style="dim")
    text = Text()
    for index, (stamp, message) in enumerate(lines):
        if index:
            text.append("\n")
        text.append(time.strftime("%H:%M:%S ", time.localtime(stamp)), style="dim")
        text.append_text(literal(message))
    return text


class DebugMessages(TextPanel):
    """A scrollable list of debug messages; :meth:`show` replaces it and scrolls to the end."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Debug messages", id=id)

    def show(self, messages: Iterable[tuple[float, str]]) -> None:
        """Show these (time, message) pairs, newest last."""
        if self.show_text(debug_text(messages)):
            self.call_after_refresh(self.scroll_end, animate=False)
