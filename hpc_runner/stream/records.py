"""The one owner of the ``status.jsonl`` record format: writer and reader both go through here.

A record is one JSON object on one ``\\n``-terminated line (see shared/DESIGN.md)::

    {"type":"loss","value":0.173,"v":1,"t":1732380000.12,"seq":41,"attempt":0,"job":"1234_7"}

Each update type is its own msgspec struct, tagged by ``type``, so that msgspec checks the whole
record while it decodes (the value's type per update type, the schema version, the state names)
and no Python code runs per record to validate it. Only a line that fails is decoded a second
time, loosely, to say why it was skipped. Measured in ``benchmarks/bench_records.py``: encoding
a record costs ~0.2 µs, and a replay decodes and folds over a million records a second, several
times a plain ``json.loads`` loop.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from hpc_runner.stream.record_values import (
    Int64,
    ModelLocation,
    RecordedException,
    model_location_of,
)
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.system_values import EnvironmentValue, SystemValue

__all__ = [
    "EXTENSION_CLASSES",
    "MAX_LINE_BYTES",
    "SCHEMA_VERSION",
    "SKIP_REASONS",
    "ExtensionRecord",
    "ModelLocation",
    "Record",
    "RecordError",
    "RecordedException",
    "decode_line",
    "decode_lines",
    "encode_update",
    "is_update",
    "make_record",
    "to_update",
]

#: Version written into every record; readers skip (and count) records of a newer version.
SCHEMA_VERSION = 1

#: Lines longer than this are skipped: a status line is a few hundred bytes, a traceback a few KiB.
MAX_LINE_BYTES = 1 << 20

#: Why a reader skipped a line, the keys of its skip counters.
SKIP_REASONS = ("invalid", "unknown_type", "newer_version", "oversized")

TYPE_BY_VALUE: dict[str, TrainUpdateType] = {t.value: t for t in TrainUpdateType}
STATE_BY_NAME: dict[str, TrainingState] = {s.name: s for s in TrainingState}

T = TrainUpdateType


class Record(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True, gc=False):
    """What every line carries besides its value; one subclass per update type.

    ``gc=False``: decoded values are JSON trees, which cannot form cycles, and keeping a million
    records out of the garbage collector makes a replay ~4x faster (measured).
    """

    kind: ClassVar[TrainUpdateType]

    v: Annotated[int, msgspec.Meta(ge=1, le=SCHEMA_VERSION)]
    t: float
    seq: Int64
    attempt: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # 0 = the first; never negative
    job: str | None = None
    host: str | None = None
    rank: Int64 | None = None
    value: Any  # each subclass narrows it to its update type's value


class MaxEpochsRecord(Record, tag=T.MAX_EPOCH.value):
    kind = T.MAX_EPOCH
    value: Int64


class EpochRecord(Record, tag=T.EPOCH.value):
    kind = T.EPOCH
    value: Int64


class MaxBatchesRecord(Record, tag=T.MAX_BATCH.value):
    kind = T.MAX_BATCH
    value: Int64


class BatchRecord(Record, tag=T.BATCH.value):
    kind = T.BATCH
    value: Int64


class LossRecord(Record, tag=T.LOSS.value):
    kind = T.LOSS
    value: float | None  # JSON has no NaN or infinity: msgspec writes them as null


class ValLossRecord(Record, tag=T.VAL_LOSS.value):
    kind = T.VAL_LOSS
    value: float | None


class StateRecord(Record, tag=T.STATE.value):
    kind = T.STATE
    # written by name; the integer is accepted too (DESIGN.md)
    value: (
        Literal["IDLE", "TRAINING", "DONE", "STOPPED", "CRASHED"]
        | Annotated[int, msgspec.Meta(ge=0, le=4)]
    )


class DebugRecord(Record, tag=T.DEBUG.value):
    kind = T.DEBUG
    value: str


class ExceptionData(msgspec.Struct):
    """An exception as the record carries it (see :class:`RecordedException`)."""

    type: str
    message: str = ""
    traceback: str = ""


class ExceptionRecord(Record, tag=T.EXCEPTION.value):
    kind = T.EXCEPTION
    value: ExceptionData


class CareamistRecord(Record, tag=T.CAREAMIST.value):
    kind = T.CAREAMIST
    value: ModelLocation


# -- extension records (shared/DESIGN.md: same line format, a value object) ----------------------


class ExtensionRecord(Record):
    """A record beyond the seed's ten update types: the seed's ``TrainingStatus`` has no field
    for it, so it never becomes a :class:`TrainUpdate`; the monitoring side keeps it beside the
    status. A reader that does not know a type skips and counts it (``unknown_type``)."""

    name: ClassVar[str]


class EvaluationValue(msgspec.Struct, frozen=True, omit_defaults=True):
    """The trained model measured against the spec's ground truth (``evaluate:``).

    Attributes
    ----------
    ground_truth : str
        The clean image the PSNRs are measured against.
    psnr_before, psnr_after : float | None
        PSNR of the noisy training image and of its prediction, in dB.
    """

    ground_truth: str
    psnr_before: float | None = None
    psnr_after: float | None = None


class EvaluationRecord(ExtensionRecord, tag="evaluation"):
    name = "evaluation"
    value: EvaluationValue


class EnvironmentRecord(ExtensionRecord, tag="environment"):
    """What an attempt runs with and was granted (:mod:`hpc_runner.stream.system_values`)."""

    name = "environment"
    value: EnvironmentValue


class SystemRecord(ExtensionRecord, tag="system"):
    """One sample of GPU, CPU, memory and throughput (:mod:`hpc_runner.stream.system_values`)."""

    name = "system"
    value: SystemValue


#: Largest epoch a preview record may name (a record beyond it is invalid and skipped).
MAX_PREVIEW_EPOCH = 10**9


class PreviewValue(msgspec.Struct, frozen=True, omit_defaults=True):
    """A preview image written during training (:mod:`hpc_runner.node.preview`).

    Attributes
    ----------
    path : str
        The PNG, relative to the run directory (``previews/epoch_0012.png``).
    epoch : int
        Epochs completed when it was taken (1 = after the first epoch).
    psnr : float | None
        PSNR of the previewed crop against the spec's ground truth, in dB.
    """

    path: Annotated[str, msgspec.Meta(max_length=4096)]
    epoch: Annotated[int, msgspec.Meta(ge=0, le=MAX_PREVIEW_EPOCH)]
    psnr: float | None = None


class PreviewRecord(ExtensionRecord, tag="preview"):
    name = "preview"
    value: PreviewValue


#: Extension record classes by type name (the ``type`` key of their lines).
EXTENSION_CLASSES: dict[str, type[ExtensionRecord]] = {
    cls.name: cls for cls in (EvaluationRecord, EnvironmentRecord, SystemRecord, PreviewRecord)
}


RECORD_CLASSES: dict[TrainUpdateType, type[Record]] = {
    cls.kind: cls
    for cls in (
        MaxEpochsRecord,
        EpochRecord,
        MaxBatchesRecord,
        BatchRecord,
        LossRecord,
        ValLossRecord,
        StateRecord,
        DebugRecord,
        ExceptionRecord,
        CareamistRecord,
    )
}

AnyRecord = (
    MaxEpochsRecord
    | EpochRecord
    | MaxBatchesRecord
    | BatchRecord
    | LossRecord
    | ValLossRecord
    | StateRecord
    | DebugRecord
    | ExceptionRecord
    | CareamistRecord
    | EvaluationRecord
    | EnvironmentRecord
    | SystemRecord
    | PreviewRecord
)

#: Shared encoder; the writer encodes into its own reusable buffer with ``encode_into``.
ENCODER = msgspec.json.Encoder()
_DECODER: msgspec.json.Decoder[AnyRecord] = msgspec.json.Decoder(AnyRecord)


class RecordError(ValueError):
    """A line that is not a valid record of a known type; ``reason`` is one of SKIP_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def json_value(update: TrainUpdate) -> Any:
    """The record value of an update: states by name, exceptions and models as structs."""
    kind, value = update.type, update.value
    if kind is T.STATE:
        return TrainingState(value).name
    if kind is T.EXCEPTION:
        exception = RecordedException.from_exception(value)
        return ExceptionData(exception.exc_type, exception.message, exception.traceback)
    if kind is T.CAREAMIST:
        return model_location_of(value)
    if kind is T.LOSS or kind is T.VAL_LOSS:
        return float(value)
    if kind is T.DEBUG:
        return str(value)
    return int(value)


