"""The TUI under Textual's Pilot over real run folders, with the real watcher (inotify, polling)."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Label

from hpc_runner.control.phase import Phase
from hpc_runner.stream.runs import STATUS_FILE, STOP_FILE
from hpc_runner.stream.status import TrainingState, TrainUpdateType
from hpc_runner.tui.app import WatchApp
from hpc_runner.tui.confirm import ConfirmDialog
from hpc_runner.tui.detail_screen import DetailScreen
from hpc_runner.tui.exception_view import ExceptionView
from hpc_runner.tui.help_screen import HelpScreen, bindings_of
from hpc_runner.tui.logs_screen import LogsScreen
from hpc_runner.tui.messages import ActionDone
from hpc_runner.tui.run_info import RunInfo
from hpc_runner.tui.runs_screen import RunsScreen
from hpc_runner.tui.runs_table import RunsTable
from hpc_runner.tui.text import printable
from tests.tui_support import (
    T0,
    FakeTraining,
    append_line,
    screen_text,
    wait_for,
    write_fixture_runs,
    write_run_spec,
)

#: "Now" for every app in these tests: a little after the fixture's live run last wrote.
NOW = T0 + 170

MODES = [pytest.param(None, id="inotify"), pytest.param(0.05, id="polling")]

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


class RecordingApp(WatchApp):
    """The real app, remembering the outcome of every action it reported."""

    def __init__(self, root: Path, **options: object) -> None:
        options.setdefault("clock", lambda: NOW)
        options.setdefault("scheduler_interval", None)
        options.setdefault("watcher_options", {"min_interval": 0.0})
        super().__init__(root, **options)  # type: ignore[arg-type]
        self.outcomes: list[ActionDone] = []
        self.notices: list[str] = []

    def notify(self, message: str, **options: object) -> None:  # type: ignore[override]
        self.notices.append(str(message))
        super().notify(message, **options)  # type: ignore[arg-type]

    def on_action_done(self, message: ActionDone) -> None:
        # Textual then calls WatchApp's handler too (handlers run along the MRO).
        self.outcomes.append(message)


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_fixture_runs(Path("runs"))
    return Path("runs")


async def until(pilot, condition) -> None:
    await wait_for(condition, lambda: pilot.pause(0.02))


def cell(table: RunsTable, key: str, column: str) -> str:
    return table.cell(key, column).plain


def select(table: RunsTable, key: str) -> None:
    table.move_cursor(table.row_index(key))


async def started(pilot) -> RunsTable:
    await until(pilot, lambda: pilot.app.scan_done.is_set())
    return pilot.app.runs_screen.table


@pytest.mark.parametrize("poll", MODES)
async def test_records_appended_to_a_real_file_show_up(runs_root: Path, poll) -> None:
    app = RecordingApp(runs_root, poll=poll)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        key = str(runs_root / "care_live")
        assert (cell(table, key, "epoch"), cell(table, key, "batch")) == ("3/5", "4/10")
        training = FakeTraining(runs_root / "care_live", start=T0 + 160, job="4243_0")
        training.write(TrainUpdateType.BATCH, 4)
        training.write(TrainUpdateType.LOSS, 0.0123)
        # The two records may arrive in one read or in two: wait for both.
        await until(pilot, lambda: cell(table, key, "loss") == "0.0123")
        assert cell(table, key, "batch") == "5/10"
        # The detail view follows the same run live.
        select(table, key)
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen) and detail.entry.key == key
        training.epoch(3, [0.01] * 10, val_loss=0.2).debug("epoch 4 done")
        epoch_label = detail.query_one("#epoch-label", Label)
        await until(pilot, lambda: str(epoch_label.content) == "Epoch 4/5")
        await until(pilot, lambda: "epoch 4 done" in screen_text(app))
        assert app.entries[key].run.best_val_loss == 0.2


async def test_a_run_that_diverged_reads_nan_not_unknown(runs_root: Path) -> None:
    """Its loss and its only val_loss NaN (null in the file, as the writer records them): the
    Loss and Best val cells showed '-', as for a run that has reported neither yet."""
    diverged = FakeTraining(runs_root / "diverged", start=T0 + 100, job="4245_0").begin(5, 4)
    diverged.epoch(0, [0.5, math.nan, math.nan, math.nan], val_loss=math.nan)
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        key = str(runs_root / "diverged")
        await until(pilot, lambda: cell(table, key, "batch") == "4/4")
        assert (cell(table, key, "loss"), cell(table, key, "best")) == ("nan", "nan")
        queued = str(runs_root / "[b]queued[/b]")  # nothing reported yet
        assert (cell(table, queued, "loss"), cell(table, queued, "best")) == ("-", "-")


async def test_the_detail_view_shows_its_newest_look_at_the_run_directory(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run ends while the detail view's first look at its directory is still reading: the
    second look (asked for at the end) finishes first, and the first must not then replace it
    with what it saw before the end. (The slow first look is a sleep: a declared stand-in for a
    slow shared filesystem.)"""
    import hpc_runner.tui.detail_screen as detail_screen

    real = detail_screen.load_meta
    looks: dict[int, object] = {}
    asked: list[int] = []
    lock = threading.Lock()

    def slow_first(run_dir: Path, **options: object) -> object:
        with lock:
            number = len(asked)
            asked.append(number)
        if number == 0:
            time.sleep(1.0)
        looks[number] = meta = real(run_dir, **options)
        return meta

    monkeypatch.setattr(detail_screen, "load_meta", slow_first)
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        key = str(runs_root / "care_live")
        select(table, key)
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await until(pilot, lambda: asked == [0])
        FakeTraining(runs_root / "care_live", start=T0 + 160, job="4243_0").finish()
        await until(pilot, lambda: len(asked) > 1 and len(looks) == len(asked))
        await pilot.pause(0.2)  # the first look's message, posted last, is handled by now
        assert detail.meta is looks[len(asked) - 1]


