"""What the node is doing, in the detail view: latest GPU, CPU, memory and throughput figures,
the time-limit outlook, small history plots, and the efficiency report once the run ended.

Hidden for a run that sampled nothing (monitoring off, an older hpc-runner, not started yet),
so such a run's detail view looks as before. Every figure comes from
:mod:`hpc_runner.watch.resources` and :mod:`hpc_runner.watch.efficiency`, as in
``status --json``; the plots reuse the loss plot widget and are redrawn only when a new sample
arrived.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget

from hpc_runner.control.phase import Phase, format_duration
from hpc_runner.stream.run_state import RunState
from hpc_runner.tui.loss_plot import LossPlot
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.text_panel import TextPanel
from hpc_runner.watch.efficiency import EfficiencyFacts, combine, facts_of, report_lines
from hpc_runner.watch.resources import format_bytes, resources_json, run_forecast

_GB = float(1 << 30)


def _percent(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f} %"


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}"


def resource_lines(run: RunState, phase: Phase, now: float) -> list[tuple[str, str]]:
    """``(label, value)`` rows of the newest sample, the outlook and the environment."""
    outlook = run_forecast(run, now) if phase is Phase.TRAINING else None
    resources = resources_json(run, outlook)
    rows: list[tuple[str, str]] = []
    if resources is not None:
        latest, peaks = resources["latest"], resources["peaks"]
        if latest.get("gpu_util_percent") is not None or latest.get("gpu_mem_used_bytes"):
            gpu = f"{_percent(latest.get('gpu_util_percent'))} busy"
            used, total = latest.get("gpu_mem_used_bytes"), latest.get("gpu_mem_total_bytes")
            if used is not None:
                gpu += f", {format_bytes(used)} of {format_bytes(total)}"
            rows.append(("GPU", gpu))
            if peaks.get("torch_peak_bytes") is not None:
                rows.append(("torch peak", format_bytes(peaks["torch_peak_bytes"])))
        cpu = _percent(latest.get("cpu_percent"))
        rows.append(("CPU", cpu if cpu == "-" else f"{cpu} (100 % = one core)"))
        rows.append(
            (
                "RSS",
                f"{format_bytes(latest.get('rss_bytes'))}, peak {format_bytes(peaks['rss_bytes'])}",
            )
        )
        rows.append(
            (
                "speed",
                f"{_rate(latest.get('steps_per_s'))} steps/s, "
                f"{_rate(latest.get('samples_per_s'))} samples/s",
            )
        )
        share = latest.get("data_wait_share")
        rows.append(("data wait", "-" if share is None else f"{share * 100:.0f} % of step time"))
        if outlook is not None:
            eta = f"ETA {format_duration(outlook.eta_s)}"
            if outlook.time_left_s is not None:
                eta += f", {format_duration(max(0.0, outlook.time_left_s))} left"
            rows.append(("outlook", eta))
            if outlook.warning:
                rows.append(("! time limit", outlook.warning))
    environment = run.environment
    if environment is not None:
        limit = environment.time_limit_s
        if limit:
            rows.append(("time limit", f"{format_duration(limit)} ({environment.time_limit_from})"))
        names = sorted({gpu.name or "GPU" for gpu in environment.gpus or []})
        if names:
            rows.append(("GPUs", f"{len(environment.gpus or [])} x {', '.join(names)}"))
        versions = [
            f"{name} {getattr(environment, name)}"
            for name in ("torch", "careamics")
            if getattr(environment, name)
        ]
        if environment.cuda:
            versions.append(f"CUDA {environment.cuda}")
        if versions:
            rows.append(("versions", ", ".join(versions)))
    return rows


def sweep_efficiency(
    entry: RunEntry, entries: Iterable[RunEntry], now: float
) -> EfficiencyFacts | None:
    """The efficiency of the sweep the run belongs to (the runs in its parent directory, as
    ``status --summary`` of that directory adds them up): its ended, sampled runs combined by
    :func:`~hpc_runner.watch.efficiency.combine`; None for a lone run or with fewer than two."""
    siblings = [other for other in entries if other.run_dir.parent == entry.run_dir.parent]
    if len(siblings) < 2:
        return None
    facts = [facts_of(other.run) for other in siblings if other.phase(now).phase.final]
    ended = [fact for fact in facts if fact is not None]
    return combine(ended) if len(ended) >= 2 else None


def resources_text(
    run: RunState, phase: Phase, now: float, sweep: EfficiencyFacts | None = None
) -> Text:
    """The panel's text: the figures, then the efficiency report when the run has ended, and
    the sweep's when it has two ended runs or more."""
    rows = resource_lines(run, phase, now)
    width = max((len(label) for label, _ in rows), default=0) + 2
    text = Text()
    for index, (label, value) in enumerate(rows):
        if index:
            text.append("\n")
        style = "bold yellow" if label.startswith("!") else "bold"
        text.append(label.ljust(width), style=style)
        text.append(value)
    facts = facts_of(run) if phase.final else None
    if facts is not None:
        text.append("\n\nefficiency\n", style="bold underline")
        text.append("\n".join(report_lines(facts)))
    if sweep is not None:
        text.append(f"\n\nefficiency of the sweep ({sweep.runs} runs)\n", style="bold underline")
        text.append("\n".join(report_lines(sweep)))
    return text


