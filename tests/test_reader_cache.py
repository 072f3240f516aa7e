"""The reader cache: a later read decodes only what was appended, and is never wrong.

The property test drives real files and a real cache directory through appends, partial lines,
truncations, replacements and damaged cache entries, and after every read compares what the
cached read gives (every field of the state, and the ``status --json`` object) with a replay of
the file from its start.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpc_runner.stream import reader_cache
from hpc_runner.stream.records import ENCODER, make_record
from hpc_runner.stream.run_reader import RunReader, only_thread, read_runs
from hpc_runner.stream.run_state import RunState, replay
from hpc_runner.stream.state_codec import encode_state
from hpc_runner.stream.status import TrainUpdateType
from hpc_runner.watch.report import run_summary

T = TrainUpdateType


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


class Lines:
    """Lines as a writer makes them: every one unique (its time and sequence number)."""

    def __init__(self) -> None:
        self.stamp = 0

    def make(self, kind: int) -> bytes:
        self.stamp += 1
        n = self.stamp
        if kind == 0:
            record = make_record(T.LOSS, n / 3 if n % 5 else None, t=n, seq=n, attempt=n % 3)
        elif kind == 1:
            record = make_record(T.BATCH, n, t=n, seq=n, attempt=n % 3, job=f"j{n % 4}")
        elif kind == 2:
            # (attempt 2, the newest these lines have: an older attempt's is passed over)
            record = make_record(T.VAL_LOSS, 1 / n, t=n, seq=n, attempt=2, host=f"h{n % 3}")
        elif kind == 3:
            record = make_record(T.STATE, ["TRAINING", "DONE", "CRASHED"][n % 3], t=n, seq=n,
                                 attempt=n % 2)  # fmt: skip
        elif kind == 4:
            record = make_record(T.EPOCH, n % 7, t=n, seq=n, attempt=0)
        elif kind == 5:
            record = make_record(T.DEBUG, f"message {n}", t=n, seq=n, attempt=0)
        elif kind == 6:
            return b'{"v":1,"type":"warp","value":1,"t":%d,"seq":%d,"attempt":0}\n' % (n, n)
        elif kind == 7:
            return b"garbage %d\n" % n
        else:
            return b'{"v":9,"type":"loss","value":1,"t":%d,"seq":%d,"attempt":0}\n' % (n, n)
        return ENCODER.encode(record) + b"\n"


def same(cached: RunState, fresh: RunState, label: str) -> None:
    assert encode_state(cached) == encode_state(fresh)
    as_json = msgspec.json.encode
    summary = run_summary(label, cached, now=1e6)
    assert as_json(summary) == as_json(run_summary(label, fresh, now=1e6))
    for key in ("skipped_lines", "best_val_loss", "phase", "state", "loss", "attempt"):
        assert key in summary


def damage(entry: Path, how: int, where: int) -> None:
    try:
        data = bytearray(entry.read_bytes())
    except FileNotFoundError:
        return
    if how == 0 and data:  # one bit flipped
        data[where % len(data)] ^= 0x10
    elif how == 1:  # cut short, as a full disk would leave it
        data = data[: where % (len(data) + 1)]
    elif how == 2:  # written by a newer hpc-runner
        struct.pack_into("<I", data, 16, reader_cache.CACHE_FORMAT + 1)
    elif how == 3:
        data = bytearray(b"\x00" * 40)
    else:
        entry.unlink()
        return
    entry.write_bytes(bytes(data))


OPERATIONS = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 1), st.lists(st.integers(0, 8), max_size=12)),
    st.tuples(st.just("partial"), st.integers(0, 1), st.integers(0, 8), st.integers(1, 60)),
    st.tuples(st.just("truncate"), st.integers(0, 1), st.integers(0, 100)),
    st.tuples(st.just("replace"), st.integers(0, 1), st.lists(st.integers(0, 8), max_size=8)),
    st.tuples(st.just("rewrite"), st.integers(0, 1), st.lists(st.integers(0, 8), max_size=8)),
    st.tuples(st.just("damage"), st.integers(0, 1), st.integers(0, 4), st.integers(0, 10**6)),
    st.tuples(st.just("read")),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(OPERATIONS, max_size=30))
def test_a_cached_read_equals_a_replay_whatever_happened_between(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    operations: list[tuple],  # type: ignore[type-arg]
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
    paths = [folder / "a" / "status.jsonl", folder / "b" / "status.jsonl"]
    for path in paths:
        path.parent.mkdir()
    lines = Lines()
    pending = [b"", b""]  # the rest of a line written in part
    for operation in [*operations, ("read",)]:
        kind = operation[0]
        if kind == "read":
            cached = read_runs(paths)
            for path, item in zip(paths, cached, strict=True):
                same(item.run, replay(path), path.parent.name)
            continue
        path = paths[operation[1]]
        if kind == "append":
            body = pending[operation[1]] + b"".join(lines.make(k) for k in operation[2])
            pending[operation[1]] = b""
            with path.open("ab") as file:
                file.write(body)
        elif kind == "partial":
            line = pending[operation[1]] or lines.make(operation[2])
            cut = min(operation[3], len(line) - 1)
            with path.open("ab") as file:
                file.write(line[:cut])
            pending[operation[1]] = line[cut:]
        elif kind == "truncate" and path.exists():
            size = path.stat().st_size
            os.truncate(path, size * operation[2] // 100)
            pending[operation[1]] = b""
        elif kind in ("replace", "rewrite"):
            body = b"".join(lines.make(k) for k in operation[2])
            pending[operation[1]] = b""
            if kind == "replace":  # a new file (new inode) renamed over the old one
                new = path.with_name("new.jsonl")
                new.write_bytes(body)
                os.replace(new, path)
            else:  # truncated and written again in place
                with path.open("wb") as file:
                    file.write(body)
        elif kind == "damage":
            damage(reader_cache.entry_path(path), operation[2], operation[3])


def training_file(path: Path, steps: int) -> None:
    lines = Lines()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines.make(k) for k in [4] + [1, 0] * steps + [2]))


def test_a_later_read_decodes_only_what_was_appended(tmp_path: Path, cache_home: Path) -> None:
    """Proof by a change the cache cannot see: a byte in the middle of the file, changed after
    it was cached, is not read again (a replay sees it); what is appended is."""
    path = tmp_path / "run" / "status.jsonl"
    training_file(path, 200)
    (first,) = read_runs([path])
    assert reader_cache.entry_path(path).is_file()
    data = bytearray(path.read_bytes())
    middle = data.index(b'"type":"batch_idx"', len(data) // 2)
    data[middle + 8] = ord("X")  # that line no longer decodes; same size, same head and end
    path.write_bytes(bytes(data))
    with path.open("ab") as file:
        file.write(Lines().make(5))
    (again,) = read_runs([path])
    assert again.run.records == first.run.records + 1 and again.run.skipped_lines == 0
    assert replay(path).skipped_lines == 1  # the file itself did change
    (uncached,) = read_runs([path], cache=False)
    assert uncached.run.skipped_lines == 1


def test_any_damage_to_an_entry_costs_a_re_read_never_a_wrong_result(
    tmp_path: Path, cache_home: Path
) -> None:
    path = tmp_path / "run" / "status.jsonl"
    lines = Lines()
    path.parent.mkdir()
    path.write_bytes(b"".join(lines.make(k) for k in [4, 1, 0, 1, 0, 2, 3, 5, 7]))
    fresh = replay(path)
    read_runs([path])
    entry = reader_cache.entry_path(path)
    good = entry.read_bytes()
    damaged = [good[:cut] for cut in range(0, len(good), 5)]  # cut short anywhere
    for where in range(len(good)):  # and every byte with one bit flipped
        flipped = bytearray(good)
        flipped[where] ^= 0x10
        damaged.append(bytes(flipped))
    for data in damaged:
        entry.write_bytes(data)
        (item,) = read_runs([path])
        same(item.run, fresh, "run")
        assert entry.read_bytes() == good  # read again, and stored whole again


def test_a_file_truncated_and_written_past_the_cached_end_is_read_again(
    tmp_path: Path, cache_home: Path
) -> None:
    path = tmp_path / "run" / "status.jsonl"
    training_file(path, 20)
    read_runs([path])
    size = path.stat().st_size
    os.truncate(path, size // 2)  # in place: same inode, same first bytes ...
    lines = Lines()
    lines.stamp = 1000
    with path.open("ab") as file:
        file.write(b"".join(lines.make(0) for _ in range(40)))
    assert path.stat().st_size > size  # ... and longer than what the cache covers
    (item,) = read_runs([path])
    same(item.run, replay(path), "run")


def test_the_cache_lives_in_the_users_cache_directory(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run" / "status.jsonl"
    training_file(path, 3)
    before = sorted(p.name for p in path.parent.iterdir())
    read_runs([path])
    assert sorted(p.name for p in path.parent.iterdir()) == before  # nothing in the run dir
    entries = list((cache_home / "hpc-runner" / "status").glob("*.bin"))
    assert entries == [reader_cache.entry_path(path)]
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # not absolute: ignored (XDG spec)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert reader_cache.cache_dir() == tmp_path / "home" / ".cache" / "hpc-runner"


def test_no_cache_neither_reads_nor_writes_it(tmp_path: Path, cache_home: Path) -> None:
    path = tmp_path / "run" / "status.jsonl"
    training_file(path, 3)
    (item,) = read_runs([path], cache=False)
    assert not cache_home.exists()
    same(item.run, replay(path), "run")


def test_an_unwritable_cache_directory_only_costs_speed(tmp_path: Path, cache_home: Path) -> None:
    cache_home.mkdir()
    (cache_home / "hpc-runner").write_text("a file where a directory should be")
    path = tmp_path / "run" / "status.jsonl"
    training_file(path, 3)
    (item,) = read_runs([path])
    same(item.run, replay(path), "run")


def test_a_file_that_cannot_be_read_now_says_so_as_a_replay_does(
    tmp_path: Path, cache_home: Path
) -> None:
    path = tmp_path / "run" / "status.jsonl"
    training_file(path, 3)
    read_runs([path])
    path.unlink()
    os.mkfifo(path)  # a FIFO now: never opened for reading
    (item,) = read_runs([path])
    fresh = replay(path)
    assert fresh.error and "FIFO" in fresh.error
    same(item.run, fresh, "run")


@pytest.mark.parametrize(
    ("start_method", "fork", "started"),
    [(None, False, "spawn"), (None, True, "fork"), ("spawn", True, "spawn")],
)
def test_workers_read_as_a_replay_does_and_fill_the_cache(
    tmp_path: Path, cache_home: Path, start_method: str | None, fork: bool, started: str
) -> None:
    """Spawned or forked (the caller runs no other thread), workers read as a replay does; a
    start method asked for is kept."""
    paths = [tmp_path / f"run{i}" / "status.jsonl" for i in range(4)]
    for i, path in enumerate(paths):
        training_file(path, 50 * (i + 1))
    with RunReader(workers=2, parallel_min_bytes=0, start_method=start_method) as reader:
        reader.submit(paths, fork=fork)
        assert len(reader._futures) == 4  # all four went to the worker processes
        assert reader._pool is not None
        assert reader._pool._mp_context.get_start_method() == started  # type: ignore[attr-defined]
        got = {}
        while reader.pending:
            got.update((item.path, item) for item in reader.collect())
    for path in paths:
        same(got[path].run, replay(path), path.parent.name)
        assert reader_cache.load(path) is not None  # written by the worker


def test_concurrent_readers_never_leave_a_broken_entry(tmp_path: Path, cache_home: Path) -> None:
    path = tmp_path / "run" / "status.jsonl"
    training_file(path, 100)
    lines = Lines()
    lines.stamp = 10**6
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                read_runs([path])
        except BaseException as error:  # reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(200):
        with path.open("ab") as file:
            file.write(lines.make(0) + lines.make(1))
        assert reader_cache.load(path) is None or True  # reading meanwhile never raises
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    entry = reader_cache.load(path)
    assert entry is not None  # whole: header, checksum and payload agree
    (final,) = read_runs([path])
    same(final.run, replay(path), "run")
    leftovers = list((cache_home / "hpc-runner" / "status").glob("*.tmp"))
    assert leftovers == []


def test_status_json_cached_equals_no_cache_and_a_replay(tmp_path: Path, cache_home: Path) -> None:
    """The command a user runs: first call, repeated call, after an append, and --no-cache all
    print the same objects as a replay; only the cached calls touch the cache directory."""
    from tests.run_support import cli

    runs = tmp_path / "runs"
    for name, steps in (("a", 30), ("b", 5)):
        training_file(runs / name / "status.jsonl", steps)
    lines = Lines()
    lines.stamp = 10**5
    with (runs / "b" / "status.jsonl").open("ab") as file:
        file.write(lines.make(7) + lines.make(2))  # a skipped line and a best val_loss

    def status(*extra: str) -> list[dict]:  # type: ignore[type-arg]
        answer = cli("status", str(runs), "--json", *extra, timeout=60)
        assert answer.returncode == 0, answer.stderr
        return msgspec.json.decode(answer.stdout.encode())  # type: ignore[no-any-return]

    uncached = status("--no-cache")
    assert not cache_home.exists()
    first = status()
    assert len(list((cache_home / "hpc-runner" / "status").glob("*.bin"))) == 2
    assert status() == first == uncached
    assert first[1]["skipped_lines"] == 1 and first[1]["best_val_loss"] is not None
    with (runs / "a" / "status.jsonl").open("ab") as file:
        file.write(lines.make(0) + lines.make(8))
    appended = status()
    assert appended == status("--no-cache") != first
    assert appended[0]["skipped_lines"] == 1


def test_workers_start_while_stderr_is_captured_as_in_the_tui(
    tmp_path: Path, cache_home: Path
) -> None:
    """``hpc-runner watch`` reads a large sweep with worker processes while Textual holds
    ``sys.stderr`` as a capture whose ``fileno()`` is -1; starting multiprocessing's resource
    tracker then failed ("bad value(s) in fds_to_keep") and the watcher stopped. A fresh
    interpreter, so the tracker is not already running; the capture below behaves as Textual's
    (textual.app's print capture returns -1 from fileno())."""
    paths = [tmp_path / f"run{i}" / "status.jsonl" for i in range(2)]
    for path in paths:
        training_file(path, 20)
    script = f"""
import sys
from pathlib import Path
from hpc_runner.stream.run_reader import RunReader
from hpc_runner.stream.run_state import replay
from hpc_runner.stream.state_codec import encode_state

class Capture:
    def write(self, text): return sys.__stderr__.write(text)
    def flush(self): pass
    def fileno(self): return -1

sys.stderr = Capture()
paths = [Path(p) for p in {[str(p) for p in paths]!r}]
with RunReader(workers=2, parallel_min_bytes=0) as reader:
    reader.submit(paths)
    assert len(reader._futures) == 2
    got = {{}}
    while reader.pending:
        got.update((item.path, item) for item in reader.collect())
assert all(encode_state(got[p].run) == encode_state(replay(p)) for p in paths)
assert isinstance(sys.stderr, Capture)  # given back
print("ok")
"""
    answer = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert answer.stdout.strip() == "ok", answer.stderr[-2000:]


def test_workers_are_forked_only_where_no_other_thread_runs(tmp_path: Path) -> None:
    """A fork copies one thread: a lock another thread held stays locked in the child. So
    ``status`` (no thread) forks its workers, a process with any other thread spawns them."""
    code = "from hpc_runner.stream.run_reader import only_thread; print(only_thread())"
    alone = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert alone.stdout.strip() == ("True" if sys.platform == "linux" else "False")
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not only_thread()
    finally:
        release.set()
        other.join()


def test_the_fingerprint_covers_every_module_of_the_stream_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached state must be the one this code would fold. The fingerprint listed six modules
    and missed resources.py, which folds the ``system`` records: after a change there a cached
    read gave an old peak memory, ``--no-cache`` the new one."""
    import shutil

    import hpc_runner.stream as package

    copy = tmp_path / "stream"
    shutil.copytree(Path(package.__file__).parent, copy, ignore=shutil.ignore_patterns("*.pyc"))
    monkeypatch.setattr(package, "__file__", str(copy / "__init__.py"))
    compute = reader_cache.fingerprint.__wrapped__
    assert compute() == reader_cache.fingerprint()  # the copy is this code
    modules = sorted(copy.glob("*.py"))
    assert {"resources.py", "system_values.py", "run_state.py"} <= {m.name for m in modules}
    seen = {compute()}
    for module in modules:  # each change, one module at a time, gives a new fingerprint
        module.write_bytes(module.read_bytes() + b"\n# changed\n")
        seen.add(compute())
    assert len(seen) == len(modules) + 1
