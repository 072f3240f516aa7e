"""Keep the checkpoint of the lowest validation loss, whatever careamics' own saving keeps.

careamics' presets save a checkpoint every N epochs (``checkpoint_params``), so the epoch with
the lowest val_loss often has none, and its ``best_model_path`` names the best of the *saved*
epochs - a "best model" that is not the best. careamics refuses a second ``ModelCheckpoint``
among the callbacks, so this small callback does the one thing needed: at the end of every
validation whose val_loss beats the best so far, it saves the full checkpoint (careamics' own
callbacks add their configuration to it, so ``CAREamist(checkpoint_path=...)`` loads it) to
``<work>/checkpoints/best/best.ckpt``, written under a temporary name and renamed, so that the
file is always a complete checkpoint. The best value and epoch survive a resume (callback state),
and a restart with nothing to resume from (a requeue before careamics' first save) keeps the
earlier attempt's ``best.ckpt`` until it does better: its first validation overwrote the run's
best model with a worse one.
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
        self._looked_for_earlier = False

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val_loss")
        if value is None or not math.isfinite(float(value)):
            return
        if self.best_val_loss is None and not self._looked_for_earlier:
            # (here, not at fit start: a resumed state is surely restored by now)
            self._looked_for_earlier = True
            self._adopt_earlier_best()
        if self.best_val_loss is not None and float(value) >= self.best_val_loss:
            return
        self.best_val_loss, self.best_epoch = float(value), trainer.current_epoch
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(temporary)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            os.replace(temporary, self.path)

    def _adopt_earlier_best(self) -> None:
        """Take the best value and epoch stored in an existing ``best.ckpt`` (this callback's
        state in it), so that only a better validation replaces it.

        ``weights_only``: the file lies in a run directory, which anyone who can write there
        may have replaced; a full unpickling would run whatever code it names (on every
        ``resume`` without a checkpoint). A genuine ``best.ckpt`` holds only what torch's
        restricted loader takes."""
        if not self.path.is_file():
            return
        import torch

        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            states = saved.get("callbacks", {}) if isinstance(saved, dict) else {}
            state = next(v for k, v in states.items() if type(self).__name__ in str(k))
            best = float(state["best_val_loss"])
        except Exception:  # unreadable, or not ours: the first validation writes a new one
            return
        if math.isfinite(best):
            self.best_val_loss, self.best_epoch = best, state.get("best_epoch")

    @property
    def saved(self) -> bool:
        return self.best_epoch is not None and self.path.is_file()

    def state_dict(self) -> dict[str, Any]:
        return {"best_val_loss": self.best_val_loss, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_val_loss = state_dict.get("best_val_loss")
        self.best_epoch = state_dict.get("best_epoch")
