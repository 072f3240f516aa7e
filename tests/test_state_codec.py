"""Every field of RunState goes into the reader cache and comes back the same.

The state is folded from every kind of record there is (extension records included, found from
the registry), and any field still at its default afterwards gets a value drawn from its type, so
a field added to RunState is covered without a change here; one whose type the cache cannot
store fails at once, naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpc_runner.stream.records import (
    ENCODER,
    EXTENSION_CLASSES,
    ModelLocation,
    RecordedException,
    decode_lines,
    make_record,
)
from hpc_runner.stream.resources import Resources
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.state_codec import (
    SPECIAL_TYPES,
    UnsupportedField,
    decode_state,
    encode_state,
    field_codec,
    plan,
)
from hpc_runner.stream.status import TrainingState, TrainingStatus, TrainUpdateType
from hpc_runner.stream.tail import TailBatch

T = TrainUpdateType

#: How to draw a value of each special type (SPECIAL_TYPES), from its type arguments.
SPECIAL_VALUES: dict[type, Any] = {
    array: lambda args: (
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1).map(lambda v: array("q", v))
        if args == (int,)
        else st.lists(st.floats(), min_size=1).map(lambda v: array("d", v))
    ),
    deque: lambda args: st.lists(st.from_type(args[0]), min_size=1, max_size=5).map(deque),
    Counter: lambda args: st.dictionaries(st.from_type(args[0]), st.integers(1), min_size=1).map(
        Counter
    ),
    TrainingStatus: lambda args: st.builds(
        TrainingStatus,
        max_epochs=st.integers(0),
        loss=st.floats(),
        state=st.sampled_from(TrainingState),
    ),
    RecordedException: lambda args: st.builds(RecordedException, st.text(), st.text(), st.text()),
}


def test_every_special_type_has_a_way_to_draw_values() -> None:
    assert set(SPECIAL_VALUES) == set(SPECIAL_TYPES)


def values_of(hint: Any) -> st.SearchStrategy[Any]:
    from hpc_runner.stream.state_codec import _origin

    origin = _origin(hint) or hint
    if origin in (typing.Union, __import__("types").UnionType):
        return st.one_of(*(values_of(arg) for arg in typing.get_args(hint)))
    if origin in SPECIAL_VALUES:
        return SPECIAL_VALUES[origin](typing.get_args(hint))  # type: ignore[no-any-return]
    if origin is Resources:  # a fold of samples: its fields drawn as the fold fills them
        return st.builds(
            Resources,
            samples=st.integers(1, 10**6),
            latest_t=st.floats(allow_nan=False),
            times=st.lists(st.floats(), max_size=5),
            rss_peak=st.integers(0, 2**62) | st.none(),
            rate_points=st.lists(st.tuples(st.floats(), st.integers(0, 2**62)), max_size=3),
        )
    return st.from_type(hint).filter(writable)


def field_hints() -> dict[str, Any]:
    from hpc_runner.stream.state_codec import _ArrayHint

    return typing.get_type_hints(RunState, localns={"array": _ArrayHint})


def folded_from_every_kind_of_record(extensions: dict[str, Any]) -> RunState:
    values = {
        T.MAX_EPOCH: 3, T.MAX_BATCH: 4, T.STATE: "TRAINING", T.EPOCH: 1, T.BATCH: 2, T.LOSS: None,
        T.VAL_LOSS: 0.25, T.DEBUG: "saved", T.CAREAMIST: ModelLocation(checkpoint="/x/last.ckpt"),
    }  # fmt: skip
    records = [
        make_record(kind, value, t=10.0 + i, seq=i, attempt=1, job="7_1", host="n1")
        for i, (kind, value) in enumerate(values.items())
    ]
    lines = [ENCODER.encode(record) for record in records]
    lines.append(b'{"v":1,"type":"exception","value":{"type":"E","message":"m"},"t":30,'
                 b'"seq":30,"attempt":1}')  # fmt: skip
    for i, (name, value) in enumerate(extensions.items()):
        lines.append(ENCODER.encode(make_record(name, value, t=40.0 + i, seq=40 + i, attempt=1)))
    lines += [b"not json", b'{"v":99}']
    decoded, skipped = decode_lines(lines)
    run = RunState()
    run.apply_batch(TailBatch(decoded, skipped))
    return run


def at_default(run: RunState, name: str) -> bool:
    codec = plan().codecs[name]
    fresh = getattr(RunState(), name)
    return msgspec.msgpack.encode(codec.encode(getattr(run, name))) == msgspec.msgpack.encode(
        codec.encode(fresh)
    )


def writable(value: Any) -> bool:
    """A value a status file can hold as decoded (integers of 64 bits: a larger one makes the
    line invalid, see ``record_values.Int64``), which MessagePack can store."""
    try:
        line = ENCODER.encode(value)
        msgspec.msgpack.encode(value)
        if isinstance(value, msgspec.Struct):  # and its constraints hold, as after decoding
            msgspec.json.decode(line, type=type(value))
    except (OverflowError, msgspec.ValidationError):
        return False
    return True


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_field_of_run_state_round_trips(data: st.DataObject) -> None:
    extensions = {
        name: data.draw(
            st.from_type(typing.get_type_hints(cls)["value"]).filter(writable), label=name
        )
        for name, cls in EXTENSION_CLASSES.items()
    }
    run = folded_from_every_kind_of_record(extensions)
    hints = field_hints()
    for item in dataclasses.fields(RunState):
        if at_default(run, item.name):
            name = item.name

            def away_from_default(value: Any, name: str = name) -> bool:
                probe = RunState()
                setattr(probe, name, value)
                return not at_default(probe, name)

            value = data.draw(values_of(hints[name]).filter(away_from_default), label=name)
            setattr(run, name, value)
    assert [name for name in plan().codecs if at_default(run, name)] == []
    restored = decode_state(encode_state(run))
    assert encode_state(restored) == encode_state(run)
    for name, codec in plan().codecs.items():
        original, back = getattr(run, name), getattr(restored, name)
        assert type(back) is type(original), name
        assert msgspec.msgpack.encode(codec.encode(back)) == msgspec.msgpack.encode(
            codec.encode(original)
        ), name
    assert restored.debug.maxlen == run.debug.maxlen
    assert restored.skipped_lines == run.skipped_lines
    assert restored.status == run.status or math.isnan(run.status.loss)


class Opaque:
    """Not data: the cache cannot store it."""


@dataclass
class WithOpaque(RunState):
    handle: Opaque | None = None


@dataclass
class WithNested(RunState):
    recent: list[deque[int]] = field(default_factory=list)


@dataclass
class WithLoose(RunState):
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class WithPlainData(RunState):
    psnr_history: array[float] = field(default_factory=lambda: array("f"))
    previews: list[ModelLocation] = field(default_factory=list)
    last_gpu: tuple[int, float] | None = None


@pytest.mark.parametrize(
    ("cls", "named"),
    [(WithOpaque, "handle"), (WithNested, "recent"), (WithLoose, "extra")],
)
def test_a_field_the_cache_cannot_store_fails_loudly(cls: type[RunState], named: str) -> None:
    with pytest.raises(UnsupportedField, match=f"RunState.{named}: .*state_codec"):
        plan(cls)


def test_a_new_field_of_plain_data_is_stored_without_a_change() -> None:
    run = WithPlainData(psnr_history=array("f", [20.5, 21.0]), last_gpu=(0, 0.5))
    run.previews.append(ModelLocation(work_dir="/w"))
    back = decode_state(encode_state(run), WithPlainData)
    assert isinstance(back, WithPlainData)
    assert back.psnr_history == run.psnr_history and back.psnr_history.typecode == "f"
    assert (back.previews, back.last_gpu) == (run.previews, run.last_gpu)


def test_a_state_of_another_layout_is_refused() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_state(encode_state(WithPlainData()))
    with pytest.raises(msgspec.DecodeError):
        decode_state(b"\x00garbage")


def test_field_codec_of_an_optional_special_type() -> None:
    codec = field_codec("exception", RecordedException | None)
    assert codec.encode(None) is None
    back = codec.decode(codec.encode(RecordedException("E", "m", "tb")), None)
    assert (back.exc_type, back.message, back.traceback) == ("E", "m", "tb")
