"""The tail of a run's job output (submitit's stdout and stderr logs), refreshed while open."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from hpc_runner.stream.files import reason_of
from hpc_runner.tui.messages import LogsLoaded, LogText
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.run_info import shown_path
from hpc_runner.tui.text import literal, strip_ansi
from hpc_runner.watch.meta import current_logs, read_tail

#: Seconds between two reloads while the panel is open.
RELOAD_INTERVAL = 2.0

#: Bytes read from the end of each log.
TAIL_BYTES = 64 << 10


def read_log(path: Path | None) -> LogText:
    """The printable tail of one log (ANSI colours and progress-bar rewrites removed)."""
    if path is None:
        return LogText(None, "", "no log yet: the job has not started")
    try:
        return LogText(str(path), strip_ansi(read_tail(path, TAIL_BYTES)))
    except OSError as exc:
        return LogText(str(path), "", f"cannot read {path}: {reason_of(exc)}")


def log_text(log: LogText) -> Text:
    """What a log pane shows: the text, ``(empty)``, or why there is nothing."""
    if log.error:
        return literal(log.error, "dim italic")
    if not log.text.strip():
        return Text("(empty)", style="dim italic")
    return Text(log.text)  # already printable: strip_ansi made control characters visible


class LogsScreen(ModalScreen[None]):
    """Two panes, stdout above stderr, each scrolled to its end; ``r`` reloads, Esc closes."""

    DEFAULT_CSS = """
    LogsScreen { align: center middle; }
    LogsScreen > Vertical { width: 95%; height: 90%; background: $surface; }
    LogsScreen VerticalScroll { height: 1fr; border: round $primary; padding: 0 1; }
    LogsScreen #stderr-pane { border: round $warning; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", tooltip="close the logs"),
        Binding("q", "dismiss", "Close", show=False, tooltip="close the logs"),
        Binding(
            "r",
            "reload",
            "Reload",
            tooltip=f"read the logs again (also every {RELOAD_INTERVAL:g} s)",
        ),
    ]

    def __init__(self, entry: RunEntry) -> None:
        super().__init__()
        self.entry = entry
        self.loaded: LogsLoaded | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll(id="stdout-pane"):
                yield Static("reading…", id="stdout", markup=False)
            with VerticalScroll(id="stderr-pane"):
                yield Static("reading…", id="stderr", markup=False)
            yield Footer()

    def on_mount(self) -> None:
        name = literal(self.entry.label)
        self.query_one("#stdout-pane").border_title = Text.assemble("stdout of ", name)
        self.query_one("#stderr-pane").border_title = Text.assemble("stderr of ", name)
        self.action_reload()
        self.set_interval(RELOAD_INTERVAL, self.action_reload)

    def action_reload(self) -> None:
        run_dir, key = self.entry.run_dir, self.entry.key

        def work() -> None:
            stdout, stderr = current_logs(run_dir)
            self.post_message(LogsLoaded(key, read_log(stdout), read_log(stderr)))

        self.run_worker(work, thread=True, group="logs", exclusive=True)

    def on_logs_loaded(self, message: LogsLoaded) -> None:
        self.loaded = message
        for name, log in (("stdout", message.stdout), ("stderr", message.stderr)):
            pane = self.query_one(f"#{name}-pane", VerticalScroll)
            at_end = pane.scroll_y >= pane.max_scroll_y
            self.query_one(f"#{name}", Static).update(log_text(log))
            if log.path:
                pane.border_subtitle = literal(shown_path(Path(log.path), self.entry))
            if at_end:  # follow the end, unless the user scrolled up to read
                pane.call_after_refresh(pane.scroll_end, animate=False)
