"""A tail's position: saved, resumed elsewhere, and distrusted when the file is not the same."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpc_runner.stream.records import make_record
from hpc_runner.stream.status import TrainUpdateType
from hpc_runner.stream.tail import StatusTail

T = TrainUpdateType


def loss_line(stamp: int, value: float = 0.5, host: str | None = None) -> bytes:
    record = make_record(T.LOSS, value, t=float(stamp), seq=stamp, attempt=0, host=host)
    from hpc_runner.stream.records import ENCODER

    return ENCODER.encode(record) + b"\n"


def stream_of(kinds: list[int]) -> bytes:
    """Good records, garbage, blank and oversized lines (over 200 bytes), each one unique."""
    parts = []
    for stamp, kind in enumerate(kinds, 1):
        if kind == 0:
            parts.append(loss_line(stamp, stamp / 7))
        elif kind == 1:
            parts.append(b"garbage %d\n" % stamp)
        elif kind == 2:
            parts.append(b"\n")
        else:
            parts.append(b"x" * (150 + 40 * kind) + b"%d\n" % stamp)
    return b"".join(parts)


def seen(batch) -> list[tuple[int, float]]:  # type: ignore[no-untyped-def]
    return [(record.seq, record.value) for record in batch.records]


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(st.integers(0, 5), min_size=1, max_size=30),
    steps=st.lists(st.tuples(st.integers(0, 100), st.booleans()), max_size=25),
)
def test_a_resumed_tail_reads_what_one_tail_reads(
    tmp_path: Path, kinds: list[int], steps: list[tuple[int, bool]]
) -> None:
    """However the stream is cut, and wherever the tail is saved and resumed (in an oversized
    line, a partial line, after garbage), the records and skip counts are those of one read."""
    stream = stream_of(kinds)
    path = tmp_path / "status.jsonl"
    path.unlink(missing_ok=True)
    options = {"max_line_bytes": 200, "max_read_bytes": 64}
    tail = StatusTail(path, **options)
    records: list[tuple[int, float]] = []
    skipped: Counter[str] = Counter()
    written = 0
    for share, resume in [*steps, (100, False)]:
        cut = max(written, len(stream) * share // 100)
        with path.open("ab") as file:
            file.write(stream[written:cut])
        written = cut
        while True:
            batch = tail.read()
            assert not batch.reset
            records += seen(batch)
            skipped += batch.skipped
            if not tail.pending:
                break
        position = tail.position()
        if resume and position is not None:
            tail = StatusTail.resume(path, position, **options)
    whole = StatusTail(path, max_line_bytes=200)
    batch = whole.read()
    assert records == seen(batch)
    assert skipped == batch.skipped


def test_a_file_rewritten_with_the_same_head_is_caught_by_its_fence(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    first = loss_line(1) + loss_line(2) + loss_line(3)
    path.write_bytes(first)
    tail = StatusTail(path)
    assert len(tail.read().records) == 3
    position = tail.position()
    assert position is not None
    # Truncated after the first record and written on, in place: same inode, same first bytes,
    # not shorter than what was read.
    with path.open("r+b") as file:
        file.truncate(len(loss_line(1)))
        file.seek(0, os.SEEK_END)
        file.write(loss_line(7) + loss_line(8) + loss_line(9) + loss_line(10))
    assert os.path.getsize(path) >= position.offset
    for reader in (tail, StatusTail.resume(path, position)):
        batch = reader.read()
        assert batch.reset and [seq for seq, _ in seen(batch)] == [1, 7, 8, 9, 10]


def test_the_fence_holds_a_whole_record_whatever_its_host(tmp_path: Path) -> None:
    """A long host name makes the last 64 bytes of every line alike; the fence still differs."""
    host = "gpu-node-0017.a-very-long-cluster-domain.example.org"
    path = tmp_path / "status.jsonl"
    path.write_bytes(loss_line(1, host=host) + loss_line(2, host=host))
    tail = StatusTail(path)
    tail.read()
    with path.open("r+b") as file:
        file.truncate(len(loss_line(1, host=host)))
        file.seek(0, os.SEEK_END)
        file.write(loss_line(3, host=host))
    assert tail.read().reset


def test_a_file_that_vanished_starts_the_history_over(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    path.write_bytes(loss_line(1))
    tail = StatusTail(path)
    tail.read()
    path.unlink()
    assert tail.read().reset
    assert tail.position() is None and tail.offset == 0
    assert not tail.read().reset  # said once
    path.write_bytes(loss_line(2))
    assert [seq for seq, _ in seen(tail.read())] == [2]
