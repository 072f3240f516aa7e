"""Read many status files at once, close to the cost of reading their bytes.

Two things make a sweep of long trainings quick to read (measured in
``benchmarks/bench_sweep_read.py``):

- the reader cache (:mod:`~hpc_runner.stream.reader_cache`): a file read before is resumed where
  it was left, and only what was appended is decoded;
- files read from the start are decoded in worker processes, one file per task, when there is
  enough to read to pay for starting them: decoding JSON holds the GIL, so threads would take
  turns on one core (measured: no faster than one thread).

Whatever path a file takes, its state is what :func:`~hpc_runner.stream.run_state.replay` gives:
a worker runs the same fold and hands the state back through the same codec as the cache.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import msgspec

from hpc_runner.stream import reader_cache
from hpc_runner.stream.run_state import RunState, follow
from hpc_runner.stream.state_codec import decode_state, encode_state
from hpc_runner.stream.tail import READ_SLICE, StatusTail, TailPosition

#: Below this many bytes to read from the start, starting worker processes costs more than it
#: saves (a spawned worker needs ~0.1 s to import the decoder).
PARALLEL_MIN_BYTES = 48 << 20

_POSITIONS = msgspec.msgpack.Decoder(TailPosition)


@dataclass
class ReadRun:
    """One status file read to its end: the tail to continue from, and the folded state."""

    path: Path
    tail: StatusTail
    run: RunState


def only_thread() -> bool:
    """Whether this process runs no other thread, Python's or a library's (forking is safe).

    Linux only (its ``/proc/self/status`` counts every thread); elsewhere False: spawn.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Threads:"):
                    return int(line.split()[1]) == 1
    except (OSError, ValueError, IndexError):
        pass
    return False


