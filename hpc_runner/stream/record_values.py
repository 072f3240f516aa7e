"""The values that careamics-napari keeps in memory and hpc_runner sends as data.

The napari plugin hands its UI a live exception and a live ``CAREamist``; across a status file
those become a :class:`RecordedException` (type, message, traceback) and a
:class:`ModelLocation` (where the model's files are), from which a ``CAREamist`` is rebuilt on
demand. Both are plain data, cheap to import: careamics is loaded only by
:meth:`ModelLocation.load_careamist`.
"""

from __future__ import annotations

import traceback as traceback_module
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

if TYPE_CHECKING:
    from careamics import CAREamist

#: Every integer a status or processes file holds. JSON has no size limit, msgspec decodes any
#: integer, but MessagePack (the reader cache) and the OS (a pid) take 64 bits: a line with a
#: larger one is an invalid line, skipped and counted, never a crash further on.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class RecordedException(Exception):
    """An exception that happened in a training, rebuilt from its record.

    It is a real ``Exception`` so that UIs written for careamics-napari (which receive the live
    exception) can show it unchanged; ``exc_type`` keeps the original class name.
    """

    def __init__(self, exc_type: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{exc_type}: {message}" if message else exc_type)
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback

    @classmethod
    def from_exception(cls, exc: BaseException) -> RecordedException:
        """Capture type, message and formatted traceback of a live exception."""
        if isinstance(exc, RecordedException):
            return exc
        text = "".join(traceback_module.format_exception(exc))
        return cls(type(exc).__name__, str(exc), text)

    def to_json(self) -> dict[str, str]:
        return {"type": self.exc_type, "message": self.message, "traceback": self.traceback}


class ModelLocation(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """Where a trained model lives on disk; a ``CAREamist`` can be rebuilt from it on demand.

    A msgspec struct, so that the record decoder checks it (an unknown key is an invalid record).

    Attributes
    ----------
    checkpoint : str | None
        The last checkpoint (``<exp>_last.ckpt``), what a resumed attempt continues from.
    best_checkpoint : str | None
        The checkpoint with the lowest validation loss of the whole training (every validation
        is a candidate, not only the epochs careamics' periodic saves happen to keep).
    work_dir : str | None
        careamics' work directory of the run.
    bmz_archive : str | None
        An exported BioImage Model Zoo archive, if one was made.
    predictions : str | None
        Where predictions were written, if any.
    best_val_loss : float | None
        The validation loss ``best_checkpoint`` was saved at.
    best_epoch : int | None
        The epoch (0-based) ``best_checkpoint`` was saved at.
    """

    checkpoint: str | None = None
    best_checkpoint: str | None = None
    work_dir: str | None = None
    bmz_archive: str | None = None
    predictions: str | None = None
    best_val_loss: float | None = None
    best_epoch: Int64 | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}

    def load_careamist(self) -> CAREamist:
        """Rebuild the trained ``CAREamist`` (imports careamics, which takes seconds)."""
        from careamics import CAREamist

        source = self.best_checkpoint or self.checkpoint
        if source:
            return CAREamist(checkpoint_path=source, work_dir=self.work_dir)
        if self.bmz_archive:
            return CAREamist(bmz_path=self.bmz_archive, work_dir=self.work_dir)
        raise FileNotFoundError("this run recorded no checkpoint and no BioImage Model Zoo archive")


def model_location_of(value: Any) -> ModelLocation:
    """A :class:`ModelLocation` from itself, a mapping, or a live ``CAREamist`` (duck-typed)."""
    if isinstance(value, ModelLocation):
        return value
    if isinstance(value, dict):
        return ModelLocation(**value)
    trainer = getattr(value, "trainer", None)
    checkpoint_callback = getattr(trainer, "checkpoint_callback", None)
    return ModelLocation(
        checkpoint=getattr(checkpoint_callback, "last_model_path", None) or None,
        best_checkpoint=getattr(checkpoint_callback, "best_model_path", None) or None,
        work_dir=str(getattr(value, "work_dir", "")) or None,
    )
