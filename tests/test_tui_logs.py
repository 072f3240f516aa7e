"""The logs view shows a run's own job files only, per attempt, and says when there are none.

Real app under Pilot; the submitit folders and job.json files are laid out as ``sweep`` and
``resume`` leave them (array tasks ``N_0``, ``N_1``, ``N_2`` sharing the sweep's folder; a resumed
run with a second job in its own folder).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import Static

from hpc_runner.control.jobfile import JobRecord, Submission, write_job_file
from hpc_runner.stream.run_state import replay
from hpc_runner.stream.runs import STATUS_FILE
from hpc_runner.tui.confirm import ConfirmDialog
from hpc_runner.tui.detail_screen import DetailScreen
from hpc_runner.tui.logs_screen import LogFollower, LogsScreen
from hpc_runner.tui.messages import LogsLoaded
from hpc_runner.tui.run_info import RunInfo
from tests.test_tui import RecordingApp, select, started, until
from tests.tui_support import (
    T0,
    FakeTraining,
    append_line,
    losses,
    screen_text,
    write_job,
)

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


def shown(logs: LogsScreen, pane: str) -> str:
    """The attempts line, or what a log view holds (its lines, or why there are none)."""
    if pane == "attempts":
        return str(logs.query_one("#attempts", Static).content)
    view = logs.view(pane)
    return view.message if view.message is not None else view.text


@pytest.fixture
def sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 3-task array: tasks 0 and 2 run and logged, task 1 waits (no log yet)."""
    monkeypatch.chdir(tmp_path)
    root = Path("runs") / "sweep"
    folder = root / "submitit"
    folder.mkdir(parents=True)
    for task in range(3):
        run_dir = root / f"lr_{task}"
        if task == 1:
            run_dir.mkdir()
            (run_dir / STATUS_FILE).touch()  # submitted, not started
        else:
            FakeTraining(run_dir, job=f"8100_{task}").begin(2, 5).epoch(0, losses(5))
            (folder / f"8100_{task}_0_log.out").write_text(f"task {task} says hello\n")
            (folder / f"8100_{task}_0_log.err").write_text(f"task {task} warns\n")
        write_job(run_dir, f"8100_{task}", folder="../submitit")
    # Task 2's log is the newest in the shared folder: what a "newest log" rule would show.
    os.utime(folder / "8100_2_0_log.out", (T0 + 500, T0 + 500))
    return root


