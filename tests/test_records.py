"""Encoding and decoding of status records."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hpc_runner.stream.records import (
    SCHEMA_VERSION,
    ModelLocation,
    RecordedException,
    RecordError,
    decode_line,
    encode_update,
    to_update,
)
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType

text = st.text(max_size=200)
paths = st.none() | st.text(min_size=1, max_size=50)

updates = st.one_of(
    st.builds(
        TrainUpdate,
        st.sampled_from(
            [
                TrainUpdateType.MAX_EPOCH,
                TrainUpdateType.EPOCH,
                TrainUpdateType.MAX_BATCH,
                TrainUpdateType.BATCH,
            ]
        ),
        st.integers(min_value=-1, max_value=2**53),
    ),
    st.builds(
        TrainUpdate,
        st.sampled_from([TrainUpdateType.LOSS, TrainUpdateType.VAL_LOSS]),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    st.builds(TrainUpdate, st.just(TrainUpdateType.STATE), st.sampled_from(TrainingState)),
    st.builds(TrainUpdate, st.just(TrainUpdateType.DEBUG), text),
    st.builds(
        TrainUpdate,
        st.just(TrainUpdateType.EXCEPTION),
        st.builds(RecordedException, st.text(min_size=1, max_size=40), text, text),
    ),
    st.builds(
        TrainUpdate,
        st.just(TrainUpdateType.CAREAMIST),
        st.builds(ModelLocation, paths, paths, paths, paths, paths),
    ),
)


def _same_value(kind: TrainUpdateType, sent: object, got: object) -> bool:
    if kind in (TrainUpdateType.LOSS, TrainUpdateType.VAL_LOSS):
        assert isinstance(sent, float) and isinstance(got, float)
        # JSON has no NaN or infinity: both arrive as NaN ("no finite value").
        return math.isnan(got) if not math.isfinite(sent) else got == sent
    if kind is TrainUpdateType.EXCEPTION:
        assert isinstance(sent, RecordedException) and isinstance(got, RecordedException)
        return (got.exc_type, got.message, got.traceback) == (
            sent.exc_type,
            sent.message,
            sent.traceback,
        )
    return got == sent


@given(updates, st.integers(min_value=0, max_value=2**40), st.integers(0, 1000))
def test_round_trip_of_every_update_type(update: TrainUpdate, seq: int, attempt: int) -> None:
    line = encode_update(update, seq=seq, attempt=attempt, t=1.5)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one record, one line
    record = decode_line(line[:-1])
    assert (record.v, record.seq, record.attempt, record.t) == (SCHEMA_VERSION, seq, attempt, 1.5)
    decoded = to_update(record)
    assert decoded.type is update.type
    assert _same_value(update.type, update.value, decoded.value)


def test_required_keys_and_state_by_name() -> None:
    line = encode_update(
        TrainUpdate(TrainUpdateType.STATE, TrainingState.TRAINING), seq=1, attempt=0, t=2.0
    )
    obj = msgspec.json.decode(line)
    assert {"v", "type", "value", "t", "seq", "attempt"} <= set(obj)
    assert obj["value"] == "TRAINING"


def test_readers_accept_integer_states() -> None:
    record = decode_line(b'{"v":1,"type":"state","value":4,"t":0,"seq":1,"attempt":0}')
    assert to_update(record).value is TrainingState.CRASHED


def test_live_exception_keeps_type_message_and_traceback() -> None:
    try:
        raise ValueError("axes YX do not match data of shape (4, 64, 64)")
    except ValueError as exc:
        line = encode_update(TrainUpdate(TrainUpdateType.EXCEPTION, exc), seq=1, attempt=0, t=0)
    exception = to_update(decode_line(line[:-1])).value
    assert isinstance(exception, RecordedException)
    assert exception.exc_type == "ValueError"
    assert exception.message == "axes YX do not match data of shape (4, 64, 64)"
    assert "Traceback" in exception.traceback and "raise ValueError" in exception.traceback


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "invalid"),
        (b'{"v":1,"type":"loss","value":"\xff","t":0,"seq":1,"attempt":0}', "invalid"),
        (b'{"v":1,"type":"loss","value":1.0,"t":0,"seq":1}', "invalid"),  # no attempt
        (b'{"v":1,"type":"batch_idx","value":"3","t":0,"seq":1,"attempt":0}', "invalid"),
        (b'{"v":1,"type":"state","value":"SLEEPING","t":0,"seq":1,"attempt":0}', "invalid"),
        (
            b'{"v":1,"type":"exception","value":{"message":"x"},"t":0,"seq":1,"attempt":0}',
            "invalid",
        ),
        (b'{"v":1,"type":"careamist","value":{"gpu":"x"},"t":0,"seq":1,"attempt":0}', "invalid"),
        (b'{"v":1,"type":"weather","value":1,"t":0,"seq":1,"attempt":0}', "unknown_type"),
        (b'{"v":2,"type":"loss","value":1.0,"t":0,"seq":1,"attempt":0}', "newer_version"),
        (b"[1,2,3]", "invalid"),
        # an attempt before the first: it made a DONE run "starting, attempt 0" (hostile file)
        (b'{"v":1,"type":"state","value":"DONE","t":0,"seq":1,"attempt":-3}', "invalid"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(RecordError) as info:
        decode_line(line)
    assert info.value.reason == reason


def test_unknown_optional_keys_are_tolerated() -> None:
    record = decode_line(
        b'{"v":1,"type":"loss","value":0.5,"t":0,"seq":1,"attempt":2,"job":"12_3","gpu":"A100"}'
    )
    assert (record.job, record.attempt, to_update(record).value) == ("12_3", 2, 0.5)
