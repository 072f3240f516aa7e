"""The node entry: what submitit runs on the compute node (or in the local process).

:class:`NodeJob` is a submitit ``Checkpointable`` that holds plain data only (the run directory,
the attempt number, a checkpoint to resume from), so its pickle is tiny and never drags an evented
status or a model along. On the node it reads ``run.yaml``, builds the ``CAREamist`` with the run's
own ``work/`` directory, data loader workers within the CPUs SLURM granted and the progress bar
off, trains with the status callback, and records where the model is - plus the PSNR before and
after when the spec names a ground truth, then the spec's ``after:`` steps (predictions, a
BioImage Model Zoo archive: :mod:`hpc_runner.node.after`).

On timeout or preemption (USR2, see :mod:`hpc_runner.node.signals`) it saves a checkpoint at a
step boundary and submitit requeues :meth:`NodeJob.checkpoint`'s successor: the same run, attempt
+ 1, resuming from that checkpoint, so the epochs continue and the records say which attempt.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from submitit.helpers import Checkpointable, DelayedSubmission

from hpc_runner.stream.runs import STATUS_FILE, WORK_DIR, latest_checkpoint
from hpc_runner.stream.status import TrainingState

if TYPE_CHECKING:
    from hpc_runner.node.signals import NodeStatusCallback, SignalState


def current_job_id() -> str | None:
    """This process' scheduler job id (``1234``, ``1234_7``, a local controller's pid)."""
    from submitit import JobEnvironment

    try:
        return str(JobEnvironment().job_id)
    except (RuntimeError, KeyError):  # not inside a submitit job (tests, the Python API)
        return None


def dataloader_workers(configured: int) -> int:
    """At most the CPUs SLURM gave the task, minus one for the training process itself.

    careamics' default counts every core of the machine, which oversubscribes a shared node;
    a smaller value set in the spec is kept.
    """
    cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if not cpus.isdigit():
        return configured
    return max(0, min(configured, int(cpus) - 1))


def limit_workers(careamics: dict[str, Any]) -> dict[str, Any]:
    """A copy of a careamics configuration dict with its worker counts capped for this node."""
    data = dict(careamics["data_config"])
    data["num_workers"] = dataloader_workers(int(data.get("num_workers", 0)))
    for key in ("train_dataloader_params", "val_dataloader_params", "pred_dataloader_params"):
        params = dict(data.get(key) or {})
        if "num_workers" in params:
            params["num_workers"] = dataloader_workers(int(params["num_workers"]))
            if params["num_workers"] == 0:
                params.pop("persistent_workers", None)  # torch refuses it without workers
        data[key] = params
    return {**careamics, "data_config": data}


class NodeJob(Checkpointable):
    """Train one run on the node; submitit requeues it on timeout or preemption.

    Parameters
    ----------
    run_dir : str
        The run directory (absolute, visible from the node).
    attempt : int
        0 for the first submission, +1 per requeue or resume; recorded in every status line.
    checkpoint : str | None
        Resume from this checkpoint instead of starting from the configuration.
    """

    def __init__(self, run_dir: str, attempt: int = 0, checkpoint: str | None = None) -> None:
        self.run_dir = str(run_dir)
        self.attempt = attempt
        self.checkpoint_path = checkpoint
        self.requeue_checkpoint: str | None = None  # set on the node when USR2 was acted on

    def __repr__(self) -> str:
        return (
            f"NodeJob({self.run_dir!r}, attempt={self.attempt}, "
            f"checkpoint={self.checkpoint_path!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        return {
            "run_dir": self.run_dir,
            "attempt": self.attempt,
            "checkpoint": self.checkpoint_path,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["run_dir"], state["attempt"], state["checkpoint"])  # type: ignore[misc]

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        """submitit's hook: the next attempt, resuming from the checkpoint saved at the signal."""
        resume_from = self.requeue_checkpoint or self.checkpoint_path
        if resume_from is None:
            found = latest_checkpoint(self.run_dir)
            resume_from = str(found) if found else None
        return DelayedSubmission(NodeJob(self.run_dir, self.attempt + 1, resume_from))

    def __call__(self) -> dict[str, Any]:
        return run(self)


def rerun_attempt(job: NodeJob, status_path: Path) -> tuple[int, str | None, str | None]:
    """The attempt and checkpoint to use, and a note if the scheduler restarted the job itself.

    A job SLURM requeued without our checkpoint hand-over (a node failure, a preemption without
    USR2) starts again from the same pickle, so its attempt number is already in the status file.
    It then continues from the newest checkpoint as the next attempt instead of starting over.
    """
    from hpc_runner.stream.run_state import replay

    if not status_path.exists():
        return job.attempt, job.checkpoint_path, None
    seen = replay(status_path)
    if seen.records == 0 or seen.attempt < job.attempt:
        return job.attempt, job.checkpoint_path, None
    found = latest_checkpoint(job.run_dir)
    checkpoint = str(found) if found else job.checkpoint_path
    restart = os.environ.get("SLURM_RESTART_COUNT", "?")
    note = (
        f"restarted by the scheduler (restart {restart}) without a checkpoint hand-over: "
        f"continuing as attempt {seen.attempt + 1} from {checkpoint or 'the start'}"
    )
    return seen.attempt + 1, checkpoint, note


