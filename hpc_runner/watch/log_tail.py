"""Following a job log as ``tail -f`` does: what is there, then what is appended, line by line.

Used by the TUI's logs view and by ``hpc-runner logs RUN -f``. Each read reopens the file
(network filesystems cache attributes of an open handle), never blocks on a FIFO planted in its
place (:func:`~hpc_runner.stream.files.open_regular`), and starts over when the file shrank or
was replaced. Only complete lines are handed out; a line still being written (a progress bar
without its newline) waits, and is offered separately as :attr:`LogChunk.partial`. Every line
goes through :func:`~hpc_runner.stream.text.log_text`: ANSI codes dropped, ``\\r`` rewrites
applied, other control characters escaped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hpc_runner.stream.files import open_regular
from hpc_runner.stream.text import log_text

#: Bytes read at most per call (a huge log is caught up over several calls).
READ_SLICE = 4 << 20


@dataclass
class LogChunk:
    """What one read found.

    Attributes
    ----------
    lines : list of str
        New complete lines, printable, without their newline.
    reset : bool
        The file is new, shrank or was replaced: these lines replace everything shown before.
    partial : str
        The unfinished last line as it reads now (printable); empty when there is none.
    pending : bool
        More is there than one read takes: read again.
    """

    lines: list[str] = field(default_factory=list)
    reset: bool = False
    partial: str = ""
    pending: bool = False


class LogTail:
    """Follows one log file.

    Parameters
    ----------
    path : Path
        The log.
    start_bytes : int | None
        Begin this many bytes before the end, at a line start (None: from the beginning).
    """

    def __init__(self, path: Path, start_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.start_bytes = start_bytes
        self.offset: int | None = None  # None: not opened yet
        self._identity: tuple[int, int] | None = None
        self._partial = b""

    def read(self) -> LogChunk:
        """What was appended since the last read (the first read: what is there).

        Raises
        ------
        FileNotFoundError
            The log does not exist (yet).
        OSError
            It cannot be read (not a regular file, no permission).
        """
        with os.fdopen(open_regular(self.path), "rb") as handle:
            info = os.fstat(handle.fileno())
            identity = (info.st_dev, info.st_ino)
            chunk = LogChunk()
            skip_to_line = False
            if self.offset is None or identity != self._identity or info.st_size < self.offset:
                chunk.reset = True
                self._identity, self._partial = identity, b""
                start = 0
                if self.start_bytes is not None and info.st_size > self.start_bytes:
                    start, skip_to_line = info.st_size - self.start_bytes, True
                self.offset = start
            handle.seek(self.offset)
            data = handle.read(READ_SLICE)
        self.offset += len(data)
        chunk.pending = self.offset < info.st_size
        if skip_to_line:  # began inside a line: it starts at the first newline
            first = data.find(b"\n")
            data = data[first + 1 :] if first >= 0 else b""
        data = self._partial + data
        complete, separator, self._partial = data.rpartition(b"\n")
        if separator:
            text = complete.decode("utf-8", errors="replace")
            chunk.lines = log_text(text).split("\n")
        if self._partial:
            chunk.partial = log_text(self._partial.decode("utf-8", errors="replace"))
        return chunk