async def test_a_queued_array_task_has_no_log_yet_and_never_a_siblings(sweep: Path) -> None:
    app = RecordingApp(Path("runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        select(table, str(sweep / "lr_1"))
        await pilot.press("l")
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        await until(pilot, lambda: logs.loaded is not None)
        assert shown(logs, "stdout") == "no log yet: job 8100_1 has not written its stdout"
        assert shown(logs, "stderr") == "no log yet: job 8100_1 has not written its stderr"
        assert shown(logs, "attempts") == "attempts: 0 (job 8100_1)"
        page = screen_text(app)
        assert "says hello" not in page and "warns" not in page
        await pilot.press("escape")
        # Its siblings show their own.
        select(table, str(sweep / "lr_2"))
        await pilot.press("l")
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        await until(pilot, lambda: logs.loaded is not None)
        assert shown(logs, "stdout") == "task 2 says hello\n"
        assert shown(logs, "stderr") == "task 2 warns\n"
        await pilot.press("escape")
        # The details of the waiting task name no log either.
        select(table, str(sweep / "lr_1"))
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await until(pilot, lambda: detail.meta is not None)
        assert "logs       none yet" in str(detail.query_one(RunInfo).content)


@pytest.fixture
def resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run that crashed in attempt 0 (job 8200) and was resumed as attempt 1 (job 8300)."""
    monkeypatch.chdir(tmp_path)
    run_dir = Path("runs") / "care"
    first = FakeTraining(run_dir, job="8200").begin(4, 5).epoch(0, losses(5))
    first.crash("RuntimeError", "CUDA error: device-side assert triggered")
    FakeTraining(run_dir, start=T0 + 100, attempt=1, job="8300").begin(4, 5)
    record = JobRecord(
        scheduler="slurm",
        submissions=[Submission(0, "8200", T0), Submission(1, "8300", T0 + 90, "resume")],
    )
    write_job_file(run_dir, record)
    folder = run_dir / "submitit"
    folder.mkdir()
    (folder / "8200_0_log.err").write_text("Traceback (most recent call last):\nCUDA error\n")
    (folder / "8200_0_log.out").write_text("attempt 0 starts\n")
    (folder / "8300_0_log.out").write_text("attempt 1 starts from the checkpoint\n")
    return run_dir


async def test_every_attempt_s_logs_stay_reachable_and_r_means_nothing_here(
    resumed: Path,
) -> None:
    app = RecordingApp(Path("runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        select(table, str(resumed))
        await pilot.press("l")
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        await until(pilot, lambda: logs.loaded is not None)
        # The newest attempt first; its stderr does not exist yet.
        assert shown(logs, "stdout") == "attempt 1 starts from the checkpoint\n"
        assert shown(logs, "stderr") == "no log yet: job 8300 has not written its stderr"
        assert shown(logs, "attempts").startswith("attempts: 0 (job 8200) │ 1 (job 8300)")
        await until(pilot, lambda: "[ Earlier attempt" in screen_text(app).splitlines()[-1])
        assert "] Later attempt" not in screen_text(app).splitlines()[-1]
        # The footer names only this screen's keys: no Resume, no Reload behind `r`.
        bottom = screen_text(app).splitlines()[-1]
        assert "Resume" not in bottom and "Reload" not in bottom and " r " not in bottom
        await pilot.press("r")
        assert app.screen is logs and not isinstance(app.screen, ConfirmDialog)
        # The earlier attempt, with its crash.
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: logs.loaded is not None and logs.loaded.attempt == 0)
        assert shown(logs, "stderr") == "Traceback (most recent call last):\nCUDA error\n"
        assert shown(logs, "stdout") == "attempt 0 starts\n"
        assert "attempt 0" in str(logs.view("stderr").border_title)
        await until(pilot, lambda: "] Later attempt" in screen_text(app).splitlines()[-1])
        assert "[ Earlier attempt" not in screen_text(app).splitlines()[-1]
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: logs.loaded is not None and logs.loaded.attempt == 1)
        assert shown(logs, "stdout") == "attempt 1 starts from the checkpoint\n"


@pytest.fixture
def long_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A training's stdout of 100 lines, ``needle`` on lines 10, 40 and 70; a traceback in
    its stderr."""
    monkeypatch.chdir(tmp_path)
    run_dir = Path("runs") / "care"
    FakeTraining(run_dir, job="8500").begin(4, 5).epoch(0, losses(5))
    write_job(run_dir, "8500", folder="submitit")
    folder = run_dir / "submitit"
    folder.mkdir()
    lines = [f"line {n}" + (" needle" if n in (10, 40, 70) else "") for n in range(1, 101)]
    (folder / "8500_0_log.out").write_text("\n".join(lines) + "\n")
    (folder / "8500_0_log.err").write_text(
        "warming up\n" * 20 + "Traceback (most recent call last):\nValueError: bad patch\n"
    )
    return run_dir


def test_overlapping_log_reads_reach_the_screen_in_the_order_they_were_read(
    long_log: Path,
) -> None:
    """On a slow machine the next poll's read starts before the last one was handed over; the
    newer lines must not reach the screen first. (The slow hand-over is a sleep in the first
    delivery: a declared stand-in for a loaded UI.)"""
    follower = LogFollower(str(long_log), long_log, replay(long_log / STATUS_FILE))
    delivered: list[list[str]] = []
    handing_over = threading.Event()

    def slowly(loaded: LogsLoaded) -> None:
        handing_over.set()
        time.sleep(0.3)
        delivered.append(loaded.stdout.lines)

    first = threading.Thread(target=follower.read, args=(None, slowly))
    first.start()
    assert handing_over.wait(10)
    append_line(long_log / "submitit" / "8500_0_log.out", b"line 101\n")
    second = threading.Thread(
        target=follower.read, args=(None, lambda loaded: delivered.append(loaded.stdout.lines))
    )
    second.start()
    first.join(10)
    second.join(10)
    assert [lines[-1] for lines in delivered] == ["line 100", "line 101"]


async def test_logs_follow_appends_and_search_finds_the_nth_match(long_log: Path) -> None:
    app = RecordingApp(Path("runs"))
    async with app.run_test(size=(100, 30)) as pilot:
        table = await started(pilot)
        select(table, str(long_log))
        await pilot.press("l")
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        view = logs.view("stdout")
        await until(pilot, lambda: len(view.lines) == 100)
        # The scroll to the end follows the layout of the new lines: a refresh later, which a
        # loaded machine may deliver after more than one pause.
        at_end = lambda: view.scroll_offset.y == view.max_scroll_y > 0  # noqa: E731
        await until(pilot, at_end)
        assert view.follow
        assert "line 100" in screen_text(app)
        # Lines appended by the job show up, and the view stays at the end (tail -f).
        append_line(long_log / "submitit" / "8500_0_log.out", b"line 101\nline 102 needle\n")
        await until(pilot, lambda: len(view.lines) == 102)
        await until(pilot, at_end)
        assert "line 102 needle" in screen_text(app)
        # / needle: every match counted; enter goes to the first match from where the view is
        # (as less: here the end), n to the next round the end, N back.
        await pilot.press("slash", *"NEEDLE", "enter")  # case-insensitive
        assert view.matches == [9, 39, 69, 101]
        assert not view.follow and view.current == 3
        await pilot.press("n")  # round the end: the first
        assert view.current == 0 and "line 10 needle" in screen_text(app)
        await pilot.press("n", "n")  # the third match
        assert view.matches[view.current] == 69 and "line 70 needle" in screen_text(app)
        assert "line 10 needle" not in screen_text(app)
        await pilot.press("N")
        assert view.matches[view.current] == 39 and "line 40 needle" in screen_text(app)
        # Not following: an append does not move the view; f follows again.
        top = view.scroll_offset.y
        append_line(long_log / "submitit" / "8500_0_log.out", b"line 103\n")
        await until(pilot, lambda: len(view.lines) == 103)
        await pilot.pause()
        assert view.scroll_offset.y == top
        await pilot.press("f")
        await until(pilot, at_end)
        assert view.follow and "line 103" in screen_text(app)
        # e: the first traceback, in whichever log holds it.
        await pilot.press("e")
        assert logs.stream == "stderr"
        await until(pilot, lambda: "Traceback (most recent call last):" in screen_text(app))
