"""Train a CAREamist with its status streamed to a file, failures included (node side).

careamics raises some errors (bad axes, missing targets, unreadable data) in ``CAREamist(...)`` or
``CAREamist.train()`` before Lightning's ``fit`` starts, where no callback hook runs. This wrapper
catches those too, so that every training ends in the status file with DONE, STOPPED or CRASHED.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpc_runner.node.best_checkpoint import BEST_DIR, BestCheckpoint
from hpc_runner.node.callback import StatusCallback

if TYPE_CHECKING:
    from careamics import CAREamist
    from lightning.pytorch import Callback

    from hpc_runner.stream.system_values import EnvironmentValue

#: Seconds between two resource samples unless told otherwise (the spec's default too).
DEFAULT_MONITOR_INTERVAL_S = 10.0


def train_with_status(
    status_path: str | os.PathLike[str],
    *,
    config: Any = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    attempt: int = 0,
    job: str | None = None,
    callbacks: Sequence[Callback] = (),
    enable_progress_bar: bool = False,
    status_callback: StatusCallback | None = None,
    max_epochs: int | None = None,
    monitor_interval_s: float = DEFAULT_MONITOR_INTERVAL_S,
    environment: EnvironmentValue | None = None,
    **train_kwargs: Any,
) -> CAREamist:
    """Build a ``CAREamist`` and train it, recording every update and any failure.

    Besides careamics' own checkpoints, the checkpoint of the lowest validation loss is kept
    (:class:`~hpc_runner.node.best_checkpoint.BestCheckpoint`) and recorded as the best model.

    Parameters
    ----------
    status_path : str | os.PathLike
        The run's ``status.jsonl``.
    config : Configuration | path, optional
        careamics configuration (or its YAML file) for a new training.
    checkpoint_path : path, optional
        Resume from this checkpoint instead (mutually exclusive with ``config``).
    work_dir : path, optional
        careamics' work directory (checkpoints, logs); default ``work/`` beside the status file.
    attempt, job
        Recorded in every status line (see :class:`~hpc_runner.stream.writer.StatusWriter`).
    callbacks : sequence of Lightning callbacks
        Further callbacks for the trainer.
    enable_progress_bar : bool
        tqdm output is noise in a batch job's log, hence off by default.
    status_callback : StatusCallback, optional
        A ready callback (e.g. one the caller wants to keep a handle on).
    max_epochs : int, optional
        Override the configured number of epochs (e.g. to extend a resumed training).
    monitor_interval_s : float
        Seconds between two ``system`` samples (GPU, CPU, memory, throughput; see
        :mod:`hpc_runner.node.monitor`); 0 turns sampling off.
    environment : EnvironmentValue, optional
        The attempt's ``environment`` record: with a time limit, the monitor warns when the
        training will not finish within it.
    **train_kwargs
        Passed to ``CAREamist.train`` (``train_data``, ``val_data``, ...).

    Returns
    -------
    CAREamist
        The trained model.

    Raises
    ------
    BaseException
        Whatever the training raised, after it was recorded.
    """
    from careamics import CAREamist

    callback = status_callback or StatusCallback(status_path, attempt=attempt, job=job)
    if work_dir is None:
        work_dir = Path(status_path).parent / "work"
    best = BestCheckpoint(Path(work_dir) / "checkpoints" / BEST_DIR)
    extra: list[Callback] = []
    if monitor_interval_s > 0:
        from hpc_runner.node.monitor import ResourceMonitor

        extra.append(ResourceMonitor(callback, monitor_interval_s, environment=environment))
    try:
        careamist = CAREamist(
            Path(config) if isinstance(config, os.PathLike) else config,
            checkpoint_path=Path(checkpoint_path) if checkpoint_path is not None else None,
            work_dir=Path(work_dir),
            callbacks=[callback, best, *callbacks, *extra],
            enable_progress_bar=enable_progress_bar,
        )
        if max_epochs is not None:
            careamist.trainer.fit_loop.max_epochs = max_epochs
        careamist.train(**train_kwargs)
    except BaseException as exception:
        callback.record_failure(exception)
        raise
    return careamist
