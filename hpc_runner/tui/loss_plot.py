"""A loss curve drawn in the terminal (plotext), fed at most a few hundred points.

A long training has millions of steps; plotting them all would take seconds per frame. The curve
is reduced to the min and max of at most ``width`` buckets (two braille dots per cell), which is
also what the eye can see at that size, and a spike stays visible (see
:mod:`hpc_runner.stream.series`).
"""

from __future__ import annotations

from textual_plotext import PlotextPlot


class LossPlot(PlotextPlot):
    """One curve with a title and an x label; :meth:`show` replaces the data."""

    DEFAULT_CSS = """
    LossPlot { height: 1fr; min-height: 8; }
    """

    def __init__(self, title: str, x_label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.x_label = x_label
        self.points = 0

    def on_mount(self) -> None:
        super().on_mount()
        self.show([], [])

    def show(self, xs: list[float], ys: list[float]) -> None:
        """Replace the curve (at most a few hundred points: see
        :func:`~hpc_runner.stream.series.plot_series`)."""
        plt = self.plt
        plt.clear_data()
        plt.title(self.title if ys else f"{self.title} (no values yet)")
        plt.xlabel(self.x_label)
        if ys:
            plt.plot(xs, ys, marker="braille")
        self.points = len(ys)
        self.refresh()
