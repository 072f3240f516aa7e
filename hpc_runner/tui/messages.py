"""Every custom message of the TUI, in one place.

Threads (the watcher, file-reading workers, actions) talk to the UI only through these messages,
posted with the thread-safe ``post_message``; the handlers run on the UI thread, which is the only
one that changes status models and widgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from hpc_runner.watch.batches import WatchBatch
from hpc_runner.watch.meta import RunMeta
from hpc_runner.watch.scheduler_watch import JobView


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


class MetaLoaded(Message):
    """A worker read a run's ``run.yaml``, ``job.json`` and found its logs."""

    def __init__(self, key: str, meta: RunMeta) -> None:
        super().__init__()
        self.key = key
        self.meta = meta


@dataclass
class LogText:
    """The tail of one job log: the file, its last lines (already made printable), or an error."""

    path: str | None
    text: str
    error: str | None = None


class LogsLoaded(Message):
    """A worker read the tails of a run's stdout and stderr logs."""

    def __init__(self, key: str, stdout: LogText, stderr: LogText) -> None:
        super().__init__()
        self.key = key
        self.stdout = stdout
        self.stderr = stderr


class ActionDone(Message):
    """A stop, cancel or resume finished (on a worker thread); ``ok`` False means it failed."""

    def __init__(self, text: str, *, ok: bool) -> None:
        super().__init__()
        self.text = text
        self.ok = ok
