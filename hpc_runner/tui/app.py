"""``hpc-runner watch``: every run below a directory, live, rebuilt from the status files.

Data path (shared/DESIGN.md): the :class:`~hpc_runner.watch.watcher.RunWatcher` thread reads and
decodes records and posts them as :class:`~hpc_runner.tui.messages.RunsRead`; this app applies them
to each run's :class:`~hpc_runner.stream.run_state.RunState` on the UI thread, so the evented
``TrainingStatus`` changes there and its psygnal events mark the run dirty. Dirty runs are redrawn
by one coalesced refresh at most every :attr:`WatchApp.REFRESH_INTERVAL` seconds, whatever the rate
of records.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from psygnal import EmissionInfo
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer

from hpc_runner.control.scheduler import SchedulerPoller
from hpc_runner.stream.runs import run_label
from hpc_runner.tui.messages import ActionDone, RunsRead, SchedulerRead, SweepsRead, WatcherFailed
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.run_ends import RunEnds
from hpc_runner.tui.run_screen import LiveScreen
from hpc_runner.tui.runs_screen import RunsScreen
from hpc_runner.tui.text import printable
from hpc_runner.watch.batches import WatchBatch
from hpc_runner.watch.events import EventCommand
from hpc_runner.watch.scheduler_watch import JobView, SchedulerWatcher
from hpc_runner.watch.sweep_info import sweep_memberships, value_text
from hpc_runner.watch.watcher import RunWatcher


class WatchApp(App[None]):
    """The monitoring TUI.

    Parameters
    ----------
    root : Path
        The runs directory.
    poll : float | None
        Poll interval in seconds; None lets the watcher choose (inotify unless on a network FS).
    clock : callable
        Wall-clock time for elapsed and ETA; tests inject a fixed one.
    root_label : str | None
        How the directory is named on screen (default: as given).
    watcher_options : dict | None
        Extra keyword arguments for :class:`RunWatcher` (tests shorten its intervals).
    watcher : RunWatcher | None
        A watcher made before the app, its first reads begun (:meth:`RunWatcher.begin`: ``watch``
        reads a big sweep while Textual loads); default: one made on mount from ``poll`` and
        ``watcher_options``.
    scheduler_interval : float | None
        Seconds between two looks at the runs' ``job.json``; None: never ask the scheduler.
    scheduler_poller : SchedulerPoller | None
        Who asks the scheduler (default: a :class:`SchedulerPoller`: one batched query at most
        every 10 s, backing off to 2 minutes while nothing changes); tests pass one with a
        recorded command runner.
    on_event : EventCommand | None
        The user's ``--on-event`` command, run once per run that reaches an end.
    exit_when_final : bool
        Leave by itself once every run is in a final phase and its job has ended
        (``submit --watch``); :attr:`final` then holds the phases.
    """

    TITLE = "hpc-runner watch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", tooltip="leave (runs keep running)"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="this list of keys"),
        Binding("f1", "help", "Help", show=False, tooltip="this list of keys"),
        Binding(
            "ctrl+r,f5",
            "rescan",
            "Refresh",
            show=False,
            tooltip="re-read every run, ask the scheduler again now",
        ),
        Binding(
            "colon,ctrl+p",
            "command_palette",
            "Commands",
            show=False,
            key_display=":",
            tooltip="search every command (sort, filter, open a run, theme)",
        ),
    ]

    #: Seconds between two redraws of changed runs (at most ten a second).
    REFRESH_INTERVAL = 0.1
    #: The same while runs are still being read from their start: a redraw of a sweep's table
    #: costs ~10 ms of the UI thread, and while a large sweep is first read, the worker
    #: processes need every CPU (ten redraws a second made ``watch`` read 200 runs seconds
    #: later than ``status``, benchmarks/bench_sweep_read.py).
    LOADING_REFRESH_INTERVAL = 0.5
    #: Seconds between two updates of elapsed times and ETAs of running trainings.
    TICK_INTERVAL = 1.0

    def __init__(
        self,
        root: Path,
        *,
        poll: float | None = None,
        clock: Callable[[], float] = time.time,
        root_label: str | None = None,
        watcher_options: dict[str, Any] | None = None,
        watcher: RunWatcher | None = None,
        scheduler_interval: float | None = 10.0,
        scheduler_poller: SchedulerPoller | None = None,
        on_event: EventCommand | None = None,
        exit_when_final: bool = False,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.poll = poll
        self.clock = clock
        self.root_label = root_label or str(root)
        self.watcher_options = watcher_options or {}
        self.entries: dict[str, RunEntry] = {}
        # Answers about runs the scheduler thread saw before this thread made their entries: the
        # thread delivers a view once (until it changes), so none may be dropped.
        self._early_views: dict[str, JobView] = {}
        self.watcher = watcher  # made on mount if None
        self.scheduler_interval = scheduler_interval
        self.scheduler_poller = scheduler_poller
        self.scheduler_watcher: SchedulerWatcher | None = None
        self.scan_done = asyncio.Event()
        self.refresh_count = 0
        self._scanned = False
        self._dirty: set[str] = set()
        self._applying = False
        self._last_refresh = -math.inf
        self._refresh_timer: Timer | None = None
        self.ends = RunEnds(self, on_event, exit_when_final=exit_when_final)

    def get_default_screen(self) -> RunsScreen:
        """The runs table is the screen everything else is pushed on."""
        return RunsScreen(self.entries, self.clock, self.root_label)

    def on_mount(self) -> None:
        if self.watcher is None:
            self.watcher = RunWatcher(self.root, poll=self.poll, **self.watcher_options)
        self.watcher.connect(self._deliver, lambda text: self.post_message(WatcherFailed(text)))
        self.runs_screen.watching = self.watcher.watching
        self.watcher.start()
        if self.scheduler_interval is not None:
            self.scheduler_watcher = SchedulerWatcher(
                self.watcher.run_dirs,
                lambda views: self.post_message(SchedulerRead(views)),
                interval=self.scheduler_interval,
                poller=self.scheduler_poller,
            )
            self.scheduler_watcher.start()
        self.set_interval(self.TICK_INTERVAL, self._tick)

    def on_unmount(self) -> None:
        for thread in (self.watcher, self.scheduler_watcher):
            if thread is not None:
                thread.stop()
        self.ends.wait()

    @property
    def runs_screen(self) -> RunsScreen:
        """The main screen (always at the bottom of the stack)."""
        screen = self.screen_stack[0]
        assert isinstance(screen, RunsScreen)
        return screen

    # -- from the watcher thread -----------------------------------------------------------

    def _deliver(self, batch: WatchBatch) -> bool:
        """Called on the watcher thread: queue the batch for the UI thread."""
        return self.post_message(RunsRead(batch))

    # -- on the UI thread ------------------------------------------------------------------

    def on_runs_read(self, message: RunsRead) -> None:
        """Apply a batch to the runs' states (psygnal events fire here, on the UI thread)."""
        batch = message.batch
        new_runs: list[str] = []
        self._applying = True  # psygnal events only mark runs dirty: one refresh afterwards
        try:
            for path in batch.removed:
                self._early_views.pop(str(path), None)
                if self.entries.pop(str(path), None) is not None:
                    self._dirty.add(str(path))
                    self.ends.forget(str(path))
            for update in batch.updates:
                key = str(update.run_dir)
                entry = self.entries.get(key)
                if entry is None:
                    entry = self.entries[key] = RunEntry(key, update.label, update.run_dir)
                    entry.run.status.events.connect(partial(self._status_changed, key))
                    new_runs.append(key)
                    if (view := self._early_views.pop(key, None)) is not None:
                        self._take_view(entry, view)
                if update.batch.reset:
                    entry.samples.clear()
                entry.run.apply_batch(update.batch)
                entry.note_progress()
                entry.loading, entry.error = update.pending, update.error
                self._dirty.add(key)  # debug messages, losses and exceptions have no event
            if batch.watching:
                self.runs_screen.watching = batch.watching
            if batch.initial_scan_done:
                self._scanned = True
                self.runs_screen.scanning = False
                self._dirty.add("")  # the status line changes even if no run did
        finally:
            self._applying = False
            if self.watcher is not None:
                self.watcher.acknowledge()
        if new_runs:
            self._read_sweeps(new_runs)
            if self.scheduler_watcher is not None:
                self.scheduler_watcher.check_soon()
        if batch.initial_scan_done:  # the first complete picture: show it without waiting
            if self._refresh_timer is not None:
                self._refresh_timer.stop()
            self._refresh_now()
        else:
            self._schedule_refresh()

    def on_scheduler_read(self, message: SchedulerRead) -> None:
        """The scheduler answered about some runs (see :meth:`_take_view`)."""
        for run_dir, view in message.views.items():
            entry = self.entries.get(str(run_dir))
            if entry is None:  # its records are on their way: the entry takes it when made
                self._early_views[str(run_dir)] = view
                continue
            self._take_view(entry, view)
        self._schedule_refresh()

    def _take_view(self, entry: RunEntry, view: JobView) -> None:
        """One run's scheduler answer: a changed answer may change the phase shown; an unchanged
        one only renews its age (the status line and details show it)."""
        old = entry.scheduler
        same = (
            entry.job == view.job
            and old == view.scheduler
            and (old.started if old else None)
            == (view.scheduler.started if view.scheduler else None)
        )
        entry.job, entry.scheduler = view.job, view.scheduler
        self._dirty.add("" if same else entry.key)
        if self.ends.answered(entry.key):  # its past is known only now: look again
            self._dirty.add(entry.key)

    def _read_sweeps(self, keys: list[str]) -> None:
        """Which sweep the new runs belong to and their values (on a worker: it reads files)."""
        run_dirs = [self.entries[key].run_dir for key in keys if key in self.entries]

        def work() -> None:
            found = sweep_memberships(run_dirs)
            self.post_message(SweepsRead({str(path): member for path, member in found.items()}))

        self.run_worker(work, thread=True, group="sweeps", name="sweep_memberships")

    def on_sweeps_read(self, message: SweepsRead) -> None:
        """Group the runs under their sweeps, with their values as columns."""
        for key, member in message.memberships.items():
            entry = self.entries.get(key)
            if entry is None or member.sweep_dir is None:
                continue
            sweep = run_label(self.root, member.sweep_dir)
            entry.sweep = member.sweep_dir.absolute().name if sweep == "." else sweep
            entry.params = {k: value_text(v) for k, v in member.overrides.items()}
            entry.param_values = dict(member.overrides)
            self._dirty.add(key)
        self._schedule_refresh()

    def _status_changed(self, key: str, info: EmissionInfo) -> None:
        """psygnal: a field of a run's TrainingStatus changed (on the UI thread)."""
        self._dirty.add(key)
        if not self._applying:
            self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        if self._refresh_timer is not None or not self._dirty:
            return
        loading = any(entry.loading for entry in self.entries.values())
        interval = self.LOADING_REFRESH_INTERVAL if loading else self.REFRESH_INTERVAL
        wait = self._last_refresh + interval - time.monotonic()
        if wait > 0:
            self._refresh_timer = self.set_timer(wait, self._refresh_now)
        else:
            self._refresh_now()

    def _refresh_now(self) -> None:
        """Redraw every changed run on every screen that shows runs (coalesced)."""
        self._refresh_timer = None
        if not self.is_running:
            return  # shutting down: the screens' widgets are being removed
        self._last_refresh = time.monotonic()
        changed, self._dirty = frozenset(self._dirty), set()
        now = self.clock()
        for screen in self._live_screens():
            screen.refresh_runs(changed, now)
        self.ends.check(changed, now)
        self.refresh_count += 1
        if self._scanned and not self.scan_done.is_set():
            self.scan_done.set()

    def _tick(self) -> None:
        """Elapsed times and ETAs of running trainings move with the clock (every second)."""
        if not self.is_running:
            return  # shutting down: the screens' widgets are being removed
        now = self.clock()
        for screen in self._live_screens():
            screen.tick(now)

    def _live_screens(self) -> list[LiveScreen]:
        """The screens that show runs and are ready to: a screen just pushed (Enter on a run)
        has no widgets until it is mounted, and then draws itself (its ``on_mount``)."""
        return [s for s in self.screen_stack if isinstance(s, LiveScreen) and s.is_mounted]

    def on_watcher_failed(self, message: WatcherFailed) -> None:
        self.runs_screen.watching = "NOT WATCHING (see the message)"
        self._dirty.add("")
        self._schedule_refresh()
        self.notify(
            message.text, title="watching stopped", severity="error", timeout=30, markup=False
        )

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast, the screens' too (theirs come here). ``markup=False`` marks text that
        holds data (run names, paths, error messages): it is shown as characters, as the
        table shows it; Textual would pass a name's terminal escapes on to the terminal."""
        if not markup:
            message, title = printable(message), printable(title, one_line=True)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def on_action_done(self, message: ActionDone) -> None:
        """Say how the action went, and ask the scheduler about its run at once."""
        if message.run_dir is not None and self.scheduler_watcher is not None:
            self.scheduler_watcher.ask_now([message.run_dir])
        if message.ok:
            self.notify(message.text, timeout=8, markup=False)
        else:
            self.notify(message.text, severity="error", timeout=15, markup=False)

    def action_help(self) -> None:
        from hpc_runner.tui.help_screen import toggle_help

        toggle_help(self)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (``:``): Textual's own commands, then the runs table's."""
        from hpc_runner.tui.commands import table_commands

        yield from super().get_system_commands(screen)
        yield from table_commands(self.runs_screen)

    def action_rescan(self) -> None:
        """Re-read every run and ask the scheduler about every job now (not at its next turn)."""
        if self.scheduler_watcher is not None:
            self.scheduler_watcher.ask_now()
        if self.watcher is not None:
            self.watcher.request_rescan()
            asking = " and asking the scheduler" if self.scheduler_watcher is not None else ""
            self.notify(f"re-reading every run{asking}", timeout=2)