async def test_a_screen_pushed_but_not_yet_mounted_misses_no_tick(runs_root: Path) -> None:
    """The clock's tick or a refresh may come between a push (Enter on a run) and the new
    screen's first layout; it crashed ``watch`` (NoMatches '#title', seen in a loaded CI run).
    The screen draws itself when mounted."""
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        key = str(runs_root / "care_live")
        mounted = app.push_screen(DetailScreen(app.entries[key], app.entries, app.clock))
        app._tick()
        app._dirty.add(key)
        app._refresh_now()
        await mounted
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, DetailScreen) and "care_live" in screen_text(app)
        assert table.is_mounted


@pytest.mark.parametrize("poll", MODES)
async def test_a_run_created_after_start_shows_up(runs_root: Path, poll) -> None:
    app = RecordingApp(runs_root, poll=poll)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        assert len(table.visible_keys) == 5
        FakeTraining(runs_root / "sweep" / "lr_0.5", start=T0 + 150).begin(4, 5).epoch(0, [1.0])
        key = str(runs_root / "sweep" / "lr_0.5")
        await until(pilot, lambda: key in table.visible_keys and cell(table, key, "batch") == "1/5")
        assert cell(table, key, "phase") == "TRAINING"
        await until(pilot, lambda: "6 runs" in screen_text(app))


async def test_stop_writes_STOP_only_after_confirmation(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        run_dir = runs_root / "care_live"
        select(table, str(run_dir))
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmDialog)
        assert not (run_dir / STOP_FILE).exists()
        await pilot.press("n")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("s", "enter")  # Enter presses the focused button: "Don't stop"
        assert isinstance(app.screen, RunsScreen)
        await pilot.pause(0.1)
        assert not (run_dir / STOP_FILE).exists()
        await pilot.press("s")
        await pilot.click("#yes")  # the mouse works too
        await until(pilot, lambda: (run_dir / STOP_FILE).exists())
        await until(pilot, lambda: bool(app.outcomes))
        assert app.outcomes[-1].ok and str(run_dir / STOP_FILE) in app.outcomes[-1].text
        # A finished run has nothing to stop: no question, no file, a message saying why.
        done = runs_root / "n2v_bsd68"
        select(table, str(done))
        await pilot.press("s")
        assert isinstance(app.screen, RunsScreen)
        assert not (done / STOP_FILE).exists()
        refused = "n2v_bsd68 is DONE: the training finished; there is nothing to stop"
        assert app.notices[-1] == refused


