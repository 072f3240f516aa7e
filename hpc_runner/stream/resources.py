"""Fold a run's ``system`` samples into what the views need: latest values, peaks, history, rate.

A run may write a sample every few seconds for days, and the reader cache keeps the fold, so
everything here is bounded: the plot history keeps at most :data:`HISTORY_POINTS` points over
the whole run (when full, every other point is dropped and only every second sample is kept
from then on), the rate window at most :data:`RATE_POINTS`, and the rest are sums and peaks.
Plain msgspec data (numbers, lists; at most a few hundred points, so lists rather than
``array``, which the reader cache's codec cannot store inside a struct): encodable as it is.
"""

from __future__ import annotations

import math
from typing import TypeVar

import msgspec

from hpc_runner.stream.system_values import SystemValue

#: Points of each history curve kept (over the whole run, thinned by halves).
HISTORY_POINTS = 512

#: (time, steps) pairs kept for the training rate (newest attempt only).
RATE_POINTS = 64

#: The rate is measured over at most this much recent time (seconds) ...
RATE_WINDOW_S = 600.0

#: ... and over at most this share of the attempt so far: a training's first minutes (loading,
#: caching, warm-up) say little about its pace later on.
RATE_SHARE = 0.5

_NAN = math.nan

N = TypeVar("N", int, float)


def _history() -> list[float]:
    return []


