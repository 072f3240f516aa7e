"""The training status model, kept value for value with careamics-napari's ``training_status.py``.

The original lives in a napari plugin where the training thread and the UI share memory; here the
same model is rebuilt on the login node from a status file (see :mod:`hpc_runner.stream.records`).
That is why the module has no careamics import: a ``CAREAMIST`` update carries a
:class:`~hpc_runner.stream.records.ModelLocation` instead of a live ``CAREamist`` object, and an
``EXCEPTION`` update carries a :class:`~hpc_runner.stream.records.RecordedException`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any, ClassVar

from psygnal import evented

if TYPE_CHECKING:
    from psygnal import SignalGroup, SignalInstance

    class TrainingStatusSignalGroup(SignalGroup):
        """Signals of :class:`TrainingStatus`, one per field (emitted as ``(new, old)``)."""

        max_epochs: SignalInstance
        max_batches: SignalInstance
        epoch_idx: SignalInstance
        batch_idx: SignalInstance
        loss: SignalInstance
        val_loss: SignalInstance
        state: SignalInstance


class TrainUpdateType(str, Enum):  # noqa: UP042 - as the original: str() gives the member name
    """Kind of a training update; the value names the :class:`TrainingStatus` field it sets."""

    MAX_EPOCH = "max_epochs"
    EPOCH = "epoch_idx"
    MAX_BATCH = "max_batches"
    BATCH = "batch_idx"
    LOSS = "loss"
    VAL_LOSS = "val_loss"
    STATE = "state"
    CAREAMIST = "careamist"
    DEBUG = "debug message"
    EXCEPTION = "exception"


class TrainingState(IntEnum):
    """Life cycle of one training."""

    IDLE = 0
    TRAINING = 1
    DONE = 2
    STOPPED = 3
    CRASHED = 4


#: Updates that :meth:`TrainingStatus.update` ignores, as in the original.
NON_FIELD_UPDATES = frozenset(
    {TrainUpdateType.CAREAMIST, TrainUpdateType.EXCEPTION, TrainUpdateType.DEBUG}
)


@dataclass
class TrainUpdate:
    """One update from a training: its type and the value it carries.

    ``value`` is an ``int`` (epochs, batches), a ``float`` (losses), a :class:`TrainingState`, a
    ``str`` (debug messages), a :class:`~hpc_runner.stream.records.ModelLocation` or an exception.
    """

    type: TrainUpdateType
    value: Any = None


@evented
@dataclass
class TrainingStatus:
    """Status of one training; listeners connect per field, e.g. ``status.events.loss.connect``.

    Fields keep the original's defaults (-1 for unknown numbers, ``IDLE`` for the state), so code
    written against careamics-napari reads this model unchanged.
    """

    if TYPE_CHECKING:
        events: ClassVar[TrainingStatusSignalGroup]  # ClassVar: not a dataclass field

    max_epochs: int = -1
    max_batches: int = -1
    epoch_idx: int = -1
    batch_idx: int = -1
    loss: float = -1
    val_loss: float = -1
    state: TrainingState = TrainingState.IDLE

    def update(self, new_update: TrainUpdate) -> None:
        """Set the field named by the update's type; CAREAMIST, EXCEPTION and DEBUG are ignored.

        Parameters
        ----------
        new_update : TrainUpdate
            Update to apply.
        """
        if new_update.type not in NON_FIELD_UPDATES:
            setattr(self, new_update.type.value, new_update.value)
