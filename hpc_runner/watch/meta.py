"""What a run directory says besides its status file: key settings, job ids, the job's logs.

These readers run off the UI thread (a shared filesystem can take seconds to answer) and never
raise for a missing or broken file: the detail view shows what could be read and why the rest
could not. ``run.yaml`` and ``job.json`` are written by the submission side: ``job.json`` is read
with its own module (:mod:`hpc_runner.control.jobfile`), of ``run.yaml`` only the general shape
(nested mappings) is relied on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_runner.control.jobfile import JobFileError, JobRecord, read_job_file
from hpc_runner.stream.files import open_regular, read_regular, reason_of
from hpc_runner.stream.runs import RUN_SPEC_FILE, SUBMITIT_DIR

#: Keys worth a glance in the detail view, wherever they sit in ``run.yaml`` (last key component):
#: the careamics configuration (algorithm, data and training), the data and the cluster profile.
KEY_SETTINGS = (
    "algorithm",
    "axes",
    "patch_size",
    "batch_size",
    "data_type",
    "num_epochs",
    "max_epochs",
    "limit_train_batches",
    "lr",
    "seed",
    "train",
    "val",
    "profile",
    "partition",
    "gpus_per_node",
    "gres",
    "cpus_per_task",
    "mem_gb",
    "timeout_min",
)

#: At most this many settings are shown.
MAX_SETTINGS = 16

#: Log file name endings that submitit writes (``<job>_<task>_log.out`` / ``.err``).
LOG_SUFFIXES = ("_log.out", "_log.err")


@dataclass
class RunMeta:
    """What was read from a run directory besides the status stream.

    Attributes
    ----------
    settings : list of (key, value)
        Key settings from ``run.yaml`` (dotted key paths, values as short text).
    job : JobRecord | None
        ``job.json``: scheduler, submissions (None if absent or unreadable).
    stdout, stderr : Path | None
        The current job's submitit logs, once they exist.
    problems : list of str
        Files that exist but could not be read or parsed, with the reason.
    """

    settings: list[tuple[str, str]] = field(default_factory=list)
    job: JobRecord | None = None
    stdout: Path | None = None
    stderr: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def job_id(self) -> str | None:
        """The current job's id from ``job.json``."""
        return self.job.job_id if self.job is not None else None


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def key_settings(spec: Any) -> list[tuple[str, str]]:
    """The interesting leaves of a parsed ``run.yaml``: known keys first, else the first leaves."""
    leaves = [(key, value) for key, value in _flatten(spec) if key]
    wanted = [(k, v) for k, v in leaves if k.rsplit(".", 1)[-1] in KEY_SETTINGS and v is not None]
    chosen = wanted or [(k, v) for k, v in leaves if not isinstance(v, list | dict)]
    return [(key, _short(value)) for key, value in chosen[:MAX_SETTINGS]]


def newest_logs(folder: Path) -> tuple[Path | None, Path | None]:
    """The newest ``*_log.out`` and ``*_log.err`` in a submitit folder."""
    newest: dict[str, tuple[float, str]] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                for suffix in LOG_SUFFIXES:
                    if entry.name.endswith(suffix):
                        try:
                            stamp = (entry.stat().st_mtime, entry.name)
                        except OSError:
                            continue
                        newest[suffix] = max(newest.get(suffix, stamp), stamp)
    except OSError:
        return None, None
    out, err = (newest.get(suffix) for suffix in LOG_SUFFIXES)
    return (folder / out[1] if out else None), (folder / err[1] if err else None)


def job_logs(run_dir: Path, job: JobRecord | None) -> tuple[Path | None, Path | None]:
    """stdout and stderr of the run's current job (as ``hpc-runner logs`` finds them).

    With a ``job.json`` these are ``<submitit folder>/<job id>_0_log.out|err``; without one (or
    before they exist) the newest logs in the run's ``submitit/`` folder.
    """
    if job is not None:
        folder = job.folder(run_dir)
        out, err = (folder / f"{job.job_id}_0{suffix}" for suffix in LOG_SUFFIXES)
        if out.exists() or err.exists():
            return (out if out.exists() else None), (err if err.exists() else None)
        return newest_logs(folder)
    return newest_logs(run_dir / SUBMITIT_DIR)


def current_logs(run_dir: Path) -> tuple[Path | None, Path | None]:
    """stdout and stderr of the run's current job; an unreadable ``job.json`` counts as none."""
    try:
        job = read_job_file(run_dir)
    except JobFileError:
        job = None
    return job_logs(run_dir, job)


def load_meta(run_dir: Path) -> RunMeta:
    """Read ``run.yaml``, ``job.json`` and find the job logs; problems are reported, not raised."""
    import yaml  # here, not at the top: `hpc-runner status` never needs it

    meta = RunMeta()
    spec_path = run_dir / RUN_SPEC_FILE
    try:  # never blocks on a FIFO; a run.yaml is a few KiB
        text = read_regular(spec_path, max_bytes=16 << 20).decode("utf-8", errors="replace")
        meta.settings = key_settings(yaml.safe_load(text))
    except FileNotFoundError:
        pass  # a run started by hand (train_with_status) has no spec: nothing to show
    except (OSError, yaml.YAMLError, RecursionError) as exc:
        reason = reason_of(exc) if isinstance(exc, OSError) else str(exc) or "nested too deeply"
        meta.problems.append(f"{spec_path}: cannot read the run spec ({reason})")
    try:
        meta.job = read_job_file(run_dir)
    except JobFileError as exc:
        meta.problems.append(str(exc))
    meta.stdout, meta.stderr = job_logs(run_dir, meta.job)
    return meta


def read_tail(path: Path, max_bytes: int = 64 << 10) -> str:
    """The last ``max_bytes`` of a text file from a line start; undecodable bytes become U+FFFD."""
    with os.fdopen(open_regular(path), "rb") as handle:  # a FIFO is refused, not waited on
        size = handle.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        handle.seek(start)
        data = handle.read(max_bytes)
    if start > 0:
        newline = data.find(b"\n")
        data = data[newline + 1 :] if newline >= 0 else data
    return data.decode("utf-8", errors="replace")
