"""Fold a run's records into its :class:`TrainingStatus` plus what a UI needs beside it.

The fold keeps :meth:`TrainingStatus.update` semantics (the last value of each type wins) but sets
each status field once per batch of records instead of once per record, so a replay of a
million-record file emits a handful of psygnal events instead of a million, and a flood of
appends is coalesced for free.

One departure from "the last value wins": a state, an exception, a step of progress (epoch,
batch, loss, val_loss, their totals), a preview, an environment or an evaluation written by an
attempt older than the newest one seen is passed over. An older attempt writes late only when
its process outlived its requeue (a node slow to kill it, a shared filesystem flushing late); its
DONE or CRASHED is not the run's, which goes on in the newer attempt, and neither are its epoch 7
and its loss while the newer attempt trains its epoch 1, its picture, its time limit, or the PSNR
of its model, which the newer attempt trains on from.
"""

from __future__ import annotations

import math
import os
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field, fields
from typing import Any

from hpc_runner.stream.files import reason_of
from hpc_runner.stream.records import (
    STATE_BY_NAME,
    BatchRecord,
    CareamistRecord,
    DebugRecord,
    EnvironmentRecord,
    EpochRecord,
    EvaluationRecord,
    EvaluationValue,
    ExceptionRecord,
    LossRecord,
    MaxBatchesRecord,
    MaxEpochsRecord,
    ModelLocation,
    PreviewRecord,
    PreviewValue,
    Record,
    RecordedException,
    StateRecord,
    SystemRecord,
    ValLossRecord,
)
from hpc_runner.stream.resources import Resources
from hpc_runner.stream.status import TrainingState, TrainingStatus
from hpc_runner.stream.system_values import EnvironmentValue
from hpc_runner.stream.tail import StatusTail, TailBatch
from hpc_runner.stream.text import path_text

_STATUS_FIELDS = ("max_epochs", "max_batches", "epoch_idx", "batch_idx", "loss", "val_loss")

#: Records of what one attempt does: one of an attempt older than the newest is passed over
#: (states and exceptions too, each by its own rule below; see the module doc).
_OF_THE_ATTEMPT = frozenset(
    {
        MaxEpochsRecord,
        MaxBatchesRecord,
        EpochRecord,
        BatchRecord,
        LossRecord,
        ValLossRecord,
        PreviewRecord,
        EnvironmentRecord,
        EvaluationRecord,
    }
)


