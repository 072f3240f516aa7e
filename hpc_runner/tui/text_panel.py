"""A bordered, scrollable panel of text that repaints only when its text changed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class TextPanel(Static):
    """Base of the detail view's text panels (run facts, debug messages).

    Most refreshes of a run bring new losses, not new text for these panels, and an update
    costs a layout pass: :meth:`show_text` skips it when the text is unchanged. Markup is off:
    everything shown comes from files and is displayed literally.
    """

    DEFAULT_CSS = """
    TextPanel {
        width: 1fr; height: 1fr; overflow-y: auto; padding: 0 1;
        border: round $primary-darken-2;
    }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(markup=False, id=id)
        self.border_title = title
        self._shown: Text | None = None

    def show_text(self, text: Text) -> bool:
        """Display ``text``; False (and nothing done) if it is what is shown already."""
        if text == self._shown:
            return False
        self._shown = text
        self.update(text)
        return True
