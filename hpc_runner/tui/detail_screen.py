"""One run in detail: progress bars, loss curves, facts and settings, debug messages, exception."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Static

from hpc_runner.control.phase import format_duration
from hpc_runner.stream.previews import preview_history
from hpc_runner.tui.curves import integer_ticks, prepared, psnr_points, run_series
from hpc_runner.tui.debug_messages import DebugMessages
from hpc_runner.tui.exception_view import ExceptionView
from hpc_runner.tui.loss_plot import LossPlot
from hpc_runner.tui.messages import MetaLoaded
from hpc_runner.tui.model import PHASE_STYLES, RunEntry, elapsed, eta
from hpc_runner.tui.plot_throttle import PlotThrottle
from hpc_runner.tui.preview_panel import PreviewPanel
from hpc_runner.tui.progress_panel import TrainingProgress
from hpc_runner.tui.resources_panel import ResourcesPanel
from hpc_runner.tui.run_info import RunInfo
from hpc_runner.tui.run_screen import RunScreen
from hpc_runner.tui.text import name_text
from hpc_runner.watch.meta import RunMeta, load_meta
from hpc_runner.watch.report import needs_disk


def title_text(entry: RunEntry, now: float, *, removed: bool = False) -> Text:
    """``name  PHASE  elapsed 3m05s  ETA 1m10s`` (name literal; the reason is in the facts)."""
    phase = entry.phase(now).phase
    text = name_text(entry.label, "bold")
    text.append("  ")
    text.append(phase.value, style=PHASE_STYLES[phase])
    text.append(f"  elapsed {format_duration(elapsed(entry, now))}")
    text.append(f"  ETA {format_duration(eta(entry, now))}")
    if removed:
        text.append("  (run directory removed)", style="bold red")
    return text


class DetailScreen(RunScreen):
    """Everything about one run, kept up to date by the app's coalesced refresh.

    Parameters
    ----------
    entry : RunEntry
        The run shown.
    entries : Mapping[str, RunEntry]
        The app's runs, to notice that this one was removed.
    clock : callable
        Current time for elapsed and ETA.
    """

    DEFAULT_CSS = """
    DetailScreen #title { height: 1; background: $panel; padding: 0 1; }
    DetailScreen #plots { height: 3fr; min-height: 8; }
    DetailScreen #lower { height: 2fr; min-height: 6; }
    DetailScreen TrainingProgress { margin: 1 1 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", tooltip="back to the runs table"),
        Binding("backspace", "back", "Back", show=False, tooltip="back to the runs table"),
        Binding("L", "toggle_plot('log_y')", "Log scale", tooltip="loss on a logarithmic axis"),
        Binding(
            "E",
            "toggle_plot('smooth')",
            "Smooth",
            tooltip="smooth the per-step loss (exponential moving average)",
        ),
        Binding("left_square_bracket", "preview(-1)", "Earlier", key_display="[",
                tooltip="the preview picture of an earlier epoch"),
        Binding("right_square_bracket", "preview(1)", "Later", key_display="]",
                tooltip="the preview picture of a later epoch"),
    ]  # fmt: skip

    #: The plot's toggles (``L``, ``E``).
    log_y = False
    smooth = False

    def __init__(
        self, entry: RunEntry, entries: Mapping[str, RunEntry], clock: Callable[[], float]
    ) -> None:
        super().__init__()
        self.entry = entry
        self.entries = entries
        self.clock = clock
        self.meta: RunMeta | None = None
        self._meta_for: tuple[object, ...] | None = None
        self._meta_requests = 0  # looks at the run directory asked for (the newest is shown)
        self._plotted: tuple[object, ...] | None = None
        self.throttle = PlotThrottle(self, self._plot)

    def compose(self) -> ComposeResult:
        yield Static(id="title", markup=False)
        yield TrainingProgress()
        with Horizontal(id="plots"):
            yield LossPlot("loss and val_loss", "epoch", id="loss")
            yield LossPlot("preview PSNR (dB)", "epoch", id="psnr", hide_empty=True)
            yield PreviewPanel(id="preview")
        yield ResourcesPanel(id="resources")  # hidden for a run that sampled nothing
        with Horizontal(id="lower"):
            yield RunInfo(id="info")
            yield DebugMessages(id="debug")
        yield ExceptionView(id="exception")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_runs({self.entry.key})

    def current_entry(self) -> RunEntry | None:
        """The run shown."""
        return self.entry

    def action_back(self) -> None:
        self.dismiss()

    def refresh_runs(self, changed: Collection[str], now: float | None = None) -> None:
        """Redraw if this run changed; the title (elapsed, ETA) on every call."""
        now = self.clock() if now is None else now
        entry = self.entry
        removed = entry.key not in self.entries
        title = title_text(entry, now, removed=removed)
        self.query_one("#title", Static).update(title, layout=False)
        self.offer_actions(now)
        if entry.key not in changed:
            return
        run = entry.run
        self.query_one(TrainingProgress).show(run.status)
        self.query_one(DebugMessages).show(run.debug)
        self.query_one(ExceptionView).show(run.exception)
        self.query_one(RunInfo).show(entry, self.meta, now)
        self.query_one(ResourcesPanel).show(entry, now, self.entries.values())
        self._show_previews()
        self._plot_soon()
        meta_key = (entry.job_id, run.job, run.attempt, run.status.state, run.model is None)
        if meta_key != self._meta_for:
            self._meta_for = meta_key
            self._load_meta()

    def tick(self, now: float) -> None:
        """Move the title's elapsed time and ETA, and the facts' scheduler age, on."""
        self.refresh_runs((), now)
        self.query_one(RunInfo).show(self.entry, self.meta, now)

    def _plot_soon(self) -> None:
        """Redraw the plots (throttled) if the curves changed since they were drawn."""
        if self._plot_version() != self._plotted:
            self.throttle.soon()

    def _plot_version(self) -> tuple[int, ...]:
        run = self.entry.run
        return (id(run.losses), len(run.losses), len(run.val_losses), len(run.preview_epochs))

    def on_resize(self) -> None:
        self._plotted = None  # more (or fewer) points fit now
        self._plot_soon()

    def _plot(self) -> bool:
        loss_plot = self.query_one("#loss", LossPlot)
        if not loss_plot.size.width:  # not laid out yet: its width sets how many points to draw
            self.call_after_refresh(self._plot_soon)
            return False
        run = self.entry.run
        self._plotted = self._plot_version()
        series, axis = run_series(run, max(16, 2 * loss_plot.size.width))
        right = max((x for item in series for x in item.xs), default=0.0)
        ticks = integer_ticks(right) if axis == "epoch" and right else None
        notes = [name for name, on in (("log", self.log_y), ("smoothed", self.smooth)) if on]
        loss_plot.show_series(
            prepared(series, smooth=self.smooth, log_y=self.log_y),
            x_label=axis, log_y=self.log_y, x_ticks=ticks, note=", ".join(notes),
        )  # fmt: skip
        history = preview_history(run.preview_epochs, run.preview_psnrs)
        self.query_one("#psnr", LossPlot).show(*psnr_points(history))
        return True

    def action_toggle_plot(self, name: str) -> None:
        """Log scale or smoothing on or off."""
        setattr(self, name, not getattr(self, name))
        self._plotted = None
        self._plot_soon()

    def _show_previews(self) -> None:
        run = self.entry.run
        had = self.query_one(PreviewPanel).history
        history = preview_history(run.preview_epochs, run.preview_psnrs)
        self.query_one(PreviewPanel).show(self.entry.run_dir, history)
        if bool(had) != bool(history):
            self.refresh_bindings()  # [ and ] are offered once there are previews

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``[`` and ``]`` only for a run with previews; the run keys as the base decides."""
        if action == "preview":
            return self.entry.run.preview is not None
        return super().check_action(action, parameters)

    def action_preview(self, delta: int) -> None:
        """Show the preview of an earlier (-1) or later (+1) epoch."""
        if not self.query_one(PreviewPanel).step(delta):
            self.app.bell()

    def _load_meta(self) -> None:
        run_dir, key = self.entry.run_dir, self.entry.key
        find_checkpoints = needs_disk(self.entry.run)  # what a run killed early left, ...
        self._meta_requests += 1
        request = self._meta_requests

        def work() -> None:
            meta = load_meta(run_dir, checkpoints=find_checkpoints)
            self.post_message(MetaLoaded(key, meta, request))

        # (exclusive cancels an older look, but a thread already reading finishes and posts)
        self.run_worker(work, thread=True, group="meta", exclusive=True)

    def on_meta_loaded(self, message: MetaLoaded) -> None:
        if message.key == self.entry.key and message.request == self._meta_requests:
            self.meta = message.meta
            self.query_one(RunInfo).show(self.entry, self.meta, self.clock())
