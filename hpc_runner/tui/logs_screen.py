"""A run's own job output (submitit's stdout and stderr logs), per attempt, refreshed while open.

Only the run's own job or array task files are shown (:func:`hpc_runner.watch.meta.job_logs`,
the rule ``hpc-runner logs`` follows): a sweep task that still waits in the queue says "no log
yet" rather than showing a sibling's. Each attempt can be chosen (``[`` / ``]``): after a resume,
the earlier attempt's log with its crash stays one key away.
"""

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
from hpc_runner.watch.meta import JobLogs, job_logs, read_tail

#: Seconds between two reloads while the panel is open.
RELOAD_INTERVAL = 2.0

#: Bytes read from the end of each log.
TAIL_BYTES = 64 << 10


def read_log(path: Path | None, missing: str = "no log yet") -> LogText:
    """The printable tail of one log (ANSI colours and progress-bar rewrites removed)."""
    if path is None:
        return LogText(None, "", missing)
    try:
        return LogText(str(path), strip_ansi(read_tail(path, TAIL_BYTES)))
    except OSError as exc:
        return LogText(str(path), "", f"cannot read {path}: {reason_of(exc)}")


def read_logs(key: str, logs: JobLogs) -> LogsLoaded:
    """Both logs of one attempt as a message for the screen (runs on a worker thread)."""
    if logs.problem is not None:
        stdout = stderr = LogText(None, "", f"no logs to show: {logs.problem}")
    else:
        job = f"job {logs.job_id}" if logs.job_id else "its job"
        stdout = read_log(logs.stdout, f"no log yet: {job} has not written its stdout")
        stderr = read_log(logs.stderr, f"no log yet: {job} has not written its stderr")
    return LogsLoaded(key, stdout, stderr, attempts=logs.attempts, attempt=logs.attempt)


def log_text(log: LogText) -> Text:
    """What a log pane shows: the text, ``(empty)``, or why there is nothing."""
    if log.error:
        return literal(log.error, "dim italic")
    if not log.text.strip():
        return Text("(empty)", style="dim italic")
    return Text(log.text)  # already printable: strip_ansi made control characters visible


def attempts_text(attempts: list[tuple[int, str]], shown: int | None) -> Text:
    """``attempts: 0 job 4242 │ [1 job 4250]`` with the one shown highlighted."""
    if not attempts:
        return Text("no attempts to choose from", style="dim")
    text = Text("attempts: ", style="bold")
    for index, (attempt, job_id) in enumerate(attempts):
        if index:
            text.append(" │ ", style="dim")
        label = literal(f"{attempt} (job {job_id})")
        if attempt == shown:
            label.stylize("reverse bold")
        text.append_text(label)
    if len(attempts) > 1:
        text.append("   [ / ] earlier / later", style="dim")
    return text


class LogsScreen(ModalScreen[None]):
    """The attempts, then stdout above stderr, each scrolled to its end; Esc closes.

    It covers the whole terminal, so that no footer of the screen below (whose keys do not
    apply here) shows through.
    """

    DEFAULT_CSS = """
    LogsScreen > Vertical { width: 100%; height: 100%; background: $surface; }
    LogsScreen #attempts { height: 1; background: $panel; padding: 0 1; }
    LogsScreen VerticalScroll { height: 1fr; border: round $primary; padding: 0 1; }
    LogsScreen #stderr-pane { border: round $warning; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", tooltip="close the logs"),
        Binding("q", "dismiss", "Close", show=False, tooltip="close the logs"),
        Binding(
            "left_square_bracket",
            "attempt(-1)",
            "Earlier attempt",
            key_display="[",
            tooltip="show the logs of the attempt before",
        ),
        Binding(
            "right_square_bracket",
            "attempt(1)",
            "Later attempt",
            key_display="]",
            tooltip="show the logs of the attempt after",
        ),
    ]

    def __init__(self, entry: RunEntry) -> None:
        super().__init__()
        self.entry = entry
        self.attempt: int | None = None  # None: the newest, whichever it is
        self.loaded: LogsLoaded | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("reading…", id="attempts", markup=False)
            with VerticalScroll(id="stdout-pane"):
                yield Static("reading…", id="stdout", markup=False)
            with VerticalScroll(id="stderr-pane"):
                yield Static("reading…", id="stderr", markup=False)
            yield Footer()

    def on_mount(self) -> None:
        self._titles()
        self.reload()
        self.set_interval(RELOAD_INTERVAL, self.reload)

    def _titles(self) -> None:
        name = literal(self.entry.label)
        shown = self.loaded.attempt if self.loaded is not None else None
        of = f" · attempt {shown}" if shown is not None else ""
        for pane in ("stdout", "stderr"):
            title = Text.assemble(f"{pane} of ", name, of)
            self.query_one(f"#{pane}-pane").border_title = title

    def reload(self) -> None:
        """Read the chosen attempt's logs again, on a worker thread (also every 2 s)."""
        entry, attempt = self.entry, self.attempt
        run_dir, key, run = entry.run_dir, entry.key, entry.run

        def work() -> None:
            self.post_message(read_logs(key, job_logs(run_dir, attempt, run)))

        self.run_worker(work, thread=True, group="logs", exclusive=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer an earlier or later attempt only where there is one."""
        if action != "attempt":
            return True
        return self._neighbour(int(str(parameters[0]))) is not None

    def _neighbour(self, step: int) -> int | None:
        loaded = self.loaded
        if loaded is None or loaded.attempt is None:
            return None
        numbers = [attempt for attempt, _ in loaded.attempts]
        if loaded.attempt not in numbers:
            return None
        index = numbers.index(loaded.attempt) + step
        return numbers[index] if 0 <= index < len(numbers) else None

    def action_attempt(self, step: int) -> None:
        """Show the logs of the attempt before (-1) or after (+1) the one shown."""
        chosen = self._neighbour(step)
        if chosen is None:
            return
        newest = self.loaded is not None and chosen == self.loaded.attempts[-1][0]
        self.attempt = None if newest else chosen  # the newest: follow a next attempt too
        self.reload()

    def on_logs_loaded(self, message: LogsLoaded) -> None:
        wanted = self.attempt
        if message.attempts and message.attempt != (
            message.attempts[-1][0] if wanted is None else wanted
        ):
            return  # read for the attempt shown before the user chose another
        before = (self.loaded.attempt, self.loaded.attempts) if self.loaded else None
        self.loaded = message
        if before != (message.attempt, message.attempts):
            self.query_one("#attempts", Static).update(
                attempts_text(message.attempts, message.attempt)
            )
            self._titles()
            self.refresh_bindings()
        for name, log in (("stdout", message.stdout), ("stderr", message.stderr)):
            pane = self.query_one(f"#{name}-pane", VerticalScroll)
            at_end = pane.scroll_y >= pane.max_scroll_y
            self.query_one(f"#{name}", Static).update(log_text(log))
            where = shown_path(Path(log.path), self.entry) if log.path else ""
            pane.border_subtitle = literal(where)
            if at_end:  # follow the end, unless the user scrolled up to read
                pane.call_after_refresh(pane.scroll_end, animate=False)
