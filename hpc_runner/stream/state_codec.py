"""A :class:`~hpc_runner.stream.run_state.RunState` as bytes, and back: what the reader cache
stores and what a worker process hands back after folding a file.

A cache file is data, never code: the state goes through msgspec's MessagePack codec (no pickle),
field by field, with every dataclass field of ``RunState`` found by introspection, so a field
added to ``RunState`` is stored without touching this module, *if* msgspec can encode and decode
its type (numbers, str, bytes, None, tuples, lists, dicts, enums, msgspec Structs, dataclasses).
The few types it cannot are listed in :data:`SPECIAL_TYPES`, the one place that says how each goes
on the wire. A field whose type is neither fails loudly when the codec is built (at the first
encode, and in ``tests/test_state_codec.py``), naming the field and this module.

MessagePack rather than JSON: losses are often NaN (JSON has none) and a loss history of a long
training is an ``array`` stored as raw bytes, decoded with one copy.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from array import array
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect

from hpc_runner.stream.record_values import RecordedException
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.status import TrainingState, TrainingStatus

__all__ = ["SPECIAL_TYPES", "FieldCodec", "UnsupportedField", "decode_state", "encode_state"]


class UnsupportedField(TypeError):
    """A ``RunState`` field of a type that neither msgspec nor :data:`SPECIAL_TYPES` handles."""


@dataclass(frozen=True)
class FieldCodec:
    """How one field goes on the wire: its msgspec type there, and the two conversions.

    ``decode`` gets the wire value and the field's value in a fresh ``RunState`` (for what the
    type does not carry: a deque's ``maxlen``, an array's typecode).
    """

    wire: Any
    encode: Callable[[Any], Any]
    decode: Callable[[Any, Any], Any]


def _same(value: Any) -> Any:
    return value


def _same_decoded(value: Any, fresh: Any) -> Any:
    return value


def _array(args: tuple[Any, ...]) -> FieldCodec:
    return FieldCodec(
        tuple[str, bytes],
        lambda values: (values.typecode, values.tobytes()),
        lambda wire, fresh: _array_of(*wire),
    )


def _array_of(typecode: str, data: bytes) -> array[Any]:
    values = array(typecode)
    values.frombytes(data)
    return values


def _deque(args: tuple[Any, ...]) -> FieldCodec:
    return FieldCodec(
        list[args[0]] if args else list,  # type: ignore[valid-type]
        list,
        lambda wire, fresh: deque(wire, maxlen=fresh.maxlen),
    )


def _counter(args: tuple[Any, ...]) -> FieldCodec:
    key = args[0] if args else str
    return FieldCodec(
        list[tuple[key, int]],  # type: ignore[valid-type]
        lambda counts: sorted(counts.items()),  # sorted: equal states encode to equal bytes
        lambda wire, fresh: Counter(dict(wire)),
    )


_STATUS_NAMES = tuple(item.name for item in dataclasses.fields(TrainingStatus))


def _status(args: tuple[Any, ...]) -> FieldCodec:
    # (the losses' default is the int -1, which status --json prints as -1, not -1.0)
    wire = tuple[int, int, int, int, int | float, int | float, TrainingState]
    assert _STATUS_NAMES == (
        "max_epochs", "max_batches", "epoch_idx", "batch_idx", "loss", "val_loss", "state",
    ), "TrainingStatus changed: update state_codec._status"  # fmt: skip
    return FieldCodec(
        wire,
        lambda status: tuple(getattr(status, name) for name in _STATUS_NAMES),
        lambda values, fresh: TrainingStatus(**dict(zip(_STATUS_NAMES, values, strict=True))),
    )


def _exception(args: tuple[Any, ...]) -> FieldCodec:
    return FieldCodec(
        tuple[str, str, str],
        lambda error: (error.exc_type, error.message, error.traceback),
        lambda wire, fresh: RecordedException(*wire),
    )


#: The types msgspec cannot (de)serialise itself, by class: how each goes on the wire. A new
#: kind of ``RunState`` field that msgspec does not support gets its entry here.
SPECIAL_TYPES: dict[type, Callable[[tuple[Any, ...]], FieldCodec]] = {
    array: _array,
    deque: _deque,
    Counter: _counter,
    TrainingStatus: _status,
    RecordedException: _exception,
}


class _ArrayHint:
    """Stands for ``array`` while the annotations are evaluated: ``array[float]`` is how the
    fields are written (for mypy), but ``array.array`` is not subscriptable before Python 3.12."""

    def __class_getitem__(cls, item: Any) -> Any:
        # (typing re-subscripts a generic's origin while it resolves hints: keep this class)
        return types.GenericAlias(cls, item)


def _origin(hint: Any) -> Any:
    """The class of a hint (``deque`` for ``deque[int]``, ``array`` for ``array[float]``)."""
    origin = typing.get_origin(hint) or hint
    return array if origin is _ArrayHint else origin


def _special_inside(hint: Any) -> type | None:
    """A special type nested inside ``hint`` (``list[deque[int]]``), which the plan cannot
    handle, or a type no wire form can keep (``Any``)."""
    for arg in typing.get_args(hint):
        origin = _origin(arg)
        if origin in SPECIAL_TYPES or arg is Any or arg is object:
            return origin  # type: ignore[no-any-return]
        if (inner := _special_inside(arg)) is not None:
            return inner
    return None


def field_codec(name: str, hint: Any) -> FieldCodec:
    """The codec of one field from its resolved type hint (see :data:`SPECIAL_TYPES`)."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        special = [arg for arg in members if _origin(arg) in SPECIAL_TYPES]
        if special:
            if len(members) != 1:
                raise UnsupportedField(f"RunState.{name}: {hint} mixes {special[0]} with others")
            hint, optional = members[0], True
    origin = _origin(hint)
    if origin in SPECIAL_TYPES:
        codec = SPECIAL_TYPES[origin](typing.get_args(hint))
        if (inner := _special_inside(codec.wire)) is not None:
            raise UnsupportedField(f"RunState.{name}: {hint} holds {inner}")
        if optional:
            return FieldCodec(
                codec.wire | None,
                lambda value: None if value is None else codec.encode(value),
                lambda wire, fresh: None if wire is None else codec.decode(wire, fresh),
            )
        return codec
    if hint is Any or hint is object or (inner := _special_inside(hint)) is not None:
        held = hint if hint is Any or hint is object else inner
        raise UnsupportedField(
            f"RunState.{name}: a field of type {hint} (holding {held}) cannot be stored by the "
            "reader cache; use plain data or add an entry to state_codec.SPECIAL_TYPES"
        )
    try:
        opaque = _opaque(msgspec.inspect.type_info(hint), set())
    except TypeError as error:
        opaque = str(error)
    if opaque is not None:
        raise UnsupportedField(
            f"RunState.{name}: msgspec cannot store {hint} (it holds {opaque}); use plain data "
            "or add an entry to state_codec.SPECIAL_TYPES"
        )
    return FieldCodec(hint, _same, _same_decoded)


