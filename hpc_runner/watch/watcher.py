"""Find every run below a directory and read what its status file gains, off the UI thread.

One background thread owns every :class:`~hpc_runner.stream.tail.StatusTail`. File-system events
(from watchdog's inotify ``Observer``, or its polling observer on network filesystems, where inotify
does not see writes made on compute nodes) only mark run directories dirty
(:mod:`hpc_runner.watch.changes`); the thread then reads the dirty ones and hands the decoded
records to its consumer as one :class:`~hpc_runner.watch.batches.WatchBatch`. It never touches a
widget or a status model: the consumer applies the records on its own (UI) thread.

Why a flood of appends cannot freeze a UI: after each delivery the thread waits until the
consumer calls :meth:`RunWatcher.acknowledge`, deliveries are at least ``min_interval`` apart,
and one delivery holds at most ``cycle_budget`` bytes of records, so whatever arrives meanwhile
is coalesced into the next batch. A run seen for the first time is read to its end by a
:class:`~hpc_runner.stream.run_reader.RunReader` (the reader cache, worker processes for a large
sweep) and handed over as one folded state, so the UI thread never folds a long history record
by record. A slow safety re-scan (every ``rescan_interval`` seconds)
re-reads every run, so a lost event (inotify queue overflow, a write on another node of a
filesystem that looked local) delays an update but never loses it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.observers.api import BaseObserver

from hpc_runner.stream import reader_cache
from hpc_runner.stream.files import reason_of
from hpc_runner.stream.run_reader import RunReader, only_thread
from hpc_runner.stream.runs import STATUS_FILE, find_runs, is_run_dir, run_label, skipped_dir
from hpc_runner.stream.tail import StatusTail, TailBatch
from hpc_runner.stream.text import path_text
from hpc_runner.watch.batches import RunUpdate, WatchBatch, read_some
from hpc_runner.watch.changes import PendingChanges, start_observer
from hpc_runner.watch.mounts import MOUNTS_FILE, filesystem_type, is_network_filesystem

#: Poll interval on a network filesystem when ``--poll`` is not given: light on a shared
#: login node's metadata server, still quick enough to follow a training.
DEFAULT_NETWORK_POLL = 2.0


class RunWatcher:
    """Watches a runs directory and delivers decoded records from a background thread.

    Parameters
    ----------
    root : str | os.PathLike
        The runs directory (every run at or below it is followed).
    deliver : callable | None
        Called on the watcher thread with each :class:`WatchBatch`; returns False if the
        consumer is gone. The consumer must call :meth:`acknowledge` once it applied the batch.
        None: :meth:`connect` gives it before :meth:`start` (a watcher made before its consumer).
    poll : float | None
        Poll every this many seconds instead of using inotify. None: inotify, unless ``root`` is
        on a network filesystem (then every :data:`DEFAULT_NETWORK_POLL` seconds).
    on_error : callable | None
        Called on the watcher thread with a message if watching fails for good.
    rescan_interval : float
        Seconds between two safety re-scans that re-read every run.
    min_interval : float
        Minimum seconds between two deliveries (coalescing).
    read_slice, cycle_budget : int
        Bytes read from one file per read, and at most per delivery.
    ack_timeout : float
        Deliver again after this long even without an acknowledgement.
    cache : bool
        Use the reader cache for the first read of each run (see
        :mod:`hpc_runner.stream.reader_cache`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        deliver: Callable[[WatchBatch], bool] | None = None,
        *,
        poll: float | None = None,
        on_error: Callable[[str], object] | None = None,
        rescan_interval: float = 30.0,
        min_interval: float = 0.05,
        read_slice: int = 4 << 20,
        cycle_budget: int = 16 << 20,
        ack_timeout: float = 10.0,
        mounts_file: str | os.PathLike[str] = MOUNTS_FILE,
        cache: bool = True,
    ) -> None:
        if poll is not None and not (poll > 0 and math.isfinite(poll)):
            raise ValueError(f"poll interval must be a positive number of seconds, not {poll!r}")
        self.root = Path(root)
        self._root_key = os.path.normpath(self.root)
        self._deliver: Callable[[WatchBatch], bool] | None = deliver
        self._on_error = on_error
        self.rescan_interval = rescan_interval
        self.min_interval = min_interval
        self.read_slice = read_slice
        self.cycle_budget = cycle_budget
        self.ack_timeout = ack_timeout
        self.fs_type = filesystem_type(self.root, mounts_file)
        self.poll_interval: float | None
        if poll is not None:
            self.mode, self.poll_interval, self.reason = "polling", poll, "--poll"
        elif is_network_filesystem(self.fs_type):
            self.mode, self.poll_interval = "polling", DEFAULT_NETWORK_POLL
            self.reason = f"{self.fs_type} is a network filesystem"
        else:
            self.mode, self.poll_interval, self.reason = "inotify", None, "local filesystem"
        self._changes = PendingChanges()
        self._acked = threading.Event()
        self._acked.set()
        self._stopping = threading.Event()
        self._tails: dict[str, StatusTail] = {}
        self._labels: dict[str, str] = {}
        self._fresh: set[str] = set()  # known, not yet delivered even once
        self._reader = RunReader(cache=cache)
        self._first_reads: dict[str, str] = {}  # status file -> run, being read by the reader
        self._known: tuple[Path, ...] = ()  # replaced whole, so other threads may read it
        self._removed: list[Path] = []
        self._scan_done = False
        self._named_runs = False
        self._next_rescan = 0.0
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    @property
    def watching(self) -> str:
        """How changes are detected, for a status line (``inotify``, ``polling every 2 s``)."""
        if self.mode == "inotify":
            return "inotify"
        return f"polling every {self.poll_interval:g} s ({self.reason})"

    def connect(
        self, deliver: Callable[[WatchBatch], bool], on_error: Callable[[str], object] | None
    ) -> None:
        """Name the consumer (before :meth:`start`), for a watcher made before it."""
        self._deliver, self._on_error = deliver, on_error

    def begin(self) -> None:
        """Find the runs and start reading those never read before, from this thread.

        ``watch`` calls this before it imports Textual (about a second): the reader's worker
        processes read a big new sweep meanwhile. With no thread running yet they may be
        forked, which spares each a fresh interpreter. A run with a reader-cache entry is left
        to the thread, as before (loading thousands of entries here would delay the first
        picture). :meth:`start` then delivers what was read.
        """
        if self._thread is not None or self._first_reads:
            return
        fresh = []
        for key in sorted(os.path.normpath(path) for path in find_runs(self.root)):
            if key in self._tails or not self._accepts(key):
                continue
            self._register(key)
            path = self._tails[key].path
            if not (self._reader.cache and reader_cache.entry_path(path).exists()):
                self._first_reads[str(path)] = key
                fresh.append(path)
        if fresh:
            try:
                self._reader.submit(fresh, fork=only_thread())
            except Exception:  # (no worker could start): the thread reads them, and reports
                self._reader.close()
                self._reader = RunReader(cache=self._reader.cache)
                self._first_reads.clear()

    def start(self) -> None:
        """Start watching and reading in a daemon thread (returns at once)."""
        if self._deliver is None:
            raise RuntimeError("RunWatcher.start: no consumer (connect one first)")
        self._thread = threading.Thread(target=self._run, name="hpc-runner-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and the observer; safe to call more than once."""
        self._stopping.set()
        self._changes.wake.set()
        self._acked.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        elif self._thread is None:
            self._reader.close()  # reads begun and never delivered: the thread would close it
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout)

    def run_dirs(self) -> list[Path]:
        """The run directories known now (safe to call from any thread)."""
        return list(self._known)

    def acknowledge(self) -> None:
        """The consumer applied the last batch: the next one may be read and delivered."""
        self._acked.set()

    def request_rescan(self) -> None:
        """Re-read every run as soon as possible (e.g. the user asked for a refresh)."""
        self._next_rescan = 0.0
        self._changes.wake.set()

    # -- watcher thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            last_delivery = -math.inf
            wake = self._changes.wake
            while not self._stopping.is_set():
                if not self._changes and not self._removed:
                    wake.wait(max(0.0, self._next_rescan - time.monotonic()))
                wake.clear()
                if not self._wait_for_ack():
                    return
                delay = last_delivery + self.min_interval - time.monotonic()
                if delay > 0 and self._stopping.wait(delay):
                    return
                if time.monotonic() >= self._next_rescan:
                    self._rescan()
                    self._next_rescan = time.monotonic() + self.rescan_interval
                batch = self._collect()
                if batch is not None and not self._stopping.is_set():
                    self._acked.clear()
                    if not self._deliver(batch):  # type: ignore[misc]  # start() checked it
                        self._acked.set()
                    last_delivery = time.monotonic()
                if self._observer is None and self._scan_done:
                    # Watches are set up only now: adding hundreds of them (or a polling
                    # snapshot) would delay the first picture. What changed meanwhile is
                    # found by the re-scan right after.
                    self._start_observer()
                    self._rescan()
        except Exception as exc:  # report, never die silently: the UI would look frozen
            if self._on_error is None:
                raise
            self._on_error(f"watching {self.root} stopped: {type(exc).__name__}: {exc}")
        finally:
            self._reader.close()

    def _wait_for_ack(self) -> bool:
        deadline = time.monotonic() + self.ack_timeout
        while not self._acked.wait(0.5):
            if self._stopping.is_set() or time.monotonic() >= deadline:
                break
        return not self._stopping.is_set()

    def _start_observer(self) -> None:
        root = str(self.root)
        try:
            observer = start_observer(self._changes, root, self.poll_interval)
        except OSError as exc:
            if self.mode != "inotify" or not self.root.is_dir():
                raise
            # inotify watch or instance limits (ENOSPC, EMFILE): polling still works.
            self.mode, self.poll_interval = "polling", DEFAULT_NETWORK_POLL
            self.reason = f"inotify unavailable: {exc.strerror or exc}"
            observer = start_observer(self._changes, root, self.poll_interval)
        self._observer = observer
        if self._stopping.is_set():  # stop() ran while the observer was starting
            observer.stop()

    def _accepts(self, key: str) -> bool:
        """Whether a directory is a run this watcher follows (the rules of ``find_runs``)."""
        try:
            relative = Path(key).relative_to(self._root_key)
        except ValueError:
            return False
        parent = self._root_key
        for part in relative.parts:
            if skipped_dir(parent, part):
                return False
            parent = os.path.join(parent, part)
        return is_run_dir(key)

    def _register(self, key: str) -> None:
        label = run_label(Path(self._root_key), Path(key))
        if label == ".":  # the watched directory is itself a run
            label = path_text(Path(os.path.abspath(key)).name)
        self._labels[key] = label
        status_path = os.path.join(key, STATUS_FILE)
        self._tails[key] = StatusTail(status_path, max_read_bytes=self.read_slice)
        self._fresh.add(key)
        self._known = (*self._known, Path(key))

    def _forget(self, key: str) -> None:
        del self._tails[key]
        del self._labels[key]
        self._fresh.discard(key)
        self._removed.append(Path(key))
        self._known = tuple(path for path in self._known if str(path) != key)

    def _rescan(self) -> None:
        found = {os.path.normpath(path) for path in find_runs(self.root)}
        for key in [key for key in self._tails if key not in found]:
            if not is_run_dir(key):
                self._forget(key)
        self._changes.add_dirty(found)

    def _collect(self) -> WatchBatch | None:
        changes = self._changes.take()
        dirty = changes.dirty
        for directory in changes.new_dirs:
            dirty.update(os.path.normpath(path) for path in find_runs(directory))
        for path in changes.gone:
            inside = [key for key in self._tails if key == path or key.startswith(path + os.sep)]
            for key in inside:
                if not is_run_dir(key):
                    self._forget(key)
                    dirty.discard(key)
        # The very first delivery only names the runs found (rows appear at once); reading
        # their files starts with the next one.
        budget = self.cycle_budget if self._named_runs else 0
        self._named_runs = True
        updates, leftover = self._read(dirty, budget)
        self._changes.add_dirty(leftover)
        scan_done = not self._scan_done and not leftover
        self._scan_done = self._scan_done or scan_done
        removed, self._removed = self._removed, []
        if not updates and not removed and not scan_done:
            return None
        return WatchBatch(updates, removed, scan_done, self.watching)

    def _read(self, dirty: set[str], budget: int) -> tuple[list[RunUpdate], set[str]]:
        updates: list[RunUpdate] = []
        leftover: set[str] = set()
        first_reads = []
        for key in sorted(dirty):
            if key not in self._tails:
                if not self._accepts(key):
                    continue
                self._register(key)
            if budget <= 0:
                leftover.add(key)
                if key in self._fresh:  # shown now, read later (or being read, see begin());
                    # still fresh: its first read is delivered even when it finds nothing
                    updates.append(RunUpdate(Path(key), self._labels[key], TailBatch(), True))
                continue
            tail = self._tails[key]
            if str(tail.path) in self._first_reads:
                continue  # the reader has it; what was appended meanwhile is read after
            if key in self._fresh:
                self._first_reads[str(tail.path)] = key
                first_reads.append(tail.path)
                continue
            error = None
            try:
                batch, spent = read_some(tail, budget)
            except OSError as exc:  # not a file, permission, stale NFS handle ...: retried later
                batch, spent = TailBatch(), 0
                error = f"cannot read {path_text(tail.path)}: {reason_of(exc)}"
            budget -= spent
            if tail.pending:
                leftover.add(key)
            if batch.records or batch.skipped or batch.reset or error:
                updates.append(RunUpdate(Path(key), self._labels[key], batch, tail.pending, error))
        if first_reads:
            self._reader.submit(first_reads)
        if self._first_reads:
            updates += self._first_read_updates(budget, 0.0 if updates else 0.25)
            leftover.update(self._first_reads.values())
        return updates, leftover

    def _first_read_updates(self, budget: int, timeout: float) -> list[RunUpdate]:
        """Runs the reader finished, each as one folded state; the reader's pool of workers
        stops when nothing is left for it."""
        updates = []
        for item in self._reader.collect(max(budget, 0), timeout=timeout):
            key = self._first_reads.pop(str(item.path))
            if key not in self._tails:  # forgotten meanwhile
                continue
            item.tail.max_read_bytes = self.read_slice
            self._tails[key] = item.tail
            self._fresh.discard(key)
            batch = TailBatch(state=item.run)
            error = None if item.run.error is None else f"cannot read {item.run.error}"
            updates.append(RunUpdate(Path(key), self._labels[key], batch, False, error))
        if not self._reader.pending:
            self._reader.close()
        return updates
