"""The one owner of the ``status.jsonl`` record format: writer and reader both go through here.

A record is one JSON object on one ``\\n``-terminated line (see shared/DESIGN.md)::

    {"v":1,"type":"loss","value":0.173,"t":1732380000.12,"seq":41,"attempt":0,"job":"1234_7"}

msgspec is the codec: measured in ``benchmarks/bench_records.py`` it encodes a record in ~0.3 µs
and decodes ~1 M lines/s into a typed struct, several times faster than the standard library.
Values that the napari original keeps in memory travel as data: a crash as a
:class:`RecordedException`, a trained model as a :class:`ModelLocation`.
"""

from __future__ import annotations

import math
import traceback as traceback_module
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from hpc_runner.status import TrainingState, TrainUpdate, TrainUpdateType

if TYPE_CHECKING:
    from careamics import CAREamist

#: Version written into every record; readers skip (and count) records of a newer version.
SCHEMA_VERSION = 1

#: Lines longer than this are skipped: a status line is a few hundred bytes, a traceback a few KiB.
MAX_LINE_BYTES = 1 << 20

TYPE_BY_VALUE: dict[str, TrainUpdateType] = {t.value: t for t in TrainUpdateType}
STATE_BY_NAME: dict[str, TrainingState] = {s.name: s for s in TrainingState}


class Record(msgspec.Struct, omit_defaults=True, gc=False):
    """One line of ``status.jsonl`` as it is on disk (``type`` still a plain string).

    ``gc=False``: decoded values are JSON trees, which cannot form cycles, and keeping a million
    records out of the garbage collector makes a replay ~4x faster (measured).
    """

    v: int
    type: str
    value: Any
    t: float
    seq: int
    attempt: int
    job: str | None = None
    host: str | None = None
    rank: int | None = None


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


@dataclass(frozen=True)
class ModelLocation:
    """Where a trained model lives on disk; a ``CAREamist`` can be rebuilt from it on demand.

    Attributes
    ----------
    checkpoint : str | None
        The last checkpoint (``<exp>_last.ckpt``), what a resumed attempt continues from.
    best_checkpoint : str | None
        The checkpoint with the best validation loss, if the trainer kept one.
    work_dir : str | None
        careamics' work directory of the run.
    bmz_archive : str | None
        An exported BioImage Model Zoo archive, if one was made.
    predictions : str | None
        Where predictions were written, if any.
    """

    checkpoint: str | None = None
    best_checkpoint: str | None = None
    work_dir: str | None = None
    bmz_archive: str | None = None
    predictions: str | None = None

    def to_json(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    def load_careamist(self) -> CAREamist:
        """Rebuild the trained ``CAREamist`` (imports careamics, which takes seconds)."""
        from careamics import CAREamist

        source = self.best_checkpoint or self.checkpoint
        if source:
            return CAREamist(checkpoint_path=source, work_dir=self.work_dir)
        if self.bmz_archive:
            return CAREamist(bmz_path=self.bmz_archive, work_dir=self.work_dir)
        raise FileNotFoundError("this run recorded no checkpoint and no BioImage Model Zoo archive")


class RecordError(ValueError):
    """A line that is not a valid record of a known type; ``reason`` is one of SKIP_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


#: Why a reader skipped a line, the keys of its skip counters.
SKIP_REASONS = ("invalid", "unknown_type", "newer_version", "oversized")

#: Shared encoder; the writer encodes into its own reusable buffer with ``encode_into``.
ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Record)


def json_value(update: TrainUpdate) -> Any:
    """The JSON form of an update's value: states by name, exceptions and models as objects."""
    kind, value = update.type, update.value
    if kind is TrainUpdateType.STATE:
        return TrainingState(value).name
    if kind is TrainUpdateType.EXCEPTION:
        return RecordedException.from_exception(value).to_json()
    if kind is TrainUpdateType.CAREAMIST:
        return model_location_of(value).to_json()
    if kind is TrainUpdateType.LOSS or kind is TrainUpdateType.VAL_LOSS:
        return float(value)
    if kind is TrainUpdateType.DEBUG:
        return str(value)
    return int(value)


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


def encode(record: Record) -> bytes:
    """One complete line (newline included) for a record."""
    return ENCODER.encode(record) + b"\n"


def encode_update(update: TrainUpdate, *, seq: int, attempt: int, t: float) -> bytes:
    """One complete line for an update; the writer's hot path does the same into a buffer."""
    return encode(
        Record(SCHEMA_VERSION, update.type.value, json_value(update), t=t, seq=seq, attempt=attempt)
    )


def decode_line(line: bytes) -> Record:
    """Parse and check one line (without its newline); raise :class:`RecordError` if unusable."""
    try:
        record = _DECODER.decode(line)
    except (msgspec.DecodeError, ValueError) as exc:  # ValueError: bytes that are not UTF-8
        raise RecordError("invalid", str(exc)) from None
    check_record(record)
    return record


def check_record(record: Record) -> None:
    """Reject records of a newer schema, of an unknown type, or whose value has the wrong shape."""
    if record.v > SCHEMA_VERSION:
        raise RecordError("newer_version", f"v={record.v}")
    if record.v < 1:
        raise RecordError("invalid", f"v={record.v}")
    kind = TYPE_BY_VALUE.get(record.type)
    if kind is None:
        raise RecordError("unknown_type", repr(record.type)[:80])
    if not _VALUE_CHECKS[kind](record.value):
        raise RecordError("invalid", f"bad value for {record.type!r}")


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number_or_null(value: Any) -> bool:  # msgspec writes NaN and inf as null
    return value is None or type(value) in (float, int)


def _is_state(value: Any) -> bool:
    return value in STATE_BY_NAME if type(value) is str else type(value) is int and 0 <= value <= 4


def _is_str_dict(value: Any) -> bool:
    return type(value) is dict and all(type(v) is str for v in value.values())


def _is_exception(value: Any) -> bool:
    return _is_str_dict(value) and "type" in value


def _is_model_location(value: Any) -> bool:
    return _is_str_dict(value) and set(value) <= _MODEL_FIELDS


_MODEL_FIELDS = set(ModelLocation.__dataclass_fields__)
_VALUE_CHECKS = {
    TrainUpdateType.MAX_EPOCH: _is_int,
    TrainUpdateType.EPOCH: _is_int,
    TrainUpdateType.MAX_BATCH: _is_int,
    TrainUpdateType.BATCH: _is_int,
    TrainUpdateType.LOSS: _is_number_or_null,
    TrainUpdateType.VAL_LOSS: _is_number_or_null,
    TrainUpdateType.STATE: _is_state,
    TrainUpdateType.CAREAMIST: _is_model_location,
    TrainUpdateType.DEBUG: lambda value: type(value) is str,
    TrainUpdateType.EXCEPTION: _is_exception,
}


def to_update(record: Record) -> TrainUpdate:
    """The :class:`TrainUpdate` a checked record stands for, values rebuilt to their objects."""
    kind = TYPE_BY_VALUE[record.type]
    value = record.value
    if kind is TrainUpdateType.STATE:
        value = STATE_BY_NAME[value] if type(value) is str else TrainingState(value)
    elif kind is TrainUpdateType.LOSS or kind is TrainUpdateType.VAL_LOSS:
        value = math.nan if value is None else float(value)
    elif kind is TrainUpdateType.EXCEPTION:
        value = RecordedException(value["type"], value.get("message", ""), value.get("traceback", ""))
    elif kind is TrainUpdateType.CAREAMIST:
        value = ModelLocation(**value)
    return TrainUpdate(kind, value)
