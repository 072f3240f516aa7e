"""The TUI over hostile run directories (issue 10): every run shown, no count cut short."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpc_runner.stream.status import TrainUpdateType
from hpc_runner.tui.app import WatchApp
from tests.test_hostile import BAD_STATUS, good_run
from tests.tui_support import T0, FakeTraining, screen_text, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


def app_over(root: Path) -> WatchApp:
    return WatchApp(
        root, clock=lambda: T0 + 100, scheduler_interval=None, watcher_options={"min_interval": 0.0}
    )


async def started(pilot) -> None:
    await wait_for(lambda: pilot.app.scan_done.is_set(), lambda: pilot.pause(0.02))


async def test_progress_cells_are_never_cut(tmp_path: Path) -> None:
    """The Epoch column showed ``198/30…`` for 198/3000."""
    run = FakeTraining(tmp_path / "runs" / "long").begin(3000, 123456)
    run.write(TrainUpdateType.EPOCH, 197)
    run.write(TrainUpdateType.BATCH, 99_999)
    app = app_over(tmp_path / "runs")
    async with app.run_test(size=(160, 12)) as pilot:
        await started(pilot)
        await wait_for(lambda: "198/3000" in screen_text(app), lambda: pilot.pause(0.02))
        row = next(line for line in screen_text(app).splitlines() if "long" in line)
        assert "198/3000" in row and "100000/123456" in row and "…" not in row


async def test_bad_runs_are_shown_beside_the_good_one(tmp_path: Path) -> None:
    """A FIFO, a symlink loop, a directory ... as status.jsonl: each shown, none blocks."""
    root = tmp_path / "runs"
    good_run(root / "good")
    for name, make in BAD_STATUS.items():
        (root / name).mkdir(parents=True)
        make(root / name / "status.jsonl")
    app = app_over(root)
    async with app.run_test(size=(160, 20)) as pilot:
        await started(pilot)
        table = app.runs_screen.table
        assert len(table.visible_keys) == 1 + len(BAD_STATUS)
        good = str(root / "good")
        await wait_for(
            lambda: app.entries[good].run.status.epoch_idx == 0, lambda: pilot.pause(0.02)
        )
        for name in ("fifo", "symlink-loop", "directory", "device"):
            entry = app.entries[str(root / name)]
            await wait_for(lambda e=entry: e.error is not None, lambda: pilot.pause(0.02))
            assert "not a regular file" in entry.error or "symlink loop" in entry.error
        assert app.entries[str(root / "deep-lines")].run.skipped == {"invalid": 2}


@pytest.mark.parametrize("poll", [None, 0.05], ids=["inotify", "polling"])
def test_the_watcher_delivers_every_run_and_keeps_going(tmp_path: Path, poll: float | None) -> None:
    """The polling observer stats status.jsonl following symlinks: one linking to its own
    directory was walked as deep as the kernel allowed; a FIFO blocked the reader thread."""
    import queue

    from hpc_runner.watch.watcher import RunWatcher

    root = tmp_path / "runs"
    good_run(root / "good")
    for name, make in BAD_STATUS.items():
        (root / name).mkdir(parents=True)
        make(root / name / "status.jsonl")
    (root / "good" / "loop").symlink_to("..")
    batches: queue.Queue = queue.Queue()
    errors: list[str] = []
    watcher = RunWatcher(root, batches.put, poll=poll, min_interval=0.0, on_error=errors.append)
    watcher.start()
    try:
        updates = []
        while True:
            batch = batches.get(timeout=30)
            watcher.acknowledge()
            updates += batch.updates
            if batch.initial_scan_done:
                break
        labels = {update.label for update in updates}
        assert labels == {"good", *BAD_STATUS}
        good = [u.batch.state for u in updates if u.label == "good" and u.batch.state]
        assert good and good[0].records, "the good run's records were delivered"
        failed = {update.label for update in updates if update.error}
        assert failed == {"fifo", "symlink-loop", "directory", "device", "socket-dir-link"}
        # and it keeps following: a new run appears after the bad ones were read
        FakeTraining(root / "later").begin(1, 1)
        while "later" not in {u.label for u in batches.get(timeout=30).updates}:
            watcher.acknowledge()
        assert errors == []
    finally:
        watcher.stop()
