"""One line above the runs table: what is watched, how many runs in which phase, how fresh the
scheduler's answers are, sort and filter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

from hpc_runner.control.phase import Phase, format_duration
from hpc_runner.tui.model import PHASE_ORDER, PHASE_STYLES, RunEntry
from hpc_runner.tui.text import literal


def scheduler_freshness(entries: Iterable[RunEntry], now: float) -> str | None:
    """``scheduler 12s ago`` or ``scheduler 3s-1m05s ago`` (newest-oldest answer).

    Only answers about jobs that may still change count: an ended job is not asked again, and
    the age of its final answer says nothing about how fresh the table is. None when no run has
    a live job's answer (nothing to ask, or not asked yet).
    """
    ages = [
        age
        for entry in entries
        if entry.scheduler is not None
        and not entry.scheduler.ended
        and (age := entry.scheduler_age(now)) is not None
    ]
    if not ages:
        return None
    newest, oldest = format_duration(min(ages)), format_duration(max(ages))
    return f"scheduler {newest} ago" if newest == oldest else f"scheduler {newest}-{oldest} ago"


def status_line(
    root: str,
    entries: Iterable[RunEntry],
    *,
    now: float,
    sort_by: str,
    phase_filter: Phase | None,
    watching: str,
    scanning: bool,
    query: str = "",
    marked: int = 0,
) -> Text:
    """The bar's text (a pure function, so that it is tested without an app).

    ``sort_by`` is the table's sort label (its header and direction), ``query`` the text
    filter, ``marked`` how many runs are marked to compare.
    """
    runs = list(entries)
    counts = Counter(entry.phase(now).phase for entry in runs)
    total = len(runs)
    line = literal(root, "bold")
    line.append(f"  {total} run{'s' if total != 1 else ''}")
    for phase in PHASE_ORDER:
        if counts[phase]:
            line.append(" · ")
            line.append(f"{counts[phase]} {phase.value.lower()}", style=PHASE_STYLES[phase])
    if not total and not scanning:
        line.append("  (none yet: waiting for */status.jsonl to appear)", style="dim")
    shown = phase_filter.value.lower() if phase_filter is not None else "all"
    line.append(f"  │ sort: {sort_by} · show: {shown}", style="dim")
    if query:
        line.append(" · filter: ", style="dim")
        line.append_text(literal(query, "bold"))
    if marked:
        line.append(f" · {marked} marked", style="dim")
    line.append(" │ ", style="dim")
    freshness = scheduler_freshness(runs, now)
    if freshness:
        line.append(f"{freshness} │ ", style="dim")
    line.append("scanning…" if scanning else watching, style="dim italic")
    return line


class StatusBar(Static):
    """The status line; the screen calls :meth:`show` after each refresh and clock tick."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; padding: 0 1; }
    """

    _shown: Text | None = None

    def show(
        self,
        root: str,
        entries: Iterable[RunEntry],
        *,
        now: float,
        sort_by: str,
        phase_filter: Phase | None,
        watching: str,
        scanning: bool,
        query: str = "",
        marked: int = 0,
    ) -> None:
        """Show :func:`status_line` of these runs (redrawn only if it changed)."""
        line = status_line(
            root,
            entries,
            now=now,
            sort_by=sort_by,
            phase_filter=phase_filter,
            watching=watching,
            scanning=scanning,
            query=query,
            marked=marked,
        )
        if line != self._shown:  # Text equality: same characters, same styles
            self._shown = line
            # One line whatever it says: no layout pass (which would cost a whole screen).
            self.update(line, layout=False)
