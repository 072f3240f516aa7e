"""Snapshot tests of whole screens (pytest-textual-snapshot), built from fixture run folders.

Everything that could vary between runs is fixed: record times (a fake clock in the writer), the
app's clock (elapsed, ETA), the time zone (debug message times), the host name, the runs
directory (relative), and the watch mode (``--poll`` given, so the status line does not depend on
the filesystem the tests run on). Review changed snapshots with ``pytest --snapshot-report`` and
accept them with ``pytest --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from hpc_runner.tui.app import WatchApp
from hpc_runner.tui.detail_screen import DetailScreen
from hpc_runner.tui.logs_screen import LogsScreen
from tests.tui_support import T0, timezone, wait_for, write_fixture_runs, write_sweep_runs

SIZE = (120, 36)

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WatchApp]:
    monkeypatch.chdir(tmp_path)
    write_fixture_runs(Path("runs"))
    with timezone("UTC"):
        yield WatchApp(
            Path("runs"),
            poll=0.5,
            clock=lambda: T0 + 170,
            scheduler_interval=None,
            watcher_options={"min_interval": 0.0},
        )


async def loaded(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, WatchApp)
    await wait_for(app.scan_done.is_set, lambda: pilot.pause(0.02))
    await pilot.pause()


async def open_details(pilot: Pilot[None], label: str) -> None:
    await loaded(pilot)
    app = pilot.app
    assert isinstance(app, WatchApp)
    table = app.runs_screen.table
    table.move_cursor(table.row_index(f"runs/{label}"))
    await pilot.press("enter")
    detail = app.screen
    assert isinstance(detail, DetailScreen)
    await wait_for(lambda: detail.meta is not None, lambda: pilot.pause(0.02))

    # Plotted at the laid-out size, with no later plot pending (a resize re-plots after the
    # throttle interval; a snapshot before that would catch the plot at the older width).
    def plotted() -> bool:
        return detail._plotted == detail._plot_version() and not detail.throttle.pending

    await wait_for(plotted, lambda: pilot.pause(0.02))
    await pilot.pause()


def test_runs_table(snap_compare, app: WatchApp) -> None:
    """Five runs in five phases with their reasons, a sweep folder, a name like markup."""
    assert snap_compare(app, terminal_size=SIZE, run_before=loaded)


def test_runs_table_sorted_by_val_loss(snap_compare, app: WatchApp) -> None:
    # the Best val column chosen with > (five to the right of Run), sorted ascending with o
    keys = ["greater_than_sign"] * 5 + ["o"]
    assert snap_compare(app, terminal_size=SIZE, run_before=loaded, press=keys)


def test_detail_of_a_live_training(snap_compare, app: WatchApp) -> None:
    """Progress bars, loss and val_loss curves, job facts and key settings."""

    async def run_before(pilot: Pilot[None]) -> None:
        await open_details(pilot, "care_live")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_detail_of_a_finished_run_with_spec_and_logs(snap_compare, app: WatchApp) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await open_details(pilot, "n2v_bsd68")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_detail_of_a_crash(snap_compare, app: WatchApp) -> None:
    """The exception with its traceback."""

    async def run_before(pilot: Pilot[None]) -> None:
        await open_details(pilot, "sweep/lr_0.1")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, app: WatchApp) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await loaded(pilot)
        await pilot.press("question_mark")

    assert snap_compare(app, terminal_size=(120, 60), run_before=run_before)


def test_stop_confirmation(snap_compare, app: WatchApp) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await loaded(pilot)
        await pilot.press("down", "s")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_cancel_confirmation_names_the_job_and_what_is_lost(snap_compare, app: WatchApp) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await loaded(pilot)
        await pilot.press("down", "c")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_logs_of_a_run_cover_the_screen(snap_compare, app: WatchApp) -> None:
    """Its own job's stdout and stderr, the attempts, and only this screen's keys."""

    async def run_before(pilot: Pilot[None]) -> None:
        await loaded(pilot)
        await pilot.press("down", "down", "l")
        logs = pilot.app.screen
        assert isinstance(logs, LogsScreen)
        await wait_for(lambda: logs.loaded is not None, lambda: pilot.pause(0.02))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_runs_table_at_80x24(snap_compare, app: WatchApp) -> None:
    """The essentials only: run, phase (cut with …), progress, loss, best val_loss."""
    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)


@pytest.fixture
def sweep_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WatchApp]:
    monkeypatch.chdir(tmp_path)
    write_fixture_runs(Path("runs"))
    write_sweep_runs(Path("runs"))
    with timezone("UTC"):
        yield WatchApp(
            Path("runs"),
            poll=0.5,
            clock=lambda: T0 + 170,
            scheduler_interval=None,
            watcher_options={"min_interval": 0.0},
        )


async def grouped(pilot: Pilot[None]) -> None:
    await loaded(pilot)
    table = pilot.app.runs_screen.table  # type: ignore[attr-defined]
    await wait_for(lambda: len(table.rows) == 10, lambda: pilot.pause(0.02))  # + a group row
    await pilot.pause()


def test_a_sweep_grouped_at_200x50(snap_compare, sweep_app: WatchApp) -> None:
    """Every column: the sweep as a group with its lr and use_n2v2 columns, PSNR, time, ETA."""
    assert snap_compare(sweep_app, terminal_size=(200, 50), run_before=grouped)