async def test_cancel_and_resume_ask_then_call_the_jobs_module(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hpc_runner.control.jobs
    from hpc_runner.control.submit import SubmittedRun

    # The scheduler side of cancel and resume (scancel, a new submission) is replaced here: this
    # test is about the TUI asking first and running them off the UI thread (the real ones are
    # tested in test_status_cmd.py, and with SLURM below). plan_resume is the real one.
    calls: list[tuple[str, Path]] = []
    monkeypatch.setattr(
        hpc_runner.control.jobs,
        "cancel_run",
        lambda d: calls.append(("cancel", d)) or "scancel 4243",
    )

    def resume(run_dir: Path, cluster: str | None = None) -> tuple[object, SubmittedRun]:
        calls.append(("resume", run_dir))
        return hpc_runner.control.jobs.plan_resume(run_dir), SubmittedRun(run_dir, "slurm", "4250")

    monkeypatch.setattr(hpc_runner.control.jobs, "resume_run", resume)
    crashed = runs_root / "sweep" / "lr_0.1"
    write_run_spec(crashed)
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        live = runs_root / "care_live"
        select(table, str(live))
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmDialog) and calls == []
        await pilot.press("y")
        await until(pilot, lambda: len(app.outcomes) == 1)
        assert calls == [("cancel", live)] and app.outcomes[0].text == "scancel 4243"
        select(table, str(crashed))
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        await until(pilot, lambda: dialog.ready)  # what resume would do, asked on a thread
        await pilot.press("y")
        await until(pilot, lambda: len(app.outcomes) == 2)
        assert calls[-1] == ("resume", crashed)
        assert app.outcomes[1].text == (
            "resubmitted lr_0.1: job 4250, attempt 1 from the start: no checkpoint"
        )
        # A refusal of the submission side is shown in the dialog, the TUI goes on.
        select(table, str(runs_root / "sweep" / "lr_0.01"))  # STOPPED, and no run.yaml
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        await until(pilot, lambda: dialog.refused)
        assert "run.yaml" in dialog.question.plain
        await pilot.press("y")  # nothing to confirm: only Close
        assert app.screen is dialog
        await pilot.press("n")
        assert isinstance(app.screen, RunsScreen) and len(app.outcomes) == 2


HOSTILE = [
    "[bold red]x[/]",
    "[link=https://example.com]click[/link]",
    "\x1b[31mred\x1b[0m",
    "\x1b]0;owned\x07title",
    "bell\x07 back\x08space\r\nnext line",
]


async def test_markup_and_escapes_from_files_are_shown_literally(runs_root: Path) -> None:
    for index, text in enumerate(HOSTILE):
        name = text.replace("/", "|").replace("\n", " ")
        run = FakeTraining(runs_root / f"hostile{index} {name}", start=T0 + index).begin(2, 2)
        run.debug(text).crash(text, text, f"Traceback:\n  {text}\n")
    status = runs_root / "care_live" / STATUS_FILE
    append_line(status, b"{broken json\n")
    append_line(status, b'{"v":1,"type":"loss","value":"[red]x[/red]","t":1,"seq":1,"attempt":0}\n')
    app = RecordingApp(runs_root)
    async with app.run_test(size=(160, 50)) as pilot:
        table = await started(pilot)
        assert len(table.visible_keys) == 5 + len(HOSTILE)
        shown = screen_text(app)
        assert "[bold red]x[|]" in shown and "[link=https:||example.com]click[|link]" in shown
        assert "\\u001b[31mred\\u001b[0m" in shown and "\\u001b]0;owned\\u0007title" in shown
        for index, text in enumerate(HOSTILE):
            key = next(k for k in table.visible_keys if f"hostile{index} " in k)
            name_cell = table.cell(key, "name")
            assert isinstance(name_cell, Text) and name_cell.spans == []
            select(table, key)
            await pilot.press("enter")
            detail = app.screen
            assert isinstance(detail, DetailScreen)
            await until(pilot, lambda d=detail: d.meta is not None)
            exception = detail.query_one(ExceptionView)
            assert exception.display
            rendered = exception.content
            assert isinstance(rendered, Text)
            assert "\x1b" not in rendered.plain and "\x07" not in rendered.plain
            assert not any(span.style and "link" in str(span.style) for span in rendered.spans)
            page = screen_text(app)
            assert "\x1b" not in page and "\x07" not in page
            assert printable(text).split("\n")[0] in page  # visible, character by character
            await pilot.press("escape")
        # The two bad lines were counted, not applied, and the run's details say so.
        live = str(runs_root / "care_live")
        assert app.entries[live].run.skipped == {"invalid": 2}
        select(table, live)
        await pilot.press("enter")
        info = app.screen.query_one(RunInfo)
        await until(pilot, lambda: "skipped lines" in str(info.content))
        assert "2 invalid" in str(info.content)


