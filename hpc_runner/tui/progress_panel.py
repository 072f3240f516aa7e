"""Epoch and batch progress bars of one run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label, ProgressBar

from hpc_runner.stream.status import TrainingStatus
from hpc_runner.tui.model import format_progress


class TrainingProgress(Widget):
    """Two labelled bars, as careamics-napari shows them: epoch ``x/N`` and batch ``x/N``.

    A bar whose total is not known yet stays empty rather than animating, so that the screen is
    calm (and snapshots are stable) before the first records arrive.
    """

    DEFAULT_CSS = """
    TrainingProgress { height: 2; }
    TrainingProgress Horizontal { height: 1; }
    TrainingProgress Label { width: 16; }
    TrainingProgress ProgressBar { width: 1fr; }
    TrainingProgress Bar { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        for name in ("epoch", "batch"):
            with Horizontal():
                yield Label(name.capitalize(), id=f"{name}-label", markup=False)
                yield ProgressBar(total=1, show_eta=False, id=f"{name}-bar")

    def show(self, status: TrainingStatus) -> None:
        """Set both bars from the status (``idx + 1`` of the maximum, as the napari plugin)."""
        for name, index, total in (
            ("epoch", status.epoch_idx, status.max_epochs),
            ("batch", status.batch_idx, status.max_batches),
        ):
            bar = self.query_one(f"#{name}-bar", ProgressBar)
            bar.update(total=max(total, 1), progress=max(0, min(index + 1, max(total, 1))))
            label = f"{name.capitalize()} {format_progress(index, total)}"
            self.query_one(f"#{name}-label", Label).update(label)
