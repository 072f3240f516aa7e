"""A run's own job output (submitit's stdout and stderr), per attempt, followed like ``tail -f``.

Only the run's own job or array task files are shown (:func:`hpc_runner.watch.meta.job_logs`,
the rule ``hpc-runner logs`` follows): a sweep task that still waits in the queue says "no log
yet" rather than showing a sibling's. Each attempt can be chosen (``[`` / ``]``): after a resume,
the earlier attempt's log with its crash stays one key away. ``tab`` switches between stdout and
stderr; the shown log follows its end (``f`` pauses), ``/`` searches it (``n`` / ``N``), ``e``
jumps to the first traceback or error line of either log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from hpc_runner.stream.files import reason_of
from hpc_runner.stream.run_state import RunState
from hpc_runner.tui.log_view import LogView, first_trouble
from hpc_runner.tui.messages import LogsLoaded, LogText
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.prompt_bar import PromptBar
from hpc_runner.tui.run_info import shown_path
from hpc_runner.tui.text import literal
from hpc_runner.watch.log_tail import LogTail
from hpc_runner.watch.meta import job_logs

#: Seconds between two looks at the logs while the screen is open.
POLL_INTERVAL = 0.5
#: A log is first shown from this many bytes before its end (the rest: ``hpc-runner logs``).
START_BYTES = 1 << 20
#: Reads per look at most (each up to 4 MiB): a huge log is caught up over several looks.
READS_PER_LOOK = 4
STREAMS = ("stdout", "stderr")


class LogFollower:
    """The chosen attempt's two logs, followed; read on worker threads, one at a time."""

    def __init__(self, key: str, run_dir: Path, run: RunState) -> None:
        self.key, self.run_dir, self.run = key, run_dir, run
        self._lock = threading.Lock()
        self._files: tuple[object, ...] | None = None
        self._tails: dict[str, LogTail | None] = {}

    def read(self, attempt: int | None, deliver: Callable[[LogsLoaded], object]) -> None:
        """Hand ``deliver`` what the logs of ``attempt`` (None: the newest) gained since the last
        read. One read at a time, delivery included: when a slow look overlaps the next poll,
        the lines still reach the screen in the order they were read."""
        with self._lock:
            deliver(self._look(attempt))

    def _look(self, attempt: int | None) -> LogsLoaded:
        logs = job_logs(self.run_dir, attempt, self.run)
        if logs.problem is not None:
            self._files = None
            gone = LogText(None, error=f"no logs to show: {logs.problem}")
            return LogsLoaded(self.key, gone, gone, attempts=logs.attempts)
        files = (logs.attempt, logs.stdout, logs.stderr)
        if files != self._files:  # another attempt, or a log appeared: start over
            self._files = files
            self._tails = {
                name: LogTail(path, START_BYTES) if path is not None else None
                for name, path in zip(STREAMS, (logs.stdout, logs.stderr), strict=True)
            }
        job = f"job {logs.job_id}" if logs.job_id else "its job"
        texts = [self._read(name, job) for name in STREAMS]
        return LogsLoaded(
            self.key, texts[0], texts[1], attempts=logs.attempts, attempt=logs.attempt
        )

    def _read(self, name: str, job: str) -> LogText:
        tail = self._tails.get(name)
        if tail is None:
            return LogText(None, error=f"no log yet: {job} has not written its {name}")
        text = LogText(str(tail.path), reset=False)
        try:
            for _ in range(READS_PER_LOOK):
                chunk = tail.read()
                if chunk.reset:
                    text.lines, text.reset = [], True
                text.lines += chunk.lines
                text.partial = chunk.partial
                if not chunk.pending:
                    break
        except OSError as exc:
            self._tails[name] = None  # opened afresh next time
            return LogText(str(tail.path), error=f"cannot read {tail.path}: {reason_of(exc)}")
        return text


