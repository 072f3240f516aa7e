"""Signals on the node: requeue at a step boundary on USR2, note SIGTERM (node side).

submitit installs a USR2 handler that calls the job's ``checkpoint()``, requeues the job and
exits, all at once from wherever the training happens to be. Here the signal is only noted; the
Lightning callback from :func:`requeue_callback` saves a checkpoint at the next step boundary
(a consistent state: the optimizer step is complete), ends the fit without a final state, and
then :meth:`SignalState.requeue` runs submitit's original handler. If the signal arrives before
the fit started (careamics still loading data) the job is requeued at once; after the training
ended it is ignored (the job is about to finish anyway).

SIGTERM is only noted, as submitit intends: on a preemption USR2 follows; on ``scancel`` the job
is killed and the scheduler reports CANCELLED (``status`` shows the run CANCELLED). Lightning
installs its own SIGTERM handler when a fit begins, which would end the training at the next
step before USR2 could requeue it; the callback puts the noting handler back. A ``debug`` run
(inside ``hpc-runner submit``, no scheduler around) stops on SIGTERM instead, like on Ctrl+C.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hpc_runner.node.callback import StatusCallback
from hpc_runner.node.interrupts import take_interrupts
from hpc_runner.stream.status import TrainUpdateType

if TYPE_CHECKING:
    from lightning.pytorch import Callback, LightningModule, Trainer

#: Environment variable submitit reads to pick its preemption signal (USR2 by default).
PREEMPT_SIGNAL_ENV = "SUBMITIT_PREEMPT_SIGNAL"

#: Set by submitit's debug executor: the job runs inside the submitting process.
DEBUG_JOB_ENV = "SUBMITIT_DEBUG_JOB_ID"


class Terminated(KeyboardInterrupt):
    """SIGTERM in a debug run: handled like Ctrl+C (Lightning shuts down, the status callback
    records STOPPED with this message)."""


def preempt_signal() -> signal.Signals:
    """The signal submitit requeues on (``SIGUSR2`` unless ``SUBMITIT_PREEMPT_SIGNAL`` says)."""
    return signal.Signals[f"SIG{os.environ.get(PREEMPT_SIGNAL_ENV, 'USR2')}"]


class RequeuedJob(Protocol):
    """What the signal handling needs of the job (``NodeJob``): its attempt, and where to put
    the checkpoint its ``checkpoint()`` hook resumes from. A protocol, so that this module does
    not import the job module that imports it."""

    attempt: int
    requeue_checkpoint: str | None


class NodeStatusCallback(StatusCallback):
    """The status callback, told when the job is being requeued so that it records no failure.

    submitit ends a requeued process with ``sys.exit``; that ``SystemExit`` passing through the
    training is not a crash.
    """

    requeueing = False

    def record_failure(self, exception: BaseException) -> None:
        if self.requeueing and isinstance(exception, SystemExit):
            return
        super().record_failure(exception)

    def debug(self, message: str) -> None:
        """Write a debug message to the status file."""
        self.emit(TrainUpdateType.DEBUG, message)


class SignalState:
    """What the node's signal handlers saw, shared by the handlers, the callback and the job.

    Parameters
    ----------
    callback : NodeStatusCallback
        The run's status callback (debug messages, suppressing the final state on requeue).
    job : RequeuedJob
        The job whose ``checkpoint()`` submitit will call; it is told the saved checkpoint.
    """

    def __init__(self, callback: NodeStatusCallback, job: RequeuedJob) -> None:
        self.callback = callback
        self.job = job
        self.requeue_handler: Callable[..., Any] | int | None = None
        self.preempt_signum: int | None = None
        self.fit_active = False
        self.requeue_pending = False  # the fit ended at a step boundary; requeue follows
        self.sigterm_seen = False
        # A debug run trains inside `hpc-runner submit`: no scheduler sends USR2 after SIGTERM,
        # so SIGTERM must end it (`timeout 60 hpc-runner submit --cluster debug` ran 13 min).
        self.debug = DEBUG_JOB_ENV in os.environ
        self._saved: dict[int, Any] = {}

    def install(self) -> None:
        """Take over the preemption signal (keeping submitit's handler), note SIGTERM, and take
        SIGINT even where it was inherited ignored (:mod:`hpc_runner.node.interrupts`)."""
        signum = preempt_signal()
        self.requeue_handler = signal.getsignal(signum)
        self._saved = {
            signum: self.requeue_handler,
            signal.SIGTERM: signal.getsignal(signal.SIGTERM),
            signal.SIGINT: take_interrupts(),  # (what was found is put back at restore)
        }
        signal.signal(signum, self.on_preempt)
        signal.signal(signal.SIGTERM, self.on_sigterm)

    def restore(self) -> None:
        """Put back the handlers found at :meth:`install` (a job run inside another program)."""
        for signum, handler in self._saved.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._saved = {}

    def on_preempt(self, signum: int, frame: Any) -> None:
        if self.preempt_signum is not None:
            return
        self.preempt_signum = signum
        name = signal.Signals(signum).name
        if self.fit_active:
            self.callback.debug(
                f"{name} received (time limit or preemption): saving at the next step, "
                "then requeueing"
            )
        elif self.callback.finished:
            self.callback.debug(f"{name} received after the training ended: not requeued")
        else:
            self.callback.debug(f"{name} received before the training started: requeueing")
            self.requeue(signum)

    def on_sigterm(self, signum: int, frame: Any) -> None:
        if self.debug:  # the user's own terminal: SIGTERM ends the training, as it says
            self.callback.debug("SIGTERM received: stopping")
            raise Terminated("terminated by SIGTERM")
        if not self.sigterm_seen:
            self.sigterm_seen = True
            self.callback.debug("SIGTERM received (cancelled, preempted or at the time limit)")

    def requeue(self, signum: int | None = None) -> None:
        """Run submitit's handler: it calls ``NodeJob.checkpoint()``, requeues and exits."""
        handler = self.requeue_handler
        if not callable(handler):  # not under submitit (the Python API): nothing requeues
            self.callback.debug("not running under submitit: the run cannot be requeued")
            return
        self.callback.requeueing = True
        try:
            handler(signum or preempt_signal(), None)
        except SystemExit:
            raise
        except Exception as exc:  # "timed-out too many times", scontrol failing, ...
            self.callback.requeueing = False
            self.callback.finished = False
            self.callback.record_failure(exc)
            raise


def requeue_callback(state: SignalState) -> Callback:
    """A Lightning callback acting on a noted preemption signal at the next step boundary."""
    from lightning.pytorch import Callback

    class RequeueCallback(Callback):
        def _fit_begins(self) -> None:
            state.fit_active = True
            signal.signal(signal.SIGTERM, state.on_sigterm)  # undo Lightning's handler

        def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
            self._fit_begins()

        def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
            self._fit_begins()

        def on_train_batch_end(
            self,
            trainer: Trainer,
            pl_module: LightningModule,
            outputs: Any,
            batch: Any,
            batch_idx: int,
        ) -> None:
            self._act(trainer)

        def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
            if not trainer.sanity_checking:
                self._act(trainer)

        def on_exception(
            self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
        ) -> None:
            state.fit_active = False

        def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
            state.fit_active = False

        def _act(self, trainer: Trainer) -> None:
            if state.preempt_signum is None or state.requeue_pending:
                return
            state.requeue_pending = True
            job = state.job
            name = f"requeue-attempt{job.attempt}.ckpt"
            path = Path(trainer.default_root_dir) / "checkpoints" / name
            trainer.save_checkpoint(path)
            job.requeue_checkpoint = str(path)
            state.callback.debug(
                f"saved {name} at epoch {trainer.current_epoch}, step {trainer.global_step}; "
                f"requeueing as attempt {job.attempt + 1}"
            )
            state.callback.finished = True  # no DONE/STOPPED: the training goes on elsewhere
            trainer.should_stop = True
            trainer.limit_val_batches = 0

    return RequeueCallback()
