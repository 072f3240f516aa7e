"""Resources where users look, over real run folders written record by record: the TUI's GPU%
and Mem columns (hidden when no run sampled or the terminal is narrow), the detail view's
efficiency of the run and of its sweep, and ``status --summary`` of the sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpc_runner.stream.system_values import EnvironmentValue, GpuInfo, GpuSample, SystemValue
from hpc_runner.tui.app import WatchApp
from hpc_runner.tui.detail_screen import DetailScreen
from hpc_runner.tui.resources_panel import ResourcesPanel
from hpc_runner.tui.runs_table import RunsTable
from hpc_runner.tui.text_panel import TextPanel
from tests.run_support import cli
from tests.tui_support import T0, FakeTraining, losses, screen_text, wait_for

GB = 1 << 30
NOW = T0 + 600

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


def sampled_run(
    run_dir: Path, util: float, *, finish: bool = True, epochs: int = 2, end: float | None = None
) -> FakeTraining:
    """A run on one 80 GB GPU that asked for 64 GB and peaked at 6.1 GB, its GPU ``util`` %
    busy and 61 % of its step time waiting for data (the issue's two examples); two epochs of
    ``epochs`` written, its job ending at ``end`` (an hour after its start by default)."""
    training = FakeTraining(run_dir, start=T0, step=10.0)
    environment = EnvironmentValue(
        cpus=4,
        mem_bytes=64 * GB,
        time_limit_s=3600.0,
        end_time=T0 + 3600.0 if end is None else end,
        gpus=[GpuInfo(0, "NVIDIA A100", 80 * GB)],
        started=T0,
    )
    with training._fake_clock():
        training.writer.write_extension("environment", environment)
    training.begin(epochs, 3)
    for epoch in range(2):
        training.epoch(epoch, losses(3), val_loss=0.5 - 0.1 * epoch)
        sample = SystemValue(
            gpus=[GpuSample(0, util, 5 * GB, 80 * GB)],
            cpu_percent=100.0,
            cpu_time_s=60.0 * (epoch + 1),
            rss_bytes=int(6.1 * GB),
            steps=3 * (epoch + 1),
            steps_per_s=0.1,
            data_wait_share=0.61,
            interval_s=100.0,
            time=training.now,
        )
        with training._fake_clock():
            training.writer.write_extension("system", sample)
    if finish:
        training.finish()
    else:
        training.writer.close()
    return training


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    sampled_run(root / "lr_0.1", 23.0)
    sampled_run(root / "lr_0.01", 25.0)
    return root


def unsampled(root: Path) -> None:
    FakeTraining(root / "plain", start=T0).begin(2, 3).epoch(0, losses(3)).finish()


async def test_gpu_and_memory_columns_come_with_samples_and_room(sweep: Path) -> None:
    app = WatchApp(sweep, clock=lambda: NOW, scheduler_interval=None)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(RunsTable)
        await wait_for(lambda: len(table.visible_keys) == 2, pilot.pause)
        key = str(sweep / "lr_0.1")
        await wait_for(lambda: table.cell(key, "gpu").plain == "23%", pilot.pause)
        assert table.cell(key, "mem").plain == "5.0G/80G"
        await wait_for(lambda: "GPU%" in screen_text(app), pilot.pause)
        assert "5.0G/80G" in screen_text(app)
        await pilot.resize_terminal(60, 30)  # narrow: the resource columns give way
        await wait_for(lambda: "GPU%" not in screen_text(app), pilot.pause)
        assert "5.0G/80G" not in screen_text(app) and "Phase" in screen_text(app)
        await pilot.resize_terminal(160, 30)
        await wait_for(lambda: "GPU%" in screen_text(app), pilot.pause)


async def test_no_resource_columns_without_samples(tmp_path: Path) -> None:
    unsampled(tmp_path)
    app = WatchApp(tmp_path, clock=lambda: NOW, scheduler_interval=None)
    async with app.run_test(size=(200, 30)) as pilot:
        table = app.query_one(RunsTable)
        key = str(tmp_path / "plain")
        await wait_for(lambda: key in table.visible_keys, pilot.pause)
        await wait_for(lambda: table.cell(key, "phase").plain.startswith("DONE"), pilot.pause)
        assert table.cell(key, "gpu").plain == "-" and "GPU%" not in screen_text(app)


async def test_detail_view_reports_the_run_and_its_sweep(sweep: Path) -> None:
    sampled_run(sweep / "lr_1", 90.0, finish=False)  # still training: not in the sweep's sum
    app = WatchApp(sweep, clock=lambda: NOW, scheduler_interval=None)
    async with app.run_test(size=(160, 60)) as pilot:
        table = app.query_one(RunsTable)
        await wait_for(lambda: len(table.visible_keys) == 3, pilot.pause)
        key = str(sweep / "lr_0.1")
        table.move_cursor(table.row_index(key))
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        panel = detail.query_one(ResourcesPanel)
        facts = panel.query_one("#resource-facts", TextPanel)
        await wait_for(lambda: "efficiency of the sweep" in str(facts.content), pilot.pause)
        text = str(facts.content)
        assert panel.display and "efficiency of the sweep (2 runs)" in text
        run_part, sweep_part = text.split("efficiency of the sweep")
        expected = "GPU 23 % busy, data wait 61 %: more data-loader workers or cached patches"
        assert expected in run_part and "asked 64 GB, peak 6.1 GB: 8 GB would do" in run_part
        assert "GPU 24 % busy" in sweep_part and "8 GB would do" in sweep_part
        assert panel.plotted_points()["gpu-util"] == 2


def test_status_summary_reports_the_sweeps_efficiency(sweep: Path) -> None:
    answer = cli("status", str(sweep), "--summary")
    assert answer.returncode == 0, answer.stderr
    report = answer.stdout.split("efficiency of 2 of 2 runs (ended, sampled):")[1]
    assert "GPU 24 % busy, data wait 61 %" in report and "8 GB would do" in report
    as_json = json.loads(cli("status", str(sweep), "--summary", "--json").stdout)
    assert as_json["efficiency"]["runs"] == 2
    assert {f["key"] for f in as_json["efficiency"]["findings"] if f["suggestion"]} >= {
        "gpu_util",
        "memory",
    }
    single = json.loads(cli("status", str(sweep), "--json").stdout)
    assert all(entry["efficiency"]["rss_peak_bytes"] == int(6.1 * GB) for entry in single)
    assert "efficiency of the run:" in cli("status", str(sweep / "lr_0.1"), "--summary").stdout


async def test_a_run_that_will_not_fit_its_time_limit_is_flagged(tmp_path: Path) -> None:
    """100 epochs of 3 steps at ~3 steps per 80 s, the job ending 10 minutes after its start."""
    fits = sampled_run(tmp_path / "fits", 50.0, finish=False, epochs=2)
    late = sampled_run(tmp_path / "late", 50.0, finish=False, epochs=100, end=T0 + 600)
    now = max(fits.now, late.now) + 5  # both training, just after their last records
    app = WatchApp(tmp_path, clock=lambda: now, scheduler_interval=None)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(RunsTable)
        await wait_for(lambda: len(table.visible_keys) == 2, pilot.pause)
        warned = str(tmp_path / "late")
        await wait_for(lambda: table.cell(warned, "eta").plain.endswith("!"), pilot.pause)
        assert not table.cell(str(tmp_path / "fits"), "eta").plain.endswith("!")
        summary = app.entries[warned].summary(now)
        assert summary["phase"] == "TRAINING"
        assert "of 100 epochs fit before the time limit" in summary["time_limit_warning"]
