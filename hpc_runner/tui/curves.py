"""What the plots draw: a run's curves as named series against epochs (pure, tested directly).

A training step is a fraction of an epoch (step ``i`` of an epoch of ``n`` batches is at
``epoch + (i + 1) / n``), so loss and val_loss share one x axis, labelled in whole epochs.
Where the run does not say how many batches an epoch has, steps are the axis.

The points come from :func:`~hpc_runner.stream.series.plot_series` only (min and max per bucket
of a long history, so spikes stay visible), the one reduction every plot uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.series import plot_series
from hpc_runner.tui.loss_plot import Series

#: One colour per run on a comparison plot (and loss / val_loss on a run's own).
PALETTE = ("cyan", "orange", "green", "magenta", "blue+", "red+", "white", "gray+")

__all__ = ["PALETTE", "Series", "ema", "integer_ticks", "prepared", "psnr_points", "run_series"]

#: EMA weight of the smoothing toggle (TensorBoard's default look), over the points shown.
SMOOTHING = 0.6


def steps_per_epoch(run: RunState) -> int | None:
    """Batches per epoch, if the run said so."""
    return run.status.max_batches if run.status.max_batches > 0 else None


def run_series(
    run: RunState, max_points: int, *, name: str = "", color: str | None = None
) -> tuple[list[Series], str]:
    """A run's loss and val_loss against epochs (or steps), and the x axis' name.

    With ``name`` (a comparison), the series are named ``NAME loss`` / ``NAME val_loss`` and
    share ``color``; otherwise ``loss`` and ``val_loss`` get a colour each.
    """
    points = plot_series(run, max_points)
    steps, losses = points.loss.xs, points.loss.ys
    epochs, vals = points.val_loss.xs, points.val_loss.ys
    per_epoch = steps_per_epoch(run)
    if per_epoch:
        xs = [step / per_epoch for step in steps]
        axis = "epoch"
    else:
        xs, axis = steps, "step"
        epochs = []  # val_loss has no place on a step axis without the epoch size
        vals = []
    prefix = f"{name} " if name else ""
    loss_color = color or PALETTE[0]
    val_color = color or PALETTE[1]
    series = [Series(f"{prefix}loss", xs, losses, loss_color, True, recorded=points.steps)]
    if per_epoch and run.val_losses:
        recorded = len(run.val_losses)
        series.append(Series(f"{prefix}val_loss", epochs, vals, val_color, recorded=recorded))
    return series, axis


def ema(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average, debiased (the first points are not pulled towards 0)."""
    smoothed: list[float] = []
    last, norm = 0.0, 0.0
    for value in values:
        last = weight * last + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        smoothed.append(last / norm)
    return smoothed


def prepared(series: list[Series], *, smooth: bool, log_y: bool) -> list[Series]:
    """The series as drawn: smoothed where asked and allowed; on a log axis, values ≤ 0
    (which it cannot show) left out."""
    shown = []
    for item in series:
        ys = ema(item.ys) if smooth and item.smooth else list(item.ys)
        xs = list(item.xs)
        if log_y:
            kept = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
            xs, ys = [x for x, _ in kept], [y for _, y in kept]
        shown.append(replace(item, xs=xs, ys=ys))
    return shown


def integer_ticks(high: float, most: int = 8) -> list[int]:
    """Whole-number ticks from 0 to at least ``high``, at most ``most`` + 1 of them, spaced
    1, 2, 5, 10, 20, 50, ... apart."""
    high = max(1.0, high)
    for scale in (10**power for power in range(0, 12)):
        for step in (1 * scale, 2 * scale, 5 * scale):
            if math.ceil(high / step) <= most:
                return list(range(0, step * math.ceil(high / step) + 1, step))
    return [0, math.ceil(high)]


def psnr_points(history: Sequence[tuple[int, float | None]]) -> tuple[list[float], list[float]]:
    """(x, y) of a run's preview PSNR curve: epoch, dB, for the previews that measured one."""
    pairs = [(float(epoch), psnr) for epoch, psnr in history if psnr is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]
