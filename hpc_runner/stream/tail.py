"""Incremental, distrustful reading of a growing ``status.jsonl``.

:class:`StatusTail` remembers a byte offset and, on each :meth:`~StatusTail.read`, decodes only the
bytes appended since. It reopens the file every time (NFS caches attributes of open files), keeps
an unterminated last line until its newline arrives, skips and counts lines it cannot use, and
starts again from byte 0 when the file shrank or was replaced (new inode, or different first
bytes), telling its caller so with ``reset=True``. A name that is not a regular file (a FIFO, a
device, a directory, a symlink loop) is never read: :meth:`StatusTail.read` raises
:class:`~hpc_runner.stream.files.UnreadableFile` at once instead of blocking on it.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hpc_runner.stream.files import open_regular
from hpc_runner.stream.records import MAX_LINE_BYTES, Record, decode_lines

#: How many leading bytes identify a file across polls (the first record's time and host).
_HEAD_BYTES = 64


@dataclass
class TailBatch:
    """What one read produced: new records in file order, skip counts, and whether to start over."""

    records: list[Record] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    reset: bool = False


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
        max_read_bytes: int = 64 << 20,
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
            end = min(size, self.offset + self.max_read_bytes)
            data = os.pread(fd, end - self.offset, self.offset) if end > self.offset else b""
            if len(self._head) < _HEAD_BYTES and self.offset < _HEAD_BYTES:
                self._head = (self._head + data)[:_HEAD_BYTES]
        finally:
            os.close(fd)
        self.offset += len(data)
        self.pending = self.offset < size
        if data:
            self._split(data, batch)
        return batch

    def _was_replaced(self, fd: int, stat: os.stat_result) -> bool:
        identity = (stat.st_dev, stat.st_ino)
        known, self._identity = self._identity, identity
        if known is None or self.offset == 0:
            return False
        if identity != known or stat.st_size < self.offset:
            return True
        # Same inode and not shorter: it may still have been truncated and rewritten since.
        return os.pread(fd, len(self._head), 0) != self._head

    def _start_over(self) -> None:
        self.offset = 0
        self._partial = b""
        self._discarding = False
        self._head = b""

    def _split(self, data: bytes, batch: TailBatch) -> None:
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return
            self._discarding = False
            batch.skipped["oversized"] += 1
            data = data[newline + 1 :]
        elif self._partial:  # (no copy of a large read in the usual case: nothing pending)
            data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # the unterminated rest (b"" after a final newline)
        if len(self._partial) > self.max_line_bytes:
            self._partial = b""
            self._discarding = True
        if lines:
            records, skipped = decode_lines(lines, self.max_line_bytes)
            batch.records += records
            batch.skipped.update(skipped)