def run(job: NodeJob) -> dict[str, Any]:
    """Train the run of ``job`` (the body of :meth:`NodeJob.__call__`)."""
    from hpc_runner.node.signals import NodeStatusCallback, SignalState

    run_dir = Path(job.run_dir)
    status_path = run_dir / STATUS_FILE
    job_id = current_job_id()
    job.attempt, job.checkpoint_path, note = rerun_attempt(job, status_path)
    callback = NodeStatusCallback(status_path, attempt=job.attempt, job=job_id)
    signals = SignalState(callback, job)
    signals.install()
    try:
        return _run(job, run_dir, job_id, callback, signals, note)
    finally:
        signals.restore()


def _run(
    job: NodeJob,
    run_dir: Path,
    job_id: str | None,
    callback: NodeStatusCallback,
    signals: SignalState,
    note: str | None,
) -> dict[str, Any]:
    from hpc_runner.node.environment import record_environment
    from hpc_runner.node.signals import requeue_callback

    status_path = run_dir / STATUS_FILE
    start = f"attempt {job.attempt} starting on host {socket.gethostname()}"
    if job.checkpoint_path:
        start += f", resuming from {job.checkpoint_path}"
    callback.debug(start)
    if note:
        callback.debug(note)
    # versions, GPUs, what the scheduler granted (the environment record)
    environment = record_environment(callback.writer, run_dir, job_id)

    try:
        spec, config, train_kwargs = _prepare(run_dir, resume=job.checkpoint_path is not None)
    except BaseException as exc:
        callback.record_failure(exc)
        raise

    from hpc_runner.node.preview import preview_callback
    from hpc_runner.node.training import train_with_status

    preview = preview_callback(spec, run_dir, train_kwargs, callback)
    careamist = train_with_status(
        status_path,
        config=config,
        checkpoint_path=job.checkpoint_path,
        work_dir=run_dir / WORK_DIR,
        attempt=job.attempt,
        job=job_id,
        status_callback=callback,
        callbacks=[requeue_callback(signals), *([preview] if preview else [])],
        enable_progress_bar=False,
        monitor_interval_s=spec.monitor.interval_s,
        environment=environment,
        **train_kwargs,
    )
    if signals.requeue_pending:
        signals.requeue()  # exits the process when submitit requeues
        return {"run_dir": str(run_dir), "attempt": job.attempt, "state": "NOT_REQUEUED"}
    state = TrainingState.STOPPED if callback.stop_requested else TrainingState.DONE
    if spec.ground_truth and state is TrainingState.DONE:
        _report_psnr(careamist, spec, train_kwargs, callback)
    location = callback.model_location(careamist.trainer)
    if spec.after is not None and state is TrainingState.DONE:
        from hpc_runner.node.after import run_after

        location = run_after(careamist, spec, run_dir, callback, location)
    return {
        "run_dir": str(run_dir),
        "attempt": job.attempt,
        "state": state.name,
        "checkpoint": location.checkpoint if location else None,
        "predictions": location.predictions if location else None,
        "bmz_archive": location.bmz_archive if location else None,
    }


def _prepare(run_dir: Path, *, resume: bool) -> tuple[Any, Any, dict[str, Any]]:
    """The run's spec, its careamics configuration (None when resuming) and the data."""
    from hpc_runner.data.train_arguments import training_arguments
    from hpc_runner.spec.job import load_run_spec

    spec = load_run_spec(run_dir)
    careamics = limit_workers(spec.careamics)
    train_kwargs = training_arguments(spec.data, careamics)
    config = None
    if not resume:  # a checkpoint carries its own configuration
        from careamics.config.factories.config_discriminators import instantiate_config

        config = instantiate_config(careamics)
    return spec, config, train_kwargs


def _report_psnr(careamist: Any, spec: Any, train_kwargs: dict[str, Any], callback: Any) -> None:
    """PSNR of the noisy training image and of its prediction against the ground truth.

    A failure here is reported as a debug message only: the training itself succeeded.
    """
    from hpc_runner.data.sources import load_source, psnr

    try:
        noisy = train_kwargs["train_data"]
        if isinstance(noisy, (str, Path)):
            noisy = load_source(str(noisy))
        clean = load_source(spec.ground_truth)
        before = psnr(noisy, clean)
        predictions, _ = careamist.predict(pred_data=noisy, data_type="array")
        after = psnr(predictions[0], clean)
    except (ValueError, TypeError, OSError, RuntimeError, IndexError) as exc:
        callback.debug(f"PSNR not computed: {type(exc).__name__}: {exc}")
        return
    from hpc_runner.stream.records import EvaluationValue

    name = Path(spec.ground_truth).name
    callback.debug(f"PSNR before denoising: {before:.2f} dB (against {name})")
    callback.debug(f"PSNR after denoising: {after:.2f} dB (against {name})")
    callback.writer.write_extension(
        "evaluation", EvaluationValue(str(spec.ground_truth), before, after)
    )
