"""How well a finished run (or a whole sweep) used what it asked for, with plain suggestions.

One pure computation for every view (``status --json`` as ``efficiency``, ``status --summary``,
the TUI's detail view): :func:`facts_of` reads a run's fold, :func:`combine` adds runs up for a
sweep, :func:`findings` compares the facts with the thresholds below and says what to change
when a figure is far off ("asked 64 GB, peak 6.1 GB: 8 GB would do"). The thresholds are named
constants; a value exactly on a threshold gets no suggestion.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from hpc_runner.control.phase import format_duration
from hpc_runner.stream.run_state import RunState
from hpc_runner.watch.resources import format_bytes

#: Less of the time limit used than this share: a shorter limit would queue sooner.
TIME_LIMIT_LOW_SHARE = 0.25
#: A suggested time limit is the wall time times this.
TIME_HEADROOM = 1.5
#: GPUs busier than this on average (%) are used well.
GPU_UTIL_LOW_PERCENT = 50.0
#: Waiting for data more than this share of the step time is a data-loading bottleneck.
DATA_WAIT_HIGH_SHARE = 0.3
#: Peak GPU memory below this share of the GPU's: a smaller GPU would do.
GPU_MEMORY_LOW_SHARE = 0.25
#: Peak GPU memory above this share: close to running out.
GPU_MEMORY_HIGH_SHARE = 0.95
#: CPU time below this share of (CPUs granted x wall time): fewer CPUs would do.
CPU_EFFICIENCY_LOW = 0.5
#: A suggested CPU count is the CPUs used on average times this.
CPU_HEADROOM = 1.25
#: Peak resident memory below this share of the memory granted: ask for less.
MEMORY_LOW_SHARE = 0.5
#: ... above this share: close to being killed for memory.
MEMORY_HIGH_SHARE = 0.9
#: A suggested memory size is the peak times this, rounded up to a size from MEMORY_SIZES_GB.
MEMORY_HEADROOM = 1.25
MEMORY_SIZES_GB = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)

#: CPU efficiency beyond this is a broken record, not a measurement (shown as unknown): a job
#: may use more CPUs than it asked for where nothing enforces the count (a local run), but not
#: a thousand times more. A claim of 1e308 s of CPU time made the CPU finding raise.
CPU_EFFICIENCY_POSSIBLE = 1000.0

_GB = float(1 << 30)


@dataclass(frozen=True)
class EfficiencyFacts:
    """What a run (or sweep) used against what it asked for; None where not measured.

    ``wall_s`` is a run's wall time over all its attempts (for a sweep: the longest run's);
    ``cpu_capacity_s`` is CPUs granted times wall time (summed over runs), so that
    ``cpu_time_s / cpu_capacity_s`` is the CPU efficiency; ``weight_s`` weighs the means
    (GPU utilisation, data wait) when runs are combined.
    """

    runs: int = 1
    wall_s: float | None = None
    attempts: int = 1
    time_limit_s: float | None = None
    gpus: int = 0
    gpu_util_percent: float | None = None
    gpu_mem_peak_bytes: int | None = None
    gpu_mem_total_bytes: int | None = None
    cpus: int | None = None
    cpu_time_s: float | None = None
    cpu_capacity_s: float | None = None
    rss_peak_bytes: int | None = None
    mem_bytes: int | None = None
    data_wait_share: float | None = None
    weight_s: float = 0.0

    @property
    def cpu_efficiency(self) -> float | None:
        """CPU time / (CPUs granted x wall time)."""
        if self.cpu_time_s is None or not self.cpu_capacity_s:
            return None
        efficiency = self.cpu_time_s / self.cpu_capacity_s
        return efficiency if 0.0 <= efficiency <= CPU_EFFICIENCY_POSSIBLE else None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EfficiencyFacts:
        """Facts back from an ``efficiency`` object of ``status --json``."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was measured, and what to change if it is far off."""

    key: str
    label: str
    value: str
    suggestion: str | None = None


def facts_of(run: RunState) -> EfficiencyFacts | None:
    """The efficiency facts of one run from its fold; None when it wrote no sample."""
    resources = run.resources
    if resources.latest is None:
        return None
    environment = run.environment
    wall = resources.wall_total
    cpus = environment.cpus if environment is not None else None
    gpus = len(environment.gpus or []) if environment is not None else 0
    return EfficiencyFacts(
        wall_s=wall,
        attempts=run.attempt + 1,
        time_limit_s=environment.time_limit_s if environment is not None else None,
        gpus=max(gpus, len(resources.latest.gpus or [])),
        gpu_util_percent=resources.gpu_util_mean,
        gpu_mem_peak_bytes=resources.gpu_mem_peak,
        gpu_mem_total_bytes=resources.gpu_mem_total,
        cpus=cpus,
        cpu_time_s=resources.cpu_time_total,
        cpu_capacity_s=cpus * wall if cpus and wall else None,
        rss_peak_bytes=resources.rss_peak,
        mem_bytes=environment.mem_bytes if environment is not None else None,
        data_wait_share=resources.data_wait_share,
        weight_s=wall or 0.0,
    )


