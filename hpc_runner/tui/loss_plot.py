"""Curves drawn in the terminal (plotext), each fed at most a few hundred points.

A long training has millions of steps; plotting them all would take seconds per frame. The curve
is reduced to the min and max of at most ``width`` buckets (two braille dots per cell), which is
also what the eye can see at that size, and a spike stays visible (see
:mod:`hpc_runner.stream.series`).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual_plotext import PlotextPlot

from hpc_runner.tui.text import literal


@dataclass(frozen=True)
class Series:
    """One named curve of a plot (the plot's whole data API: a list of these).

    Attributes
    ----------
    name : str
        Its legend entry (from a file: shown literally).
    xs, ys : list of float
        The points, x increasing (at most a few hundred: see
        :func:`~hpc_runner.stream.series.plot_series`).
    color : str
        A plotext colour name.
    smooth : bool
        The smoothing toggle applies to it (noisy per-step curves, not per-epoch ones).
    marker : str
        plotext's marker (``braille``: two dots per cell, the finest).
    recorded : int
        How many values it stands for, those it cannot draw (nan, inf) included: a plot with
        nothing to draw tells "no values yet" from "none can be drawn" by it.
    """

    name: str
    xs: list[float]
    ys: list[float]
    color: str = "cyan"
    smooth: bool = False
    marker: str = "braille"
    recorded: int = 0


class LossPlot(PlotextPlot):
    """Curves with a title, a legend and labelled axes; :meth:`show_series` replaces them.

    With ``hide_empty`` the plot takes no room until it has values: the preview PSNR curve
    exists only for runs with previews and a ground truth.
    """

    DEFAULT_CSS = """
    LossPlot { height: 1fr; min-height: 8; }
    """

    def __init__(
        self, title: str, x_label: str, *, id: str | None = None, hide_empty: bool = False
    ) -> None:
        super().__init__(id=id)
        self.title = title
        self.x_label = x_label
        self.points = 0
        self.shown: list[Series] = []
        self.hide_empty = hide_empty

    def on_mount(self) -> None:
        super().on_mount()
        self.show_series([])

    def show(self, xs: list[float], ys: list[float]) -> None:
        """One unnamed curve (at most a few hundred points: see
        :func:`~hpc_runner.stream.series.plot_series`)."""
        self.show_series([Series("", xs, ys)] if ys else [])

    def show_series(
        self,
        series: list[Series],
        *,
        x_label: str | None = None,
        log_y: bool = False,
        x_ticks: list[int] | None = None,
        note: str = "",
    ) -> None:
        """Replace the curves; a named series gets a legend entry.

        Parameters
        ----------
        series : list of Series
            What to draw (empty series are left out).
        x_label : str, optional
            The x axis' name (default: the one given at construction).
        log_y : bool
            A logarithmic y axis.
        x_ticks : list of int, optional
            Where the x axis is labelled (whole epochs).
        note : str
            Said after the title (``log``, ``smoothed``).
        """
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        drawn = [item for item in series if item.ys]
        title = self.title if drawn else f"{self.title} ({_nothing_drawn(series, log_y)})"
        plt.title(f"{title}  [{note}]" if note and drawn else title)
        plt.xlabel(x_label or self.x_label)
        plt.yscale("log" if log_y and drawn else "linear")
        for item in drawn:
            label = literal(item.name).plain or None
            plt.plot(item.xs, item.ys, marker=item.marker, color=item.color, label=label)
        if x_ticks and drawn:
            plt.xticks([float(tick) for tick in x_ticks], [str(tick) for tick in x_ticks])
        self.points = sum(len(item.ys) for item in drawn)
        self.shown = drawn
        if self.hide_empty:
            self.display = bool(drawn)
        self.refresh()


def _nothing_drawn(series: list[Series], log_y: bool) -> str:
    """Why a plot is empty: no value yet, or none it can draw (a run that diverged at once
    is not one that has not trained)."""
    if not any(item.recorded for item in series):
        return "no values yet"
    if log_y:
        return "no value to draw: every one is nan, inf or not above 0 on a log axis"
    return "no value to draw: every one is nan or inf"
