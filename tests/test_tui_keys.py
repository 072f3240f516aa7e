"""The keys users bring from k9s, less and vim, under Textual's Pilot over real run folders.

Filter, cursor, sort (label and rows agree both ways), sweep groups with their parameter
columns, marks and the compare plot, the toast and bell when a run ends, and what the table
shows at 80x24 and 200x50 (the rendered text, not pixels).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot

from hpc_runner.tui.compare_screen import CompareScreen
from hpc_runner.tui.detail_screen import DetailScreen
from hpc_runner.tui.loss_plot import LossPlot
from hpc_runner.tui.runs_table import RunsTable
from hpc_runner.watch.events import EventCommand
from tests.test_tui import RecordingApp, select, started, until
from tests.tui_support import FakeTraining, screen_text, write_fixture_runs, write_sweep_runs

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

#: The fixture's runs by the start of their label (see :func:`write_fixture_runs`).
RUNS = ["[b]queued[/b]", "care_live", "n2v_bsd68", "sweep/lr_0.01", "sweep/lr_0.1"]


class BellApp(RecordingApp):
    """The real app, counting its bells (a terminal bell cannot be observed otherwise)."""

    def __init__(self, root: Path, **options: object) -> None:
        super().__init__(root, **options)
        self.bells = 0

    def bell(self) -> None:
        self.bells += 1
        super().bell()


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_fixture_runs(Path("runs"))
    return Path("runs")


def labels(app: RecordingApp, table: RunsTable) -> list[str]:
    return [app.entries[key].label for key in table.visible_keys]


def screen_lines(app: RecordingApp) -> list[str]:
    """The screen's lines that show something (status line, header, rows, ..., footer)."""
    return [line for line in screen_text(app).splitlines() if line.strip()]


def shown_order(app: RecordingApp) -> list[str]:
    """The runs' labels in the order the screen shows them."""
    return [line.split()[0] for line in screen_lines(app) if line.split()[0] in RUNS]


async def test_slash_filters_as_you_type_and_escape_restores(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        table = await started(pilot)
        assert labels(app, table) == RUNS
        await pilot.press("slash", "l", "r")
        assert labels(app, table) == ["sweep/lr_0.01", "sweep/lr_0.1"]
        await pilot.press("space", "c", "r", "a", "s", "h")  # every word: name and phase
        assert labels(app, table) == ["sweep/lr_0.1"]
        assert shown_order(app) == ["sweep/lr_0.1"]
        await pilot.press("escape")
        assert labels(app, table) == RUNS and table.filter_text == ""
        assert shown_order(app) == RUNS
        # A phase word alone; enter keeps the filter and gives the keys back to the table.
        await pilot.press("slash", *"done", "enter")
        assert labels(app, table) == ["n2v_bsd68"] and table.has_focus
        await pilot.press("escape")
        assert labels(app, table) == RUNS


async def test_j_k_g_G_and_pages_move_the_highlight(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        table = await started(pilot)
        selected = lambda: app.entries[table.selected_key].label  # noqa: E731
        assert selected() == RUNS[0]
        await pilot.press("j", "j")
        assert selected() == RUNS[2]
        await pilot.press("k")
        assert selected() == RUNS[1]
        await pilot.press("G")
        assert selected() == RUNS[-1]
        await pilot.press("j")  # stays on the last
        assert selected() == RUNS[-1]
        await pilot.press("g")
        assert selected() == RUNS[0]
        await pilot.press("pagedown")
        assert selected() == RUNS[-1]
        await pilot.press("pageup")
        assert selected() == RUNS[0]


LOSS_UP = ["care_live", "n2v_bsd68", "sweep/lr_0.01", "sweep/lr_0.1", "[b]queued[/b]"]
BEST_UP = ["n2v_bsd68", "care_live", "sweep/lr_0.01", "[b]queued[/b]", "sweep/lr_0.1"]


@pytest.mark.parametrize(
    ("steps", "header", "ascending", "descending"),
    [
        (0, "Run", RUNS, RUNS[::-1]),
        (4, "Loss", LOSS_UP, [*LOSS_UP[3::-1], "[b]queued[/b]"]),  # no loss yet: last
        (5, "Best val", BEST_UP, [*BEST_UP[2::-1], "[b]queued[/b]", "sweep/lr_0.1"]),
    ],
)
async def test_o_and_O_sort_and_the_header_says_so(
    runs_root: Path, steps: int, header: str, ascending: list[str], descending: list[str]
) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(140, 30)) as pilot:
        table = await started(pilot)
        await pilot.press(*["greater_than_sign"] * steps)
        # o, O, o, O: each time the status line, the column header and the rows agree
        for key, arrow, order in [("o", "▲", ascending), ("O", "▼", descending)] * 2:
            await pilot.press(key)
            await pilot.pause()
            lines = screen_lines(app)
            assert f"sort: {header} {arrow}" in lines[0]
            assert f"{header} {arrow}" in lines[1]
            assert sum(line.count(arrow) for line in lines[1:]) == 1
            assert labels(app, table) == order
            assert shown_order(app) == order


async def test_a_click_on_a_header_sorts_and_again_reverses(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(140, 30)) as pilot:
        table = await started(pilot)
        x = table.column_layout.x_of("loss") + 2
        await pilot.click(RunsTable, offset=(x, 0))
        assert table.sort_label == "Loss ▲" and shown_order(app) == LOSS_UP
        await pilot.click(RunsTable, offset=(x, 0))
        assert table.sort_label == "Loss ▼" and shown_order(app)[0] == "sweep/lr_0.1"


async def test_colon_opens_the_command_palette_and_question_mark_the_help(
    runs_root: Path,
) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot)
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CommandPalette))
        await pilot.press("question_mark")
        await until(pilot, lambda: "Help" in type(app.screen).__name__)


