"""What the TUI's run actions do: thin calls that a worker thread runs, never the UI thread.

Each is the command line's own action (:mod:`hpc_runner.control.jobs`): it checks the run's
phase with a fresh scheduler answer and refuses (``ActionRefused``) where the action means
nothing, so the TUI and ``hpc-runner stop|cancel|resume`` cannot disagree. Imported when first
used so that the TUI starts without the submission machinery.
"""

from __future__ import annotations

from pathlib import Path


def request_stop(run_dir: Path) -> str:
    """Write ``<run_dir>/STOP``: the training stops after the current batch and checkpoints."""
    from hpc_runner.control.jobs import stop_run

    path = stop_run(run_dir)
    return f"wrote {path}: the training stops after its current batch"


def cancel_run(run_dir: Path) -> str:
    """End every live job of the run (``scancel``, or the local processes)."""
    from hpc_runner.control.jobs import cancel_run as cancel

    return cancel(run_dir)


def plan_resume(run_dir: Path) -> list[str]:
    """What resuming would do, in lines (asks the scheduler: call it on a worker thread).

    Raises ``ActionRefused`` (or another ``HpcRunnerError``) when the run cannot be resumed.
    """
    from hpc_runner.control.jobs import plan_resume as plan

    return plan(run_dir).describe()


def resume_run(run_dir: Path) -> str:
    """Resubmit the run from its newest checkpoint.

    A ``debug`` run trains inside the process that resumes it, which here would be this TUI:
    it is resumed as a ``local`` process instead.
    """
    from hpc_runner.control.jobfile import read_job_file
    from hpc_runner.control.jobs import resume_run as resume

    record = read_job_file(run_dir)
    cluster = "local" if record is not None and record.scheduler == "debug" else None
    plan, submitted = resume(run_dir, cluster=cluster)
    return f"resubmitted {run_dir.name}: job {submitted.job_id}, {plan.describe()[0]}"