def make_record(kind: TrainUpdateType | str, value: Any, **meta: Any) -> Record:
    """A record of ``kind`` (an update type, or an extension type's name) with a ready value
    (see :func:`json_value`) and ``t``, ``seq``, ..."""
    if isinstance(kind, TrainUpdateType):
        return RECORD_CLASSES[kind](v=SCHEMA_VERSION, value=value, **meta)
    return EXTENSION_CLASSES[kind](v=SCHEMA_VERSION, value=value, **meta)


def encode_update(update: TrainUpdate, *, seq: int, attempt: int, t: float) -> bytes:
    """One complete line (newline included) for an update."""
    record = make_record(update.type, json_value(update), t=t, seq=seq, attempt=attempt)
    return ENCODER.encode(record) + b"\n"


def decode_line(line: bytes) -> Record:
    """Parse and check one line (without its newline); raise :class:`RecordError` if unusable."""
    try:
        return _DECODER.decode(line)
    except (msgspec.DecodeError, ValueError, RecursionError):  # see decode_lines
        raise rejection(line) from None


def decode_lines(
    lines: list[bytes], max_line_bytes: int = MAX_LINE_BYTES
) -> tuple[list[Record], Counter[str]]:
    """Decode complete lines; return the good records and, by reason, what was skipped.

    Blank lines are ignored. This is :func:`decode_line` unrolled: a replay spends its time here.
    msgspec decodes nested arrays and objects recursively, up to Python's recursion limit: a
    line of ``[[[[...`` raises ``RecursionError`` (at ~1000 levels, in microseconds; a record
    nests three levels deep), which is a line like any other that does not decode.
    """
    records: list[Record] = []
    skipped: Counter[str] = Counter()
    append, decode = records.append, _DECODER.decode
    for line in lines:
        if len(line) > max_line_bytes:
            skipped["oversized"] += 1
            continue
        try:
            append(decode(line))
        except (msgspec.DecodeError, ValueError, RecursionError):
            if line.strip():
                skipped[rejection(line).reason] += 1
    return records, skipped


