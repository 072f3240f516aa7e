"""Base of the screens that show runs: the stop, cancel, resume and logs keys act on one run.

The keys fit the run's phase (:data:`hpc_runner.control.phase.ACTIONS`, the command line's
rule): Textual's ``check_action`` hides a key from the footer where it means nothing, and a
hidden key pressed anyway says why (the same words as ``hpc-runner stop|cancel|resume``).
Each action asks first, in a dialog that names what will happen, then runs on a worker thread:
writing a file on a shared filesystem or calling the scheduler can take seconds, and the screen
must keep updating. The outcome comes back to the app as an
:class:`~hpc_runner.tui.messages.ActionDone` message, which has the scheduler asked again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.screen import Screen

from hpc_runner.control.phase import RunPhase
from hpc_runner.errors import HpcRunnerError
from hpc_runner.tui import actions
from hpc_runner.tui.confirm import ConfirmDialog
from hpc_runner.tui.messages import ActionDone, AnswerReady
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.questions import (
    BUTTONS,
    RUN_ACTIONS,
    allowed,
    cancel_question,
    refusal,
    refused_question,
    resume_question,
    stop_question,
)
from hpc_runner.tui.text import literal, printable, wrap_path


class LiveScreen(Screen[None]):
    """A screen that shows runs live: the app's coalesced refresh and clock tick reach it."""

    def refresh_runs(self, changed: Collection[str], now: float | None = None) -> None:
        """Show the runs whose keys are in ``changed`` as they are now (coalesced refresh)."""
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """The clock moved on (every second): update elapsed times and ETAs shown."""
        raise NotImplementedError


