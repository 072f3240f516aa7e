"""Runs compared: one plot overlaying the marked runs' curves, one colour per run, a legend.

The runs are marked with ``space`` in the table and opened with ``p``. ``t`` switches between
val_loss, loss and both; ``L`` and ``E`` are the log scale and smoothing of the detail view.
The plot follows the runs live (the app's coalesced refresh), at most every half second.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Static

from hpc_runner.tui.curves import PALETTE, integer_ticks, prepared, run_series
from hpc_runner.tui.loss_plot import LossPlot, Series
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.plot_throttle import PlotThrottle
from hpc_runner.tui.run_screen import LiveScreen
from hpc_runner.tui.text import literal

#: What ``t`` cycles through.
METRICS = ("val_loss", "loss", "both")


def compare_series(
    entries: list[RunEntry], metric: str, max_points: int
) -> tuple[list[Series], str]:
    """Each run's curves in its own colour, and the x axis (epochs if every run tells them)."""
    series: list[Series] = []
    axes = set()
    for index, entry in enumerate(entries):
        color = PALETTE[index % len(PALETTE)]
        own, axis = run_series(entry.run, max_points, name=entry.label, color=color)
        axes.add(axis)
        for item in own:
            is_val = item.name.endswith(" val_loss")
            if metric == "both" or (metric == "val_loss") == is_val:
                if metric == "both" and is_val:
                    item = replace(item, marker="dot")
                elif metric != "both":
                    item = replace(item, name=entry.label)
                series.append(item)
    return series, "epoch" if axes == {"epoch"} else "step"


def legend_text(entries: list[RunEntry]) -> Text:
    """``● run_a  ● run_b`` in the runs' colours (names literal)."""
    text = Text()
    for index, entry in enumerate(entries):
        if index:
            text.append("   ")
        text.append("● ", style=_rich_color(PALETTE[index % len(PALETTE)]))
        text.append_text(literal(entry.label))
    return text


def _rich_color(name: str) -> str:
    base = name.rstrip("+")
    return {"orange": "dark_orange", "gray": "grey70"}.get(base, base)


class CompareScreen(LiveScreen):
    """The marked runs' curves on one plot.

    Parameters
    ----------
    entries : list of RunEntry
        The runs, in the order of their colours.
    clock : callable
        The app's clock (unused by the plot; kept for the screens' common interface).
    """

    DEFAULT_CSS = """
    CompareScreen #legend { height: auto; max-height: 4; background: $panel; padding: 0 1; }
    CompareScreen LossPlot { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", tooltip="back to the runs table"),
        Binding("t", "metric", "Metric", tooltip="show val_loss, loss, or both (cycles)"),
        Binding("L", "toggle_plot('log_y')", "Log scale", tooltip="a logarithmic y axis"),
        Binding("E", "toggle_plot('smooth')", "Smooth", tooltip="smooth the per-step loss (EMA)"),
    ]

    def __init__(self, entries: list[RunEntry], clock: Callable[[], float]) -> None:
        super().__init__()
        self.entries = entries
        self.clock = clock
        has_val = any(entry.run.val_losses for entry in entries)
        self.metric = "val_loss" if has_val else "loss"
        self.log_y = False
        self.smooth = False
        self.throttle = PlotThrottle(self, self._plot)

    def compose(self) -> ComposeResult:
        yield Static(legend_text(self.entries), id="legend", markup=False)
        yield LossPlot("compared", "epoch")
        yield Footer()

    def on_mount(self) -> None:
        self.call_after_refresh(self.throttle.now)

    @property
    def plot(self) -> LossPlot:
        """The plot widget."""
        return self.query_one(LossPlot)

    def refresh_runs(self, changed: Collection[str], now: float | None = None) -> None:
        """Redraw (soon) if one of the compared runs changed."""
        if any(entry.key in changed for entry in self.entries):
            self.throttle.soon()

    def tick(self, now: float) -> None:
        """Nothing here moves with the clock."""

    def _plot(self) -> bool:
        plot = self.plot
        series, axis = compare_series(self.entries, self.metric, max(16, 2 * plot.size.width))
        right = max((x for item in series for x in item.xs), default=0.0)
        toggles = (("log", self.log_y), ("smoothed", self.smooth))
        notes = [self.metric, *(name for name, on in toggles if on)]
        plot.show_series(
            prepared(series, smooth=self.smooth, log_y=self.log_y),
            x_label=axis,
            log_y=self.log_y,
            x_ticks=integer_ticks(right) if axis == "epoch" and right else None,
            note=", ".join(notes),
        )
        return True

    def on_resize(self) -> None:
        self.throttle.soon()

    def action_back(self) -> None:
        self.dismiss()

    def action_metric(self) -> None:
        self.metric = METRICS[(METRICS.index(self.metric) + 1) % len(METRICS)]
        self.throttle.now()

    def action_toggle_plot(self, name: str) -> None:
        setattr(self, name, not getattr(self, name))
        self.throttle.now()