def rejection(line: bytes) -> RecordError:
    """Why a line that failed to decode is skipped: newer schema, unknown type, or invalid."""
    try:
        loose = msgspec.json.decode(line)
    except (msgspec.DecodeError, ValueError) as error:
        return RecordError("invalid", str(error))
    except RecursionError:
        return RecordError("invalid", "nested too deeply")
    if not isinstance(loose, dict):
        return RecordError("invalid", f"a JSON {type(loose).__name__}, not an object")
    version = loose.get("v")
    if type(version) is int and version > SCHEMA_VERSION:
        return RecordError("newer_version", f"v={version}")
    kind = loose.get("type")
    if kind not in TYPE_BY_VALUE and kind not in EXTENSION_CLASSES:
        return RecordError("unknown_type", repr(kind)[:80])
    try:
        _DECODER.decode(line)
    except msgspec.ValidationError as error:
        return RecordError("invalid", str(error))
    except RecursionError:
        return RecordError("invalid", "nested too deeply")
    return RecordError("invalid", "not a record")  # pragma: no cover - it decoded after all


def is_update(record: Record) -> bool:
    """True for the seed's ten update types, False for extension records."""
    return not isinstance(record, ExtensionRecord)


def to_update(record: Record) -> TrainUpdate:
    """The :class:`TrainUpdate` a record stands for, its value rebuilt to its object.

    Only for the seed's update types (:func:`is_update`); extension records have no update.
    """
    kind = record.kind
    value = record.value
    if kind is T.STATE:
        value = STATE_BY_NAME[value] if type(value) is str else TrainingState(value)
    elif kind is T.LOSS or kind is T.VAL_LOSS:
        value = math.nan if value is None else value
    elif kind is T.EXCEPTION:
        value = RecordedException(value.type, value.message, value.traceback)
    return TrainUpdate(kind, value)
