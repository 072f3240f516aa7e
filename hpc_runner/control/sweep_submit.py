"""Submitting a sweep: which runs go out, then all of them as one job array (submitting side).

A sweep lives in ``<runs dir>/<sweep name>/``: one run directory per run (shared/DESIGN.md),
the job array's submitit folder ``submitit/``, and ``sweep.yaml``, the sweep as submitted with
each run's values (what ``status --summary`` and
:func:`hpc_runner.watch.results.sweep_results` show).

:func:`plan_sweep` decides per run: a run without a directory is new; an existing one is skipped
(submitting a sweep twice does not duplicate it) unless ``only_failed`` asks for it and it
CRASHED, was cancelled, or never started. :func:`submit_plan` then writes the new run
directories and submits every picked run as one submitit batch - one SLURM job array, throttled
to the sweep's ``array_parallelism`` (``--array=0-N%P``). A picked run continues as its next
attempt: from its newest checkpoint when it has one (as ``hpc-runner resume`` does), else from
the start with the sweep's current ``run.yaml``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpc_runner.control.jobfile import JobRecord, write_job_file
from hpc_runner.control.phase import Phase, RunPhase
from hpc_runner.errors import HpcRunnerError
from hpc_runner.stream.runs import RUN_SPEC_FILE, STATUS_FILE, STOP_FILE, SUBMITIT_DIR

if TYPE_CHECKING:
    from hpc_runner.control.submit import SubmittedRun
    from hpc_runner.spec.job import JobSpec
    from hpc_runner.spec.sweep import SweepRun, SweepSpec

#: The sweep as submitted, in the sweep's directory.
SWEEP_FILE = "sweep.yaml"
SWEEP_FILE_VERSION = 1


@dataclass(frozen=True)
class PlannedRun:
    """What a submission does with one run of the sweep.

    Attributes
    ----------
    run, spec
        The run and its validated job spec.
    run_dir : Path
        Its directory (``<sweep dir>/<run name>``).
    action : str
        ``new`` (submit), ``retry`` (submit the next attempt) or ``skip``.
    reason : str
        Why (``exists: DONE``, ``CRASHED``, ``cancelled``, ``never started``, ...).
    attempt : int
        The attempt number the job starts with.
    checkpoint : str or None
        A retried run continues from this checkpoint.
    """

    run: SweepRun
    spec: JobSpec
    run_dir: Path
    action: str
    reason: str = ""
    attempt: int = 0
    checkpoint: str | None = None


def plan_sweep(
    checked: list[tuple[SweepRun, JobSpec]], sweep_dir: Path, *, only_failed: bool = False
) -> list[PlannedRun]:
    """Decide for each run whether it is submitted (one scheduler query for all existing ones)."""
    from hpc_runner.control.phase import derive_phase
    from hpc_runner.control.scheduler import job_records, scheduler_states
    from hpc_runner.stream.run_state import RunState, replay
    from hpc_runner.stream.runs import latest_checkpoint

    existing = [sweep_dir / run.name for run, _ in checked if (sweep_dir / run.name).exists()]
    records = job_records(existing)
    schedulers = scheduler_states(records)
    plan = []
    for run, spec in checked:
        run_dir = sweep_dir / run.name
        if run_dir not in records:
            plan.append(PlannedRun(run, spec, run_dir, "new"))
            continue
        record, scheduler = records[run_dir], schedulers.get(run_dir)
        state = replay(run_dir / STATUS_FILE) if (run_dir / STATUS_FILE).exists() else RunState()
        phase = derive_phase(state, record, scheduler, now=time.time())
        reason = retry_reason(phase)
        if not only_failed or reason is None:
            plan.append(PlannedRun(run, spec, run_dir, "skip", f"exists: {phase.describe()}"))
            continue
        attempts = [submission.attempt for submission in record.submissions] if record else []
        seen = [state.attempt] if state.records else []
        attempt = max([*seen, *attempts]) + 1 if seen or attempts else 0
        checkpoint = latest_checkpoint(run_dir)
        plan.append(
            PlannedRun(run, spec, run_dir, "retry", reason, attempt, str(checkpoint or "") or None)
        )
    return plan


def retry_reason(phase: RunPhase) -> str | None:
    """Why ``--only-failed`` resubmits a run (CRASHED, CANCELLED, LOST), or None.

    A run that was stopped on purpose (``hpc-runner stop``) or is DONE is not failed; one whose
    job still waits or runs is left alone.
    """
    if phase.phase in (Phase.CRASHED, Phase.CANCELLED, Phase.LOST):
        return phase.describe()
    return None


def submit_plan(
    plan: list[PlannedRun], sweep: SweepSpec, sweep_dir: Path, *, cluster: str = "auto"
) -> list[SubmittedRun]:
    """Submit every ``new`` and ``retry`` run of the plan as one batch (one SLURM job array).

    New run directories are removed again if the submission fails.

    Raises
    ------
    HpcRunnerError
        The scheduler refused the job array (its message is passed on).
    """
    from submitit.core.utils import FailedSubmissionError

    from hpc_runner.control.submit import (
        SubmittedRun,
        choose_cluster,
        job_process,
        make_executor,
        prepare_run,
    )
    from hpc_runner.node.job import NodeJob
    from hpc_runner.spec.job import dump_run_spec

    todo = [item for item in plan if item.action != "skip"]
    if not todo:
        return []
    scheduler = choose_cluster(cluster)
    folder = sweep_dir.absolute() / SUBMITIT_DIR
    created: list[Path] = []
    items: list[tuple[Path, PlannedRun]] = []
    try:
        for item in todo:
            if item.action == "new":
                run_dir = prepare_run(item.spec, sweep_dir)
                created.append(run_dir)
                if run_dir.name != item.run.name:  # another submission made it meanwhile
                    raise HpcRunnerError(f"{item.run_dir} appeared during the submission: retry")
            else:
                run_dir = item.run_dir.absolute()
                (run_dir / STOP_FILE).unlink(missing_ok=True)
                if item.checkpoint is None:  # starts over: with the sweep as it is now
                    (run_dir / RUN_SPEC_FILE).write_text(dump_run_spec(item.spec), "utf-8")
            items.append((run_dir, item))
        executor = make_executor(scheduler, folder, todo[0].spec.profile, sweep.name)
        if scheduler == "slurm" and sweep.array_parallelism:
            executor.update_parameters(slurm_array_parallelism=sweep.array_parallelism)
        with executor.batch():
            jobs = [
                executor.submit(NodeJob(str(run_dir), item.attempt, item.checkpoint))
                for run_dir, item in items
            ]
    except (FailedSubmissionError, subprocess.CalledProcessError, OSError) as exc:
        _remove(created)
        raise HpcRunnerError(f"the {scheduler} submission failed: {_message(exc)}") from None
    except BaseException:
        _remove(created)
        raise
    submitted = []
    for (run_dir, item), job in zip(items, jobs, strict=True):
        record = _job_record(run_dir, scheduler)
        record.submitit_folder = os.path.relpath(folder, run_dir)
        how = "submit" if item.action == "new" else "resume"
        job_id = str(job.job_id)
        record.add_submission(item.attempt, job_id, how, job_process(scheduler, job_id))
        write_job_file(run_dir, record)
        submitted.append(SubmittedRun(run_dir, scheduler, job_id, job))
    return submitted


def _remove(run_dirs: list[Path]) -> None:
    for run_dir in run_dirs:
        shutil.rmtree(run_dir, ignore_errors=True)


def _message(exc: BaseException) -> str:
    """The scheduler's own words: the last line of its output, else the exception."""
    output = getattr(exc, "output", None) or getattr(exc, "stderr", None) or str(exc)
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    lines = str(output).strip().splitlines()
    return lines[-1] if lines else repr(exc)


