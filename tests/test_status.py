"""The status model behaves as careamics-napari's original does."""

from __future__ import annotations

import pytest

from hpc_runner.stream.records import ModelLocation, RecordedException
from hpc_runner.stream.status import TrainingState, TrainingStatus, TrainUpdate, TrainUpdateType


def test_enum_values_are_the_originals() -> None:
    assert [t.value for t in TrainUpdateType] == [
        "max_epochs",
        "epoch_idx",
        "max_batches",
        "batch_idx",
        "loss",
        "val_loss",
        "state",
        "careamist",
        "debug message",
        "exception",
    ]
    assert {s.name: s.value for s in TrainingState} == {
        "IDLE": 0,
        "TRAINING": 1,
        "DONE": 2,
        "STOPPED": 3,
        "CRASHED": 4,
    }


def test_defaults() -> None:
    status = TrainingStatus()
    assert (status.max_epochs, status.max_batches, status.epoch_idx, status.batch_idx) == (
        -1,
        -1,
        -1,
        -1,
    )
    assert (status.loss, status.val_loss, status.state) == (-1, -1, TrainingState.IDLE)
    assert TrainUpdate(TrainUpdateType.DEBUG).value is None


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (TrainUpdateType.MAX_EPOCH, 10),
        (TrainUpdateType.EPOCH, 3),
        (TrainUpdateType.MAX_BATCH, 7),
        (TrainUpdateType.BATCH, 2),
        (TrainUpdateType.LOSS, 0.5),
        (TrainUpdateType.VAL_LOSS, 0.25),
        (TrainUpdateType.STATE, TrainingState.DONE),
    ],
)
def test_update_sets_the_named_field_and_emits(kind: TrainUpdateType, value: object) -> None:
    status = TrainingStatus()
    seen: list[tuple[object, object]] = []
    getattr(status.events, kind.value).connect(lambda new, old: seen.append((new, old)))
    status.update(TrainUpdate(kind, value))
    assert getattr(status, kind.value) == value
    assert seen == [(value, TrainingStatus().__getattribute__(kind.value))]


@pytest.mark.parametrize(
    "update",
    [
        TrainUpdate(TrainUpdateType.CAREAMIST, ModelLocation(checkpoint="x.ckpt")),
        TrainUpdate(TrainUpdateType.EXCEPTION, RecordedException("ValueError", "bad")),
        TrainUpdate(TrainUpdateType.DEBUG, "hello"),
    ],
)
def test_update_ignores_non_field_updates(update: TrainUpdate) -> None:
    status = TrainingStatus()
    fired: list[object] = []
    status.events.connect(fired.append)
    status.update(update)
    assert status == TrainingStatus()
    assert fired == []