def combine(runs: list[EfficiencyFacts]) -> EfficiencyFacts | None:
    """A sweep's facts: the longest run against the time limit, peaks over all runs, CPU time
    over all CPU capacity, means weighted by each run's wall time."""
    if not runs:
        return None

    def most(values: list[Any]) -> Any:
        known = [value for value in values if value is not None]
        return max(known) if known else None

    def total(values: list[float | None]) -> float | None:
        known = [value for value in values if value is not None]
        return _finite_sum(known) if known else None

    def mean(name: str) -> float | None:
        pairs = [
            (getattr(r, name), r.weight_s or 1.0) for r in runs if getattr(r, name) is not None
        ]
        if not pairs:
            return None
        weighted, weight = (
            _finite_sum([v * w for v, w in pairs]),
            _finite_sum([w for _, w in pairs]),
        )
        return None if weighted is None or not weight else _finite(weighted / weight)

    peak_gpu = max(
        (r for r in runs if r.gpu_mem_peak_bytes is not None),
        key=lambda r: r.gpu_mem_peak_bytes or 0,
        default=None,
    )
    return EfficiencyFacts(
        runs=sum(r.runs for r in runs),
        wall_s=most([r.wall_s for r in runs]),
        attempts=max(r.attempts for r in runs),
        time_limit_s=most([r.time_limit_s for r in runs]),
        gpus=max(r.gpus for r in runs),
        gpu_util_percent=mean("gpu_util_percent"),
        gpu_mem_peak_bytes=peak_gpu.gpu_mem_peak_bytes if peak_gpu else None,
        gpu_mem_total_bytes=peak_gpu.gpu_mem_total_bytes if peak_gpu else None,
        cpus=most([r.cpus for r in runs]),
        cpu_time_s=total([r.cpu_time_s for r in runs if r.cpu_capacity_s]),
        cpu_capacity_s=total([r.cpu_capacity_s for r in runs]),
        rss_peak_bytes=most([r.rss_peak_bytes for r in runs]),
        mem_bytes=most([r.mem_bytes for r in runs]),
        data_wait_share=mean("data_wait_share"),
        weight_s=_finite_sum([r.weight_s for r in runs]) or 0.0,
    )


def _pct(share: float | None) -> str:
    """``61 %``."""
    return "-" if share is None else f"{share * 100:.0f} %"


def memory_size_gb(peak_bytes: float) -> int:
    """A memory size to ask for: the peak with headroom, rounded up to a usual size."""
    need = peak_bytes * MEMORY_HEADROOM / _GB
    return next((size for size in MEMORY_SIZES_GB if size >= need), math.ceil(need))


def findings(facts: EfficiencyFacts) -> list[Finding]:
    """The report's lines, each with a suggestion where the figure is far off."""
    found = [_time(facts)]
    wait = facts.data_wait_share
    slow_data = wait is not None and wait > DATA_WAIT_HIGH_SHARE
    if facts.gpus:
        found.append(_gpu_util(facts, slow_data))
        found.append(_gpu_memory(facts))
    found.append(_cpu(facts))
    found.append(_memory(facts))
    if wait is not None:
        said = facts.gpus and facts.gpu_util_percent is not None
        suggestion = None
        if slow_data and not (said and facts.gpu_util_percent < GPU_UTIL_LOW_PERCENT):  # type: ignore[operator]
            suggestion = (
                f"data wait {_pct(wait)}: more data-loader workers (num_workers) or cached patches"
            )
        found.append(Finding("data_wait", "data wait", f"{_pct(wait)} of step time", suggestion))
    return [finding for finding in found if finding.value]


def _time(facts: EfficiencyFacts) -> Finding:
    wall, limit = facts.wall_s, facts.time_limit_s
    if wall is None:
        return Finding("wall_time", "wall time", "")
    if not limit:
        return Finding("wall_time", "wall time", f"{format_duration(wall)} (no time limit)")
    value = f"{format_duration(wall)} of a {format_duration(limit)} limit ({_pct(wall / limit)})"
    suggestion = None
    if facts.attempts > 1:
        value += f", {facts.attempts} attempts"
        if wall >= limit:  # (no attempt outlives the limit: more time each would have helped)
            suggestion = (
                f"needed {facts.attempts} attempts: a time limit of "
                f"{format_duration(wall * TIME_HEADROOM)} would finish in one"
            )
        # else the attempts were stops, crashes or resumes, not the limit: nothing to say
    elif wall / limit < TIME_LIMIT_LOW_SHARE:
        suggestion = (
            f"used {format_duration(wall)} of {format_duration(limit)}: a limit of "
            f"{format_duration(wall * TIME_HEADROOM)} would start sooner"
        )
    return Finding("wall_time", "wall time", value, suggestion)