class Resources(msgspec.Struct, kw_only=True):
    """Everything the ``system`` records of one run add up to.

    Attributes
    ----------
    latest : SystemValue | None
        The newest sample, ``latest_t`` its time, ``attempt`` the attempt that took it.
    samples : int
        Samples folded.
    times, gpu_util, gpu_mem, steps_per_s : list of float
        History for plots: time, mean utilisation of the job's GPUs (%), their memory in use
        (bytes, summed), training steps per second; NaN where a sample did not say.
    stride : int
        The history keeps one sample in ``stride``.
    gpu_util_sum, gpu_util_count
        For the mean GPU utilisation of the whole run.
    gpu_mem_peak, gpu_mem_total : int | None
        The highest memory in use on one GPU, and that GPU's total.
    torch_peak, rss_peak : int | None
        torch's peak allocated CUDA memory and the process tree's peak resident memory.
    cpu_percent_peak : float | None
        Highest CPU use between two samples (100 = one core).
    data_wait_time, data_wait_weighted : float
        Seconds covered by samples with a data-wait share, and those seconds times the share.
    cpu_time_done, wall_done : float
        CPU time and wall time (since each process started) of the attempts before ``attempt``.
    cpu_time, wall : float | None
        The same for ``attempt``, as of its newest sample.
    started : float | None
        When ``attempt``'s training process started (its environment record says).
    rate_points : list of (time, steps)
        Recent progress of ``attempt``, for :meth:`steps_per_s_recent`.
    """

    latest: SystemValue | None = None
    latest_t: float = 0.0
    attempt: int = -1
    samples: int = 0
    times: list[float] = msgspec.field(default_factory=_history)
    gpu_util: list[float] = msgspec.field(default_factory=_history)
    gpu_mem: list[float] = msgspec.field(default_factory=_history)
    steps_per_s: list[float] = msgspec.field(default_factory=_history)
    stride: int = 1
    gpu_util_sum: float = 0.0
    gpu_util_count: int = 0
    gpu_mem_peak: int | None = None
    gpu_mem_total: int | None = None
    torch_peak: int | None = None
    rss_peak: int | None = None
    cpu_percent_peak: float | None = None
    data_wait_time: float = 0.0
    data_wait_weighted: float = 0.0
    cpu_time_done: float = 0.0
    wall_done: float = 0.0
    cpu_time: float | None = None
    wall: float | None = None
    started: float | None = None
    started_attempt: int = -1
    rate_points: list[tuple[float, int]] = msgspec.field(default_factory=list)

    def attempt_started(self, attempt: int, started: float | None) -> None:
        """Note when an attempt's training process started (from its environment record)."""
        if started is not None and attempt >= self.started_attempt:
            self.started, self.started_attempt = started, attempt

    def add(self, t: float, attempt: int, value: SystemValue) -> None:
        """Fold one sample taken at ``t`` by ``attempt``."""
        if attempt != self.attempt:
            if attempt < self.attempt:
                return  # a stale attempt's line, written late: the newer attempt owns the totals
            self._new_attempt(attempt)
        self.latest, self.latest_t = value, t
        self.samples += 1
        util, used, _ = gpu_figures(value)
        if util is not None:
            self.gpu_util_sum += util
            self.gpu_util_count += 1
        for gpu in value.gpus or ():
            if gpu.mem_used_bytes is not None and (
                self.gpu_mem_peak is None or gpu.mem_used_bytes > self.gpu_mem_peak
            ):
                self.gpu_mem_peak, self.gpu_mem_total = gpu.mem_used_bytes, gpu.mem_total_bytes
        self.torch_peak = _max(self.torch_peak, value.torch_peak_bytes)
        self.rss_peak = _max(self.rss_peak, value.rss_bytes)
        self.cpu_percent_peak = _max(self.cpu_percent_peak, value.cpu_percent)
        share, interval = value.data_wait_share, value.interval_s
        if share is not None and interval:
            self.data_wait_time += interval
            self.data_wait_weighted += share * interval
        if value.cpu_time_s is not None:
            start = self.started if self.started_attempt == attempt else None
            if start is None and self.wall is None:
                start = t - (value.interval_s or 0.0)
            self.cpu_time = value.cpu_time_s
            self.wall = t - start if start is not None else (self.wall or 0.0)
        if value.steps is not None:
            self._add_rate_point(t, value.steps)
        if (self.samples - 1) % self.stride == 0:
            self._add_history(t, util, used, value.steps_per_s)

    @property
    def gpu_util_mean(self) -> float | None:
        """Mean utilisation of the job's GPUs over the run (%)."""
        return self.gpu_util_sum / self.gpu_util_count if self.gpu_util_count else None

    @property
    def data_wait_share(self) -> float | None:
        """Share of the sampled epoch time spent waiting for data, over the run."""
        return self.data_wait_weighted / self.data_wait_time if self.data_wait_time else None

    @property
    def cpu_time_total(self) -> float | None:
        """CPU time of every attempt's process tree."""
        if self.cpu_time is None and not self.cpu_time_done:
            return None
        return self.cpu_time_done + (self.cpu_time or 0.0)

    @property
    def wall_total(self) -> float | None:
        """Wall time of every attempt, each from its process start to its newest sample."""
        if self.wall is None and not self.wall_done:
            return None
        return self.wall_done + (self.wall or 0.0)

    def steps_per_s_recent(self) -> float | None:
        """Training steps per second of the newest attempt over its recent past: the last
        :data:`RATE_WINDOW_S`, or the last :data:`RATE_SHARE` of the attempt if shorter
        (validations and checkpoints included: it is measured over wall time)."""
        points = self.rate_points
        if len(points) < 2:
            return None
        last_t, last_steps = points[-1]
        window = min(RATE_WINDOW_S, RATE_SHARE * (last_t - points[0][0]))
        anchor = next((p for p in points if last_t - p[0] <= window), points[-2])
        if anchor is points[-1]:
            anchor = points[-2]
        span = last_t - anchor[0]
        return (last_steps - anchor[1]) / span if span > 0 else None

    def _new_attempt(self, attempt: int) -> None:
        self.cpu_time_done += self.cpu_time or 0.0
        self.wall_done += self.wall or 0.0
        self.cpu_time = self.wall = None
        self.attempt = attempt
        self.rate_points = []

    def _add_rate_point(self, t: float, steps: int) -> None:
        points = self.rate_points
        points.append((t, steps))
        if len(points) > RATE_POINTS:
            self.rate_points = [*points[:-1:2], points[-1]]

    def _add_history(
        self, t: float, util: float | None, used: int | None, rate: float | None
    ) -> None:
        self.times.append(t)
        self.gpu_util.append(_NAN if util is None else util)
        self.gpu_mem.append(_NAN if used is None else float(used))
        self.steps_per_s.append(_NAN if rate is None else rate)
        if len(self.times) > HISTORY_POINTS:
            for name in ("times", "gpu_util", "gpu_mem", "steps_per_s"):
                setattr(self, name, getattr(self, name)[::2])
            self.stride *= 2


def _max(a: N | None, b: N | None) -> N | None:
    if b is None:
        return a
    return b if a is None or b > a else a


def gpu_figures(value: SystemValue) -> tuple[float | None, int | None, int | None]:
    """Mean utilisation (%), memory in use and in total (bytes, summed) of a sample's GPUs."""
    gpus = value.gpus or ()
    utils = [gpu.util_percent for gpu in gpus if gpu.util_percent is not None]
    used = [gpu.mem_used_bytes for gpu in gpus if gpu.mem_used_bytes is not None]
    total = [gpu.mem_total_bytes for gpu in gpus if gpu.mem_total_bytes is not None]
    return (
        sum(utils) / len(utils) if utils else None,
        sum(used) if used else None,
        sum(total) if total else None,
    )
