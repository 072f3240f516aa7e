"""The watcher with real files, real watchdog observers (inotify and polling), real threads."""

from __future__ import annotations

import errno
import os
import queue
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from hpc_runner.stream.run_reader import RunReader
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.runs import STATUS_FILE
from hpc_runner.stream.status import TrainingState, TrainUpdateType
from hpc_runner.watch import watcher as watcher_module
from hpc_runner.watch.batches import WatchBatch
from hpc_runner.watch.changes import scan_run_tree
from hpc_runner.watch.meta import key_settings, load_meta, read_tail
from hpc_runner.watch.mounts import (
    filesystem_type,
    is_network_filesystem,
    mount_of,
    parse_mounts,
)
from hpc_runner.watch.watcher import DEFAULT_NETWORK_POLL, RunWatcher
from tests.tui_support import FakeTraining, append_line, write_fixture_runs

MODES = [pytest.param(None, id="inotify"), pytest.param(0.05, id="polling")]

# watchdog warns when a directory tree appears faster than it adds watches; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


class Collector:
    """The watcher's consumer: batches land in a queue; ``next`` acknowledges each one."""

    def __init__(self) -> None:
        self.batches: queue.Queue[WatchBatch] = queue.Queue()
        self.watcher: RunWatcher | None = None

    def deliver(self, batch: WatchBatch) -> bool:
        self.batches.put(batch)
        return True

    def start(self, root: Path, **options: object) -> RunWatcher:
        options.setdefault("min_interval", 0.0)
        self.watcher = RunWatcher(root, self.deliver, **options)  # type: ignore[arg-type]
        self.watcher.start()
        return self.watcher

    def next(self, timeout: float = 20.0, *, ack: bool = True) -> WatchBatch:
        batch = self.batches.get(timeout=timeout)
        if ack:
            assert self.watcher is not None
            self.watcher.acknowledge()
        return batch

    def initial(self) -> list[WatchBatch]:
        """The batches of the initial scan: runs named first, then read, up to the scan's end."""
        return self.until(lambda batch: batch.initial_scan_done)

    def until(self, condition, timeout: float = 20.0) -> list[WatchBatch]:
        """Batches up to and including the first one for which ``condition(batch)`` holds."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            batch = self.next(max(0.01, deadline - time.monotonic()))
            seen.append(batch)
            if condition(batch):
                return seen


@pytest.fixture
def collector():
    collector = Collector()
    yield collector
    if collector.watcher is not None:
        collector.watcher.stop()


def records_of(batches: list[WatchBatch], label: str) -> list:
    return [r for b in batches for u in b.updates if u.label == label for r in u.batch.records]


def folded(batches: list[WatchBatch], label: str, run: RunState | None = None) -> RunState:
    """What the consumer (the app) makes of one run's updates: each applied in turn. A run's
    first read arrives as one folded state, what follows as records."""
    run = RunState() if run is None else run
    for update in (u for b in batches for u in b.updates if u.label == label):
        run.apply_batch(update.batch)
    return run


# -- mount table ---------------------------------------------------------------------------------

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
server:/export/home /home nfs4 rw,vers=4.2 0 0
10.0.0.1@o2ib:/scratch /scratch lustre rw 0 0
/dev/vdb /scratch/local\\040disk ext4 rw 0 0
sshfs#me@host: /mnt/remote fuse.sshfs rw 0 0
"""


def test_mount_table_is_parsed_with_escapes_and_longest_prefix_wins() -> None:
    mounts = parse_mounts(MOUNTS + "garbage\n")
    assert [m.fs_type for m in mounts] == ["ext4", "nfs4", "lustre", "ext4", "fuse.sshfs"]
    assert mounts[3].mount_point == "/scratch/local disk"
    assert mount_of("/home/me/runs", mounts).fs_type == "nfs4"
    assert mount_of("/homework", mounts).fs_type == "ext4"
    assert mount_of("/scratch/me", mounts).fs_type == "lustre"
    assert mount_of("/scratch/local disk/runs", mounts).fs_type == "ext4"


