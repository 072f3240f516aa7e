"""Facts about one run: its phase and why, its job and what the scheduler said (and when),
attempt, host, logs, the best model (with its val_loss and epoch), PSNR, and key settings."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from hpc_runner.control.phase import format_duration
from hpc_runner.stream.record_values import ModelLocation
from hpc_runner.tui.model import RunEntry, format_progress
from hpc_runner.tui.text import literal
from hpc_runner.tui.text_panel import TextPanel
from hpc_runner.watch.meta import RunMeta
from hpc_runner.watch.numbers import format_loss
from hpc_runner.watch.report import offered_model


def shown_path(path: Path, entry: RunEntry) -> str:
    """A path inside the run directory relative to it (short, and the same on every machine)."""
    path, run_dir = Path(path), entry.run_dir
    for inside, base in (
        (path, run_dir),
        (path.absolute(), run_dir.absolute()),
        (path.resolve(), run_dir.resolve()),
    ):
        try:
            return str(inside.relative_to(base))
        except ValueError:
            continue
    return str(path)


def scheduler_fact(entry: RunEntry, meta: RunMeta | None, now: float) -> str:
    """``PENDING (Priority), asked 12s ago``; or why nobody was asked."""
    if entry.scheduler is None:
        if entry.job is not None or (meta is not None and meta.job is not None):
            return "not asked yet"
        return "not asked (no job.json)" if meta is not None else "-"
    age = entry.scheduler_age(now)
    asked = f", asked {format_duration(age)} ago" if age is not None else ""
    return f"{entry.scheduler.describe()}{asked}"


def model_facts(entry: RunEntry, model: ModelLocation, recorded: bool) -> list[tuple[str, str]]:
    """The best checkpoint with the val_loss and epoch it was saved at, and the newest one."""
    rows: list[tuple[str, str]] = []
    status = entry.run.status
    if model.best_checkpoint:
        rows.append(("best model", shown_path(Path(model.best_checkpoint), entry)))
        saved = []
        if model.best_val_loss is not None:
            saved.append(f"val_loss {format_loss(model.best_val_loss)}")
        if model.best_epoch is not None:
            saved.append(f"epoch {format_progress(model.best_epoch, status.max_epochs)}")
        if saved:
            rows.append(("  saved at", ", ".join(saved)))
    if model.checkpoint and model.checkpoint != model.best_checkpoint:
        rows.append(("last checkpoint", shown_path(Path(model.checkpoint), entry)))
    if not recorded and rows:
        rows.append(("", "(found on disk: the training did not record its model)"))
    return rows


def info_text(entry: RunEntry, meta: RunMeta | None, now: float) -> Text:
    """``key  value`` lines; every value from a file is shown literally."""
    run = entry.run
    phase = entry.phase(now)
    rows: list[tuple[str, str]] = [("run", entry.label), ("directory", str(entry.run_dir))]
    rows.append(("phase", phase.phase.value))
    if phase.reason:
        rows.append(("reason", phase.reason))
    job = entry.job_id or (meta.job_id if meta else None) or run.job
    rows.append(("job", job or "-"))
    rows.append(("scheduler", scheduler_fact(entry, meta, now)))
    rows.append(("file says", run.status.state.name))
    rows.append(("attempt", str(run.attempt)))
    rows.append(("host", run.host or "-"))
    if meta is None:
        rows.append(("logs", "reading…"))
    else:
        logs = [shown_path(path, entry) for path in (meta.stdout, meta.stderr) if path is not None]
        none = "none yet" if (meta.job or entry.job) is not None else "none (no job.json)"
        rows.append(("logs", "\n".join(logs) if logs else none))
    model = offered_model(run, meta.checkpoints if meta is not None else None)
    if model is not None:
        rows.extend(model_facts(entry, model, recorded=run.model is not None))
    if run.evaluation is not None:
        rows.append(("psnr", psnr_fact(entry)))
    if run.skipped:
        detail = ", ".join(f"{count} {reason}" for reason, count in sorted(run.skipped.items()))
        rows.append(("skipped lines", detail))
    if entry.error:
        rows.append(("read error", entry.error))
    if meta is not None:
        rows.extend(meta.settings)
    width = max(len(key) for key, _ in rows) + 2
    text = Text()
    for index, (key, value) in enumerate(rows):
        if index:
            text.append("\n")
        text.append(key.ljust(width), style="bold")
        indent = "\n" + " " * width
        text.append(indent.join(literal(part).plain for part in value.split("\n")))
    if meta is not None:
        for problem in meta.problems:
            text.append("\n")
            text.append_text(literal(problem, "yellow"))
    return text


def psnr_fact(entry: RunEntry) -> str:
    """``31.2 dB (input 22.4 dB) against clean.tif``."""
    evaluation = entry.run.evaluation
    assert evaluation is not None
    after = f"{evaluation.psnr_after:.2f} dB" if evaluation.psnr_after is not None else "-"
    before = evaluation.psnr_before
    noisy = f" (input {before:.2f} dB)" if before is not None else ""
    return f"{after}{noisy} against {Path(evaluation.ground_truth).name}"


class RunInfo(TextPanel):
    """Shows :func:`info_text`; :meth:`show` is called on updates and when meta data arrives."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Run", id=id)

    def show(self, entry: RunEntry, meta: RunMeta | None, now: float) -> None:
        """Show the run's facts (``meta`` None while it is being read)."""
        self.show_text(info_text(entry, meta, now))
