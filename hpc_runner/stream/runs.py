"""The run directory: its layout, how runs are found below a folder, and safe run names.

One run is one directory (shared/DESIGN.md); a sweep is a directory of runs. Discovery walks the
tree but never descends into a run's ``work/`` or ``submitit/`` folders, which hold checkpoints and
thousands of small files on a shared filesystem.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

STATUS_FILE = "status.jsonl"
RUN_SPEC_FILE = "run.yaml"
JOB_FILE = "job.json"
STOP_FILE = "STOP"
WORK_DIR = "work"
SUBMITIT_DIR = "submitit"

#: Where runs go when neither ``--runs-dir`` nor ``HPC_RUNNER_RUNS_DIR`` says otherwise.
DEFAULT_RUNS_DIR = "runs"

_NOT_RUNS = frozenset({WORK_DIR, SUBMITIT_DIR, "__pycache__"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@-]+")


def default_runs_dir() -> Path:
    """``$HPC_RUNNER_RUNS_DIR`` if set, else ``./runs``."""
    return Path(os.environ.get("HPC_RUNNER_RUNS_DIR") or DEFAULT_RUNS_DIR)


def safe_run_name(name: str) -> str:
    """A name usable as one path component: no separators, no ``..``, no leading dot, not empty.

    Characters outside ``[A-Za-z0-9._+=@-]`` become ``_``; runs of dots collapse to one.
    """
    safe = _UNSAFE.sub("_", name)
    safe = re.sub(r"\.{2,}", ".", safe).lstrip(".")
    return safe[:200] or "run"


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """Every run directory at or below ``root`` (a directory holding ``status.jsonl``), sorted."""
    root = Path(root)
    found: list[Path] = []
    for current, dirs, files in os.walk(root):
        if STATUS_FILE in files:
            found.append(Path(current))
        dirs[:] = [d for d in dirs if d not in _NOT_RUNS and not d.startswith(".")]
    return sorted(found, key=lambda path: run_label(root, path))


def run_label(root: Path, run_dir: Path) -> str:
    """The run's path relative to ``root``, ``/``-separated (``.`` when root is the run)."""
    return run_dir.relative_to(root).as_posix()


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The most recently written checkpoint below the run's ``work/`` directory, if any.

    The path is absolute: it is stored and handed to a job, which may start in another folder
    (a profile's ``chdir``, a scheduler's default working directory).
    """
    newest: tuple[int, Path] | None = None
    for path in (Path(run_dir).absolute() / WORK_DIR).rglob("*.ckpt"):
        try:
            written = path.stat().st_mtime_ns
        except OSError:  # removed meanwhile (the trainer keeps only its top-k checkpoints)
            continue
        if newest is None or written > newest[0]:
            newest = (written, path)
    return newest[1] if newest else None
