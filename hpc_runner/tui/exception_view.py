"""The exception a run recorded, with its traceback, shown literally; hidden while none."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from hpc_runner.stream.records import RecordedException
from hpc_runner.tui.text import literal, printable

#: Tracebacks can be long (chained exceptions): only the end is shown, where the error is.
MAX_TRACEBACK_LINES = 60


def exception_text(exception: RecordedException) -> Text:
    """Type and message in bold red, then the end of the traceback."""
    text = literal(exception.exc_type, "bold red")
    if exception.message:
        text.append(": ", style="bold red")
        text.append(printable(exception.message), style="bold")
    lines = printable(exception.traceback).rstrip("\n").split("\n")
    if exception.traceback.strip():
        if len(lines) > MAX_TRACEBACK_LINES:
            lines = ["…", *lines[-MAX_TRACEBACK_LINES:]]
        text.append("\n\n" + "\n".join(lines), style="dim")
    return text


class ExceptionView(Static):
    """Shows :func:`exception_text` of the run's last exception."""

    DEFAULT_CSS = """
    ExceptionView {
        height: auto; max-height: 45%; overflow-y: auto;
        border: round $error; padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(markup=False, id=id)
        self.border_title = "Exception"
        self.display = False

    _shown: RecordedException | None = None

    def show(self, exception: RecordedException | None) -> None:
        """Show the exception (or hide the panel when there is none)."""
        if exception is self._shown:
            return
        self._shown = exception
        self.display = exception is not None
        if exception is not None:
            self.update(exception_text(exception))