def history(times: Sequence[float], values: Sequence[float]) -> tuple[list[float], list[float]]:
    """Minutes since the first sample and the finite values (a sample may lack a figure)."""
    if not times:
        return [], []
    start = times[0]
    pairs = [((t - start) / 60, v) for t, v in zip(times, values, strict=True) if math.isfinite(v)]
    return [x for x, _ in pairs], [y for _, y in pairs]


class ResourcesPanel(Widget):
    """The figures (a text panel) beside three small plots: GPU util, GPU memory, steps/s."""

    DEFAULT_CSS = """
    ResourcesPanel { height: 2fr; min-height: 10; display: none; }
    ResourcesPanel.-sampled { display: block; }
    ResourcesPanel #resource-facts { width: 52; height: 1fr; }
    ResourcesPanel LossPlot { min-height: 6; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._plotted: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield TextPanel("Resources", id="resource-facts")
            yield LossPlot("GPU util %", "minutes", id="gpu-util")
            yield LossPlot("GPU memory GB", "minutes", id="gpu-mem")
            yield LossPlot("steps/s", "minutes", id="throughput")

    def show(self, entry: RunEntry, now: float, entries: Iterable[RunEntry] = ()) -> None:
        """Show the run's figures (and its sweep's efficiency, the sweep's runs among
        ``entries``); hidden while it has neither samples nor an environment."""
        run = entry.run
        sampled = run.resources.samples > 0 or run.environment is not None
        self.set_class(sampled, "-sampled")
        if not sampled:
            return
        phase = entry.phase(now).phase
        sweep = sweep_efficiency(entry, entries, now) if phase.final else None
        text = resources_text(run, phase, now, sweep)
        self.query_one("#resource-facts", TextPanel).show_text(text)
        self._plot(run)

    def _plot(self, run: RunState) -> None:
        resources = run.resources
        version = (id(resources), resources.samples)
        if version == self._plotted:
            return
        self._plotted = version
        times = resources.times
        gpu = history(times, resources.gpu_util)
        self.query_one("#gpu-util", LossPlot).show(*gpu)
        xs, used = history(times, resources.gpu_mem)
        self.query_one("#gpu-mem", LossPlot).show(xs, [value / _GB for value in used])
        self.query_one("#throughput", LossPlot).show(*history(times, resources.steps_per_s))

    def plotted_points(self) -> dict[str, Any]:
        """How many points each plot shows (for tests)."""
        return {plot.id: plot.points for plot in self.query(LossPlot) if plot.id is not None}
