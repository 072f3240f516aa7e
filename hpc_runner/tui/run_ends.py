"""What the app does when runs end: a toast, the bell, ``--on-event``, and (``submit --watch``)
leaving once every run is over and its job has ended."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from textual.notifications import SeverityLevel
from textual.timer import Timer

from hpc_runner.control.phase import RunPhase
from hpc_runner.stream.files import reason_of
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.notifications import SEVERITY, PhaseWatch, event_of, toast_text
from hpc_runner.watch.events import EventCommand
from hpc_runner.watch.scheduler_watch import SchedulerWatcher


class EndsHost(Protocol):
    """What :class:`RunEnds` uses of the app (:class:`~hpc_runner.tui.app.WatchApp`, which
    imports this module: named by what it does, not by its class)."""

    @property
    def entries(self) -> Mapping[str, RunEntry]: ...

    @property
    def scheduler_watcher(self) -> SchedulerWatcher | None: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...

    def bell(self) -> None: ...

    def exit(self) -> None: ...

    def set_interval(
        self, interval: float, callback: Callable[[], object], *, name: str | None = None
    ) -> Timer: ...


#: How long ``exit_when_final`` waits for an ended run's job to end, at most (seconds): the
#: job may still report after the training's final state (PSNR, predictions, an export).
REPORTS_LIMIT = 300.0
#: Seconds between two questions about an ended run's job while waiting for it to end.
ASK_INTERVAL = 2.0


class RunEnds:
    """Watches the app's runs for ends (see :mod:`hpc_runner.tui.notifications`).

    Parameters
    ----------
    app : EndsHost
        The app (its entries, its scheduler watcher, its notifications).
    on_event : EventCommand | None
        The user's command for each end.
    exit_when_final : bool
        Leave the app once every run is over and its job has ended; :attr:`final` then holds
        each run's phase.
    """

    def __init__(
        self, app: EndsHost, on_event: EventCommand | None, *, exit_when_final: bool = False
    ) -> None:
        self.app = app
        self.on_event = on_event
        self.exit_when_final = exit_when_final
        self.final: dict[str, RunPhase] = {}
        self.watch = PhaseWatch()
        self._answered: set[str] = set()  # runs the scheduler answered about at least once
        self._final_since: float | None = None
        self._asking: Timer | None = None

    def answered(self, key: str) -> bool:
        """The scheduler answered about a run; True the first time (its first phase is then
        taken afresh: the answer may say that it ended long ago)."""
        if key in self._answered:
            return False
        self._answered.add(key)
        self.watch.forget(key)
        return True

    def forget(self, key: str) -> None:
        """A run directory was removed."""
        self.watch.forget(key)
        self._answered.discard(key)

    def check(self, changed: Collection[str], now: float) -> None:
        """Look at the changed runs' phases (after each coalesced refresh)."""
        app = self.app
        asking = app.scheduler_watcher is not None
        for key in changed:
            entry = app.entries.get(key)
            if entry is None or entry.loading:
                continue
            if asking and key not in self._answered and not self.watch.known(key):
                continue  # its first phase is taken once the scheduler has answered too
            phase = entry.phase(now)
            if self.watch.observe(key, phase.phase):
                self.announce(entry, phase)
        if self.exit_when_final:
            self._exit_if_final(now)

    def announce(self, entry: RunEntry, phase: RunPhase) -> None:
        """A toast and the bell; the user's command, if any."""
        app = self.app
        event = event_of(entry, phase)
        severity = SEVERITY[event.phase]
        app.notify(
            toast_text(event), title="run ended", severity=severity, timeout=20, markup=False
        )  # type: ignore[arg-type]
        app.bell()
        if self.on_event is not None:
            try:
                self.on_event.run(event)
            except OSError as exc:
                what = f"--on-event {self.on_event.describe()}: {reason_of(exc)}"
                app.notify(what, severity="error", timeout=15, markup=False)

    def wait(self) -> None:
        """At exit: let the user's commands finish (their events must not be lost)."""
        if self.on_event is not None:
            self.on_event.wait()

    def _exit_if_final(self, now: float) -> None:
        app = self.app
        entries = list(app.entries.values())
        phases = {entry.key: entry.phase(now) for entry in entries}
        if not entries or any(
            entry.loading or not phases[entry.key].phase.final for entry in entries
        ):
            self._final_since = None
            return
        if self._final_since is None:
            self._final_since = time.monotonic()
            if self._asking is None:
                self._asking = app.set_interval(ASK_INTERVAL, self._ask_again, name="job-end")
        ended = app.scheduler_watcher is None or all(
            entry.scheduler is not None and entry.scheduler.ended for entry in entries
        )
        if ended or time.monotonic() - self._final_since > REPORTS_LIMIT:
            self.final = phases
            app.exit()

    def _ask_again(self) -> None:
        """Ask about the ended runs' jobs now, not at the poller's next turn; look again."""
        app = self.app
        if app.scheduler_watcher is not None:
            app.scheduler_watcher.ask_now([entry.run_dir for entry in app.entries.values()])
        self._exit_if_final(app.clock())
