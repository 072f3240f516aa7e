"""The model named best is the one of the lowest validation loss, not the best of the saved epochs.

careamics' presets keep a checkpoint only every N epochs, so its own "best" is the best of those;
hpc-runner keeps the checkpoint of every new lowest val_loss (real tiny training, CPU).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hpc_runner.stream.run_state import replay
from tests.tiny import tiny_config, tiny_image

pytestmark = pytest.mark.training


def test_the_best_checkpoint_holds_the_epoch_of_the_lowest_val_loss(tmp_path: Path) -> None:
    import torch

    from hpc_runner import train_with_status

    config = tiny_config(
        num_epochs=12,
        checkpoint_params={"every_n_epochs": 5, "save_top_k": -1, "save_last": True},
    )
    status = tmp_path / "status.jsonl"
    careamist = train_with_status(
        status, config=config, train_data=tiny_image(seed=3), work_dir=tmp_path
    )

    run = replay(status)
    losses = [value for _, value in run.val_losses]
    assert len(losses) == 12 and all(math.isfinite(value) for value in losses)
    best_epoch = min(range(12), key=losses.__getitem__)
    model = run.model
    assert model is not None and model.best_checkpoint is not None
    assert (model.best_epoch, model.best_val_loss) == (
        best_epoch,
        pytest.approx(losses[best_epoch]),
    )

    saved = torch.load(model.best_checkpoint, map_location="cpu", weights_only=False)
    assert saved["epoch"] == best_epoch
    state = next(value for key, value in saved["callbacks"].items() if "BestCheckpoint" in key)
    assert state["best_val_loss"] == pytest.approx(losses[best_epoch])
    assert run.best_val_loss == pytest.approx(losses[best_epoch])
    # the case this is about: careamics' own saves (every 5 epochs) missed the best epoch, so
    # its "best" is another epoch (with this seed: epoch 3 is best, careamics names epoch 9)
    own = torch.load(careamist.trainer.checkpoint_callback.best_model_path, weights_only=False)
    assert own["epoch"] != best_epoch
    assert Path(model.best_checkpoint).parent.name == "best"


def test_a_restart_with_nothing_to_resume_keeps_the_better_earlier_best(tmp_path: Path) -> None:
    """A requeue before careamics' first save trains from scratch, and its first validation
    replaced the run's best.ckpt (an earlier attempt's better model) with a worse one. That the
    restart does worse cannot be made to happen on cue, so the earlier best's stored val_loss
    is set below anything a training reaches (1e-9, epoch 7) before the real second training."""
    import torch

    from hpc_runner import train_with_status

    config = tiny_config(num_epochs=2)
    status = tmp_path / "status.jsonl"
    train_with_status(status, config=config, train_data=tiny_image(seed=3), work_dir=tmp_path)
    model = replay(status).model
    assert model is not None and model.best_checkpoint is not None
    best = Path(model.best_checkpoint)
    saved = torch.load(best, map_location="cpu", weights_only=False)
    (key,) = [key for key in saved["callbacks"] if "BestCheckpoint" in key]
    saved["callbacks"][key] = {"best_val_loss": 1e-9, "best_epoch": 7}
    torch.save(saved, best)
    earlier = best.read_bytes()

    again = tmp_path / "again.jsonl"
    train_with_status(again, config=config, train_data=tiny_image(seed=3), work_dir=tmp_path)
    assert best.read_bytes() == earlier
    model = replay(again).model
    assert model is not None
    assert (model.best_checkpoint, model.best_epoch, model.best_val_loss) == (str(best), 7, 1e-9)


class _Planted:
    """What a hostile best.ckpt unpickles to: a ``touch`` (the file it makes is the proof)."""

    def __init__(self, proof: Path) -> None:
        self.proof = proof

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.proof}",))


def test_a_planted_best_checkpoint_is_not_unpickled(tmp_path: Path) -> None:
    """The earlier best is read from a file in the run directory, which anyone who can write
    there may replace: a full unpickling ran the code it named on every resume without a
    checkpoint (found by the submission helper: ``resume --cluster debug`` made the file). It is
    read with torch's restricted loader: the planted file is passed over as unreadable."""
    import torch

    from hpc_runner.node.best_checkpoint import BestCheckpoint

    proof = tmp_path / "ran"
    callback = BestCheckpoint(tmp_path / "best")
    callback.path.parent.mkdir()
    torch.save({"callbacks": {"BestCheckpoint": _Planted(proof)}}, callback.path)
    callback._adopt_earlier_best()
    assert not proof.exists()
    assert (callback.best_val_loss, callback.best_epoch) == (None, None)
