"""Which rows the runs table shows, in which order: filtered, sorted, grouped by sweep (pure).

A sweep's runs follow a header row of their own (collapsible); the group stands where its
first run would stand in the chosen order, so that sorting by best val_loss also brings the
best sweep up. The text filter matches run names, phases and sweep values (``lr=0.01``); every
word must match.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from rich.text import Text

from hpc_runner.control.phase import Phase, RunPhase
from hpc_runner.tui.columns import param_headers, sorted_keys
from hpc_runner.tui.model import PHASE_ORDER, PHASE_STYLES, RunEntry
from hpc_runner.tui.text import literal
from hpc_runner.watch.numbers import format_loss

#: Keys of group rows start with NUL: a run's key is a path, which never holds one.
GROUP_PREFIX = "\x00sweep:"


def group_key(sweep: str) -> str:
    """The row key of a sweep's header."""
    return GROUP_PREFIX + sweep


def is_group(key: str) -> bool:
    """Whether a row key is a sweep's header."""
    return key.startswith(GROUP_PREFIX)


def sweep_of(key: str) -> str:
    """The sweep label of a group row key."""
    return key.removeprefix(GROUP_PREFIX)


@dataclass
class Arranged:
    """Rows top to bottom (run keys and group keys) and each group's runs that passed the
    filters, in order (also those of a collapsed group)."""

    rows: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)


def search_text(entry: RunEntry, phase: RunPhase) -> str:
    """What the filter looks in: name, sweep, phase and ``key=value`` of each sweep value."""
    headers = param_headers(list(entry.params))
    values = " ".join(f"{headers[key]}={text} {key}={text}" for key, text in entry.params.items())
    return f"{entry.label} {entry.sweep or ''} {phase.phase.value} {values}".casefold()


def matches(entry: RunEntry, phase: RunPhase, query: str) -> bool:
    """Every word of ``query`` occurs in the run's :func:`search_text` (case-insensitive)."""
    words = query.casefold().split()
    if not words:
        return True
    text = search_text(entry, phase)
    return all(word in text for word in words)


def arrange(
    entries: Iterable[RunEntry],
    phases: Mapping[str, RunPhase],
    *,
    now: float,
    column: str = "name",
    reverse: bool = False,
    query: str = "",
    phase_filter: Phase | None = None,
    collapsed: Collection[str] = (),
) -> Arranged:
    """The rows to show (see the module docstring); ``phases`` holds every entry's phase."""
    shown = [
        entry
        for entry in entries
        if (phase_filter is None or phases[entry.key].phase is phase_filter)
        and matches(entry, phases[entry.key], query)
    ]
    by_key = {entry.key: entry for entry in shown}
    order = sorted_keys(shown, column, now, reverse=reverse, phases=dict(phases))
    arranged = Arranged()
    for key in order:
        sweep = by_key[key].sweep
        if sweep is None:
            arranged.rows.append(key)
            continue
        group = group_key(sweep)
        members = arranged.groups.get(group)
        if members is None:
            members = arranged.groups[group] = []
            arranged.rows.append(group)
        members.append(key)
    if arranged.groups:  # members follow their header, in order
        rows: list[str] = []
        for key in arranged.rows:
            rows.append(key)
            if is_group(key) and sweep_of(key) not in collapsed:
                rows.extend(arranged.groups[key])
        arranged.rows = rows
    return arranged


def group_text(
    sweep: str,
    members: list[RunEntry],
    phases: Mapping[str, RunPhase],
    *,
    total: int,
    collapsed: bool,
) -> Text:
    """``▾ demo_sweep  4 runs · 2 done · 1 training  best val 0.1234  best PSNR 31.20``."""
    text = Text("▸ " if collapsed else "▾ ", style="bold")
    text.append_text(literal(sweep, "bold"))
    count = len(members)
    shown = f"{count} of {total} runs" if count != total else f"{total} run{'s' * (total != 1)}"
    text.append(f"  {shown}")
    counts = Counter(phases[entry.key].phase for entry in members)
    for phase in PHASE_ORDER:
        if counts[phase]:
            text.append(" · ")
            text.append(f"{counts[phase]} {phase.value.lower()}", style=PHASE_STYLES[phase])
    best = [entry.run.best_val_loss for entry in members]
    finite = [value for value in best if value is not None]
    if finite:
        text.append(f"  best val {format_loss(min(finite))}", style="dim")
    psnrs = [
        entry.run.evaluation.psnr_after
        for entry in members
        if entry.run.evaluation is not None and entry.run.evaluation.psnr_after is not None
    ]
    if psnrs:
        text.append(f"  best PSNR {max(psnrs):.2f}", style="dim")
    return text
