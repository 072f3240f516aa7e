"""Facts about one run: where it is, its job, attempt, host, logs, model, and key settings."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text

from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.text import literal
from hpc_runner.tui.text_panel import TextPanel
from hpc_runner.watch.meta import RunMeta


def shown_path(path: Path, entry: RunEntry) -> str:
    """A path inside the run directory relative to it (short, and the same on every machine)."""
    try:
        return str(path.relative_to(entry.run_dir.resolve()))
    except ValueError:
        return str(path)


def info_text(entry: RunEntry, meta: RunMeta | None) -> Text:
    """``key  value`` lines; every value from a file is shown literally."""
    run = entry.run
    rows: list[tuple[str, str]] = [("run", entry.label), ("directory", str(entry.run_dir))]
    job = entry.job_id or (meta.job_id if meta else None) or run.job
    rows.append(("job", job or "-"))
    if entry.scheduler is not None:
        rows.append(("scheduler", entry.scheduler.describe()))
    phase = entry.phase(time.time())
    rows.append(("phase", phase.describe()))
    rows.append(("attempt", str(run.attempt)))
    rows.append(("host", run.host or "-"))
    if meta is None:
        rows.append(("logs", "reading…"))
    else:
        logs = [shown_path(path, entry) for path in (meta.stdout, meta.stderr) if path is not None]
        rows.append(("logs", "\n".join(logs) if logs else "none yet (submitit/*_log.out)"))
    if run.model is not None:
        rows.append(("model", run.model.best_checkpoint or run.model.checkpoint or "-"))
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


class RunInfo(TextPanel):
    """Shows :func:`info_text`; :meth:`show` is called on updates and when meta data arrives."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Run", id=id)

    def show(self, entry: RunEntry, meta: RunMeta | None) -> None:
        """Show the run's facts (``meta`` None while it is being read)."""
        self.show_text(info_text(entry, meta))
