"""The incremental tail and the fold: a reader that never trusts the file."""

from __future__ import annotations

import math
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpc_runner.stream.records import encode_update
from hpc_runner.stream.run_state import RunState, replay
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.tail import StatusTail

T = TrainUpdateType


def lines_for(updates: list[TrainUpdate], attempt: int = 0) -> list[bytes]:
    return [
        encode_update(update, seq=i, attempt=attempt, t=100.0 + i)
        for i, update in enumerate(updates, 1)
    ]


def training(epochs: int = 2, batches: int = 3) -> list[TrainUpdate]:
    updates = [
        TrainUpdate(T.MAX_EPOCH, epochs),
        TrainUpdate(T.MAX_BATCH, batches),
        TrainUpdate(T.STATE, TrainingState.TRAINING),
    ]
    for epoch in range(epochs):
        updates.append(TrainUpdate(T.EPOCH, epoch))
        for batch in range(batches):
            updates += [TrainUpdate(T.BATCH, batch), TrainUpdate(T.LOSS, 1.0 / (1 + batch))]
        updates.append(TrainUpdate(T.VAL_LOSS, 0.5 - epoch / 10))
    updates.append(TrainUpdate(T.STATE, TrainingState.DONE))
    return updates


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


def read_all(tail: StatusTail) -> list[tuple[object, object, int]]:
    got = []
    for record in tail.read().records:
        got.append((record.kind, record.value, record.seq))
    return got


STREAM = b"".join(lines_for(training()))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_same_records_however_the_stream_is_split(tmp_path: Path, cuts: list[int]) -> None:
    path = tmp_path / f"s{len(cuts)}_{sum(cuts)}.jsonl"
    path.unlink(missing_ok=True)
    tail = StatusTail(path)
    got = []
    previous = 0
    for cut in [*sorted(cuts), len(STREAM)]:
        append(path, STREAM[previous:cut])
        previous = cut
        got += read_all(tail)
    expected = StatusTail(path)
    assert got == read_all(expected)
    assert len(got) == len(training())


garbage = st.one_of(
    st.binary(max_size=60).filter(lambda b: b"\n" not in b),
    st.sampled_from(
        [
            b"{",
            b'{"v":1}',
            b'{"v":9,"type":"loss","value":1,"t":0,"seq":1,"attempt":0}',
            b'{"v":1,"type":"warp","value":1,"t":0,"seq":1,"attempt":0}',
            b"\xff\xfe\x00",
            b'{"v":1,"type":"loss","value":1,"t":0,"seq":1,"attempt":0} {"v":1}',
        ]
    ),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.tuples(st.integers(0, 60), garbage), max_size=15))
def test_garbage_never_stops_good_records(tmp_path: Path, junk: list[tuple[int, bytes]]) -> None:
    good = lines_for(training())
    mixed = list(good)
    for position, line in sorted(junk, reverse=True):
        mixed.insert(min(position, len(mixed)), line + b"\n")
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(mixed))
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"".join(good))

    run, reference = replay(path), replay(clean)
    assert run.status == reference.status
    assert run.status.state is TrainingState.DONE
    assert list(run.losses) == list(reference.losses)
    assert run.records == len(good)
    non_blank_junk = sum(1 for _, line in junk if line.strip())
    assert run.skipped_lines == non_blank_junk


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    line = lines_for([TrainUpdate(T.LOSS, 0.25)])[0]
    path.write_bytes(line[:10])
    tail = StatusTail(path)
    assert tail.read().records == []
    append(path, line[10:])
    batch = tail.read()
    assert [r.value for r in batch.records] == [0.25]
    assert not batch.skipped


