"""Incremental, distrustful reading of a growing ``status.jsonl``.

:class:`StatusTail` remembers a byte offset and, on each :meth:`~StatusTail.read`, decodes only the
bytes appended since. It reopens the file every time (NFS caches attributes of open files), keeps
an unterminated last line until its newline arrives, skips and counts lines it cannot use, and
starts again from byte 0 when the file shrank, vanished or was replaced, telling its caller so with
``reset=True``. A name that is not a regular file (a FIFO, a device, a directory, a symlink loop)
is never read: :meth:`StatusTail.read` raises :class:`~hpc_runner.stream.files.UnreadableFile` at
once instead of blocking on it.

What "the same file" means is decided in one place, :meth:`StatusTail._was_replaced`, for a tail
that read the file a second ago and for one resumed from a :class:`TailPosition` saved days ago
(the reader cache): the same device and inode, not shorter than what was read, the same first 64
bytes, and the same 256 bytes before the end of the last line read (the *fence*). Every record
carries its write time and sequence number, so a file truncated and written again differs there;
a rewrite that reproduces both byte for byte and changes only the middle is not detected (nothing
short of reading every byte again could tell).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from hpc_runner.stream.files import open_regular
from hpc_runner.stream.records import MAX_LINE_BYTES, Record, decode_lines

#: How many leading bytes identify a file across polls (the first record's time and host).
_HEAD_BYTES = 64

#: How many bytes before the last complete line's end must stay the same (see the module doc):
#: enough to hold a whole record, its time and sequence number included, whatever its host name.
_FENCE_BYTES = 256

#: Bytes read per call by default: small slices are decoded and folded while still in the CPU's
#: cache (a replay is ~1.5x faster with 256 KiB slices than with 64 MiB, measured in
#: benchmarks/bench_sweep_read.py), and never hold more than a few thousand records at once.
READ_SLICE = 256 << 10


@dataclass
class TailBatch:
    """What one read produced: new records in file order, skip counts, and whether to start over.

    ``state``, when set, is a :class:`~hpc_runner.stream.run_state.RunState` folded elsewhere (a
    worker process, the reader cache) that replaces the consumer's state before ``records`` are
    applied: a run's first read. (Typed loosely: the fold lives a module above.)
    """

    records: list[Record] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    reset: bool = False
    state: Any = None


class TailPosition(msgspec.Struct, frozen=True):
    """Where a tail stands, enough to resume it in another process or another day.

    ``offset`` is the end of the last complete line (an unterminated or oversized line is read
    again on resume); ``device``, ``inode``, ``head`` and ``fence`` are the file's identity.
    """

    offset: int
    device: int
    inode: int
    head: bytes
    fence: bytes


class StatusTail:
    """Reads the records appended to one status file since the previous read.

    Parameters
    ----------
    path : str | os.PathLike
        The status file. It need not exist yet.
    max_line_bytes : int
        Longer lines are skipped and counted as ``oversized``.
    max_read_bytes : int
        At most this much is read per call, so that a huge file is folded in slices and a UI
        stays responsive; ``pending`` tells whether more is waiting.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_read_bytes: int = READ_SLICE,
    ) -> None:
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        self.max_read_bytes = max_read_bytes
        self.offset = 0
        self.pending = False
        self._partial = b""
        self._discarding = False  # inside an oversized line: drop bytes up to its newline
        self._identity: tuple[int, int] | None = None
        self._head = b""
        self._boundary = 0  # where the last complete (or skipped oversized) line ends
        self._fence = b""  # the bytes before self._boundary
        self._last = b""  # the bytes before self.offset

    @classmethod
    def resume(
        cls, path: str | os.PathLike[str], position: TailPosition, **options: int
    ) -> StatusTail:
        """A tail that continues after ``position`` (from :meth:`position` of an earlier tail);
        its first read starts over (``reset``) if the file is no longer the one described."""
        tail = cls(path, **options)
        tail.offset = tail._boundary = position.offset
        tail._identity = (position.device, position.inode)
        tail._head = position.head
        tail._fence = tail._last = position.fence
        return tail

    def position(self) -> TailPosition | None:
        """Where a resumed tail would continue, or None before the file was first opened."""
        if self._identity is None:
            return None
        device, inode = self._identity
        return TailPosition(self._boundary, device, inode, self._head, self._fence)

    def read(self) -> TailBatch:
        """Decode what was appended since the last call (nothing if the file is missing).

        Raises
        ------
        UnreadableFile
            The name is not a regular file, is a symlink loop, or cannot be opened; it is
            retried on the next call (the file may be fixed meanwhile).
        OSError
            Reading failed (an I/O error, a stale NFS handle).
        """
        batch = TailBatch()
        try:
            fd = open_regular(self.path)
        except FileNotFoundError:
            self.pending = False
            if self.offset or self._identity is not None:  # it was there: it shrank to nothing
                self._start_over()
                self._identity = None
                batch.reset = True
            return batch
        except OSError:
            self.pending = False
            raise
        try:
            stat = os.fstat(fd)
            size = stat.st_size
            if self._was_replaced(fd, stat):
                self._start_over()
                batch.reset = True
            start = self.offset
            end = min(size, start + self.max_read_bytes)
            data = os.pread(fd, end - start, start) if end > start else b""
            if len(self._head) < _HEAD_BYTES and start < _HEAD_BYTES:
                # (a resumed tail may read again bytes its head already holds)
                self._head = (self._head[:start] + data)[:_HEAD_BYTES]
        finally:
            os.close(fd)
        self.offset += len(data)
        self.pending = self.offset < size
        if data:
            cut = self._split(data, batch)
            if cut is not None:
                self._boundary = start + cut
                self._fence = _last_bytes(self._last, data, cut, _FENCE_BYTES)
            self._last = _last_bytes(self._last, data, len(data), _FENCE_BYTES)
        return batch

    def _was_replaced(self, fd: int, stat: os.stat_result) -> bool:
        identity = (stat.st_dev, stat.st_ino)
        known, self._identity = self._identity, identity
        if known is None or self.offset == 0:
            return False
        if identity != known or stat.st_size < self.offset:
            return True
        # Same inode and not shorter: it may still have been truncated and rewritten since.
        if os.pread(fd, len(self._head), 0) != self._head:
            return True
        fence = self._fence
        return bool(fence) and os.pread(fd, len(fence), self._boundary - len(fence)) != fence

    def _start_over(self) -> None:
        self.offset = self._boundary = 0
        self._partial = b""
        self._discarding = False
        self._head = self._fence = self._last = b""

    def _split(self, data: bytes, batch: TailBatch) -> int | None:
        """Decode the complete lines; return where in ``data`` the last one ends (None: no
        line ended in it)."""
        cut: int | None = None
        skipped = 0
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return None
            self._discarding = False
            batch.skipped["oversized"] += 1
            skipped = cut = newline + 1
            data = data[skipped:]
            buffer = data
        elif self._partial:  # (no copy of a large read in the usual case: nothing pending)
            buffer = self._partial + data
        else:
            buffer = data
        before = len(buffer) - len(data)  # bytes of the old partial line in front of data
        lines = buffer.split(b"\n")
        self._partial = lines.pop()  # the unterminated rest (b"" after a final newline)
        if lines:
            cut = skipped + len(buffer) - len(self._partial) - before
        if len(self._partial) > self.max_line_bytes:
            self._partial = b""
            self._discarding = True
        if lines:
            records, skipped_lines = decode_lines(lines, self.max_line_bytes)
            batch.records += records
            batch.skipped.update(skipped_lines)
        return cut


def _last_bytes(before: bytes, data: bytes, end: int, count: int) -> bytes:
    """The ``count`` bytes of the stream ending at ``data[end]``, where ``before`` ends where
    ``data`` begins (without copying a large ``data``)."""
    if end >= count:
        return data[end - count : end]
    return (before + data[:end])[-count:]