def _opaque(info: Any, seen: set[int]) -> object | None:
    """What in a msgspec type description is not data: a class msgspec would need hooks for
    (``CustomType``), or ``Any`` (which decodes a struct back as a dict)."""
    if isinstance(info, msgspec.inspect.CustomType):
        return info.cls
    if isinstance(info, msgspec.inspect.AnyType):
        return Any
    if not isinstance(info, msgspec.Struct) or id(info) in seen:
        return None
    seen.add(id(info))
    for attribute in info.__struct_fields__:
        value = getattr(info, attribute)
        for part in value if isinstance(value, tuple) else (value,):
            inner = part.type if isinstance(part, msgspec.inspect.Field) else part
            if (found := _opaque(inner, seen)) is not None:
                return found
    return None


@dataclass(frozen=True)
class _Plan:
    codecs: dict[str, FieldCodec]
    wire: type[msgspec.Struct]
    encoder: msgspec.msgpack.Encoder
    decoder: msgspec.msgpack.Decoder[Any]
    fresh: RunState


_PLANS: dict[type[RunState], _Plan] = {}


def plan(cls: type[RunState] = RunState) -> _Plan:
    """Every field of ``RunState`` (or a subclass) with its codec, and the wire struct they
    make; built once.

    Raises
    ------
    UnsupportedField
        A field's type can be neither encoded nor decoded: the message names the field.
    """
    found = _PLANS.get(cls)
    if found is None:
        found = _PLANS[cls] = _build_plan(cls)
    return found


def _build_plan(cls: type[RunState]) -> _Plan:
    hints = typing.get_type_hints(cls, localns={"array": _ArrayHint})
    codecs = {
        item.name: field_codec(item.name, hints[item.name]) for item in dataclasses.fields(cls)
    }
    wire = msgspec.defstruct(
        f"{cls.__name__}Wire",
        [(name, codec.wire) for name, codec in codecs.items()],
        forbid_unknown_fields=True,  # a state of another layout is not this one
    )
    return _Plan(codecs, wire, msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(wire), cls())


def encode_state(run: RunState) -> bytes:
    """The state as MessagePack bytes (equal states give equal bytes)."""
    current = plan(type(run))
    values = {name: codec.encode(getattr(run, name)) for name, codec in current.codecs.items()}
    return current.encoder.encode(current.wire(**values))


def decode_state(data: bytes | memoryview, cls: type[RunState] = RunState) -> RunState:
    """The state :func:`encode_state` wrote.

    Raises
    ------
    msgspec.DecodeError
        The bytes are not a state of this layout (another version wrote them, or they are
        damaged); the caller reads the status file again instead.
    """
    current = plan(cls)
    wire = current.decoder.decode(data)
    run = cls()
    for name, codec in current.codecs.items():
        setattr(run, name, codec.decode(getattr(wire, name), getattr(current.fresh, name)))
    return run
