"""Curves for a plot: a million steps become a few hundred points, and no spike is lost.

(Replaces the bucket-mean test of ``tui.loss_plot.downsample``: issue 15 changed the rule to the
min and max of each bucket, so a loss spike or a collapse stays on the plot.)
"""

from __future__ import annotations

import math
from array import array

from hypothesis import given
from hypothesis import strategies as st

from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.series import minmax_downsample, plot_series


def test_a_short_curve_is_kept_whole_without_its_non_finite_values() -> None:
    series = minmax_downsample([1.0, math.nan, 3.0, math.inf], 10)
    assert (series.xs, series.ys) == ([1.0, 3.0], [1.0, 3.0])


def test_a_spike_and_a_collapse_in_a_million_steps_stay_on_the_plot() -> None:
    values = array("d", [1.0 + (i % 10) / 100 for i in range(1_000_000)])
    values[123_457] = 50.0  # one step's spike
    values[876_543] = -3.0  # one step's collapse
    series = minmax_downsample(values, 200)
    assert len(series) <= 200
    assert 50.0 in series.ys and -3.0 in series.ys
    assert series.xs[series.ys.index(50.0)] == 123_458  # at its own step (x counts from 1)
    assert series.xs[series.ys.index(-3.0)] == 876_544
    values.append(1.0)  # the array is not pinned: training goes on
    # Bucket means (the rule before) would have drawn the spike at ~1.005.


def test_the_newest_steps_are_always_on_the_plot() -> None:
    series = minmax_downsample(array("d", [1.0] * 1000 + [9.0] * 3), 100)
    assert len(series) <= 100
    assert series.ys[-1] == 9.0 and series.xs[-1] > 1000


def test_buckets_of_only_nan_are_left_out_and_others_keep_their_finite_values() -> None:
    values = array("d", [math.nan] * 5000 + [2.0] * 4999 + [math.inf])
    series = minmax_downsample(values, 100)
    assert series.ys and set(series.ys) == {2.0}
    assert min(series.xs) > 5000


@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=400),
    max_points=st.integers(2, 60),
)
def test_any_curve_fits_and_keeps_its_extremes(values: list[float], max_points: int) -> None:
    series = minmax_downsample(values, max_points)
    finite = [value for value in values if math.isfinite(value)]
    assert len(series) <= max(max_points, len(finite) if len(values) <= max_points else 0)
    assert series.xs == sorted(set(series.xs))  # in step order, each step once
    for x, y in zip(series.xs, series.ys, strict=True):
        assert values[int(x) - 1] == y  # a real value, at its own step
    if finite:
        assert min(finite) in series.ys and max(finite) in series.ys
    else:
        assert len(series) == 0


def test_plot_series_puts_validations_at_the_epochs_a_user_counts() -> None:
    run = RunState()
    run.losses.extend([0.9, 0.8, math.nan, 0.7])
    run.val_losses += [(0, 0.5), (1, math.nan), (2, 0.4)]
    series = plot_series(run, 100)
    assert (series.loss.xs, series.loss.ys) == ([1.0, 2.0, 4.0], [0.9, 0.8, 0.7])
    assert (series.val_loss.xs, series.val_loss.ys) == ([1.0, 3.0], [0.5, 0.4])
    assert series.steps == 4
