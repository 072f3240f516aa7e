"""Submitting runs: the run directory, the submitit executor, the job(s) (submitting machine).

One validated :class:`~hpc_runner.spec.job.JobSpec` becomes one run directory (shared/DESIGN.md):
``run.yaml`` (the resolved spec the node reads), an empty ``status.jsonl`` (so the run is listed
while its job still waits in the queue), ``submitit/`` and ``job.json``. The node entry,
:class:`~hpc_runner.node.job.NodeJob`, goes through a submitit executor:

- ``slurm``: ``sbatch``; several runs go out as one job array (``executor.batch()``);
- ``local``: submitit's local controller, started in its own session with its output in a file,
  so that the training outlives the ``submit`` command (submitit's own local executor ties the
  process to the caller's terminal and output pipes);
- ``debug``: in this process, at once (for debugging a spec with a debugger at hand).

The job runs with this interpreter (submitit uses ``sys.executable``), so the node needs the
same environment at the same path - true for a venv on a shared filesystem.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import submitit
from submitit.core.utils import FailedJobError, FailedSubmissionError
from submitit.local.local import LocalExecutor, LocalJob

from hpc_runner.control.held_interrupts import interrupts_held
from hpc_runner.control.jobfile import JobRecord, read_job_file, write_job_file
from hpc_runner.errors import HpcRunnerError, UsageError
from hpc_runner.stream.processes import (
    JobProcesses,
    identify,
    identify_path,
    read_processes,
    this_process,
    write_processes,
)
from hpc_runner.stream.runs import RUN_SPEC_FILE, STATUS_FILE, STOP_FILE, SUBMITIT_DIR

if TYPE_CHECKING:
    from hpc_runner.spec.job import JobSpec
    from hpc_runner.spec.profiles import ClusterProfile

CLUSTER_CHOICES = ("auto", "slurm", "local", "debug")


@dataclass(frozen=True)
class SubmittedRun:
    """A run that was submitted: where it lives, which job runs it, and the setup lines that run
    before it (from the cluster profile)."""

    run_dir: Path
    scheduler: str
    job_id: str
    job: Any = None  # the submitit Job (only meaningful in this process)
    setup: tuple[str, ...] = ()


def add_submission(
    record: JobRecord, run_dir: Path, scheduler: str, attempt: int, job_id: str, how: str
) -> None:
    """Add a job to ``record`` with what proves, later, which process runs it: a local job's
    controller, or a debug job's process (this one) and the run directory it trains. Each is
    recorded with its identity (a pid with its start time, a directory with its inode), so that
    neither a reused pid nor a copy of the run directory is ever taken for the job's own
    (:func:`~hpc_runner.control.scheduler.copied_state`: every scheduler's job)."""
    process, directory = None, identify_path(run_dir)
    if scheduler == "local" and job_id.isdigit():
        process = identify(int(job_id))
    elif scheduler == "debug":
        process = this_process()
    record.add_submission(attempt, job_id, how, process, directory)


def choose_cluster(cluster: str = "auto") -> str:
    """``auto`` → ``slurm`` where ``sbatch`` is on PATH, else ``local``; others unchanged."""
    if cluster not in CLUSTER_CHOICES:
        raise UsageError(
            f"unknown cluster '{cluster}' (choose one of {', '.join(CLUSTER_CHOICES)})"
        )
    if cluster == "auto":
        return "slurm" if shutil.which("sbatch") else "local"
    return cluster


def create_run_dir(parent: Path, name: str) -> Path:
    """A new, empty run directory ``parent/name`` (``name-2``, ``name-3``... if taken).

    ``mkdir`` claims the name atomically, so two submissions never get the same directory.

    Raises
    ------
    UsageError
        ``parent`` (or a folder above it) is a file.
    HpcRunnerError
        Too many runs of that name, or the directory cannot be made (a full disk, no
        permission): the message says which and where.
    """
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{parent}: not a directory (give a directory for the runs)") from None
    except OSError as error:
        raise HpcRunnerError(f"cannot make the runs directory {parent}: {_reason(error)}") from None
    for index in range(1, 10_000):
        candidate = parent / (name if index == 1 else f"{name}-{index}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            raise HpcRunnerError(f"cannot make {candidate}: {_reason(error)}") from None
        return candidate.absolute()
    raise HpcRunnerError(f"{parent}: too many runs named '{name}' (choose another name)")


def prepare_run(spec: JobSpec, parent: Path) -> Path:
    """Create the run directory with ``run.yaml`` and an empty ``status.jsonl``: whole or not at
    all.

    The name is claimed first (an empty directory, which no reader lists as a run: it has no
    status file); the content is written into a hidden staging directory beside it, which then
    replaces the claim in one ``rename``. A full disk or any other write error leaves nothing
    behind - not a run directory with an empty ``run.yaml`` that would be listed, resumed or
    skipped as existing - and ends in a one-line :class:`HpcRunnerError`.
    """
    from hpc_runner.spec.job import dump_run_spec

    text = dump_run_spec(spec)
    run_dir = create_run_dir(parent, spec.name)
    staging = run_dir.with_name(f".{run_dir.name}.{secrets.token_hex(4)}.tmp")
    try:
        staging.mkdir()  # mkdir, not mkdtemp: the run directory gets the user's umask
        (staging / RUN_SPEC_FILE).write_text(text, encoding="utf-8")
        (staging / STATUS_FILE).touch()
        os.replace(staging, run_dir)  # an empty directory is replaced atomically
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            run_dir.rmdir()
        raise HpcRunnerError(
            f"cannot write the run directory {run_dir}: {_reason(error)} (nothing was submitted)"
        ) from None
    return run_dir


def _reason(error: OSError) -> str:
    from hpc_runner.stream.files import reason_of

    return reason_of(error)


def submit_specs(
    specs: Sequence[JobSpec],
    runs_dir: str | os.PathLike[str],
    *,
    cluster: str = "auto",
) -> list[SubmittedRun]:
    """Create a run directory per spec below ``runs_dir`` and submit them all.

    On SLURM, several specs become one job array (they must share one cluster profile); their
    runs share ``runs_dir/submitit``. If the submission fails, the new run directories are
    removed again.

    Raises
    ------
    UsageError
        Unknown cluster, or specs of one array with different profiles.
    HpcRunnerError
        The scheduler refused the job (its message is passed on).
    """
    if not specs:
        raise UsageError("nothing to submit")
    scheduler = choose_cluster(cluster)
    profile = specs[0].profile
    if any(spec.profile != profile for spec in specs[1:]):
        raise UsageError("runs submitted together must use the same cluster profile")
    parent = Path(runs_dir)
    run_dirs: list[Path] = []
    with interrupts_held(scheduler != "debug"):  # (until job.json names the jobs)
        try:
            run_dirs = [prepare_run(spec, parent) for spec in specs]
            folder = (
                run_dirs[0] / SUBMITIT_DIR if len(specs) == 1 else parent.absolute() / SUBMITIT_DIR
            )
            name = specs[0].name if len(specs) == 1 else parent.absolute().name
            jobs = _submit(
                scheduler, folder, profile, name, [(run_dir, 0, None) for run_dir in run_dirs]
            )
        except BaseException:
            for run_dir in run_dirs:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        submitted = []
        for run_dir, job in zip(run_dirs, jobs, strict=True):
            record = JobRecord(
                scheduler=scheduler,
                submissions=[],
                submitit_folder=os.path.relpath(folder, run_dir),
                python=sys.executable,
            )
            job_id = str(job.job_id)
            add_submission(record, run_dir, scheduler, 0, job_id, "submit")
            write_job_file(run_dir, record)
            submitted.append(SubmittedRun(run_dir, scheduler, job_id, job, profile.setup))
    return submitted


def resubmit(
    run_dir: Path,
    *,
    attempt: int,
    checkpoint: str | None,
    profile: ClusterProfile,
    cluster: str | None = None,
) -> SubmittedRun:
    """Submit a new job for an existing run (``resume``): ``attempt``, from ``checkpoint``,
    with ``profile`` (see :func:`trusted_profile`: its setup lines are the user's own)."""
    from hpc_runner.spec.job import load_run_spec

    spec = load_run_spec(run_dir)
    record = read_job_file(run_dir)
    scheduler = choose_cluster(cluster or (record.scheduler if record else "auto"))
    (run_dir / STOP_FILE).unlink(missing_ok=True)  # a stop request was for the previous job
    folder = run_dir / SUBMITIT_DIR
    with interrupts_held(scheduler != "debug"):  # (until job.json names the job)
        (job,) = _submit(scheduler, folder, profile, spec.name, [(run_dir, attempt, checkpoint)])
        if record is None:
            record = JobRecord(scheduler=scheduler, submissions=[])
        record.scheduler = scheduler
        record.submitit_folder = SUBMITIT_DIR
        record.python = sys.executable
        job_id = str(job.job_id)
        add_submission(record, run_dir, scheduler, attempt, job_id, "resume")
        write_job_file(run_dir, record)
    return SubmittedRun(run_dir, scheduler, job_id, job, profile.setup)


def trusted_profile(recorded: ClusterProfile) -> ClusterProfile:
    """The recorded profile with its setup lines replaced by the user's own profile's.

    The run directory may not be the user's own (an admin resuming a user's run, a directory
    copied from elsewhere), so nothing it says is run as a command: ``run.yaml``'s resources
    (partition, GPUs, time) are kept - they are what the run was submitted with - but shell
    lines are only taken from a profile file the user can see in ``hpc-runner profiles``. A
    profile of that name that no longer exists runs no setup.
    """
    import dataclasses

    from hpc_runner.spec.errors import SpecError
    from hpc_runner.spec.profiles import load_profile

    try:
        own = load_profile(recorded.name)
    except SpecError:
        return dataclasses.replace(recorded, setup=(), source="")
    return dataclasses.replace(recorded, setup=tuple(own.setup), source=own.source)


def _submit(
    scheduler: str,
    folder: Path,
    profile: ClusterProfile,
    name: str,
    items: list[tuple[Path, int, str | None]],
) -> list[submitit.Job[Any]]:
    from hpc_runner.node.job import NodeJob

    executor = make_executor(scheduler, folder, profile, name)
    try:
        with quiet_submission(), executor.batch():
            jobs = [
                executor.submit(NodeJob(str(run_dir), attempt, checkpoint))
                for run_dir, attempt, checkpoint in items
            ]
    except (FailedJobError, FailedSubmissionError, OSError) as exc:
        # FailedJobError carries sbatch's stderr ("sbatch: error: invalid partition ...")
        message = str(exc).strip() or type(exc).__name__
        raise HpcRunnerError(f"the {scheduler} submission failed: {message}") from None
    return jobs


def quiet_submission() -> contextlib.AbstractContextManager[object]:
    """submitit prints a failed ``sbatch``'s stderr itself before raising it in its error:
    silenced here, so that the user reads the scheduler's complaint once (in our message)."""
    return contextlib.redirect_stderr(io.StringIO())


def make_executor(
    scheduler: str, folder: Path, profile: ClusterProfile, name: str
) -> submitit.Executor:
    """A submitit executor for ``scheduler`` with the profile's parameters."""
    from hpc_runner.spec.profiles import executor_parameters, job_python, signal_delay

    params = executor_parameters(profile, scheduler)
    python = shlex.join(job_python())
    if scheduler == "local":
        executor: submitit.Executor = DetachedLocalExecutor(folder, python=python)
        local = {key.removeprefix("local_"): value for key, value in params.items()}
        local["signal_delay_s"] = signal_delay(profile)
        executor.update_parameters(**local)
        return executor
    if scheduler == "slurm" and shutil.which("srun") is None:
        raise HpcRunnerError(
            "SLURM's srun is not on PATH: submit on a login node, or use --cluster local"
        )
    executor = submitit.AutoExecutor(folder, cluster=scheduler, slurm_python=python)
    executor.update_parameters(name=name, **params)
    return executor


class TrainingFailed(HpcRunnerError):
    """A ``debug`` run's training raised (exit code 1); the exception is the ``__cause__``, and
    the run's status file holds it with its traceback."""


def run_debug(submitted: SubmittedRun) -> Any:
    """Run a ``debug`` run's job here and now; returns the job's result.

    submitit's own ``DebugJob.result()`` opens a debugger on an exception; a command line must
    not, so the job's environment is set up here and the job called directly. This process is
    recorded as the job's process (:mod:`hpc_runner.stream.processes`), with how it ended, so
    that the monitor can tell a debug run that was killed from one that trains.

    Raises
    ------
    TrainingFailed
        The training raised: one line naming the run and the exception, and where its
        traceback is (``submit``, ``sweep`` and ``resume`` all end here, never in a traceback).
    """
    job = submitted.job
    job_file = read_job_file(submitted.run_dir)  # a sweep's runs share the sweep's folder
    folder = job_file.folder(submitted.run_dir) if job_file else submitted.run_dir / SUBMITIT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    me = this_process()
    record = JobProcesses(host=socket.gethostname(), controller=me, tasks=[me], started=time.time())
    write_processes(folder, submitted.job_id, record)
    saved = dict(os.environ)
    os.environ.update(job.environ)
    code = 1
    try:
        result = job.submission().result()
        code = 0
        return result
    except Exception as exc:  # the training's own error; the node recorded it
        first = str(exc).strip().splitlines()[:1]
        status = submitted.run_dir / STATUS_FILE
        raise TrainingFailed(
            f"{submitted.run_dir.name}: the training failed: "
            + ": ".join([type(exc).__name__, *first])
            + f" (its traceback is in {status}; `hpc-runner status` shows the run)"
        ) from exc
    finally:
        os.environ.clear()
        os.environ.update(saved)
        ended = read_processes(folder, submitted.job_id) or record
        ended.exit_codes = [code]
        write_processes(folder, submitted.job_id, ended)


class DetachedLocalExecutor(LocalExecutor):
    """submitit's local executor whose controller outlives the submitting process.

    submitit starts its controller as a plain child: it shares the submitter's terminal session
    (closing the terminal kills it) and output pipes (a caller capturing ``submit``'s output would
    wait for the whole training). Here it runs in its own session, its output in
    ``local-controller.log``; the tasks' logs are submitit's usual files.
    """

    def _submit_command(self, command: str) -> LocalJob[Any]:
        params = self.parameters
        ntasks = int(params.get("tasks_per_node", 1))
        gpus = ",".join(str(index) for index in range(int(params.get("gpus_per_node", 0))))
        setup = list(params.get("setup") or ())
        env = dict(os.environ)
        env.update(  # how submitit's Controller (submitit.local.local) is configured
            SUBMITIT_LOCAL_NTASKS=str(ntasks),
            SUBMITIT_LOCAL_COMMAND=command,
            SUBMITIT_LOCAL_TIMEOUT_S=str(int(60 * params.get("timeout_min", 2.0))),
            SUBMITIT_LOCAL_SIGNAL_DELAY_S=str(int(params.get("signal_delay_s", 30))),
            SUBMITIT_LOCAL_NODEID="0",
            SUBMITIT_LOCAL_JOB_NUM_NODES="1",
            SUBMITIT_STDERR_TO_STDOUT="",
            SUBMITIT_EXECUTOR="local",
            CUDA_VISIBLE_DEVICES=gpus,
            SUBMITIT_LOCAL_WITH_SHELL="1" if setup else "",
        )
        controller = "hpc_runner.node.local_controller"  # submitit's, recording its processes
        from hpc_runner.spec.profiles import job_python

        command_line: Any = [*job_python(), "-m", controller, str(self.folder)]
        if setup:
            command_line = " && ".join([*setup, shlex.join(command_line)])
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "local-controller.log").open("ab") as log:
            process = subprocess.Popen(
                command_line,
                shell=bool(setup),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return LocalJob(
            folder=self.folder, job_id=str(process.pid), process=process, tasks=list(range(ntasks))
        )