@dataclass
class RunState:
    """Everything known about one run from its status file.

    Attributes
    ----------
    status : TrainingStatus
        The evented status, as careamics-napari would have it.
    losses : array
        Training loss of every step, in file order (NaN where the loss was not finite).
    val_losses : list of (epoch, val_loss)
        One entry per validation.
    exception : RecordedException | None
        The last exception the newest attempt recorded: the first record of a new attempt
        clears it, so that a run resumed after a crash is not stopped or finished "because
        of" the crash before.
    model : ModelLocation | None
        Where the trained model lives, once recorded.
    model_attempt : int
        The attempt that recorded ``model``: a newer attempt may have written newer
        checkpoints since (see :func:`hpc_runner.watch.report.run_summary`).
    attempt : int
        Highest attempt seen (0 = first run, +1 per requeue or resume).
    state_attempt : int
        The attempt that wrote the last state record: a final state of an earlier attempt says
        nothing about the job that runs now (see :mod:`hpc_runner.control.phase`).
    evaluation : EvaluationValue | None
        The trained model's PSNR against the spec's ground truth, once measured.
    environment : EnvironmentValue | None
        What the newest attempt runs with and was granted (versions, GPUs, time limit).
    resources : Resources
        The ``system`` samples folded: latest values, peaks, bounded history, rate.
    preview : PreviewValue | None
        The newest preview image written during training (:mod:`hpc_runner.stream.previews`).
    preview_epochs, preview_psnrs : array
        Every preview record's epoch and crop PSNR (NaN where none), in file order: 16 bytes a
        preview; :func:`hpc_runner.stream.previews.preview_history` makes the curve of them.
    longest_step_gap : float
        The longest time between two batch records of the newest attempt (validations and
        checkpoint saves included): how long this run's silence is still normal.
    skipped : Counter
        Lines not applied, by reason (see :data:`hpc_runner.stream.records.SKIP_REASONS`).
    error : str | None
        Why the status file could not be read the last time it was tried (it is not a regular
        file, a symlink loop, no permission), else None. What was read before is kept.
    """

    status: TrainingStatus = field(default_factory=TrainingStatus)
    losses: array[float] = field(default_factory=lambda: array("d"))
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    debug: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=100))
    exception: RecordedException | None = None
    model: ModelLocation | None = None
    model_attempt: int = 0
    attempt: int = 0
    state_attempt: int = 0
    evaluation: EvaluationValue | None = None
    environment: EnvironmentValue | None = None
    resources: Resources = field(default_factory=Resources)
    preview: PreviewValue | None = None
    preview_epochs: array[int] = field(default_factory=lambda: array("q"))
    preview_psnrs: array[float] = field(default_factory=lambda: array("d"))
    longest_step_gap: float = 0.0
    last_batch: tuple[int, float] | None = None  # (attempt, time) of the newest batch record
    job: str | None = None
    host: str | None = None
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    first_time: float | None = None
    last_time: float | None = None
    training_since: float | None = None
    error: str | None = None

    @property
    def skipped_lines(self) -> int:
        return sum(self.skipped.values())

    @property
    def best_val_loss(self) -> float | None:
        finite = [value for _, value in self.val_losses if math.isfinite(value)]
        return min(finite) if finite else None

    def apply_batch(self, batch: TailBatch) -> None:
        """Apply what a :class:`StatusTail` read; a reset starts the run's history afresh (from
        the batch's ``state`` when it carries one, see :class:`~hpc_runner.stream.tail.TailBatch`).
        """
        if isinstance(batch.state, RunState):
            self.adopt(batch.state)
        elif batch.reset:
            self.clear()
        self.skipped.update(batch.skipped)
        self.apply(batch.records)

    def clear(self) -> None:
        """Forget everything read so far (the file was replaced); the status returns to defaults."""
        self.adopt(RunState())

    def adopt(self, other: RunState) -> None:
        """Take every field of ``other`` (which must not be used afterwards); the evented status
        object stays this one, so its listeners see each changed field once."""
        for item in fields(self):
            if item.name != "status":
                setattr(self, item.name, getattr(other, item.name))
        status = other.status
        self._set_status({name: getattr(status, name) for name in _STATUS_FIELDS}, status.state)

    def apply(self, records: list[Record]) -> None:
        """Fold decoded records (:func:`hpc_runner.stream.records.decode_lines`) into this state."""
        if not records:
            return
        values: dict[str, Any] = {}
        state: TrainingState | None = None
        losses_append = self.losses.append
        attempt = self.attempt
        nan = math.nan
        gap_attempt, gap_time = self.last_batch or (-1, 0.0)
        longest_gap = self.longest_step_gap
        for record in records:
            cls, value = type(record), record.value
            if record.attempt > attempt:  # a new attempt: what ended the one before is past
                attempt = record.attempt
                self.exception = None
            elif record.attempt < attempt and cls in _OF_THE_ATTEMPT:
                continue  # late, from an attempt a newer one replaced (see the module doc)
            if cls is LossRecord:
                value = nan if value is None else value
                losses_append(value)
                values["loss"] = value
            elif cls is BatchRecord:
                values["batch_idx"] = value
                if record.attempt == gap_attempt:
                    if record.t - gap_time > longest_gap:
                        longest_gap = record.t - gap_time
                elif record.attempt > gap_attempt:
                    longest_gap = 0.0  # a new attempt: its own pace
                gap_attempt, gap_time = record.attempt, record.t
            elif cls is EpochRecord:
                values["epoch_idx"] = value
            elif cls is ValLossRecord:
                value = nan if value is None else value
                values["val_loss"] = value
                self.val_losses.append((values.get("epoch_idx", self.status.epoch_idx), value))
            elif cls is StateRecord:
                if record.attempt < attempt:
                    continue  # late, from an attempt a newer one replaced (see the module doc)
                state = STATE_BY_NAME[value] if type(value) is str else TrainingState(value)
                self.state_attempt = record.attempt
                if state is TrainingState.TRAINING:
                    self.training_since = record.t
            elif cls is DebugRecord:
                self.debug.append((record.t, value))
            elif cls is ExceptionRecord:
                if record.attempt == attempt:
                    self.exception = RecordedException(value.type, value.message, value.traceback)
            elif cls is CareamistRecord:
                if self.model is None or record.attempt >= self.model_attempt:
                    self.model, self.model_attempt = value, record.attempt
            elif cls is EvaluationRecord:
                self.evaluation = value
            elif cls is SystemRecord:
                self.resources.add(value.time or record.t, record.attempt, value)
            elif cls is EnvironmentRecord:
                self.environment = value
                self.resources.attempt_started(record.attempt, value.started)
            elif cls is PreviewRecord:
                self.preview = value
                self.preview_epochs.append(value.epoch)
                self.preview_psnrs.append(nan if value.psnr is None else value.psnr)
            else:  # max_epochs, max_batches
                values[record.kind.value] = value
        last = records[-1]
        self.attempt = attempt
        self.longest_step_gap = longest_gap
        if gap_attempt >= 0:
            self.last_batch = (gap_attempt, gap_time)
        self.records += len(records)
        # The newest record that names them (not merely the last one of this batch: the result
        # must not depend on how the file was sliced, a cached state and a replay slice apart).
        self.job = next((r.job for r in reversed(records) if r.job), None) or self.job
        self.host = next((r.host for r in reversed(records) if r.host), None) or self.host
        if self.first_time is None:
            self.first_time = records[0].t
        self.last_time = last.t
        self._set_status(values, state)

    def _set_status(self, values: dict[str, Any], state: TrainingState | None) -> None:
        status = self.status
        for name, value in values.items():
            setattr(status, name, value)
        if state is not None:
            status.state = state


def replay(path: str | os.PathLike[str]) -> RunState:
    """Fold a whole status file into a fresh :class:`RunState`."""
    run = RunState()
    follow(StatusTail(path), run)
    return run


def follow(tail: StatusTail, run: RunState) -> bool:
    """Apply everything the tail has now (in slices if large); True if anything changed.

    A status file that cannot be read sets ``run.error`` instead of raising: one bad run must
    not stop whoever reads all the others.
    """
    changed = False
    while True:
        try:
            batch = tail.read()
        except OSError as exc:
            error = f"{path_text(tail.path)}: {reason_of(exc)}"
            changed, run.error = changed or run.error != error, error
            return changed
        if run.error is not None:
            run.error, changed = None, True
        if batch.records or batch.skipped or batch.reset:
            run.apply_batch(batch)
            changed = True
        if not tail.pending:
            return changed
