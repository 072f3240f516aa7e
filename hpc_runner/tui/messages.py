"""Every custom message of the TUI, in one place.

Threads (the watcher, file-reading workers, actions) talk to the UI only through these messages,
posted with the thread-safe ``post_message``; the handlers run on the UI thread, which is the only
one that changes status models and widgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual.message import Message

from hpc_runner.watch.batches import WatchBatch
from hpc_runner.watch.meta import RunMeta
from hpc_runner.watch.scheduler_watch import JobView
from hpc_runner.watch.sweep_info import SweepMembership


class RunsRead(Message):
    """The watcher read new records (and found or lost runs); the app applies them."""

    def __init__(self, batch: WatchBatch) -> None:
        super().__init__()
        self.batch = batch


class SchedulerRead(Message):
    """The scheduler's view of some runs' jobs changed (keys are run directories)."""

    def __init__(self, views: dict[Path, JobView]) -> None:
        super().__init__()
        self.views = views


class SweepsRead(Message):
    """A worker read which sweep new runs belong to, and their values (keys are run keys)."""

    def __init__(self, memberships: dict[str, SweepMembership]) -> None:
        super().__init__()
        self.memberships = memberships


class WatcherFailed(Message):
    """Watching stopped for good (the runs directory vanished, a bug); the text says why."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class RunsChanged(Message):
    """Posted to screens after a coalesced refresh: these runs changed (keys), at this time."""

    def __init__(self, keys: frozenset[str], now: float) -> None:
        super().__init__()
        self.keys = keys
        self.now = now


class RunSelected(Message):
    """The user chose a run in the table (Enter, or a click on the highlighted row)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class RunHighlighted(Message):
    """Another run is highlighted in the table (None: the table is empty); the keys offered
    (stop, cancel, resume) depend on its phase."""

    def __init__(self, key: str | None) -> None:
        super().__init__()
        self.key = key


class TableChanged(Message):
    """The user sorted the runs table (a key or a click) or marked runs: the status line
    says how it is sorted and how many runs are marked."""


class MetaLoaded(Message):
    """A worker read a run's ``run.yaml``, ``job.json`` and found its logs (for the screen's
    ``request``-th look: an older look that finishes later is not shown over a newer one)."""

    def __init__(self, key: str, meta: RunMeta, request: int) -> None:
        super().__init__()
        self.key = key
        self.meta = meta
        self.request = request


@dataclass
class LogText:
    """What one job log gained: the file, new lines (made printable), or why there is none.

    ``reset``: the lines replace what was shown (a first read, a replaced file); ``partial``
    is the unfinished last line as it reads now.
    """

    path: str | None
    lines: list[str] = field(default_factory=list)
    error: str | None = None
    reset: bool = True
    partial: str = ""


class LogsLoaded(Message):
    """A worker read what one attempt's stdout and stderr logs of a run gained.

    ``attempts`` are the run's ``(attempt, job id)`` pairs, oldest first (empty when the run
    has no ``job.json``: nothing to choose from), ``attempt`` the one shown (None: none).
    """

    def __init__(
        self,
        key: str,
        stdout: LogText,
        stderr: LogText,
        *,
        attempts: list[tuple[int, str]] | None = None,
        attempt: int | None = None,
    ) -> None:
        super().__init__()
        self.key = key
        self.stdout = stdout
        self.stderr = stderr
        self.attempts = attempts or []
        self.attempt = attempt


class AnswerReady(Message):
    """A worker worked out a confirmation's question (what ``resume`` would do); ``ok`` False:
    the question says why the action cannot be done."""

    def __init__(self, question: Text, *, ok: bool) -> None:
        super().__init__()
        self.question = question
        self.ok = ok


class ActionDone(Message):
    """A stop, cancel or resume finished (on a worker thread); ``ok`` False means it failed.

    ``run_dir`` is the run acted on: the scheduler is asked about it again at once.
    """

    def __init__(self, text: str, *, ok: bool, run_dir: Path | None = None) -> None:
        super().__init__()
        self.text = text
        self.ok = ok
        self.run_dir = run_dir
