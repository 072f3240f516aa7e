"""Keep the checkpoint of the lowest validation loss, whatever careamics' own saving keeps.

careamics' presets save a checkpoint every N epochs (``checkpoint_params``), so the epoch with
the lowest val_loss often has none, and its ``best_model_path`` names the best of the *saved*
epochs - a "best model" that is not the best. careamics refuses a second ``ModelCheckpoint``
among the callbacks, so this small callback does the one thing needed: at the end of every
validation whose val_loss beats the best so far, it saves the full checkpoint (careamics' own
callbacks add their configuration to it, so ``CAREamist(checkpoint_path=...)`` loads it) to
``<work>/checkpoints/best/best.ckpt``, written under a temporary name and renamed, so that the
file is always a complete checkpoint. The best value and epoch survive a resume (callback state).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from hpc_runner.stream.runs import BEST_CHECKPOINT_DIR

#: Folder below careamics' ``checkpoints/`` (``latest_checkpoint`` never resumes from it).
BEST_DIR = BEST_CHECKPOINT_DIR


class BestCheckpoint(Callback):
    """Save the checkpoint whenever a validation reaches a new lowest ``val_loss``.

    Parameters
    ----------
    dirpath : path
        Where ``best.ckpt`` goes (``<work>/checkpoints/best``).
    """

    def __init__(self, dirpath: str | os.PathLike[str]) -> None:
        self.path = Path(dirpath).absolute() / "best.ckpt"  # stored in records: absolute
        self.best_val_loss: float | None = None
        self.best_epoch: int | None = None

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val_loss")
        if value is None or not math.isfinite(float(value)):
            return
        if self.best_val_loss is not None and float(value) >= self.best_val_loss:
            return
        self.best_val_loss, self.best_epoch = float(value), trainer.current_epoch
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(temporary)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            os.replace(temporary, self.path)

    @property
    def saved(self) -> bool:
        return self.best_epoch is not None and self.path.is_file()

    def state_dict(self) -> dict[str, Any]:
        return {"best_val_loss": self.best_val_loss, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_val_loss = state_dict.get("best_val_loss")
        self.best_epoch = state_dict.get("best_epoch")
