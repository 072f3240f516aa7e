"""What a run directory says besides its status file: key settings, job ids, the job's logs.

These readers run off the UI thread (a shared filesystem can take seconds to answer) and never
raise for a missing or broken file: the detail view shows what could be read and why the rest
could not. ``run.yaml`` and ``job.json`` are written by the submission side: ``job.json`` is read
with its own module (:mod:`hpc_runner.control.jobfile`), of ``run.yaml`` only the general shape
(nested mappings) is relied on.

A run's logs are its own job's (or array task's) files, found by
:func:`hpc_runner.control.jobs.log_files` as ``hpc-runner logs`` finds them - never "the newest
log" of a submitit folder, which a sweep's tasks share: a task that waits in the queue has no
log yet, and showing another task's would be a lie. A run without ``job.json`` has no logs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_runner.control.jobfile import JobFileError, JobRecord, read_job_file
from hpc_runner.errors import HpcRunnerError
from hpc_runner.stream.files import open_regular, read_regular, reason_of
from hpc_runner.stream.record_values import ModelLocation
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.runs import RUN_SPEC_FILE
from hpc_runner.watch.report import checkpoints_on_disk

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
        The current job's own logs, once they exist.
    checkpoints : ModelLocation | None
        Checkpoints found on disk (only looked for when the run recorded no model).
    problems : list of str
        Files that exist but could not be read or parsed, with the reason.
    """

    settings: list[tuple[str, str]] = field(default_factory=list)
    job: JobRecord | None = None
    stdout: Path | None = None
    stderr: Path | None = None
    checkpoints: ModelLocation | None = None
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


@dataclass(frozen=True)
class JobLogs:
    """One attempt's job logs of a run, and the attempts there are to choose from.

    Attributes
    ----------
    attempts : list of (attempt, job id)
        Every attempt the run made or was submitted for, oldest first (empty without job.json).
    attempt : int | None
        The attempt these logs are of.
    job_id : str | None
        The job (or array task) that ran it.
    stdout, stderr : Path | None
        Its log files, where they exist.
    problem : str | None
        Why there are no logs to look for (no or unreadable ``job.json``, no such attempt).
    """

    attempts: list[tuple[int, str]] = field(default_factory=list)
    attempt: int | None = None
    job_id: str | None = None
    stdout: Path | None = None
    stderr: Path | None = None
    problem: str | None = None


def job_logs(run_dir: Path, attempt: int | None = None, run: RunState | None = None) -> JobLogs:
    """The logs of one attempt (default: the newest) of the run's own job.

    ``run`` is the run's status, whose highest attempt may be beyond the last submission (a
    requeued job runs attempt N+1 under the same job id, into the same files).
    """
    from hpc_runner.control.jobs import attempts, log_files

    try:
        found = attempts(run_dir, run)
        chosen = found[-1][0] if attempt is None else attempt
        files = log_files(run_dir, chosen, run)
    except HpcRunnerError as exc:
        return JobLogs(problem=str(exc))
    job_id = next((job for number, job in found if number == chosen), None)
    out, err = (next((f for f in files if f.name.endswith(s)), None) for s in LOG_SUFFIXES)
    return JobLogs(found, chosen, job_id, out, err)


def load_meta(run_dir: Path, *, checkpoints: bool = False) -> RunMeta:
    """Read ``run.yaml``, ``job.json`` and find the job logs; problems are reported, not raised.

    With ``checkpoints``, also look for checkpoints the run left without recording them.
    """
    import yaml  # here, not at the top: `hpc-runner status` never needs it

    from hpc_runner.spec.yaml_load import safe_load

    meta = RunMeta()
    spec_path = run_dir / RUN_SPEC_FILE
    try:  # never blocks on a FIFO; a run.yaml is a few KiB
        text = read_regular(spec_path, max_bytes=16 << 20).decode("utf-8", errors="replace")
        meta.settings = key_settings(safe_load(text))
    except FileNotFoundError:
        pass  # a run started by hand (train_with_status) has no spec: nothing to show
    except (OSError, yaml.YAMLError, RecursionError) as exc:
        reason = reason_of(exc) if isinstance(exc, OSError) else str(exc) or "nested too deeply"
        meta.problems.append(f"{spec_path}: cannot read the run spec ({reason})")
    try:
        meta.job = read_job_file(run_dir)
    except JobFileError as exc:
        meta.problems.append(str(exc))
    if meta.job is not None:
        logs = job_logs(run_dir)
        meta.stdout, meta.stderr = logs.stdout, logs.stderr
    if checkpoints:
        meta.checkpoints = checkpoints_on_disk(run_dir)
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
