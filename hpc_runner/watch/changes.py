"""From file-system events to "what must be looked at again": the watchdog side of the watcher.

watchdog calls :class:`PendingChanges` on its own thread for every event; all it does there is add
a path to a set under a lock and wake the reader, so that even ten thousand appends a second cost
the event thread next to nothing. The reader swaps the sets out with :meth:`PendingChanges.take`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from hpc_runner.stream.runs import STATUS_FILE, skipped_dir

#: Only these events can mean a new run or new records. Opens and closes are left out: the
#: watcher's own reads would otherwise wake it again.
WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]


def scan_run_tree(path: str | None) -> Iterator[os.DirEntry[str]]:
    """``os.scandir`` for the polling observer: sub-directories that may hold runs, status files.

    Leaving out everything else keeps each poll to about two ``stat`` calls per run, instead of
    one per checkpoint and log file. Symlinked directories are left out, and so is a
    ``status.jsonl`` that is (or links to) a directory: the snapshot follows symlinks when it
    stats an entry, and would walk into a directory loop as deep as the kernel lets it.
    """
    kept = []
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                if entry.name == STATUS_FILE:
                    if not entry.is_dir():  # a loop or dangling link: is_dir() is False
                        kept.append(entry)
                elif not skipped_dir(path or ".", entry.name) and entry.is_dir(
                    follow_symlinks=False
                ):
                    kept.append(entry)
            except OSError:  # vanished between listing and looking: the next poll sees it
                continue
    return iter(kept)


@dataclass
class Changes:
    """Paths to look at again, taken in one go by the reader.

    Attributes
    ----------
    dirty : set of str
        Run directories whose status file was created, appended to, replaced or deleted.
    new_dirs : set of str
        Directories created or moved in: runs may be anywhere below them.
    gone : set of str
        Directories, or run directories whose status file, were deleted or moved away.
    """

    dirty: set[str] = field(default_factory=set)
    new_dirs: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.dirty or self.new_dirs or self.gone)


class PendingChanges(FileSystemEventHandler):
    """Thread-safe collector of :class:`Changes`, fed by watchdog, drained by the reader.

    ``wake`` is set whenever something was added, so the reader can sleep until then.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changes = Changes()
        self.wake = threading.Event()

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        paths = [os.fsdecode(event.src_path)]
        if event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        with self._lock:
            changes = self._changes
            for index, raw in enumerate(paths):
                path = os.path.normpath(raw)
                moved_away = kind == "moved" and index == 0
                if event.is_directory:
                    if kind == "deleted" or moved_away:
                        changes.gone.add(path)
                    elif kind in ("created", "moved"):
                        changes.new_dirs.add(path)
                elif os.path.basename(path) == STATUS_FILE:
                    run_dir = os.path.dirname(path)
                    changes.dirty.add(run_dir)
                    if kind == "deleted" or moved_away:
                        changes.gone.add(run_dir)
        self.wake.set()

    def add_dirty(self, run_dirs: set[str]) -> None:
        """Mark run directories to be read again (a re-scan, or files not yet read to the end)."""
        if run_dirs:
            with self._lock:
                self._changes.dirty |= run_dirs
            self.wake.set()

    def take(self) -> Changes:
        """Everything collected so far; the collector starts empty again."""
        with self._lock:
            changes, self._changes = self._changes, Changes()
        return changes

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._changes)


def start_observer(handler: PendingChanges, root: str, poll_interval: float | None) -> BaseObserver:
    """Start watching ``root`` recursively: inotify if ``poll_interval`` is None, else polling.

    Raises
    ------
    OSError
        If inotify cannot watch the tree (watch or instance limits) or ``root`` is unreadable.
    """
    observer: BaseObserver
    if poll_interval is None:
        observer = Observer()
    else:
        observer = PollingObserverVFS(os.stat, scan_run_tree, polling_interval=poll_interval)
    observer.schedule(handler, root, recursive=True, event_filter=WATCHED_EVENTS)
    observer.daemon = True
    observer.start()
    return observer