def _job_record(run_dir: Path, scheduler: str) -> JobRecord:
    from hpc_runner.control.jobfile import JobFileError, read_job_file

    try:
        record = read_job_file(run_dir)
    except JobFileError:
        record = None  # unreadable: the new submission starts a fresh record
    if record is None:
        record = JobRecord(scheduler=scheduler, submissions=[])
    record.scheduler = scheduler
    record.python = sys.executable
    return record


def write_sweep_file(sweep: SweepSpec, sweep_dir: Path, runs: list[SweepRun]) -> Path:
    """Record the sweep and its runs' values in ``<sweep dir>/sweep.yaml`` (runs of earlier
    submissions of the sweep are kept), replacing the file atomically."""
    import yaml

    known = read_sweep_file(sweep_dir).get("runs", {})
    known.update({run.name: run.overrides for run in runs})
    document = {
        "version": SWEEP_FILE_VERSION,
        "name": sweep.name,
        "source": str(Path(sweep.directory) / Path(sweep.source).name),
        "base": sweep.base,
        "grid": sweep.grid,
        "zip": sweep.zip,
        "cluster": {**sweep.cluster, "array_parallelism": sweep.array_parallelism},
        "runs": known,
    }
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / SWEEP_FILE
    temporary = path.with_name(f".{SWEEP_FILE}.{os.getpid()}.tmp")
    text = yaml.dump(document, Dumper=_plain_dumper(), sort_keys=False)
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def _plain_dumper() -> type:
    import yaml

    class PlainDumper(yaml.SafeDumper):
        """Writes a value shared by several runs in full each time (no ``&id001`` anchors)."""

        def ignore_aliases(self, data: Any) -> bool:
            return True

    return PlainDumper


def read_sweep_file(sweep_dir: Path) -> dict[str, Any]:
    """``<sweep dir>/sweep.yaml`` as a mapping; empty when there is none or it is unreadable
    (the runs are still found from their status files)."""
    import yaml

    from hpc_runner.stream.files import read_regular_text

    try:  # never blocks on a FIFO (status --summary reads it for every sweep folder)
        document = yaml.safe_load(read_regular_text(Path(sweep_dir) / SWEEP_FILE, 16 << 20))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}