def _gpu_util(facts: EfficiencyFacts, slow_data: bool) -> Finding:
    util = facts.gpu_util_percent
    if util is None:
        return Finding("gpu_util", "GPU busy", "")
    suggestion = None
    if util < GPU_UTIL_LOW_PERCENT:
        if slow_data:
            suggestion = (
                f"GPU {util:.0f} % busy, data wait {_pct(facts.data_wait_share)}: more "
                "data-loader workers or cached patches"
            )
        else:
            suggestion = f"GPU {util:.0f} % busy: a larger batch, or a smaller GPU, would suit"
    return Finding("gpu_util", "GPU busy", f"{util:.0f} % (mean)", suggestion)


def _gpu_memory(facts: EfficiencyFacts) -> Finding:
    peak, total = facts.gpu_mem_peak_bytes, facts.gpu_mem_total_bytes
    if peak is None:
        return Finding("gpu_memory", "GPU memory", "")
    if not total:
        return Finding("gpu_memory", "GPU memory", f"peak {format_bytes(peak)}")
    share = peak / total
    value = f"peak {format_bytes(peak)} of {format_bytes(total)} ({_pct(share)})"
    suggestion = None
    if share < GPU_MEMORY_LOW_SHARE:
        suggestion = (
            f"peak {format_bytes(peak)} of {format_bytes(total)}: a smaller GPU would do "
            "(or a larger batch)"
        )
    elif share > GPU_MEMORY_HIGH_SHARE:
        suggestion = (
            f"peak {format_bytes(peak)} of {format_bytes(total)}: close to out of memory; a "
            "smaller batch or patch is safer"
        )
    return Finding("gpu_memory", "GPU memory", value, suggestion)


def _cpu(facts: EfficiencyFacts) -> Finding:
    efficiency, cpus = facts.cpu_efficiency, facts.cpus
    if efficiency is None or not cpus:
        return Finding("cpu", "CPU", "")
    used = efficiency * cpus
    value = f"{used:.1f} of {cpus} CPUs busy ({_pct(efficiency)})"
    suggestion = None
    enough = max(1, math.ceil(used * CPU_HEADROOM))
    if cpus > 1 and efficiency < CPU_EFFICIENCY_LOW and enough < cpus:
        suggestion = f"{cpus} CPUs, {used:.1f} used on average: {enough} would do"
    return Finding("cpu", "CPU", value, suggestion)


def _memory(facts: EfficiencyFacts) -> Finding:
    peak, granted = facts.rss_peak_bytes, facts.mem_bytes
    if peak is None:
        return Finding("memory", "memory", "")
    if not granted:
        return Finding("memory", "memory", f"peak {format_bytes(peak)} (no limit asked)")
    share = peak / granted
    value = f"peak {format_bytes(peak)} of {format_bytes(granted)} asked ({_pct(share)})"
    size = memory_size_gb(peak)
    suggestion = None
    if share < MEMORY_LOW_SHARE and size * _GB < granted:
        suggestion = f"asked {format_bytes(granted)}, peak {format_bytes(peak)}: {size} GB would do"
    elif share > MEMORY_HIGH_SHARE:
        suggestion = (
            f"peak {format_bytes(peak)} of {format_bytes(granted)} asked: close to being "
            f"killed for memory; ask for {size} GB"
        )
    return Finding("memory", "memory", value, suggestion)


def efficiency_json(facts: EfficiencyFacts | None) -> dict[str, Any] | None:
    """The ``efficiency`` object: the facts, the CPU efficiency and the findings."""
    if facts is None:
        return None
    return {
        **asdict(facts),
        "cpu_efficiency": facts.cpu_efficiency,
        "findings": [asdict(finding) for finding in findings(facts)],
    }


def report_lines(facts: EfficiencyFacts) -> list[str]:
    """The report as text lines: ``label  value`` and, indented, the suggestion."""
    rows = findings(facts)
    width = max((len(row.label) for row in rows), default=0) + 2
    lines = []
    for row in rows:
        lines.append(f"{row.label.ljust(width)}{row.value}")
        if row.suggestion:
            lines.append(f"{' ' * width}-> {row.suggestion}")
    return lines


def _finite_sum(values: list[float]) -> float | None:
    """The exact sum, or None (unknown) when it is not a finite number: values are what status
    records claim, and 1e308 from one run and -1e308 from another made ``fsum`` raise ("-inf +
    inf"), which stopped ``status --summary``."""
    try:
        return _finite(math.fsum(values))
    except (ValueError, OverflowError):
        return None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