def attempts_text(attempts: list[tuple[int, str]], shown: int | None) -> Text:
    """``attempts: 0 (job 4242) │ 1 (job 4250)`` with the one shown highlighted."""
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
    """The attempts, then one log (stdout or stderr), followed at its end; Esc closes.

    It covers the whole terminal, so that no footer of the screen below (whose keys do not
    apply here) shows through.
    """

    DEFAULT_CSS = """
    LogsScreen > Vertical { width: 100%; height: 100%; background: $surface; }
    LogsScreen #attempts, LogsScreen #state { height: 1; background: $panel; padding: 0 1; }
    LogsScreen LogView { border: round $primary; }
    LogsScreen #stderr { border: round $warning; display: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", tooltip="close the logs"),
        Binding("q", "dismiss", "Close", show=False, tooltip="close the logs"),
        Binding("tab", "stream", "stdout/stderr", tooltip="show the other log (stdout, stderr)"),
        Binding("f", "follow", "Follow", tooltip="follow the end of the log, or stop (as tail -f)"),
        Binding("slash", "search", "Search", key_display="/", tooltip="find text in the log"),
        Binding("n", "next_match(1)", "Next", tooltip="the next match of the search"),
        Binding("N", "next_match(-1)", "Previous", show=False, tooltip="the previous match"),
        Binding("e", "trouble", "Error", tooltip="the first traceback or error line"),
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
        self.stream = "stdout"
        self.follower = LogFollower(entry.key, entry.run_dir, entry.run)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("reading…", id="attempts", markup=False)
            yield Static("", id="state", markup=False)
            for name in STREAMS:
                yield LogView(id=name)
            yield PromptBar(placeholder="search: text to find (enter: go, esc: clear)")
            yield Footer()

    def view(self, name: str | None = None) -> LogView:
        """The log view of ``name`` (default: the one shown)."""
        return self.query_one(f"#{name or self.stream}", LogView)

    def on_mount(self) -> None:
        self.view().focus()
        self._titles()
        self.reload()
        self.set_interval(POLL_INTERVAL, self.reload)

    def _titles(self) -> None:
        name = literal(self.entry.label)
        shown = self.loaded.attempt if self.loaded is not None else None
        of = f" · attempt {shown}" if shown is not None else ""
        for stream in STREAMS:
            self.view(stream).border_title = Text.assemble(f"{stream} of ", name, of)
        self._show_state()

    def _show_state(self) -> None:
        """``stdout (tab: stderr) · following · search 'x': 2 of 5``."""
        view = self.view()
        other = STREAMS[1 - STREAMS.index(self.stream)]
        text = Text(self.stream, style="bold")
        text.append(f" (tab: {other}) · ", style="dim")
        text.append("following" if view.follow else "paused (f follows)")
        if view.search:
            at = f"{view.current + 1} of " if view.current is not None else ""
            text.append(" · search ", style="dim")
            text.append_text(literal(view.search, "bold"))
            text.append(f": {at}{len(view.matches)} match{'es' * (len(view.matches) != 1)}")
        self.query_one("#state", Static).update(text)

    def reload(self) -> None:
        """Read what the chosen attempt's logs gained, on a worker thread."""
        follower, attempt = self.follower, self.attempt

        def work() -> None:
            follower.read(attempt, self.post_message)

        self.run_worker(work, thread=True, group="logs")

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
        for name, log in zip(STREAMS, (message.stdout, message.stderr), strict=True):
            view = self.view(name)
            if log.error is not None:
                if view.message != log.error:
                    view.show_message(log.error)
            elif log.lines or log.reset or log.partial != view.partial:
                view.add(log.lines, reset=log.reset, partial=log.partial)
            where = shown_path(Path(log.path), self.entry) if log.path else ""
            view.border_subtitle = literal(where)
        self._show_state()

    # -- keys ----------------------------------------------------------------------------------

    def action_stream(self) -> None:
        self._switch(STREAMS[1 - STREAMS.index(self.stream)])

    def _switch(self, stream: str) -> None:
        self.view().display = False
        self.stream = stream
        view = self.view()
        view.display = True
        view.focus()
        self._show_state()

    def action_follow(self) -> None:
        view = self.view()
        if view.follow:
            view.follow = False
        else:
            view.action_bottom()
        self._show_state()

    def action_search(self) -> None:
        self.query_one(PromptBar).open()

    def on_input_changed(self, message: Input.Changed) -> None:
        message.stop()
        for name in STREAMS:
            self.view(name).set_search(message.value)
        self._show_state()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        self.query_one(PromptBar).close()
        self.view().focus()
        self.action_next_match(1)

    def on_prompt_bar_cancelled(self, message: PromptBar.Cancelled) -> None:
        message.stop()
        for name in STREAMS:
            self.view(name).set_search("")
        self.view().focus()
        self._show_state()

    def action_next_match(self, step: int) -> None:
        view = self.view()
        if not view.search:
            self.notify("search first (/)", timeout=3)
        elif view.next_match(step) is None:
            self.notify(f"not found: {literal(view.search).plain}", timeout=3, markup=False)
        self._show_state()

    def action_trouble(self) -> None:
        """The first traceback (else error line) of the shown log, else of the other one."""
        order = [self.stream, *(name for name in STREAMS if name != self.stream)]
        for name in order:
            line = first_trouble(self.view(name).lines)
            if line is not None:
                if name != self.stream:
                    self._switch(name)
                self.view().goto(line)
                self._show_state()
                return
        self.notify("no traceback or error line in these logs", timeout=4)
