"""What the watcher hands to its consumer: decoded records per run, never widgets or models."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hpc_runner.stream.tail import StatusTail, TailBatch


@dataclass
class RunUpdate:
    """What one run's status file gained since the previous delivery.

    Attributes
    ----------
    run_dir : Path
        The run directory (a consumer's dictionary key is ``str(run_dir)``).
    label : str
        Its path relative to the watched directory, ``/``-separated.
    batch : TailBatch
        Records read, lines skipped, and whether the file was replaced (start over); on a
        run's first read, its whole history as one folded state (``batch.state``).
    pending : bool
        More of the file is still to be read (a large file is delivered in slices).
    error : str | None
        Why the file could not be read this time (it is retried on the next event or re-scan).
    """

    run_dir: Path
    label: str
    batch: TailBatch
    pending: bool = False
    error: str | None = None


@dataclass
class WatchBatch:
    """One delivery: updates of runs (new runs included, possibly without records), removals.

    ``initial_scan_done`` is True on the one delivery after which every run found at start has
    been read to its end; ``watching`` describes how changes are detected.
    """

    updates: list[RunUpdate] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    initial_scan_done: bool = False
    watching: str = ""


def read_some(tail: StatusTail, budget: int) -> tuple[TailBatch, int]:
    """Read slices of one file until it is caught up or about ``budget`` bytes were read.

    Returns the merged batch and the number of bytes consumed.
    """
    batch = TailBatch()
    spent = 0
    while True:
        before = tail.offset
        more = tail.read()
        spent += tail.offset if more.reset else tail.offset - before
        if more.reset:  # the file was replaced: what this batch holds so far is obsolete
            batch = more
        else:
            batch.records.extend(more.records)
            batch.skipped.update(more.skipped)
        if not tail.pending or spent >= budget:
            return batch, spent
