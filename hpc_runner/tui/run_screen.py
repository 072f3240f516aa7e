"""Base of the screens that show runs: the stop, cancel, resume and logs keys act on one run.

Each action asks first (a confirm dialog), then runs on a worker thread: writing a file on a
shared filesystem or calling the scheduler can take seconds, and the screen must keep updating.
The outcome comes back to the app as an :class:`~hpc_runner.tui.messages.ActionDone` message.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.screen import Screen

from hpc_runner.stream.status import TrainingState
from hpc_runner.tui import actions
from hpc_runner.tui.confirm import ConfirmDialog
from hpc_runner.tui.messages import ActionDone
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.text import literal

#: States in which a training may still be running (or about to start).
ACTIVE_STATES = (TrainingState.IDLE, TrainingState.TRAINING)


class RunScreen(Screen[None]):
    """A screen with a current run; subclasses say which one with :meth:`current_entry`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "stop_run", "Stop", tooltip="stop the run gracefully (asks first)"),
        Binding("c", "cancel_run", "Cancel", tooltip="cancel the run's scheduler job (asks first)"),
        Binding("r", "resume_run", "Resume", tooltip="resubmit from the last checkpoint (asks)"),
        Binding("l", "show_logs", "Logs", tooltip="show the job's stdout and stderr"),
    ]

    def current_entry(self) -> RunEntry | None:
        """The run the keys act on (None: nothing selected)."""
        raise NotImplementedError

    def refresh_runs(self, changed: Collection[str], now: float | None = None) -> None:
        """Show the runs whose keys are in ``changed`` as they are now (coalesced refresh)."""
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """The clock moved on (every second): update elapsed times and ETAs shown."""
        raise NotImplementedError

    def _entry_or_say(self) -> RunEntry | None:
        entry = self.current_entry()
        if entry is None:
            self.notify("no run selected", severity="warning", timeout=3)
        return entry

    def action_stop_run(self) -> None:
        """Ask, then write the run's STOP file (graceful stop after the current batch)."""
        entry = self._entry_or_say()
        if entry is None:
            return
        state = entry.state
        if state not in ACTIVE_STATES:
            self.notify(
                f"{literal(entry.label).plain} is {state.name}: nothing to stop", markup=False
            )
            return
        question = Text.assemble(
            "Stop ",
            literal(entry.label, "bold"),
            " gracefully?\n\nThe training finishes its current batch, saves its last "
            "checkpoint and ends as STOPPED; `resume` continues it later.",
        )
        self._confirm(question, "Stop", entry, actions.request_stop)

    def action_cancel_run(self) -> None:
        """Ask, then cancel the run's scheduler job (no checkpoint is written)."""
        entry = self._entry_or_say()
        if entry is None:
            return
        question = Text.assemble(
            "Cancel the scheduler job of ",
            literal(entry.label, "bold"),
            "?\n\nThe job is killed at once: progress since the last checkpoint is lost. "
            "Prefer stop (s) for a graceful end.",
        )
        self._confirm(question, "Cancel job", entry, actions.cancel_run)

    def action_resume_run(self) -> None:
        """Ask, then resubmit the run from its last checkpoint (a new attempt)."""
        entry = self._entry_or_say()
        if entry is None:
            return
        question = Text.assemble(
            "Resubmit ", literal(entry.label, "bold"), " from its last checkpoint?"
        )
        state = entry.state
        if state in ACTIVE_STATES:
            question.append(
                f"\n\nIts status file still says {state.name}: if its job is in fact alive, "
                "two jobs will write to this run.",
                style="bold yellow",
            )
        self._confirm(question, "Resume", entry, actions.resume_run)

    def action_show_logs(self) -> None:
        """Show the tail of the run's job stdout and stderr."""
        from hpc_runner.tui.logs_screen import LogsScreen

        entry = self._entry_or_say()
        if entry is not None:
            self.app.push_screen(LogsScreen(entry))

    def _confirm(
        self, question: Text, label: str, entry: RunEntry, action: Callable[[Path], str]
    ) -> None:
        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._run_in_thread(action, entry)

        self.app.push_screen(ConfirmDialog(question, label), callback=answered)

    def _run_in_thread(self, action: Callable[[Path], str], entry: RunEntry) -> None:
        app = self.app
        name = literal(entry.label).plain

        def work() -> None:
            try:
                message = ActionDone(action(entry.run_dir), ok=True)
            except Exception as exc:  # shown to the user, who can act on it; never swallowed
                message = ActionDone(f"{name}: {exc}", ok=False)
            app.post_message(message)

        app.run_worker(work, thread=True, group="run-actions", name=action.__name__)
