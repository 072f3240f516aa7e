"""A run's resources for scripts and views: the ``environment``, ``resources`` and
``time_limit_warning`` keys of ``hpc-runner status --json``, and their short cells.

Built once from the fold (:class:`hpc_runner.stream.resources.Resources`) by
:func:`hpc_runner.watch.report.run_summary`; the text table, the TUI's columns and detail view
format what it built with :func:`gpu_cell`, :func:`memory_cell` and :func:`format_bytes`, so
no view computes a figure of its own. Monitoring side: no torch.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hpc_runner.stream.forecast import Forecast, forecast, steps_done
from hpc_runner.stream.resources import gpu_figures
from hpc_runner.stream.run_state import RunState

_GB = float(1 << 30)


def environment_json(run: RunState) -> dict[str, Any] | None:
    """The newest attempt's ``environment`` record as plain JSON (absent keys stay absent)."""
    if run.environment is None:
        return None
    return msgspec.to_builtins(run.environment)  # type: ignore[no-any-return]


def run_forecast(run: RunState, now: float) -> Forecast:
    """ETA and time-limit outlook of a training from its samples, status and environment.

    The steps done are the newest sample's, moved on at the measured rate for the time since
    it was taken (the status alone overcounts an epoch for a moment: a new epoch's record comes
    before its first batch's); the rate is the newest attempt's over the last few minutes
    (:meth:`~hpc_runner.stream.resources.Resources.steps_per_s_recent`).
    """
    status, resources = run.status, run.resources
    rate = resources.steps_per_s_recent()
    environment = run.environment
    end = environment.end_time if environment is not None else None
    time_left = end - now if end is not None else None
    latest = resources.latest
    done: float | None = steps_done(status)
    if latest is not None and latest.steps is not None:
        done = latest.steps + (rate or 0.0) * max(0.0, now - resources.latest_t)
    if done is None or status.max_epochs <= 0:
        return Forecast(time_left_s=time_left)
    return forecast(
        done=round(done),
        max_epochs=status.max_epochs,
        steps_per_epoch=status.max_batches,
        steps_per_s=rate,
        time_left_s=time_left,
        time_limit_s=environment.time_limit_s if environment is not None else None,
    )


def resources_json(run: RunState, outlook: Forecast | None) -> dict[str, Any] | None:
    """``resources``: the latest sample, peaks and means over the run, the measured rate, and
    (while it trains) the ETA and time left; None when the run wrote no sample."""
    resources = run.resources
    if resources.latest is None:
        return None
    latest = msgspec.to_builtins(resources.latest)
    latest.update(t=resources.latest_t, attempt=resources.attempt)
    util, used, total = gpu_figures(resources.latest)
    latest.update(gpu_util_percent=util, gpu_mem_used_bytes=used, gpu_mem_total_bytes=total)
    return {
        "latest": latest,
        "peaks": {
            "gpu_mem_used_bytes": resources.gpu_mem_peak,
            "gpu_mem_total_bytes": resources.gpu_mem_total,
            "torch_peak_bytes": resources.torch_peak,
            "rss_bytes": resources.rss_peak,
            "cpu_percent": resources.cpu_percent_peak,
        },
        "means": {
            "gpu_util_percent": resources.gpu_util_mean,
            "data_wait_share": resources.data_wait_share,
        },
        "samples": resources.samples,
        "steps_per_s": resources.steps_per_s_recent(),
        "eta_s": outlook.eta_s if outlook else None,
        "time_left_s": outlook.time_left_s if outlook else None,
    }


def format_bytes(value: float | None) -> str:
    """``6.1 GB`` (GB of 1024³ bytes, as SLURM counts them); ``-`` when unknown."""
    if value is None:
        return "-"
    if value >= _GB and value % _GB == 0:  # what was asked for: 64 GB, not 64.0 GB
        return f"{value / _GB:.0f} GB"
    if value >= 100 * _GB:
        return f"{value / _GB:.0f} GB"
    if value >= 0.1 * _GB:
        return f"{value / _GB:.1f} GB"
    return f"{value / (1 << 20):.0f} MB"


def _short_bytes(value: float) -> str:
    gb = value / _GB
    return f"{gb:.0f}G" if gb >= 10 else f"{gb:.1f}G"


def gpu_cell(resources: dict[str, Any] | None) -> str:
    """``87%``: mean utilisation of the run's GPUs in its newest sample; ``-`` if none."""
    latest = (resources or {}).get("latest") or {}
    util = latest.get("gpu_util_percent")
    return "-" if util is None else f"{util:.0f}%"


def memory_cell(resources: dict[str, Any] | None) -> str:
    """``5.2G/80G`` (GPU memory in use of its total) for a GPU run, ``1.2G`` (the process
    tree's resident memory) otherwise; ``-`` if nothing was sampled."""
    latest = (resources or {}).get("latest") or {}
    used, total = latest.get("gpu_mem_used_bytes"), latest.get("gpu_mem_total_bytes")
    if used is not None:
        return f"{_short_bytes(used)}/{_short_bytes(total)}" if total else _short_bytes(used)
    rss = latest.get("rss_bytes")
    return "-" if rss is None else _short_bytes(rss)