@pytest.fixture
def sweep_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_sweep_runs(Path("runs"))
    return Path("runs")


async def test_a_4_run_sweep_is_grouped_with_its_parameters_as_columns(sweep_root: Path) -> None:
    app = RecordingApp(sweep_root)
    async with app.run_test(size=(200, 30)) as pilot:
        table = await started(pilot)
        # which sweep a run belongs to is read on a worker: then one group row, four runs
        await until(pilot, lambda: len(table.rows) == 5 and len(table.visible_keys) == 4)
        await pilot.pause()
        lines = screen_lines(app)
        header = lines[1].split()
        assert "lr" in header and "use_n2v2" in header and "PSNR" in header
        assert "n2v_sweep" in lines[2]  # the group row names the sweep
        rows = {line.split()[0]: line.split() for line in lines[3:7]}
        assert rows.keys() == {
            "lr=0.001_use_n2v2=false",
            "lr=0.001_use_n2v2=true",
            "lr=0.01_use_n2v2=false",
            "lr=0.01_use_n2v2=true",
        }
        for name, words in rows.items():
            lr, n2v2 = name.removeprefix("lr=").split("_use_n2v2=")
            assert lr in words and n2v2 in words, words  # the values in their columns
        assert "28.00" in rows["lr=0.001_use_n2v2=false"]  # PSNR where it was measured
        assert "29.00" in rows["lr=0.001_use_n2v2=true"]
        # A parameter column sorts too (O: largest first), inside the group; ties by name.
        await pilot.press(*["greater_than_sign"] * 7, "O")
        assert table.sort_label == "lr ▼"
        assert [app.entries[key].label.split("/")[-1] for key in table.visible_keys] == [
            "lr=0.01_use_n2v2=false",
            "lr=0.01_use_n2v2=true",
            "lr=0.001_use_n2v2=false",
            "lr=0.001_use_n2v2=true",
        ]
        # z folds the sweep to its one row, and again unfolds it.
        await pilot.press("z")
        assert table.visible_keys == [] and len(table.rows) == 1
        await pilot.press("z")
        assert len(table.visible_keys) == 4