def test_missing_file_is_empty_and_appears_later(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    tail = StatusTail(path)
    assert tail.read().records == []
    path.write_bytes(b"".join(lines_for(training())))
    assert len(tail.read().records) == len(training())


def test_shrunk_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    path.write_bytes(b"".join(lines_for(training(epochs=3))))
    run = RunState()
    tail = StatusTail(path)
    run.apply_batch(tail.read())
    assert run.status.max_epochs == 3
    path.write_bytes(b"".join(lines_for(training(epochs=1)[:3])))  # truncated, rewritten
    batch = tail.read()
    assert batch.reset
    run.apply_batch(batch)
    assert (run.status.max_epochs, run.status.state, len(run.losses)) == (
        1,
        TrainingState.TRAINING,
        0,
    )


def test_replaced_file_of_same_size_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    first = b"".join(lines_for(training()))
    path.write_bytes(first)
    tail = StatusTail(path)
    tail.read()
    # Rewritten in place (same inode) with another run's records, not shorter than before.
    second = b"".join(lines_for(training(), attempt=1))
    second = second.replace(b'"t":1', b'"t":2')  # different first bytes
    with path.open("r+b") as file:
        file.write(second)
    assert tail.read().reset
    # Replaced by a new file (new inode), e.g. rsync or an editor's save.
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(first + first)
    os.replace(replacement, path)
    batch = tail.read()
    assert batch.reset and len(batch.records) == 2 * len(training())


def test_oversized_line_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    tail = StatusTail(path, max_line_bytes=1000)
    good = lines_for(training())
    append(path, good[0] + b"x" * 700)
    assert tail.read().records != []
    append(path, b"y" * 700)  # now over the cap, still no newline: dropped as it streams
    assert tail.read().records == []
    append(path, b"z" * 10 + b"\n" + b"".join(good[1:]))
    batch = tail.read()
    assert batch.skipped == {"oversized": 1}
    assert len(batch.records) == len(good) - 1


def test_large_file_is_read_in_slices(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    path.write_bytes(b"".join(lines_for(training(epochs=50))))
    sliced = RunState()
    tail = StatusTail(path, max_read_bytes=4096)
    slices = 0
    while True:
        sliced.apply_batch(tail.read())
        slices += 1
        if not tail.pending:
            break
    assert slices > 3
    whole = replay(path)
    assert sliced.status == whole.status and list(sliced.losses) == list(whole.losses)


def test_fold_gives_what_a_ui_needs(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    updates = [
        *training(epochs=2, batches=2)[:-1],
        TrainUpdate(T.DEBUG, "checkpoint saved"),
        TrainUpdate(T.LOSS, math.nan),
        TrainUpdate(T.EXCEPTION, RuntimeError("CUDA out of memory")),
        TrainUpdate(T.STATE, TrainingState.CRASHED),
    ]
    path.write_bytes(b"".join(lines_for(updates)))
    run = replay(path)
    assert run.status.state is TrainingState.CRASHED
    assert len(run.losses) == 5 and math.isnan(run.losses[-1]) and math.isnan(run.status.loss)
    assert run.val_losses == [(0, 0.5), (1, 0.4)]
    assert run.best_val_loss == 0.4
    assert run.exception is not None and run.exception.exc_type == "RuntimeError"
    assert [message for _, message in run.debug] == ["checkpoint saved"]
    assert run.training_since == 103.0


def test_fold_matches_update_by_update(tmp_path: Path) -> None:
    """The coalescing fold ends where TrainingStatus.update applied one by one ends."""
    from hpc_runner.stream.records import decode_line, to_update
    from hpc_runner.stream.status import TrainingStatus

    lines = lines_for(training(epochs=3, batches=4))
    status = TrainingStatus()
    for line in lines:
        status.update(to_update(decode_line(line[:-1])))
    path = tmp_path / "status.jsonl"
    path.write_bytes(b"".join(lines))
    assert replay(path).status == status


def test_highest_attempt_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    path.write_bytes(
        b"".join(lines_for(training()[:5], attempt=0) + lines_for(training(), attempt=1))
    )
    assert replay(path).attempt == 1