def usable_cpus() -> int:
    """CPUs this process may run on (a batch job's allocation, not the whole node)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class RunReader:
    """Reads status files to their end: from the cache, in worker processes, or here.

    :meth:`submit` files, then :meth:`collect` what is ready until nothing is ``pending``;
    :func:`read_runs` does both for a list. A reader that started workers must be closed (it
    is a context manager).

    Parameters
    ----------
    cache : bool
        Use and update the reader cache.
    workers : int | None
        Worker processes at most (default: the usable CPUs); 0 or 1: read everything here.
    start_method : str | None
        How workers start (``spawn``, ``forkserver``, ``fork``). Default: ``spawn``, which is
        safe in a threaded process (the TUI) and costs ~0.1 s per worker, or ``fork`` where
        :meth:`submit` is told that no other thread runs.
    max_read_bytes : int
        Bytes read and folded at a time (see :data:`~hpc_runner.stream.tail.READ_SLICE`).
    parallel_min_bytes : int
        Workers start only when the files to read from the start hold at least this much.
    """

    def __init__(
        self,
        *,
        cache: bool = True,
        workers: int | None = None,
        start_method: str | None = None,
        max_read_bytes: int = READ_SLICE,
        parallel_min_bytes: int = PARALLEL_MIN_BYTES,
    ) -> None:
        self.cache = cache
        self.parallel_min_bytes = parallel_min_bytes
        self.workers = usable_cpus() if workers is None else workers
        self.start_method = start_method
        self.max_read_bytes = max_read_bytes
        self._hits: deque[tuple[Path, TailPosition, RunState]] = deque()
        self._serial: deque[Path] = deque()
        self._futures: dict[Future[tuple[bytes | None, bytes]], Path] = {}
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> RunReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Files submitted and not yet collected."""
        return len(self._hits) + len(self._serial) + len(self._futures)

    def close(self) -> None:
        """Stop the workers (files still being read in them are dropped)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._futures.clear()

    def submit(self, paths: Iterable[str | os.PathLike[str]], *, fork: bool = False) -> None:
        """Queue status files to read; those without a usable cache entry may start workers.

        ``fork``: the caller runs no other thread, so workers started now may be forked (where
        the system can), sparing each the start of a fresh interpreter (~0.3 s in all, measured
        on a sweep of 200 runs in benchmarks/bench_sweep_read.py).
        """
        cold: list[tuple[int, Path]] = []
        for name in paths:
            path = Path(name)
            hit = self._cached(path) if self.cache else None
            if hit is not None:
                self._hits.append((path, *hit))
            else:
                cold.append((_size(path), path))
        cold.sort(key=lambda item: -item[0])  # the largest first: the workers finish together
        total = sum(size for size, _ in cold)
        if self.workers > 1 and len(cold) > 1 and total >= self.parallel_min_bytes:
            pool = self._start_pool(min(self.workers, len(cold)), fork=fork)
            for _, path in cold:
                future = pool.submit(read_in_worker, str(path), self.cache, self.max_read_bytes)
                self._futures[future] = path
        else:
            self._serial.extend(path for _, path in cold)

    def collect(self, budget: int | None = None, *, timeout: float | None = None) -> list[ReadRun]:
        """What is ready: cached files brought up to date, files read here (until about
        ``budget`` bytes), files the workers finished. When nothing else was ready, waits up to
        ``timeout`` seconds (None: as long as it takes) for a worker to finish one."""
        done: list[ReadRun] = []
        while self._hits:
            path, position, run = self._hits.popleft()
            tail = StatusTail.resume(path, position, max_read_bytes=self.max_read_bytes)
            done.append(self._catch_up(path, tail, run))
        spent = 0
        while self._serial and (budget is None or spent < budget or not done):
            path = self._serial.popleft()
            tail, run = StatusTail(path, max_read_bytes=self.max_read_bytes), RunState()
            follow(tail, run)
            spent += tail.offset
            self._store(tail, run)
            done.append(ReadRun(path, tail, run))
        if self._futures:
            finished, _ = wait(self._futures, 0 if done else timeout, FIRST_COMPLETED)
            for future in finished:
                done.append(self._from_worker(self._futures.pop(future), *future.result()))
        return done

    def _cached(self, path: Path) -> tuple[TailPosition, RunState] | None:
        entry = reader_cache.load(path)
        if entry is None:
            return None
        position, blob = entry
        try:
            return position, decode_state(blob)
        except (msgspec.DecodeError, ValueError, TypeError):  # a layout the codec cannot take
            return None

    def _catch_up(self, path: Path, tail: StatusTail, run: RunState) -> ReadRun:
        """Continue a tail resumed from the cache or a worker, and store what it adds."""
        if follow(tail, run):
            if run.error is not None:
                # It cannot be read now: say so, as a replay would, with nothing read.
                fresh = RunState()
                fresh.error = run.error
                return ReadRun(path, StatusTail(path, max_read_bytes=self.max_read_bytes), fresh)
            self._store(tail, run)
        return ReadRun(path, tail, run)

    def _from_worker(self, path: Path, position: bytes | None, state: bytes) -> ReadRun:
        run = decode_state(state)
        if position is None:  # the worker could not open it: as a replay here would say
            return ReadRun(path, StatusTail(path, max_read_bytes=self.max_read_bytes), run)
        resumed = StatusTail.resume(
            path, _POSITIONS.decode(position), max_read_bytes=self.max_read_bytes
        )
        return self._catch_up(path, resumed, run)

    def _store(self, tail: StatusTail, run: RunState) -> None:
        position = tail.position()
        if self.cache and position is not None and run.error is None:
            reader_cache.save(tail.path, position, encode_state(run))

    def _start_pool(self, workers: int, *, fork: bool = False) -> ProcessPoolExecutor:
        if self._pool is None:
            method = self.start_method
            if method is None:  # (ProcessPoolExecutor forks every worker before its own thread)
                forkable = fork and "fork" in multiprocessing.get_all_start_methods()
                method = "fork" if forkable else "spawn"
            context = multiprocessing.get_context(method)
            with _stderr_with_a_descriptor():  # (the pool starts the resource tracker)
                self._pool = ProcessPoolExecutor(workers, mp_context=context)
        return self._pool


@contextlib.contextmanager
def _stderr_with_a_descriptor() -> Iterator[None]:
    """The real stderr while a pool starts, if ``sys.stderr`` claims descriptor -1.

    multiprocessing's resource tracker (started with the first pool) hands its process
    ``sys.stderr.fileno()``. In the TUI, ``sys.stderr`` is Textual's print capture, whose
    ``fileno()`` is -1, and the start failed with "bad value(s) in fds_to_keep", which stopped
    ``watch``. (A stderr without any descriptor is fine: the tracker then passes none.)
    """
    current = sys.stderr
    try:
        invalid = current.fileno() < 0
    except Exception:  # (whatever a replaced stderr raises; the tracker catches the same)
        invalid = False
    if not invalid or sys.__stderr__ is None:
        yield
        return
    sys.stderr = sys.__stderr__
    try:
        yield
    finally:
        sys.stderr = current


def read_in_worker(path: str, cache: bool, max_read_bytes: int) -> tuple[bytes | None, bytes]:
    """Replay one status file (in a worker process); its position and state as bytes. The
    worker stores the cache entry itself, so that the writes too happen in parallel."""
    tail, run = StatusTail(path, max_read_bytes=max_read_bytes), RunState()
    follow(tail, run)
    state = encode_state(run)
    position = tail.position()
    if position is None or run.error is not None:
        return None, state
    if cache:
        reader_cache.save(path, position, state)
    return msgspec.msgpack.encode(position), state


def read_runs(
    paths: Sequence[str | os.PathLike[str]], *, cache: bool = True, workers: int | None = None
) -> list[ReadRun]:
    """Every status file read to its end, in the order given (see :class:`RunReader`)."""
    with RunReader(cache=cache, workers=workers) as reader:
        reader.submit(paths, fork=only_thread())
        got: dict[Path, ReadRun] = {}
        while reader.pending:
            for item in reader.collect():
                got[item.path] = item
    return [got[Path(path)] for path in paths]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
