"""Append training updates to ``status.jsonl`` without ever breaking the training.

Why it looks the way it does:

- one ``os.write`` of one complete line per record on an ``O_APPEND`` descriptor, so a reader (on
  this node or another, over NFS) sees whole lines or nothing of a line, and a job killed between
  two writes leaves a file whose every line is intact;
- only global rank 0 writes: appends from several processes to one file are not safe on network
  filesystems;
- ``fsync`` only where a reader on another node must see the record soon and a crash must not lose
  it (state changes, epoch ends), not per batch: the per-record cost is what benchmarks/ measures;
- a full disk, a vanished directory or a denied permission is reported once as a warning and the
  training goes on: losing the status display is better than losing a day of GPU time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from pathlib import Path
from time import time
from typing import Any

from hpc_runner.stream.records import (
    ENCODER,
    EXTENSION_CLASSES,
    RECORD_CLASSES,
    SCHEMA_VERSION,
    BatchRecord,
    LossRecord,
    Record,
    json_value,
)
from hpc_runner.stream.status import TrainUpdate, TrainUpdateType


class StatusWriteWarning(RuntimeWarning):
    """The status file could not be written; the training continues without it."""


#: Updates after which the file is fsynced (epoch ends are fsynced by the callback).
SYNC_TYPES = frozenset(
    {TrainUpdateType.STATE, TrainUpdateType.EXCEPTION, TrainUpdateType.CAREAMIST}
)


_LOSS, _BATCH = TrainUpdateType.LOSS, TrainUpdateType.BATCH


def global_rank_from_env() -> int:
    """The process' global rank before Lightning knows it (torchrun, then SLURM, else 0)."""
    for name in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


class StatusWriter:
    """Appends one JSON line per :class:`TrainUpdate` to a status file.

    Parameters
    ----------
    path : str | os.PathLike
        The ``status.jsonl`` file; created (with its directory) if missing.
    attempt : int
        0 for a job's first run, +1 per requeue or resume.
    job : str | None
        Scheduler job id, recorded in every line when known.
    rank : int | None
        Global rank of this process; only rank 0 writes. Read from the environment if None.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        attempt: int = 0,
        job: str | None = None,
        rank: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.attempt = attempt
        self.job = job
        self.host = socket.gethostname()
        self.rank = global_rank_from_env() if rank is None else rank
        self.enabled = self.rank == 0
        self.seq = 0
        self._fd: int | None = None
        self._buffer = bytearray()
        self._warned = False
        self._opened_once = False

    def write(self, update: TrainUpdate) -> None:
        """Append one update; fsync after state changes, exceptions and model locations."""
        if not self.enabled:
            return
        kind, value = update.type, update.value
        # Hot path first: per-batch LOSS and BATCH updates need no conversion beyond a number
        # and no fsync.
        sync = False
        cls: type[Record]
        if kind is _LOSS:
            cls, value = LossRecord, float(value)
        elif kind is _BATCH:
            cls, value = BatchRecord, int(value)
        else:
            cls, value = RECORD_CLASSES[kind], json_value(update)
            sync = kind in SYNC_TYPES
        self._append(cls, value, sync)

    def write_extension(self, name: str, value: Any, *, sync: bool = True) -> None:
        """Append one extension record (shared/DESIGN.md), e.g. ``evaluation``; ``value`` is its
        value struct (see :data:`hpc_runner.stream.records.EXTENSION_CLASSES`)."""
        if self.enabled:
            self._append(EXTENSION_CLASSES[name], value, sync)

    def _append(self, cls: type[Record], value: Any, sync: bool) -> None:
        self.seq += 1
        record = cls(
            v=SCHEMA_VERSION,
            value=value,
            t=time(),
            seq=self.seq,
            attempt=self.attempt,
            job=self.job,
            host=self.host,
        )
        buffer = self._buffer
        ENCODER.encode_into(record, buffer)
        buffer.append(10)  # b"\n": the line and its end go out in the same write
        try:
            fd = self._fd if self._fd is not None else self._open()
            os.write(fd, buffer)
            if sync:
                os.fsync(fd)
        except OSError as exc:
            self._fail(exc)

    def sync(self) -> None:
        """Flush the file to stable storage (called at epoch ends)."""
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        """Sync and close; the writer reopens the file if written to again."""
        if self._fd is not None:
            self.sync()
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)

    def _open(self) -> int:
        # The directory is made for the first open only: if it vanishes later (a user deleted the
        # run), recreating it behind their back would be a surprise; the writes just fail quietly.
        if not self._opened_once:
            self._opened_once = True
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._fd

    def _fail(self, exc: OSError) -> None:
        """Warn once, drop the descriptor so that the next write retries opening the file."""
        if self._fd is not None:
            with contextlib.suppress(OSError):  # unusable either way; the warning says why
                os.close(self._fd)
            self._fd = None
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"hpc_runner cannot write the training status to {self.path} ({exc}); "
                "training continues, but its progress will not be visible until this is fixed",
                StatusWriteWarning,
                stacklevel=3,
            )

    def __enter__(self) -> StatusWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
