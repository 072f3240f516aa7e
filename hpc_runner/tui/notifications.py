"""Telling the user when a run ends: which phase changes are events, and what they say.

An event is a run's phase *changing* to DONE, CRASHED, LOST or STOPPED while the TUI watches -
never a run that was over before (found so at start, or copied into the directory later). A
run's first phase is taken once its status file has been read to its end and, where the
scheduler is asked, once it has answered about the run: a job that died yesterday while its
file still says TRAINING must not read as "LOST just now" when the first answer comes in.
"""

from __future__ import annotations

from textual.notifications import SeverityLevel

from hpc_runner.control.phase import Phase, RunPhase
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.text import literal
from hpc_runner.watch.events import EVENT_PHASES, RunEvent

#: How each end is announced (Textual's toast severities).
SEVERITY: dict[str, SeverityLevel] = {
    "DONE": "information",
    "STOPPED": "warning",
    "CRASHED": "error",
    "LOST": "error",
}


class PhaseWatch:
    """The last phase seen of each run, and which changes are events."""

    def __init__(self) -> None:
        self._seen: dict[str, Phase] = {}

    def known(self, key: str) -> bool:
        """Whether the run's first phase has been taken."""
        return key in self._seen

    def forget(self, key: str) -> None:
        """Take the run's phase afresh next time (new facts about its past, or it is gone)."""
        self._seen.pop(key, None)

    def observe(self, key: str, phase: Phase) -> bool:
        """Note the run's phase now; True if it just reached an end (an event)."""
        before = self._seen.get(key)
        self._seen[key] = phase
        return before is not None and before is not phase and phase.value in EVENT_PHASES


def event_of(entry: RunEntry, phase: RunPhase) -> RunEvent:
    """The event of a run that reached ``phase``."""
    return RunEvent(entry.label, phase.phase.value, phase.reason, entry.run_dir)


def toast_text(event: RunEvent) -> str:
    """``lr_0.1 is CRASHED: ValueError: axes ...`` (literal: the name and reason are data)."""
    text = f"{event.run} is {event.phase}"
    if event.reason:
        text += f": {event.reason}"
    return literal(text).plain
