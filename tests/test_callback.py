"""StatusCallback on real (tiny) careamics trainings on the CPU."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from lightning.pytorch import Callback

from hpc_runner.node.callback import StatusCallback
from hpc_runner.node.training import train_with_status
from hpc_runner.stream.run_state import replay
from hpc_runner.stream.runs import STOP_FILE
from hpc_runner.stream.status import TrainingState
from tests.tiny import tiny_config, tiny_image

pytestmark = pytest.mark.training


class Spy(Callback):
    """Records what the trainer itself saw, to compare with the status file."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.val_losses: list[float] = []
        self.last_batch = -1
        self.last_epoch = -1

    def on_train_batch_end(
        self, trainer: Any, module: Any, outputs: Any, batch: Any, idx: int
    ) -> None:
        self.losses.append(float(outputs["loss"]))
        self.last_batch, self.last_epoch = idx, trainer.current_epoch

    def on_validation_epoch_end(self, trainer: Any, module: Any) -> None:
        if not trainer.sanity_checking:
            self.val_losses.append(float(trainer.callback_metrics["val_loss"]))


class Failing(Callback):
    """Raises inside `fit`, where Lightning calls the callbacks' on_exception."""

    def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
        if trainer.current_epoch == 1:
            raise RuntimeError("simulated CUDA error: device-side assert triggered")


def test_status_file_replays_to_the_trainers_own_values(tmp_path: Path) -> None:
    spy = Spy()
    careamist = train_with_status(
        tmp_path / "status.jsonl", config=tiny_config(), train_data=tiny_image(), callbacks=[spy]
    )
    run = replay(tmp_path / "status.jsonl")
    status, trainer = run.status, careamist.trainer

    assert status.state is TrainingState.DONE
    assert status.max_epochs == trainer.max_epochs == 2
    assert status.max_batches == trainer.num_training_batches == 7
    assert (status.epoch_idx, status.batch_idx) == (spy.last_epoch, spy.last_batch) == (1, 6)
    assert list(run.losses) == spy.losses and status.loss == spy.losses[-1]
    assert [value for _, value in run.val_losses] == spy.val_losses
    assert status.val_loss == float(trainer.callback_metrics["val_loss"])
    assert [epoch for epoch, _ in run.val_losses] == [0, 1]  # the sanity check is not recorded
    assert run.skipped_lines == 0 and run.exception is None

    assert run.model is not None and run.model.checkpoint is not None
    assert Path(run.model.checkpoint).is_file()
    assert Path(run.model.checkpoint).is_relative_to(tmp_path / "work")
    assert any(message.startswith("checkpoint saved") for _, message in run.debug)


def test_one_message_per_checkpointed_step(tmp_path: Path) -> None:
    """careamics' ModelCheckpoint saves every 10 epochs the best-k and the last checkpoint."""
    status_path = tmp_path / "status.jsonl"
    train_with_status(status_path, config=tiny_config(num_epochs=10), train_data=tiny_image())
    saved = [m for _, m in replay(status_path).debug if m.startswith("checkpoint saved")]
    assert "checkpoint saved at epoch 9, step 70" in saved
    assert len(saved) == len(set(saved))


def test_callback_does_not_change_the_training(tmp_path: Path) -> None:
    with_status, without = Spy(), Spy()
    train_with_status(
        tmp_path / "a" / "status.jsonl",
        config=tiny_config(),
        train_data=tiny_image(),
        callbacks=[with_status],
    )
    from careamics import CAREamist

    plain = CAREamist(
        tiny_config(), work_dir=tmp_path / "b", callbacks=[without], enable_progress_bar=False
    )
    plain.train(train_data=tiny_image())
    assert len(without.losses) == 14
    assert with_status.losses == without.losses
    assert with_status.val_losses == without.val_losses


@pytest.mark.parametrize("stop_epoch", [1, 11], ids=["before-any-save", "after-a-periodic-save"])
def test_stop_file_stops_gracefully_with_a_last_checkpoint(tmp_path: Path, stop_epoch: int) -> None:
    """careamics saves every 10 epochs; a stop in between must not lose the steps since."""
    status_path = tmp_path / "status.jsonl"

    def stop_after_first_epoch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if status_path.exists() and replay(status_path).status.epoch_idx >= stop_epoch:
                (tmp_path / STOP_FILE).touch()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=stop_after_first_epoch, daemon=True)
    watcher.start()
    callback = StatusCallback(status_path, stop_check_interval=0.0)  # a look after every batch
    train_with_status(
        status_path,
        config=tiny_config(num_epochs=200),
        train_data=tiny_image(),
        status_callback=callback,
    )
    watcher.join()

    run = replay(status_path)
    assert run.status.state is TrainingState.STOPPED
    assert stop_epoch <= run.status.epoch_idx < stop_epoch + 5
    messages = [message for _, message in run.debug]
    assert any("stop requested" in message for message in messages)
    assert run.model is not None and run.model.checkpoint is not None
    last = Path(run.model.checkpoint)
    assert last.name == "tiny_last.ckpt" and last.is_file()
    import torch

    # the last checkpoint holds every step trained, also those after the last epoch-end save
    assert torch.load(last, weights_only=False)["global_step"] == len(run.losses)


def test_error_before_fit_is_recorded_as_crashed(tmp_path: Path) -> None:
    status_path = tmp_path / "status.jsonl"
    with pytest.raises(ValueError) as raised:  # axes YX, but the data has three dimensions
        train_with_status(status_path, config=tiny_config(), train_data=tiny_image((4, 64, 64)))
    run = replay(status_path)
    assert run.status.state is TrainingState.CRASHED
    assert run.exception is not None
    assert run.exception.exc_type == type(raised.value).__name__
    assert run.exception.message == str(raised.value)
    assert "Traceback" in run.exception.traceback


def test_error_inside_fit_is_recorded_as_crashed(tmp_path: Path) -> None:
    status_path = tmp_path / "status.jsonl"
    with pytest.raises(RuntimeError, match="device-side assert"):
        train_with_status(
            status_path, config=tiny_config(), train_data=tiny_image(), callbacks=[Failing()]
        )
    run = replay(status_path)
    assert run.status.state is TrainingState.CRASHED
    assert run.status.epoch_idx == 1 and len(run.losses) == 7  # died as epoch 1 began
    assert run.exception is not None and run.exception.exc_type == "RuntimeError"
    states = [line for line in status_path.read_text().splitlines() if '"type":"state"' in line]
    assert len(states) == 2  # TRAINING, then CRASHED exactly once (hook and wrapper both saw it)


def test_resume_from_checkpoint_continues_epochs(tmp_path: Path) -> None:
    status_path = tmp_path / "status.jsonl"
    train_with_status(status_path, config=tiny_config(), train_data=tiny_image())
    first = replay(status_path)
    assert first.model is not None and first.model.checkpoint is not None
    train_with_status(
        status_path,
        checkpoint_path=first.model.checkpoint,
        attempt=1,
        max_epochs=4,
        train_data=tiny_image(),
    )
    run = replay(status_path)
    assert (run.status.state, run.status.max_epochs, run.status.epoch_idx) == (
        TrainingState.DONE,
        4,
        3,
    )
    assert run.attempt == 1 and len(run.losses) == 28
    assert any(message.startswith("resumed at epoch 2") for _, message in run.debug)