async def test_space_marks_and_p_overlays_three_runs(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(140, 36)) as pilot:
        table = await started(pilot)
        marked = ["care_live", "n2v_bsd68", "sweep/lr_0.01"]
        for label in marked:
            select(table, next(k for k in table.visible_keys if app.entries[k].label == label))
            await pilot.press("space")
        assert "3 marked" in screen_lines(app)[0]
        await pilot.press("p")
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await until(pilot, lambda: len(compare.plot.shown) == 3)
        shown = compare.plot.shown
        assert [item.name for item in shown] == marked  # val_loss of each, named by run
        assert len({item.color for item in shown}) == 3  # each its own colour
        text = screen_text(app)
        assert all(f"● {label}" in text for label in marked)  # the legend
        await pilot.press("t")  # loss: the same three runs
        await until(pilot, lambda: compare.metric == "loss")
        assert [item.name for item in compare.plot.shown] == marked
        await pilot.press("escape")
        assert app.screen is app.runs_screen


async def test_a_run_reaching_done_is_announced_once(runs_root: Path) -> None:
    app = BellApp(runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        table = await started(pilot)
        await pilot.pause(0.2)
        assert app.bells == 0 and not [n for n in app.notices if "DONE" in n]  # ended before
        training = FakeTraining(runs_root / "care_live", start=1_700_000_400.0, job="4243_0")
        training.epoch(3, [0.05] * 10, val_loss=0.3).epoch(4, [0.04] * 10, val_loss=0.2)
        training.finish()
        key = str(runs_root / "care_live")
        await until(pilot, lambda: table.cell(key, "phase").plain == "DONE")
        await until(pilot, lambda: app.bells == 1)
        toasts = [n for n in app.notices if "care_live" in n]
        assert len(toasts) == 1 and "DONE" in toasts[0]
        training.debug("after the end")  # more records of an ended run: no second toast
        await pilot.pause(0.3)
        assert app.bells == 1


@pytest.mark.parametrize(
    ("size", "columns"),
    [
        ((80, 24), ["Run", "Phase", "Epoch", "Batch", "Loss", "Best val"]),
        ((200, 50), ["Run", "Phase", "Epoch", "Batch", "Loss", "Best val", "Time", "ETA", "Try"]),
    ],
)
async def test_the_table_at_80x24_and_200x50(
    runs_root: Path, size: tuple[int, int], columns: list[str]
) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=size) as pilot:
        await started(pilot)
        await pilot.pause()
        lines = screen_lines(app)
        assert len(lines) <= size[1] and all(len(line) <= size[0] for line in lines)
        header = lines[1]
        starts = {name: re.search(rf"(^| ){re.escape(name)}( |$)", header) for name in columns}
        assert all(starts.values()), header
        assert sorted(columns, key=lambda name: starts[name].start()) == columns  # this order
        if size[0] == 80:
            assert "Time" not in header and "ETA" not in header
        else:
            # every phase with its reason in full, nothing cut with …
            assert "CRASHED (FloatingPointError: loss is NaN at step 5)" in "\n".join(lines)
        assert shown_order(app) == RUNS
        # the live run's essentials are on screen at either size
        live = next(line for line in lines if line.split() and line.split()[0] == "care_live")
        assert live.split()[1:5] == ["TRAINING", "3/5", "4/10", "0.1536"]
        assert "Stop" in lines[-1] and "Quit" in lines[-1]  # the footer names this screen's keys


async def test_on_event_gets_hostile_names_and_texts_only_as_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run named like a command substitution crashes with an exception text made to break
    out of a shell string: the user's command runs once, with both as plain values."""
    monkeypatch.chdir(tmp_path)
    from tests.test_tui_cli import event_recorder

    script, log = event_recorder(tmp_path)
    pwned = tmp_path / "pwned"
    name = f'$(touch {pwned}-name);`touch {pwned}-tick`"'
    training = FakeTraining(Path("runs") / name, job=None).begin(3, 4)
    on_event = EventCommand(f"{script} --from-test")
    app = BellApp(Path("runs"), on_event=on_event)
    async with app.run_test(size=(120, 30)) as pilot:
        table = await started(pilot)
        await until(pilot, lambda: len(table.visible_keys) == 1)
        reason = f'"; touch {pwned}-reason; echo "$(touch {pwned}-sub)\n\x1b[31mred'
        training.crash("ValueError", reason)
        await until(pilot, lambda: log.exists() and log.read_text().count("\n") == 1)
        training.debug("written after the crash")  # no second event for the same end
        await pilot.pause(0.3)
    app.ends.wait()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(events) == 1, events
    (event,) = events
    assert event["argv"] == ["--from-test"]
    assert event["HPC_RUNNER_RUN"] == name and event["HPC_RUNNER_PHASE"] == "CRASHED"
    # the reason whole, on one line, its escape made visible: data, never code
    assert event["HPC_RUNNER_REASON"].startswith(f'ValueError: "; touch {pwned}-reason; echo ')
    assert "\n" not in event["HPC_RUNNER_REASON"] and "\x1b" not in event["HPC_RUNNER_REASON"]
    assert f"$(touch {pwned}-sub)" in event["HPC_RUNNER_REASON"]
    assert not list(tmp_path.glob("pwned*"))


