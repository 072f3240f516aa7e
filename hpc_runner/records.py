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
from collections import Counter
from collections.abc import Callable
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


def decode_lines(
    lines: list[bytes], max_line_bytes: int = MAX_LINE_BYTES
) -> tuple[list[Record], Counter[str]]:
    """Decode complete lines; return the good records and, by reason, what was skipped.

    Blank lines are ignored. This is :func:`decode_line` unrolled for speed: a replay spends its
    time here, and two Python calls per record would cost a third of it (measured).
    """
    records: list[Record] = []
    skipped: Counter[str] = Counter()
    append, decode, checks = records.append, _DECODER.decode, _VALUE_CHECKS
    for line in lines:
        if len(line) > max_line_bytes:
            skipped["oversized"] += 1
            continue
        try:
            record = decode(line)
        except (msgspec.DecodeError, ValueError):
            if line.strip():
                skipped["invalid"] += 1
            continue
        check = checks.get(record.type)
        if check is not None and record.v == SCHEMA_VERSION and check(record.value):
            append(record)
        else:
            skipped[_rejection(record).reason] += 1
    return records, skipped


def check_record(record: Record) -> None:
    """Reject records of a newer schema, of an unknown type, or whose value has the wrong shape."""
    check = _VALUE_CHECKS.get(record.type)  # keyed by plain strings: enum hashing is slow
    if check is None or record.v != SCHEMA_VERSION or not check(record.value):
        raise _rejection(record)


def _rejection(record: Record) -> RecordError:
    if record.v > SCHEMA_VERSION:
        return RecordError("newer_version", f"v={record.v}")
    if record.type not in _VALUE_CHECKS:
        return RecordError("unknown_type", repr(record.type)[:80])
    return RecordError("invalid", f"v={record.v}, bad value for {record.type!r}")


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number_or_null(value: Any) -> bool:  # msgspec writes NaN and inf as null
    kind = type(value)
    return kind is float or kind is int or value is None


def _is_state(value: Any) -> bool:
    return value in STATE_BY_NAME if type(value) is str else type(value) is int and 0 <= value <= 4


def _is_str_dict(value: Any) -> bool:
    return type(value) is dict and all(type(v) is str for v in value.values())


def _is_exception(value: Any) -> bool:
    return _is_str_dict(value) and "type" in value


def _is_model_location(value: Any) -> bool:
    return _is_str_dict(value) and set(value) <= _MODEL_FIELDS


_MODEL_FIELDS = set(ModelLocation.__dataclass_fields__)
_VALUE_CHECKS: dict[str, Callable[[Any], bool]] = {
    TrainUpdateType.MAX_EPOCH.value: _is_int,
    TrainUpdateType.EPOCH.value: _is_int,
    TrainUpdateType.MAX_BATCH.value: _is_int,
    TrainUpdateType.BATCH.value: _is_int,
    TrainUpdateType.LOSS.value: _is_number_or_null,
    TrainUpdateType.VAL_LOSS.value: _is_number_or_null,
    TrainUpdateType.STATE.value: _is_state,
    TrainUpdateType.CAREAMIST.value: _is_model_location,
    TrainUpdateType.DEBUG.value: lambda value: type(value) is str,
    TrainUpdateType.EXCEPTION.value: _is_exception,
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
        value = RecordedException(
            value["type"], value.get("message", ""), value.get("traceback", "")
        )
    elif kind is TrainUpdateType.CAREAMIST:
        value = ModelLocation(**value)
    return TrainUpdate(kind, value)
