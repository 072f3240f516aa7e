"""A run's curves, ready to plot: at most a few hundred points each, spikes kept.

A long training has a million steps; a terminal plot is a few hundred dots wide. Each bucket of
consecutive steps becomes its lowest and its highest value (in the order they happened, at the
steps where they happened), so a loss spike or a collapse stays on the plot where a bucket
mean would average it away. Plain Python on the run's compact ``array`` (no numpy, whose import
alone costs ~0.1 s): ``min``/``max`` over array slices run in C, ~15 ms for 500,000 steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hpc_runner.stream.run_state import RunState

__all__ = ["PlotSeries", "Series", "minmax_downsample", "plot_series"]


@dataclass(frozen=True)
class Series:
    """Points of one curve, in x order (non-finite values left out)."""

    xs: list[float]
    ys: list[float]

    def __len__(self) -> int:
        return len(self.xs)


@dataclass(frozen=True)
class PlotSeries:
    """Every curve of a run a view plots.

    Attributes
    ----------
    loss : Series
        Training loss by optimizer step (x counts from 1), min and max per bucket.
    val_loss : Series
        Validation loss by epoch (x = epoch + 1, the epochs a user counts).
    steps : int
        Steps recorded in all (what the x axis of ``loss`` spans).
    """

    loss: Series
    val_loss: Series
    steps: int


def plot_series(run: RunState, max_points: int) -> PlotSeries:
    """The curves of ``run`` with at most ``max_points`` points each (the one function every
    view that plots a run calls)."""
    val = run.val_losses
    return PlotSeries(
        loss=minmax_downsample(run.losses, max_points),
        val_loss=minmax_downsample(
            [value for _, value in val], max_points, lambda i: val[i][0] + 1.0
        ),
        steps=len(run.losses),
    )


def minmax_downsample(
    values: Sequence[float], max_points: int, x_of: Callable[[int], float] | None = None
) -> Series:
    """At most ``max_points`` points of ``values``: all of them if they fit, else the min and
    max of each of ``max_points // 2`` buckets; the last bucket may be partial, so the newest
    value is always in it. NaN and infinities are left out.

    Parameters
    ----------
    values : sequence of float
        One value per step (an ``array`` or a list).
    max_points : int
        Upper bound on the points returned.
    x_of : callable, optional
        The x of the value at an index (default: index + 1, a step count).
    """
    position = x_of or _step
    count = len(values)
    if count <= max_points:
        finite = [(position(i), value) for i, value in enumerate(values) if math.isfinite(value)]
        return Series([x for x, _ in finite], [y for _, y in finite])
    width = math.ceil(count / max(1, max_points // 2))
    xs: list[float] = []
    ys: list[float] = []
    for start in range(0, count, width):
        chunk = values[start : start + width]
        # min() and max() never take a NaN after the first value (every comparison with NaN is
        # false), so only a non-finite result needs the slower, filtering pass.
        low, high = min(chunk), max(chunk)
        if not (math.isfinite(low) and math.isfinite(high)):
            kept = [value for value in chunk if math.isfinite(value)]
            if not kept:
                continue
            low, high = min(kept), max(kept)
        for index in sorted({_index(chunk, low), _index(chunk, high)}):  # one if flat
            xs.append(position(start + index))
            ys.append(chunk[index])
    return Series(xs, ys)


def _step(index: int) -> float:
    return index + 1.0


def _index(chunk: Sequence[float], value: float) -> int:
    return chunk.index(value)  # type: ignore[attr-defined, no-any-return]
