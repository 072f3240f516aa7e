"""A Lightning callback that streams a training's progress into ``status.jsonl`` (node side).

It reports what careamics-napari's ``UpdaterCallBack`` puts into its ``TrainingStatus``, but through
:class:`~hpc_runner.stream.writer.StatusWriter`, so the login node can follow the training from the
file alone. It also implements the graceful stop: a ``STOP`` file in the run directory ends the
training after the current batch, as ``CAREamist.stop_training()`` would, and Lightning's
``ModelCheckpoint`` still writes the last checkpoint.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from hpc_runner.stream.records import ModelLocation
from hpc_runner.stream.runs import STOP_FILE
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter


class StatusCallback(Callback):
    """Append every training update to a status file.

    Parameters
    ----------
    status_path : str | os.PathLike
        The run's ``status.jsonl``.
    attempt : int
        0 for the first run of a job, +1 per requeue or resume.
    job : str | None
        Scheduler job id to record.
    stop_file : str | os.PathLike | None
        Whose existence requests a graceful stop; default ``STOP`` beside the status file.
    stop_check_interval : float
        Seconds between two looks for the stop file (a ``stat`` per batch would cost on NFS).
    """

    def __init__(
        self,
        status_path: str | os.PathLike[str],
        *,
        attempt: int = 0,
        job: str | None = None,
        stop_file: str | os.PathLike[str] | None = None,
        stop_check_interval: float = 1.0,
    ) -> None:
        self.writer = StatusWriter(status_path, attempt=attempt, job=job)
        self.stop_file = Path(stop_file) if stop_file else Path(status_path).parent / STOP_FILE
        self.stop_check_interval = stop_check_interval
        self.stop_requested = False
        self.finished = False  # a final state (DONE, STOPPED, CRASHED) was written
        self._train_ended = False
        self._last_saved: tuple[int, int] | None = None
        self._next_stop_check = 0.0

    def emit(self, kind: TrainUpdateType, value: Any = None) -> None:
        """Write one update (no-op on ranks other than 0)."""
        self.writer.write(TrainUpdate(kind, value))

    def record_failure(self, exception: BaseException) -> None:
        """Write the exception and final state once, whichever of hook or wrapper sees it first."""
        if self.finished:
            return
        self.finished = True
        interrupted = isinstance(exception, KeyboardInterrupt)
        self.emit(TrainUpdateType.EXCEPTION, exception)
        state = TrainingState.STOPPED if interrupted else TrainingState.CRASHED
        self.emit(TrainUpdateType.STATE, state)
        self.writer.close()

    # -- Lightning hooks -------------------------------------------------------------------

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.writer.enabled = trainer.is_global_zero

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.finished = self._train_ended = False
        self.emit(TrainUpdateType.MAX_EPOCH, trainer.max_epochs)
        self.emit(TrainUpdateType.MAX_BATCH, int(trainer.num_training_batches))
        if trainer.current_epoch > 0 or trainer.global_step > 0:
            self.emit(
                TrainUpdateType.DEBUG,
                f"resumed at epoch {trainer.current_epoch}, step {trainer.global_step}",
            )
        self.emit(TrainUpdateType.STATE, TrainingState.TRAINING)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.emit(TrainUpdateType.EPOCH, trainer.current_epoch)

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.emit(TrainUpdateType.BATCH, batch_idx)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self.emit(TrainUpdateType.LOSS, float(loss))
        self._check_stop_file(trainer)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        val_loss = trainer.callback_metrics.get("val_loss")
        if val_loss is not None:
            self.emit(TrainUpdateType.VAL_LOSS, float(val_loss))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.writer.sync()

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # ModelCheckpoint saves the best-k and the last checkpoint of one step separately.
        epoch, step = trainer.current_epoch, trainer.global_step
        if (epoch, step) != self._last_saved:
            self._last_saved = (epoch, step)
            self.emit(TrainUpdateType.DEBUG, f"checkpoint saved at epoch {epoch}, step {step}")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning runs ModelCheckpoint's own on_train_end (which may write the last
        # checkpoint) after this one, so the model location and final state wait for teardown.
        self._train_ended = True
        if self.stop_requested:
            self._save_last_at_stop(trainer)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or not self._train_ended or self.finished:
            return
        location = self.model_location(trainer)
        if location is not None:
            self.emit(TrainUpdateType.CAREAMIST, location)
        self.finished = True
        state = TrainingState.STOPPED if self.stop_requested else TrainingState.DONE
        self.emit(TrainUpdateType.STATE, state)
        self.writer.close()

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self.record_failure(exception)

    # -- helpers ---------------------------------------------------------------------------

    def _check_stop_file(self, trainer: Trainer) -> None:
        if self.stop_requested:
            return
        now = time.monotonic()
        if now < self._next_stop_check:
            return
        self._next_stop_check = now + self.stop_check_interval
        if self.stop_file.exists():
            self.request_stop(trainer, f"stop requested ({self.stop_file.name} file found)")

    def request_stop(self, trainer: Trainer, reason: str = "stop requested") -> None:
        """End training after the current batch, skipping validation, as careamics does."""
        self.stop_requested = True
        trainer.should_stop = True
        trainer.limit_val_batches = 0
        self.emit(TrainUpdateType.DEBUG, reason)

    def _save_last_at_stop(self, trainer: Trainer) -> None:
        """Bring the last checkpoint up to the step where the stop happened.

        ModelCheckpoint writes ``<exp>_last.ckpt`` at a stop only if it never wrote one before;
        otherwise the steps since the last epoch-end save would be lost to a resume.
        """
        last = getattr(trainer.checkpoint_callback, "last_model_path", "")
        saved_step = self._last_saved[1] if self._last_saved else None
        if last and saved_step != trainer.global_step:
            trainer.save_checkpoint(last)

    @staticmethod
    def model_location(trainer: Trainer) -> ModelLocation | None:
        """The last checkpoint careamics' ModelCheckpoint wrote and the lowest-val_loss one
        :class:`~hpc_runner.node.best_checkpoint.BestCheckpoint` kept (with its val_loss and
        epoch); without that callback, careamics' own best of the epochs it saved."""
        from hpc_runner.node.best_checkpoint import BestCheckpoint

        checkpoint = trainer.checkpoint_callback
        last = getattr(checkpoint, "last_model_path", "") or None
        callbacks = getattr(trainer, "callbacks", [])  # set by Lightning at run time
        kept = [c for c in callbacks if isinstance(c, BestCheckpoint) and c.saved]
        best_path: str | None = getattr(checkpoint, "best_model_path", "") or None
        best_loss: float | None = None
        best_epoch: int | None = None
        if kept:
            best = kept[0]
            best_path, best_loss, best_epoch = str(best.path), best.best_val_loss, best.best_epoch
        if last is None and best_path is None:
            return None
        return ModelLocation(
            checkpoint=last,
            best_checkpoint=best_path,
            work_dir=str(trainer.default_root_dir),
            best_val_loss=best_loss,
            best_epoch=best_epoch,
        )
