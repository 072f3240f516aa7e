"""A one-line prompt at the bottom of a screen: the runs filter and the logs search (``/``).

It is hidden until asked for; Enter keeps what was typed and gives the focus back, Esc clears
it and hides the bar (as in less and vim). The screen reads what is typed from Textual's own
``Input.Changed`` / ``Input.Submitted`` messages and from :class:`PromptBar.Cancelled`.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input


class PromptBar(Input):
    """An :class:`~textual.widgets.Input` that hides itself when cancelled."""

    DEFAULT_CSS = """
    PromptBar { dock: bottom; height: 1; border: none; padding: 0 1; display: none; }
    PromptBar:focus { border: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Clear", tooltip="clear what was typed and close the prompt"),
    ]

    class Cancelled(Message):
        """Esc in the prompt: what it held no longer applies."""

        def __init__(self, bar: PromptBar) -> None:
            super().__init__()
            self.bar = bar

        @property
        def control(self) -> PromptBar:
            return self.bar

    def open(self) -> None:
        """Show the bar and focus it, keeping what it holds (to refine a filter)."""
        self.display = True
        self.focus()

    def close(self) -> None:
        """Hide the bar (what it holds stays in force)."""
        self.display = False

    def action_cancel(self) -> None:
        self.value = ""
        self.close()
        self.post_message(self.Cancelled(self))