async def test_sort_filter_and_the_selection_survive_updates(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        names = lambda: [app.entries[key].label.split("/")[-1] for key in table.visible_keys]  # noqa: E731
        assert names() == ["b]", "care_live", "n2v_bsd68", "lr_0.01", "lr_0.1"]
        done = str(runs_root / "n2v_bsd68")
        select(table, done)
        # `o` sorts by the column chosen with > (or →): Phase, running first, then waiting,
        # then what needs attention, then what is over
        await pilot.press("greater_than_sign", "o")
        assert table.sort_by == "phase"
        assert names() == ["care_live", "b]", "lr_0.1", "lr_0.01", "n2v_bsd68"]
        assert table.selected_key == done
        await pilot.press("right", "right", "right", "right", "o")  # Best val, unknown last
        assert table.sort_by == "best"
        assert names() == ["n2v_bsd68", "care_live", "lr_0.01", "b]", "lr_0.1"]
        assert table.selected_key == done
        # A new best val_loss moves a run to the top; the highlight stays on its run.
        FakeTraining(runs_root / "sweep" / "lr_0.01", start=T0 + 400).write(
            TrainUpdateType.VAL_LOSS, 0.01
        )
        await until(pilot, lambda: names()[0] == "lr_0.01")
        assert table.selected_key == done
        await pilot.press("f")  # only TRAINING, then each phase present, then all again
        assert table.phase_filter is Phase.TRAINING and names() == ["care_live"]
        shown = []
        for _ in range(5):
            await pilot.press("f")
            shown.append((table.phase_filter, names()))
        assert shown == [
            (Phase.STARTING, ["b]"]),
            (Phase.CRASHED, ["lr_0.1"]),
            (Phase.STOPPED, ["lr_0.01"]),
            (Phase.DONE, ["n2v_bsd68"]),
            (None, ["lr_0.01", "n2v_bsd68", "care_live", "b]", "lr_0.1"]),
        ]
        # Clicking a header sorts by it (the Phase column starts after the name column).
        await pilot.click(RunsTable, offset=(table.column_x("phase") + 1, 0))
        assert table.sort_by == "phase"


async def test_mouse_opens_details_and_escape_returns(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        row = table.row_index(str(runs_root / "sweep" / "lr_0.1"))
        await pilot.click(RunsTable, offset=(3, row + 1))
        await pilot.click(RunsTable, offset=(3, row + 1))
        detail = app.screen
        assert isinstance(detail, DetailScreen) and detail.entry.label == "sweep/lr_0.1"
        exception = detail.query_one(ExceptionView)
        assert exception.display and "loss is NaN at step 5" in str(exception.content)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_logs_panel_shows_the_job_output_literally(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        select(table, str(runs_root / "n2v_bsd68"))
        await pilot.press("l")
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        await until(pilot, lambda: logs.loaded is not None)
        assert logs.view("stdout").text == "epoch 1\nepoch 2\ndone\n"  # colour codes removed
        assert logs.view("stderr").text == "warning: [bold]not markup[/bold]\n"
        assert "4242_0_0_log.out" in screen_text(app)
        await pilot.press("tab")  # stderr, shown literally: no markup
        await until(pilot, lambda: "warning: [bold]not markup[/bold]" in screen_text(app))
        await pilot.press("escape")
        # A run without job.json (not submitted by hpc-runner) has no logs, and says why.
        select(table, str(runs_root / "[b]queued[/b]"))
        await pilot.press("l")
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        await until(pilot, lambda: logs.loaded is not None)
        shown = logs.view("stdout").message or ""
        assert shown.startswith("no logs to show:") and "no job.json" in shown


async def test_why_a_run_has_no_logs_is_shown_without_its_escape_sequences(
    runs_root: Path,
) -> None:
    """The reason names the run directory, whose name may hold terminal escapes: they are shown
    as characters (the terminal once turned the text red; an OSC one retitles the window)."""
    name = "esc \x1b[31mred\x1b]0;owned\x07"
    FakeTraining(runs_root / name, start=T0).begin(2, 2)
    app = RecordingApp(runs_root)
    async with app.run_test(size=(160, 40)) as pilot:
        table = await started(pilot)
        select(table, next(key for key in table.visible_keys if "esc " in key))
        await pilot.press("l")
        logs = app.screen
        assert isinstance(logs, LogsScreen)
        await until(pilot, lambda: logs.loaded is not None)
        view = logs.view("stdout")
        assert view.message is not None and "no job.json" in view.message
        drawn = "".join(segment.text for segment in view.render_line(0))
        assert "\x1b" not in drawn and "\x07" not in drawn
        assert "\\u001b[31mred" in drawn


async def test_toasts_show_names_and_errors_as_characters(runs_root: Path) -> None:
    """An action's outcome names the run; a name's terminal escapes are not passed on (Textual's
    toasts pass them to the terminal as they are)."""
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        app.post_message(ActionDone("stop: runs/\x1b[31mred\x1b]0;owned\x07", ok=False))
        await until(pilot, lambda: len(app._notifications) > 0)
        (toast,) = list(app._notifications)
        assert "\x1b" not in toast.message and "\x07" not in toast.message
        assert toast.message == "stop: runs/\\u001b[31mred\\u001b]0;owned\\u0007"


async def test_help_lists_every_key(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 90)) as pilot:  # every key at once, no scrolling
        await started(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = screen_text(app)
        for screen in (RunsScreen, RunsTable, DetailScreen, LogsScreen, WatchApp):
            for binding in bindings_of(screen):
                assert (binding.tooltip or binding.description) in shown, binding
        await pilot.press("question_mark")
        assert isinstance(app.screen, RunsScreen)


async def test_the_scheduler_amends_a_dead_local_job(runs_root: Path) -> None:
    from hpc_runner.control.jobfile import JobRecord, Submission, write_job_file

    run_dir = runs_root / "care_live"
    # A local job whose controller process is gone and left no result: it died.
    write_job_file(
        run_dir, JobRecord(scheduler="local", submissions=[Submission(0, "999999999", T0)])
    )
    app = RecordingApp(runs_root, scheduler_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        key = str(run_dir)
        await until(pilot, lambda: cell(table, key, "phase").startswith("LOST"))
        assert cell(table, key, "phase") == "LOST (its processes ended without reporting how)"
        assert app.entries[key].run.status.state is TrainingState.TRAINING  # the file's view
        select(table, key)
        await pilot.press("enter")
        info = app.screen.query_one(RunInfo)
        await until(pilot, lambda: "FAILED (its processes ended" in str(info.content))
        assert "file says  TRAINING" in str(info.content)


async def test_an_answer_that_comes_before_its_run_is_kept_for_it(runs_root: Path) -> None:
    """The scheduler thread asks about the run directories the watcher knows, and may answer
    before the UI thread has made the run's entry; it delivers each answer once (until it
    changes), so the app keeps it for the entry (CI once showed a run with no scheduler answer
    for over a minute: the answer had been dropped)."""
    from hpc_runner.control.jobfile import JobRecord, Submission
    from hpc_runner.control.slurm_query import SchedulerState
    from hpc_runner.tui.messages import SchedulerRead
    from hpc_runner.watch.scheduler_watch import JobView

    run_dir = runs_root / "late"
    job = JobRecord(scheduler="slurm", submissions=[Submission(0, "4242", T0)])
    answer = SchedulerState("4242", "OUT_OF_MEMORY", exit_code="0:125", asked=NOW)
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        table = await started(pilot)
        app.post_message(SchedulerRead({run_dir: JobView(job, answer)}))
        await until(pilot, lambda: str(run_dir) in app._early_views)
        FakeTraining(run_dir, start=T0).begin(2, 5).epoch(0, [0.5] * 5)
        await until(pilot, lambda: str(run_dir) in app.entries)
        assert app.entries[str(run_dir)].scheduler == answer
        # ... as any answer is taken: the run's end tracking knows the scheduler has answered
        # (--on-event and submit --watch take a run's first phase only then).
        assert not app.ends.answered(str(run_dir))  # (True had it been the first answer)
        await until(pilot, lambda: str(run_dir) in table.visible_keys)  # (a refresh later)
        await until(pilot, lambda: cell(table, str(run_dir), "phase").startswith("LOST"))


async def test_a_flood_of_records_is_coalesced_into_bounded_refreshes(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        app.REFRESH_INTERVAL = 3600.0  # the next redraw waits an hour: count what happens meanwhile
        await until(pilot, lambda: app._refresh_timer is None)  # one armed before still fires
        before = app.refresh_count
        trainings = [
            FakeTraining(runs_root / "flood" / f"run{i:02d}", start=T0 + i).begin(1, 2000)
            for i in range(20)
        ]
        for training in trainings:
            training.epoch(0, [0.5] * 2000)
        keys = {str(t.run_dir) for t in trainings}

        def all_applied() -> bool:
            entries = [app.entries.get(key) for key in keys]
            return all(e is not None and e.run.status.batch_idx == 1999 for e in entries)

        await until(pilot, all_applied)
        # 80,000 records in 20 new runs, psygnal events for each status field: all applied to
        # the model, yet no redraw ran; they wait, coalesced, for the next refresh slot.
        assert app.refresh_count == before
        assert keys <= app._dirty
        table = app.runs_screen.table
        assert not keys & set(table.visible_keys)
        app._refresh_now()
        assert keys <= set(table.visible_keys)
        assert all(cell(table, key, "batch") == "2000/2000" for key in keys)


def test_tui_modules_import_no_torch_lightning_or_careamics() -> None:
    import subprocess
    import sys

    # Every module of the TUI and the watcher, and the command that starts them.
    code = (
        "import importlib, pkgutil, sys\n"
        "import hpc_runner.cli.watch_cmd, hpc_runner.tui, hpc_runner.watch\n"
        "for package in (hpc_runner.tui, hpc_runner.watch):\n"
        "    for module in pkgutil.iter_modules(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(module.name)\n"
        "heavy = {'torch', 'lightning', 'careamics', 'pytorch_lightning', 'torchvision'}\n"
        "print(len(sys.modules), sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    count, heavy = result.stdout.split(" ", 1)
    assert int(count) > 300  # the modules were really imported
    assert heavy.strip() == "[]"


@pytest.mark.slurm
async def test_cancel_on_a_real_slurm_job_shows_cancelled(runs_root: Path, slurm_cluster) -> None:
    import subprocess

    from hpc_runner.control.jobfile import JobRecord, Submission, write_job_file
    from hpc_runner.control.scheduler import SchedulerPoller

    run_dir = runs_root / "care_live"
    (run_dir / "submitit").mkdir(parents=True, exist_ok=True)  # its log goes there, as a
    # submitit job's does (cancel checks that the job is the run's by that)
    submitted = subprocess.run(
        ["sbatch", "--parsable", "-p", slurm_cluster.cpu_partition,
         "-o", str(run_dir.absolute() / "submitit" / "%j_0_log.out"), "--wrap", "sleep 300"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    job_id = submitted.stdout.strip().split(";")[0]
    write_job_file(run_dir, JobRecord(scheduler="slurm", submissions=[Submission(0, job_id, T0)]))
    app = RecordingApp(
        runs_root, scheduler_interval=0.2, scheduler_poller=SchedulerPoller(min_interval_s=0.5)
    )
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            table = await started(pilot)
            key = str(run_dir)
            # The file has attempt 0's records of another job: this one waits for attempt 1
            # (REQUEUED) or starts it (STARTING), whichever SLURM does first.
            await until(pilot, lambda: cell(table, key, "phase").startswith(("REQUEUED", "START")))
            select(table, key)
            await pilot.press("c", "y")  # the real cancel: control.jobs.cancel_run → scancel
            await until(pilot, lambda: bool(app.outcomes))
            assert app.outcomes[0].ok, app.outcomes[0].text
            await until(pilot, lambda: cell(table, key, "phase").startswith("CANCELLED"))
    finally:
        subprocess.run(["scancel", job_id], check=False)


async def test_a_watcher_failure_is_shown(runs_root: Path) -> None:
    from hpc_runner.tui.messages import WatcherFailed

    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await started(pilot)
        app.post_message(WatcherFailed("watching runs stopped: OSError: gone"))
        await until(pilot, lambda: "NOT WATCHING" in screen_text(app))
        await until(pilot, lambda: "OSError: gone" in screen_text(app))  # the notification
