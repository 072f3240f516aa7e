"""One line above the runs table: what is watched, how many runs in which state, sort and filter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

from hpc_runner.stream.status import TrainingState
from hpc_runner.tui.model import STATE_ORDER, STATE_STYLES, RunEntry
from hpc_runner.tui.text import literal


def status_line(
    root: str,
    entries: Iterable[RunEntry],
    *,
    sort_by: str,
    state_filter: TrainingState | None,
    watching: str,
    scanning: bool,
) -> Text:
    """The bar's text (a pure function, so that it is tested without an app)."""
    counts = Counter(entry.state for entry in entries)
    total = sum(counts.values())
    line = literal(root, "bold")
    line.append(f"  {total} run{'s' if total != 1 else ''}")
    for state in STATE_ORDER:
        if counts[state]:
            line.append(" · ")
            line.append(f"{counts[state]} {state.name.lower()}", style=STATE_STYLES[state])
    if not total and not scanning:
        line.append("  (none yet: waiting for */status.jsonl to appear)", style="dim")
    shown = state_filter.name.lower() if state_filter is not None else "all"
    line.append(f"  │ sort: {sort_by} · show: {shown} │ ", style="dim")
    line.append("scanning…" if scanning else watching, style="dim italic")
    return line


class StatusBar(Static):
    """The status line; the app calls :meth:`show` after each coalesced refresh."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; padding: 0 1; }
    """

    _shown: Text | None = None

    def show(
        self,
        root: str,
        entries: Iterable[RunEntry],
        *,
        sort_by: str,
        state_filter: TrainingState | None,
        watching: str,
        scanning: bool,
    ) -> None:
        """Show :func:`status_line` of these runs (redrawn only if it changed)."""
        line = status_line(
            root,
            entries,
            sort_by=sort_by,
            state_filter=state_filter,
            watching=watching,
            scanning=scanning,
        )
        if line != self._shown:  # Text equality: same characters, same styles
            self._shown = line
            # One line whatever it says: no layout pass (which would cost a whole screen).
            self.update(line, layout=False)
