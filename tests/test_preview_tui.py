"""The detail view of a run with previews: the newest picture in half-blocks, ``[``/``]`` through
the epochs, the PSNR curve beside the loss curves (Pilot, and a snapshot of the screen)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from textual.pilot import Pilot

from hpc_runner.data.preview_image import compose, png_bytes
from hpc_runner.stream.previews import preview_relpath
from hpc_runner.stream.records import PreviewValue
from hpc_runner.tui import terminal_images
from hpc_runner.tui.app import WatchApp
from hpc_runner.tui.detail_screen import DetailScreen
from hpc_runner.tui.loss_plot import LossPlot
from hpc_runner.tui.preview_panel import PreviewPanel
from tests.tui_support import T0, FakeTraining, losses, timezone, wait_for

SIZE = (120, 36)
PSNRS = {2: 18.25, 4: 21.5, 6: 23.75}

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


def write_run_with_previews(run_dir: Path) -> None:
    """A finished 6-epoch run that previewed every second epoch, pictures included."""
    training = FakeTraining(run_dir, start=T0).begin(6, 4)
    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (64, 1))[np.newaxis]
    noisy = clean + rng.normal(0.0, 0.3, clean.shape).astype(np.float32)
    (run_dir / "previews").mkdir(parents=True)
    for epoch in range(6):
        training.epoch(epoch, losses(4, 0.9 - 0.1 * epoch), val_loss=0.5 - 0.05 * epoch)
        done = epoch + 1
        if done in PSNRS:
            weight = done / 6  # the prediction gets closer to the clean image
            prediction = weight * clean + (1 - weight) * noisy
            picture = compose(noisy, prediction, epoch=done, psnr=PSNRS[done])
            (run_dir / preview_relpath(done)).write_bytes(png_bytes(picture))
            with training._fake_clock():
                training.writer.write_extension(
                    "preview", PreviewValue(preview_relpath(done), done, PSNRS[done])
                )
    training.finish()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WatchApp]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(terminal_images.ENV, "halfblock")
    monkeypatch.setattr(terminal_images, "_loaded", {})
    write_run_with_previews(Path("runs") / "n2v_previews")
    with timezone("UTC"):
        yield WatchApp(
            Path("runs"),
            poll=0.5,
            clock=lambda: T0 + 170,
            scheduler_interval=None,
            watcher_options={"min_interval": 0.0},
        )


async def open_previews(pilot: Pilot[None]) -> PreviewPanel:
    app = pilot.app
    assert isinstance(app, WatchApp)
    await wait_for(app.scan_done.is_set, lambda: pilot.pause(0.02))
    await pilot.pause()
    await pilot.press("enter")
    detail = app.screen
    assert isinstance(detail, DetailScreen)
    panel = detail.query_one(PreviewPanel)
    await wait_for(lambda: panel._shown == 6, lambda: pilot.pause(0.02))
    await wait_for(lambda: detail._plotted is not None, lambda: pilot.pause(0.02))
    await wait_for(lambda: detail.meta is not None, lambda: pilot.pause(0.02))
    await pilot.pause()
    return panel


async def test_brackets_step_through_the_previews(app: WatchApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_previews(pilot)
        assert panel.images.mode == "halfblock" and panel.display
        assert panel.history == sorted(PSNRS.items())
        caption = str(panel.query_one("#preview-caption").render())
        assert "epoch 6" in caption and "PSNR 23.75 dB" in caption and "3/3" in caption
        psnr = app.screen.query_one("#psnr", LossPlot)
        assert psnr.display and psnr.points == 3
        await pilot.press("left_square_bracket")
        await wait_for(lambda: panel._shown == 4, lambda: pilot.pause(0.02))
        assert not panel.following and "PSNR 21.50 dB" in str(
            panel.query_one("#preview-caption").render()
        )
        await pilot.press("left_square_bracket", "left_square_bracket")  # stops at the first
        await wait_for(lambda: panel._shown == 2, lambda: pilot.pause(0.02))
        await pilot.press("right_square_bracket", "right_square_bracket")
        await wait_for(lambda: panel._shown == 6, lambda: pilot.pause(0.02))
        assert panel.following  # back at the newest: new previews will show


async def test_a_run_without_previews_shows_no_panel_and_no_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plain = FakeTraining(Path("runs") / "plain", start=T0).begin(2, 4)
    plain.epoch(0, losses(4)).finish()
    app = WatchApp(Path("runs"), poll=0.5, clock=lambda: T0 + 60, scheduler_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.scan_done.is_set, lambda: pilot.pause(0.02))
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        await pilot.pause()
        assert not detail.query_one(PreviewPanel).display
        assert not detail.query_one("#psnr", LossPlot).display
        assert detail.check_action("preview", (1,)) is False


def test_detail_with_a_preview_in_half_blocks(snap_compare, app: WatchApp) -> None:
    """The newest picture (epoch 6) beside the loss, val_loss and PSNR curves."""

    async def run_before(pilot: Pilot[None]) -> None:
        await open_previews(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