@pytest.mark.parametrize(
    ("fs_type", "network"),
    [("nfs", True), ("nfs4", True), ("lustre", True), ("gpfs", True), ("cifs", True),
     ("smb3", True), ("beegfs", True), ("fuse.sshfs", True), ("ext4", False), ("xfs", False),
     ("tmpfs", False), ("overlay", False), (None, False)],
)  # fmt: skip
def test_network_filesystems_are_recognised(fs_type: str | None, network: bool) -> None:
    assert is_network_filesystem(fs_type) is network


def test_a_root_on_a_network_filesystem_is_polled(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\nserver:/x {tmp_path} nfs4 rw 0 0\n")
    (tmp_path / "runs").mkdir()
    assert filesystem_type(tmp_path / "runs", mounts) == "nfs4"
    watcher = RunWatcher(tmp_path / "runs", lambda batch: True, mounts_file=mounts)
    assert (watcher.mode, watcher.poll_interval) == ("polling", DEFAULT_NETWORK_POLL)
    assert "nfs4" in watcher.watching
    local = RunWatcher(tmp_path / "runs", lambda batch: True, mounts_file=tmp_path / "missing")
    assert local.mode == "inotify"
    assert RunWatcher(tmp_path, lambda batch: True, poll=0.5).watching.startswith("polling every")
    with pytest.raises(ValueError, match="positive"):
        RunWatcher(tmp_path, lambda batch: True, poll=0)


# -- discovery and records -----------------------------------------------------------------------


@pytest.mark.parametrize("poll", MODES)
def test_existing_runs_are_read_and_appends_show_up(
    tmp_path: Path, collector: Collector, poll: float | None
) -> None:
    training = FakeTraining(tmp_path / "sweep" / "a").begin(2, 3)
    collector.start(tmp_path, poll=poll)
    named, read = collector.initial()
    assert [(u.label, len(u.batch.records), u.pending) for u in named.updates] == [
        ("sweep/a", 0, True)
    ]
    # The first read is the run's whole history, folded off the UI thread (issue 15).
    assert [(u.label, u.batch.state.records, u.pending) for u in read.updates] == [
        ("sweep/a", 3, False)
    ]
    training.epoch(0, [0.5, 0.4, 0.3])
    batches = collector.until(lambda b: len(records_of([b], "sweep/a")) > 0)
    appended = records_of(batches, "sweep/a")
    while len(appended) < 7:  # the appends may arrive in more than one delivery
        appended += records_of([collector.next()], "sweep/a")
    assert [r.kind.value for r in appended] == ["epoch_idx", *["batch_idx", "loss"] * 3]
    assert not any(b.initial_scan_done for b in batches)


@pytest.mark.parametrize("poll", MODES)
def test_a_run_created_after_start_shows_up(
    tmp_path: Path, collector: Collector, poll: float | None
) -> None:
    collector.start(tmp_path, poll=poll)
    assert [b.updates for b in collector.initial()] == [[]]
    # A whole sweep directory appears at once, as `mkdir -p` and the first writes make it.
    FakeTraining(tmp_path / "new_sweep" / "deep" / "run1").begin(4, 5)
    batches = collector.until(lambda b: any(u.label == "new_sweep/deep/run1" for u in b.updates))
    run = folded(batches, "new_sweep/deep/run1")
    while run.records < 3:
        run = folded([collector.next()], "new_sweep/deep/run1", run)
    status = run.status
    assert (status.max_epochs, status.max_batches, status.state) == (4, 5, TrainingState.TRAINING)


def test_work_submitit_and_hidden_folders_hold_no_runs(
    tmp_path: Path, collector: Collector
) -> None:
    FakeTraining(tmp_path / "run").begin(1, 1)
    for inner in ("run/work/checkpoints", "run/submitit", ".hidden/run"):
        FakeTraining(tmp_path / inner).begin(1, 1)
    collector.start(tmp_path)
    assert {u.label for b in collector.initial() for u in b.updates} == {"run"}
    FakeTraining(tmp_path / "run" / "work" / "later").begin(1, 1)
    FakeTraining(tmp_path / "visible").begin(1, 1)
    batches = collector.until(lambda b: any(u.label == "visible" for u in b.updates))
    assert {u.label for b in batches for u in b.updates} == {"visible"}
    names = sorted(entry.name for entry in scan_run_tree(str(tmp_path / "run")))
    assert names == [STATUS_FILE]


def test_removed_and_replaced_status_files(tmp_path: Path, collector: Collector) -> None:
    FakeTraining(tmp_path / "gone").begin(1, 1)
    kept = FakeTraining(tmp_path / "kept").begin(3, 3).epoch(0, [1.0, 0.9, 0.8])
    collector.start(tmp_path)
    collector.initial()
    shutil.rmtree(tmp_path / "gone")
    removed = collector.until(lambda b: bool(b.removed))
    assert [path.name for b in removed for path in b.removed] == ["gone"]
    # A new attempt that rewrites the file from scratch: readers must start over.
    status = kept.run_dir / STATUS_FILE
    replacement = tmp_path / "replacement.jsonl"
    FakeTraining(tmp_path / "elsewhere").begin(9, 9)
    shutil.copy(tmp_path / "elsewhere" / STATUS_FILE, replacement)
    os.replace(replacement, status)
    batches = collector.until(lambda b: any(u.batch.reset for u in b.updates))
    reset = next(u for b in batches for u in b.updates if u.batch.reset)
    assert reset.label == "kept"
    assert [r.value for r in reset.batch.records][:2] == [9, 9]


def test_malformed_lines_are_counted_not_fatal(tmp_path: Path, collector: Collector) -> None:
    training = FakeTraining(tmp_path / "run").begin(2, 2)
    collector.start(tmp_path)
    collector.initial()
    status = training.run_dir / STATUS_FILE
    append_line(status, b"not json\n")
    append_line(status, b'{"v":1,"type":"warp drive","value":1,"t":1,"seq":9,"attempt":0}\n')
    append_line(status, b"\xff\xfe\x00garbage\n")
    training.debug("still alive")
    batches = collector.until(lambda b: bool(records_of([b], "run")))
    skipped = sum((u.batch.skipped for b in batches for u in b.updates), start=Counter())
    assert skipped == {"invalid": 2, "unknown_type": 1}
    assert records_of(batches, "run")[-1].value == "still alive"


def test_a_large_file_is_folded_at_once_and_its_appends_arrive_in_slices(
    tmp_path: Path, collector: Collector
) -> None:
    training = FakeTraining(tmp_path / "big").begin(2, 2000)
    training.epoch(0, [0.5] * 2000)
    collector.start(tmp_path, read_slice=16 << 10, cycle_budget=32 << 10)
    _named, read = collector.initial()
    assert read.updates[0].batch.state.records == 4004  # one state, not 4004 records to fold
    before = (training.run_dir / STATUS_FILE).stat().st_size
    training.epoch(1, [0.4] * 2000)
    appended = (training.run_dir / STATUS_FILE).stat().st_size - before
    # (Until every appended record arrived: the watcher may catch up with the writer midway.)
    batches: list[WatchBatch] = []
    while sum(len(u.batch.records) for b in batches for u in b.updates) < 4001:
        batches.append(collector.next())
    assert len(batches) >= appended // (32 << 10)  # no delivery holds more than its budget
    assert sum(len(u.batch.records) for b in batches for u in b.updates) == 4001


def test_deliveries_wait_for_acknowledgement_and_coalesce(
    tmp_path: Path, collector: Collector
) -> None:
    training = FakeTraining(tmp_path / "run").begin(1, 100)
    collector.start(tmp_path, ack_timeout=600)
    collector.next()  # the run's name
    collector.next(ack=False)  # its records
    for batch in range(30):
        training.write(TrainUpdateType.BATCH, batch)
    time.sleep(0.3)  # time for events to arrive; nothing may be delivered before the ack
    assert collector.batches.empty()
    assert collector.watcher is not None
    collector.watcher.acknowledge()
    merged = collector.next()
    assert [r.value for r in records_of([merged], "run")] == list(range(30))


def test_the_safety_rescan_finds_what_events_missed(tmp_path: Path, collector: Collector) -> None:
    training = FakeTraining(tmp_path / "run").begin(1, 1)
    # The observer polls so rarely that only the re-scan can notice anything in this test.
    collector.start(tmp_path, poll=3600, rescan_interval=0.1)
    collector.initial()
    training.debug("seen by the re-scan")
    FakeTraining(tmp_path / "late").begin(1, 1)
    batches = collector.until(lambda b: any(u.label == "late" for u in b.updates))
    if not records_of(batches, "run"):
        batches += collector.until(lambda b: bool(records_of([b], "run")))
    assert records_of(batches, "run")[-1].value == "seen by the re-scan"


def test_inotify_limits_fall_back_to_polling(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_start = watcher_module.start_observer

    def limited(handler, root, poll_interval):
        if poll_interval is None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return real_start(handler, root, 0.05)

    monkeypatch.setattr(watcher_module, "start_observer", limited)
    FakeTraining(tmp_path / "run").begin(1, 1)
    watcher = collector.start(tmp_path)
    collector.initial()
    FakeTraining(tmp_path / "probe").begin(1, 1)
    probe = collector.until(lambda b: any(u.label == "probe" for u in b.updates))
    assert watcher.mode == "polling"
    assert "inotify unavailable" in probe[-1].watching
    FakeTraining(tmp_path / "later").begin(1, 1)
    collector.until(lambda b: any(u.label == "later" for u in b.updates))


def test_the_watched_directory_may_itself_be_a_run(tmp_path: Path, collector: Collector) -> None:
    FakeTraining(tmp_path / "solo").begin(1, 1)
    collector.start(tmp_path / "solo")
    assert {u.label for b in collector.initial() for u in b.updates} == {"solo"}


def test_reads_begun_before_the_consumer_are_named_then_delivered(
    tmp_path: Path, collector: Collector
) -> None:
    """``watch`` begins the first reads before Textual loads, and connects the app later: the
    runs are named in the first delivery and arrive folded, as when the thread began them."""
    trainings = {
        f"sweep/r{i}": FakeTraining(tmp_path / "sweep" / f"r{i}").begin(2, 3).epoch(0, [0.5] * i)
        for i in range(3)
    }
    watcher = RunWatcher(tmp_path, min_interval=0.0)
    watcher.begin()
    watcher.begin()  # (once is enough)
    collector.watcher = watcher
    watcher.connect(collector.deliver, None)
    watcher.start()
    batches = collector.initial()
    assert {u.label for u in batches[0].updates} == set(trainings)  # (some read already)
    for label, training in trainings.items():
        run = folded(batches, label)
        assert run.records == len((training.run_dir / STATUS_FILE).read_bytes().splitlines())
        assert list(run.losses) == [0.5] * int(label[-1])
    trainings["sweep/r1"].epoch(1, [0.25])  # and it goes on watching
    appended = records_of(collector.until(lambda b: bool(records_of([b], "sweep/r1"))), "sweep/r1")
    assert appended and appended[0].kind is TrainUpdateType.EPOCH
    watcher.stop()
    # Read before (the reader cache has them): left to the thread, with the same result.
    again = Collector()
    second = again.watcher = RunWatcher(tmp_path, min_interval=0.0)
    second.begin()
    assert not second._first_reads
    second.connect(again.deliver, None)
    second.start()
    try:
        batches = again.initial()
        assert list(folded(batches, "sweep/r1").losses) == [0.5, 0.25]
    finally:
        second.stop()


def test_reads_begun_and_never_delivered_end_with_stop(tmp_path: Path) -> None:
    """The worker processes begin() started end with stop(), though no thread ever ran."""
    for name in ("a", "b"):
        FakeTraining(tmp_path / name).begin(2, 3)
    watcher = RunWatcher(tmp_path)
    reader = watcher._reader = RunReader(workers=2, parallel_min_bytes=0)  # (tiny runs: pool)
    watcher.begin()
    assert reader._pool is not None
    watcher.stop()
    assert reader._pool is None
    watcher.stop()
    with pytest.raises(RuntimeError, match="no consumer"):
        RunWatcher(tmp_path).start()


def test_stop_is_prompt_and_idempotent(tmp_path: Path) -> None:
    watcher = RunWatcher(tmp_path, lambda batch: True)
    watcher.start()
    watcher.stop()
    watcher.stop()
    assert watcher._thread is not None and not watcher._thread.is_alive()


# -- run.yaml, job.json and logs -----------------------------------------------------------------


def test_key_settings_come_from_a_resolved_run_spec() -> None:
    spec = {
        "version": 1,
        "name": "demo",
        "data": {"train": "/data/noisy.tif", "val": None, "data_type": "tiff"},
        "cluster": {"profile": "gpu", "overrides": {}, "resolved": {"partition": "gpu"}},
        "careamics": {
            "algorithm_config": {"algorithm": "n2v", "optimizer": {"parameters": {"lr": 1e-4}}},
            "data_config": {"axes": "YX", "patch_size": [64, 64], "batch_size": 16},
            "training_config": {"num_epochs": 40},
        },
    }
    settings = dict(key_settings(spec))
    assert settings == {
        "data.train": "/data/noisy.tif",
        "data.data_type": "tiff",
        "cluster.profile": "gpu",
        "cluster.resolved.partition": "gpu",
        "careamics.algorithm_config.algorithm": "n2v",
        "careamics.algorithm_config.optimizer.parameters.lr": "0.0001",
        "careamics.data_config.axes": "YX",
        "careamics.data_config.patch_size": "[64, 64]",
        "careamics.data_config.batch_size": "16",
        "careamics.training_config.num_epochs": "40",
    }
    # Unknown layouts still show something: their first plain values.
    assert key_settings({"a": 1, "b": {"c": "x"}, "d": [1]}) == [("a", "1"), ("b.c", "x")]


def test_meta_reports_broken_files_and_finds_the_current_job_logs(tmp_path: Path) -> None:
    runs = write_fixture_runs(tmp_path)
    meta = load_meta(runs["done"])
    assert meta.problems == []
    assert meta.job_id == "4242_0"
    assert ("training.algorithm", "n2v") in meta.settings
    assert meta.stdout is not None and meta.stdout.name == "4242_0_0_log.out"
    assert meta.stderr is not None and meta.stderr.name == "4242_0_0_log.err"
    broken = runs["crashed"]
    (broken / "run.yaml").write_text("training: [unclosed\n")
    (broken / "job.json").write_text("{not json")
    meta = load_meta(broken)
    assert meta.job is None and meta.stdout is None and meta.settings == []
    assert len(meta.problems) == 2
    assert "run.yaml" in meta.problems[0] and "job.json" in meta.problems[1]
    # Without job.json nothing says which job's logs are the run's: none are shown (a submitit
    # folder may be shared by a sweep's tasks; the newest log there may be another run's).
    folder = broken / "submitit"
    folder.mkdir()
    (folder / "2_0_log.out").write_text("new")
    (broken / "job.json").unlink()
    assert load_meta(broken).stdout is None


def test_read_tail_starts_at_a_line_and_survives_bad_bytes(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(1000)) + b"\xff\xfeend\n")
    tail = read_tail(log, 100)
    assert tail.startswith("line ") and tail.endswith("\ufffd\ufffdend\n")
    assert len(tail.encode()) <= 100 + 4
    assert read_tail(log, 1 << 20).startswith("line 0\n")


def test_a_failure_on_the_watcher_thread_is_reported_not_swallowed(tmp_path: Path) -> None:
    FakeTraining(tmp_path / "run").begin(1, 1)
    errors: queue.Queue[str] = queue.Queue()

    def broken_consumer(batch: WatchBatch) -> bool:
        raise RuntimeError("consumer bug")

    watcher = RunWatcher(tmp_path, broken_consumer, on_error=errors.put)
    watcher.start()
    try:
        message = errors.get(timeout=20)
    finally:
        watcher.stop()
    assert message == f"watching {tmp_path} stopped: RuntimeError: consumer bug"
