"""hpc_runner: train CAREamics models on SLURM (or locally) and watch them from plain status files.

The public names are importable from here and load lazily (PEP 562): ``import hpc_runner`` and
the monitoring side's names (the status model, :func:`replay`) never load torch, lightning or
careamics, so ``hpc-runner status`` and ``watch`` start in well under a second. The node side's
names (:class:`StatusCallback`, :func:`train_with_status`) import lightning on first use.

Layers, bottom to top (each imports only those below it): ``stream`` (status model, records,
writer, readers) and ``data`` (data sources); ``spec`` (job and sweep specs, profiles); ``node``
(what runs on the compute node); ``control`` (submission, scheduler, jobs); ``watch`` (reading
runs), ``tui`` and :mod:`hpc_runner.api`; ``cli``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpc_runner.api import Sweep
    from hpc_runner.node.callback import StatusCallback
    from hpc_runner.node.training import train_with_status
    from hpc_runner.stream.run_state import replay
    from hpc_runner.stream.status import (
        TrainingState,
        TrainingStatus,
        TrainUpdate,
        TrainUpdateType,
    )

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_PUBLIC = {
    "TrainingState": "hpc_runner.stream.status",
    "TrainingStatus": "hpc_runner.stream.status",
    "TrainUpdate": "hpc_runner.stream.status",
    "TrainUpdateType": "hpc_runner.stream.status",
    "replay": "hpc_runner.stream.run_state",
    "StatusCallback": "hpc_runner.node.callback",
    "train_with_status": "hpc_runner.node.training",
    "Sweep": "hpc_runner.api",
}

__all__ = [
    "StatusCallback",
    "Sweep",
    "TrainUpdate",
    "TrainUpdateType",
    "TrainingState",
    "TrainingStatus",
    "__version__",
    "replay",
    "train_with_status",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and cache the name here."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'hpc_runner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