class RunScreen(LiveScreen):
    """A screen with a current run; subclasses say which one with :meth:`current_entry`.

    Each run key is bound twice: to its action, which :meth:`check_action` offers only in the
    phases where it fits (shown in the footer), and, hidden, to :meth:`action_refuse`, which
    Textual reaches only when the first is not offered.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "s",
            "stop_run",
            "Stop",
            tooltip="stop after this batch, saving a checkpoint (asks)",
        ),
        Binding("s", "refuse('stop')", "Stop", show=False),
        Binding("c", "cancel_run", "Cancel job", tooltip="cancel the run's job at once (asks)"),
        Binding("c", "refuse('cancel')", "Cancel job", show=False),
        Binding(
            "r",
            "resume_run",
            "Resume",
            tooltip="submit the next attempt from the last checkpoint (asks)",
        ),
        Binding("r", "refuse('resume')", "Resume", show=False),
        Binding("l", "show_logs", "Logs", tooltip="show the run's own job output, per attempt"),
        Binding(
            "y",
            "copy_model",
            "Copy model",
            show=False,
            tooltip="copy the run's best model (checkpoint path) to the clipboard",
        ),
    ]

    #: Current time (the app's clock, injected so that tests and snapshots are reproducible).
    clock: Callable[[], float]

    _offered: frozenset[str] | None = None

    def current_entry(self) -> RunEntry | None:
        """The run the keys act on (None: nothing selected)."""
        raise NotImplementedError

    # -- which keys are offered ---------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer stop, cancel and resume only where the run's phase allows them."""
        name = RUN_ACTIONS.get(action)
        if name is None:
            return True
        entry = self.current_entry()
        return entry is not None and allowed(name, entry.phase(self.clock()))

    def offer_actions(self, now: float) -> None:
        """Refresh the footer if the current run's phase changed what its keys may do."""
        entry = self.current_entry()
        phase = entry.phase(now) if entry is not None else None
        names = frozenset(
            name for name in RUN_ACTIONS.values() if phase is not None and allowed(name, phase)
        )
        if names != self._offered:  # the footer shows these only: another run, same keys
            self._offered = names  # costs nothing (recomposing the footer costs a frame)
            self.refresh_bindings()

    def action_refuse(self, name: str) -> None:
        """A run key pressed where it does not fit: say why, do nothing."""
        entry = self.current_entry()
        if entry is None:
            self.notify("no run selected", severity="warning", timeout=3)
            return
        why = refusal(name, entry, entry.phase(self.clock()))
        self.notify(why or f"{name}: try again", severity="warning", timeout=8, markup=False)

    def _entry_for(self, name: str) -> tuple[RunEntry, RunPhase] | None:
        """The current run and its phase if ``name`` fits it now; otherwise say why."""
        entry = self.current_entry()
        phase = entry.phase(self.clock()) if entry is not None else None
        if entry is None or phase is None or not allowed(name, phase):
            self.action_refuse(name)
            return None
        return entry, phase

    # -- the actions ----------------------------------------------------------------------------

    def action_stop_run(self) -> None:
        """Ask, then write the run's STOP file (graceful stop after the current batch)."""
        found = self._entry_for("stop")
        if found is not None:
            entry, phase = found
            self._confirm(stop_question(entry, phase), "stop", entry, actions.request_stop)

    def action_cancel_run(self) -> None:
        """Ask, then cancel the run's scheduler job (no checkpoint is written)."""
        found = self._entry_for("cancel")
        if found is not None:
            entry, phase = found
            self._confirm(cancel_question(entry, phase), "cancel", entry, actions.cancel_run)

    def action_resume_run(self) -> None:
        """Ask, saying where the next attempt starts from, then resubmit the run.

        What resume would do needs the scheduler and the run's spec: the dialog opens at once
        and a worker thread fills it in (or says why the run cannot be resumed).
        """
        found = self._entry_for("resume")
        if found is None:
            return
        entry, phase = found
        dialog = self._confirm(
            resume_question(entry, phase, None), "resume", entry, actions.resume_run, ready=False
        )
        run_dir = entry.run_dir

        def work() -> None:
            try:
                question = resume_question(entry, phase, actions.plan_resume(run_dir))
                message = AnswerReady(question, ok=True)
            except HpcRunnerError as exc:
                message = AnswerReady(refused_question(entry, str(exc)), ok=False)
            except Exception as exc:  # shown to the user, who can act on it; never swallowed
                text = f"{type(exc).__name__}: {exc}"
                message = AnswerReady(refused_question(entry, text), ok=False)
            dialog.post_message(message)

        self.app.run_worker(work, thread=True, group="resume-plan", name="plan_resume")

    def action_show_logs(self) -> None:
        """Show the run's own job output, newest attempt first."""
        from hpc_runner.tui.logs_screen import LogsScreen

        entry = self.current_entry()
        if entry is None:
            self.notify("no run selected", severity="warning", timeout=3)
        else:
            self.app.push_screen(LogsScreen(entry))

    def action_copy_model(self) -> None:
        """Copy the best checkpoint's path (else the newest's) through the terminal (OSC 52).

        A run that ended without recording its model names what it left on disk: looked for
        on a worker thread (a shared filesystem may be slow).
        """
        entry = self.current_entry()
        if entry is None:
            self.notify("no run selected", severity="warning", timeout=3)
            return
        model = entry.run.model
        path = (model.best_checkpoint or model.checkpoint) if model is not None else None
        if path:
            self._copy_path(entry, path)
            return
        run_dir, app = entry.run_dir, self.app

        def work() -> None:
            from hpc_runner.watch.report import checkpoints_on_disk

            found = checkpoints_on_disk(run_dir)
            path = (found.best_checkpoint or found.checkpoint) if found is not None else None
            app.call_from_thread(self._copy_path, entry, path)

        self.app.run_worker(work, thread=True, group="copy-model", name="checkpoints_on_disk")

    def _copy_path(self, entry: RunEntry, path: str | None) -> None:
        name = literal(entry.label).plain
        if not path:
            self.notify(f"{name}: no model yet (no checkpoint)", severity="warning", timeout=5)
            return
        self.app.copy_to_clipboard(path)
        shown = wrap_path(printable(path, one_line=True), 46)
        self.notify(f"copied to the clipboard:\n{shown}", title=name, timeout=10, markup=False)

    def _confirm(
        self,
        question: Text,
        name: str,
        entry: RunEntry,
        action: Callable[[Path], str],
        *,
        ready: bool = True,
    ) -> ConfirmDialog:
        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._run_in_thread(action, entry)

        confirm, decline = BUTTONS[name]
        dialog = ConfirmDialog(question, confirm, decline, ready=ready)
        self.app.push_screen(dialog, callback=answered)
        return dialog

    def _run_in_thread(self, action: Callable[[Path], str], entry: RunEntry) -> None:
        app = self.app
        name = literal(entry.label).plain
        run_dir = entry.run_dir

        def work() -> None:
            try:
                message = ActionDone(action(run_dir), ok=True, run_dir=run_dir)
            except Exception as exc:  # shown to the user, who can act on it; never swallowed
                message = ActionDone(f"{name}: {exc}", ok=False, run_dir=run_dir)
            app.post_message(message)

        app.run_worker(work, thread=True, group="run-actions", name=action.__name__)
