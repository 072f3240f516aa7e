"""The run directory: its layout, how runs are found below a folder, and safe run names.

One run is one directory (shared/DESIGN.md); a sweep is a directory of runs. Discovery walks the
tree but never descends into a run's ``work/`` or ``submitit/`` folders, which hold checkpoints and
thousands of small files on a shared filesystem.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from hpc_runner.stream.text import path_text

STATUS_FILE = "status.jsonl"
RUN_SPEC_FILE = "run.yaml"
JOB_FILE = "job.json"
STOP_FILE = "STOP"
WORK_DIR = "work"
SUBMITIT_DIR = "submitit"
LOCK_FILE = ".hpc-runner.lock"  # see hpc_runner.control.run_lock
BEST_CHECKPOINT_DIR = "best"  # work/checkpoints/best/: see hpc_runner.node.best_checkpoint

#: Where runs go when neither ``--runs-dir`` nor ``HPC_RUNNER_RUNS_DIR`` says otherwise.
DEFAULT_RUNS_DIR = "runs"

_NOT_RUNS = frozenset({WORK_DIR, SUBMITIT_DIR, "__pycache__"})

#: A run name's limit in UTF-8 bytes: a path component may hold 255 (NAME_MAX); the rest leaves
#: room for a ``-N`` suffix and the temporary name a run directory is built under.
MAX_NAME_BYTES = 200

#: Kept in run names besides letters, digits and combining marks (of any script).
_SAFE_PUNCTUATION = frozenset("._+=@-")
#: Unicode categories kept: letters, marks (accents, vowel signs), digits and numbers.
_SAFE_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No"})


def default_runs_dir() -> Path:
    """``$HPC_RUNNER_RUNS_DIR`` if set, else ``./runs``."""
    return Path(os.environ.get("HPC_RUNNER_RUNS_DIR") or DEFAULT_RUNS_DIR)


def _safe_char(char: str) -> bool:
    return char in _SAFE_PUNCTUATION or unicodedata.category(char) in _SAFE_CATEGORIES


def safe_run_name(name: str, *, suffix: str = "") -> str:
    """A name usable as one path component: no separators, no ``..``, no leading dot, not empty.

    Letters and digits of every script are kept (``名前`` stays ``名前``; NFC-normalised, so that
    one name has one spelling on disk), as are ``._+=@-``. Anything else - separators, spaces,
    control and format characters, symbols - becomes ``_`` (a run of them one ``_``); runs of
    dots collapse to one. The result is at most :data:`MAX_NAME_BYTES` bytes of UTF-8, cut at
    a character boundary; ``suffix`` (e.g. ``-2``) is made safe the same way and always kept.
    """

    def clean(text: str) -> str:
        text = name_key(text)
        safe = "".join(char if _safe_char(char) else "\0" for char in text)
        safe = re.sub("\0+", "_", safe)
        return re.sub(r"\.{2,}", ".", safe)

    tail = clean(suffix)
    budget = MAX_NAME_BYTES - len(tail.encode())
    head = clean(name).lstrip(".")
    head = head.encode()[: max(budget, 0)].decode("utf-8", errors="ignore")
    return (head + tail).lstrip(".") or "run"


def name_key(name: str) -> str:
    """A name in its one spelling: NFC-normalised. ``é`` typed as ``e`` and a combining accent
    (as macOS terminals and some copy-pastes give it) is the ``é`` of a run name."""
    return unicodedata.normalize("NFC", name)


def spelled_path(base: Path, relative: str) -> Path | None:
    """``base / relative`` as it is spelt on disk, each component of ``relative`` matched by
    :func:`name_key`; None when one does not exist.

    Raises
    ------
    UsageError
        Two entries of one directory differ only in their Unicode spelling: neither is taken
        for the other (``stop`` would stop the wrong run).
    """
    from hpc_runner.errors import UsageError

    current = base
    for part in Path(relative).parts:
        if part == ".." or part == Path(part).anchor:
            current = current / part
            continue
        key = name_key(part)
        try:
            names = sorted(name for name in os.listdir(current) if name_key(name) == key)
        except OSError:  # not a listable directory: only the spelling given can be there
            names = [part] if os.path.lexists(current / part) else []
        if len(names) > 1:
            both = " and ".join(path_text(str(current / name)) for name in names)
            raise UsageError(
                f"{path_text(relative)}: {both} differ only in their Unicode spelling: "
                "rename one of them"
            )
        if not names:
            return None
        current = current / names[0]
    return current


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """Every run directory at or below ``root`` (a directory holding ``status.jsonl``), sorted.

    A run is found whatever its ``status.jsonl`` is (a FIFO, a directory, a dangling symlink):
    the reader then says why it cannot be read, instead of the run silently vanishing.
    Symlinked directories are not followed (a symlink loop cannot trap the walk) and unreadable
    directories are skipped; neither hides the runs beside them.
    """
    root = Path(root)
    found: list[Path] = []
    for current, dirs, files in os.walk(root):
        if STATUS_FILE in files or STATUS_FILE in dirs:
            found.append(Path(current))
        dirs[:] = [d for d in dirs if not skipped_dir(current, d)]
    return sorted(found, key=lambda path: run_label(root, path))


def skipped_dir(parent: str | os.PathLike[str], name: str) -> bool:
    """Whether discovery leaves out the directory ``name`` in ``parent``: hidden folders (also
    the temporary names run directories are built under), a ``status.jsonl`` that is one, and
    a run's own ``work/``, ``submitit/`` and ``__pycache__/``. Those only inside a run: a run
    or a sweep may be named ``work`` (every view missed it). A sweep's shared ``submitit/``
    holds log files only, so walking it costs a listing."""
    if name.startswith(".") or name == STATUS_FILE:
        return True
    return name in _NOT_RUNS and is_run_dir(parent)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a run directory by :func:`find_runs`' rule: it holds an entry named
    ``status.jsonl``, of any kind."""
    try:
        os.lstat(os.path.join(path, STATUS_FILE))
    except (OSError, ValueError):
        return False
    return True


def run_label(root: Path, run_dir: Path) -> str:
    """The run's path relative to ``root``, ``/``-separated (``.`` when root is the run).

    Bytes of a directory name that are not UTF-8 are shown as ``\\x9b`` escapes
    (:func:`~hpc_runner.stream.text.path_text`): a label must encode, as JSON and on a terminal.
    """
    return path_text(run_dir.relative_to(root).as_posix())


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The most recently written checkpoint below the run's ``work/`` directory, if any: where a
    resumed training continues. The lowest-val_loss checkpoint (``checkpoints/best/``) is an
    earlier state of the training and never a place to continue from.

    The path is absolute: it is stored and handed to a job, which may start in another folder
    (a profile's ``chdir``, a scheduler's default working directory).
    """
    newest: tuple[int, Path] | None = None
    for path in (Path(run_dir).absolute() / WORK_DIR).rglob("*.ckpt"):
        if path.parent.name == BEST_CHECKPOINT_DIR:
            continue
        try:
            written = path.stat().st_mtime_ns
        except OSError:  # removed meanwhile (the trainer keeps only its top-k checkpoints)
            continue
        if newest is None or written > newest[0]:
            newest = (written, path)
    return newest[1] if newest else None
