"""A loss curve drawn in the terminal (plotext), fed at most a few hundred points.

A long training has millions of steps; plotting them all would take seconds per frame. The curve
is averaged into at most ``2 * width`` buckets (two braille dots per cell), which is also what
the eye can see at that size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual_plotext import PlotextPlot


def _bucket_means(values: Sequence[float], start: int, stop: int) -> float | None:
    finite = [value for value in values[start:stop] if math.isfinite(value)]
    return math.fsum(finite) / len(finite) if finite else None


def downsample(values: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """(x, y) of at most ``max_points`` bucket means of ``values``; x counts from 1, NaN skipped.

    The last bucket may be partial: the newest steps are always on the plot.

    Parameters
    ----------
    values : sequence of float
        The curve, one value per step (the run's ``losses`` array).
    max_points : int
        Upper bound on the number of points returned.
    """
    count = len(values)
    if count <= max_points:
        pairs = [(index + 1.0, value) for index, value in enumerate(values) if math.isfinite(value)]
        return [x for x, _ in pairs], [y for _, y in pairs]
    width = math.ceil(count / max(1, max_points - 1))  # leaves room for a partial last bucket
    usable = count // width * width
    xs: list[float] = []
    ys: list[float] = []
    try:
        import numpy as np  # only for long curves: importing it costs ~0.1 s
    except ImportError:  # numpy comes with careamics; without it, the same in plain Python
        for start in range(0, usable, width):
            mean = _bucket_means(values, start, start + width)
            if mean is not None:
                xs.append(start + (width + 1) / 2)
                ys.append(mean)
    else:
        # A copy, not a view: a view would pin the array's buffer and forbid appending to it.
        data = np.array(values[:usable], dtype=np.float64).reshape(-1, width)
        finite = np.isfinite(data)
        sums = np.where(finite, data, 0.0).sum(axis=1)
        counts = finite.sum(axis=1)
        keep = counts > 0
        centres = np.arange(len(sums)) * width + (width + 1) / 2
        xs, ys = centres[keep].tolist(), (sums[keep] / counts[keep]).tolist()
    if usable < count and (mean := _bucket_means(values, usable, count)) is not None:
        xs.append((usable + count + 1) / 2)
        ys.append(mean)
    return xs, ys


class LossPlot(PlotextPlot):
    """One curve with a title and an x label; :meth:`show` replaces the data.

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
        self.hide_empty = hide_empty

    def on_mount(self) -> None:
        super().on_mount()
        self.show([], [])

    def show(self, xs: list[float], ys: list[float]) -> None:
        """Replace the curve (at most a few hundred points: see :func:`downsample`)."""
        plt = self.plt
        plt.clear_data()
        plt.title(self.title if ys else f"{self.title} (no values yet)")
        plt.xlabel(self.x_label)
        if ys:
            plt.plot(xs, ys, marker="braille")
        self.points = len(ys)
        if self.hide_empty:
            self.display = bool(ys)
        self.refresh()


def psnr_points(history: Sequence[tuple[int, float | None]]) -> tuple[list[float], list[float]]:
    """(x, y) of a run's preview PSNR curve: epoch, dB, for the previews that measured one."""
    pairs = [(float(epoch), psnr) for epoch, psnr in history if psnr is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]
