"""Which sweep a run belongs to and the values it was made with, for grouping and columns.

A sweep directory holds ``sweep.yaml``; each of its runs records its values in its own
``sweep_run.json`` (read by :func:`hpc_runner.control.sweep_runs.recorded_run`, the same record
``status --summary`` credits results by). Read off the UI thread: a shared filesystem can take
its time, and a run directory may hold anything (the readers never block on a FIFO).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_runner.control.sweep_runs import (
    RUN_VALUES_FILE,
    SWEEP_FILE,
    read_sweep_file,
    recorded_run,
)


@dataclass(frozen=True)
class SweepMembership:
    """A run's sweep (None: a run of its own) and its values.

    Attributes
    ----------
    sweep_dir : Path | None
        The sweep directory (the run directory's parent).
    overrides : dict
        The values as the sweep file wrote them (dotted key -> value).
    """

    sweep_dir: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def sweep_memberships(run_dirs: Iterable[Path]) -> dict[Path, SweepMembership]:
    """The sweep of each run: its parent directory holds ``sweep.yaml``, or the run records
    its values in ``sweep_run.json``. Each sweep's ``sweep.yaml`` is read once."""
    manifests: dict[Path, dict[str, Any] | None] = {}
    found = {}
    for run_dir in run_dirs:
        parent = run_dir.parent
        if parent not in manifests:
            manifests[parent] = (
                read_sweep_file(parent) if os.path.isfile(parent / SWEEP_FILE) else None
            )
        manifest = manifests[parent]
        own = os.path.lexists(run_dir / RUN_VALUES_FILE)
        if manifest is None and not own:
            found[run_dir] = SweepMembership()
            continue
        record = recorded_run(run_dir, manifest or {})
        found[run_dir] = SweepMembership(parent, dict(record.overrides))
    return found


def value_text(value: Any) -> str:
    """A sweep value as the run's name writes it: ``true``, ``0.001``, ``[64, 64]``; a path by
    its file name."""
    if isinstance(value, str):
        return Path(value).name if "/" in value else value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)
