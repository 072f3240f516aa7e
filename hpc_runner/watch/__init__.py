"""Watching a runs directory: discovery, file-system events or polling, reading off the UI thread.

This package imports neither textual nor anything heavy (no torch, lightning or careamics): a UI
hands :class:`RunWatcher` a ``deliver`` callback and applies each :class:`WatchBatch` itself.
"""

from __future__ import annotations

from hpc_runner.watch.batches import RunUpdate, WatchBatch
from hpc_runner.watch.mounts import filesystem_type, is_network_filesystem
from hpc_runner.watch.watcher import DEFAULT_NETWORK_POLL, RunWatcher

__all__ = [
    "DEFAULT_NETWORK_POLL",
    "RunUpdate",
    "RunWatcher",
    "WatchBatch",
    "filesystem_type",
    "is_network_filesystem",
]