async def loss_plot_of(pilot: Pilot[None], run_dir: Path) -> tuple[DetailScreen, LossPlot]:
    """Open a run's detail view from the table; the view and its loss plot."""
    select(await started(pilot), str(run_dir))
    await pilot.press("enter")
    detail = pilot.app.screen
    assert isinstance(detail, DetailScreen)
    return detail, detail.query_one("#loss", LossPlot)


async def test_one_loss_plot_against_epochs_with_log_scale_and_smoothing(
    runs_root: Path,
) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(140, 40)) as pilot:
        detail, plot = await loss_plot_of(pilot, runs_root / "care_live")
        await until(pilot, lambda: len(plot.shown) == 2)
        loss, val = plot.shown
        # loss per step at fractional epochs, val_loss at the end of each epoch: one axis
        assert loss.xs[0] == pytest.approx(0.1) and loss.xs[-1] == pytest.approx(2.4)
        assert val.xs == [1.0, 2.0] and val.ys == [0.42, 0.37]
        text = screen_text(app)
        assert "epoch" in text and "step" not in text.replace("steps", "")
        raw = list(loss.ys)
        await pilot.press("E")
        await until(pilot, lambda: detail.smooth and plot.shown[0].ys != raw)
        assert plot.shown[1].ys == [0.42, 0.37]  # val_loss is never smoothed
        assert "smoothed" in screen_text(app)
        await pilot.press("L")
        await until(pilot, lambda: detail.log_y and "log" in screen_text(app))
        await pilot.press("E", "L")
        await until(pilot, lambda: not detail.log_y and plot.shown[0].ys == raw)


async def test_a_loss_plot_with_only_nan_says_so_not_no_values_yet(tmp_path: Path) -> None:
    """A run whose every loss is nan (it diverged at once) or whose values a log axis cannot
    show: the plot said "no values yet", as for a run that has not trained a step."""
    from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
    from hpc_runner.stream.writer import StatusWriter

    T = TrainUpdateType
    with StatusWriter(tmp_path / "diverged" / "status.jsonl") as writer:
        for update in (T.MAX_EPOCH, 2), (T.MAX_BATCH, 2), (T.STATE, TrainingState.TRAINING):
            writer.write(TrainUpdate(*update))
        for batch in range(2):
            writer.write(TrainUpdate(T.BATCH, batch))
            writer.write(TrainUpdate(T.LOSS, float("nan")))
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        _, plot = await loss_plot_of(pilot, tmp_path / "diverged")
        await until(pilot, lambda: "loss and val_loss (" in screen_text(app))
        text = screen_text(app)
        assert "no values yet" not in text and not plot.shown
        assert "(no value to draw: every one is nan or inf)" in text


async def test_y_copies_the_model_path_and_shows_it(runs_root: Path) -> None:
    app = RecordingApp(runs_root)
    async with app.run_test(size=(120, 30)) as pilot:
        table = await started(pilot)
        select(table, str(runs_root / "n2v_bsd68"))
        await pilot.press("y")
        expected = str(runs_root / "n2v_bsd68" / "work" / "checkpoints" / "last.ckpt")
        await until(pilot, lambda: app.clipboard == expected)
        assert any(notice.startswith("copied to the clipboard:") for notice in app.notices)
