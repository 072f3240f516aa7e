"""Which columns of the runs table fit the terminal, and how wide each one is (pure).

At 80 columns the essentials (run, phase, progress, loss, best val_loss) are shown; a wider
terminal adds columns - PSNR, ETA, time, a sweep's parameters, attempt - in that
order of interest, rather than leaving empty space. The run name and the phase (with its
reason) then take what is left, up to what they need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hpc_runner.tui.columns import (
    BY_KEY,
    COLUMN_KEYS,
    ESSENTIAL,
    EXTRAS,
    FIXED,
    SPARSE,
    Column,
    has_value,
    param_column,
    param_headers,
)
from hpc_runner.tui.model import RunEntry

#: Cells of padding around every column (one space on each side).
PADDING = 2
#: Widths the run name and the phase keep before another column is added.
COMFORT = {"name": 24, "phase": 20}


@dataclass(frozen=True)
class Layout:
    """The columns shown, left to right, with their widths."""

    columns: tuple[Column, ...]
    widths: tuple[int, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(column.key for column in self.columns)

    @property
    def total(self) -> int:
        """Cells the header and every row take."""
        return sum(self.widths) + PADDING * len(self.widths)

    def x_of(self, key: str) -> int:
        """Where a column starts, in cells from the table's left edge."""
        index = self.keys.index(key)
        return sum(width + PADDING for width in self.widths[:index])

    def column_at(self, x: int) -> str | None:
        """The column under cell ``x`` (None: right of the last one)."""
        start = 0
        for key, width in zip(self.keys, self.widths, strict=True):
            start += width + PADDING
            if x < start:
                return key
        return None


def fit(
    available: int,
    wanted: Mapping[str, int],
    *,
    params: Sequence[Column] = (),
    hidden: frozenset[str] = frozenset(),
    sort_by: str = "",
) -> Layout:
    """The columns that fit ``available`` cells.

    Parameters
    ----------
    available : int
        The table's width in cells.
    wanted : mapping
        The widest cell of each column shown so far (header included); flexible columns
        (name, phase) get up to this much, growing columns (epoch, batch) exactly this much.
    params : sequence of Column
        A sweep's parameter columns (in the order the sweep lists them).
    hidden : frozenset
        Extra columns with nothing to show (no run has a PSNR).
    sort_by : str
        The column sorted by: its header has room for ``▲`` / ``▼``.
    """

    def least(column: Column) -> int:
        width = max(column.width, len(column.header) + (2 if column.key == sort_by else 0))
        if column.grows:
            return max(width, wanted.get(column.key, 0))
        if column.natural:
            return min(width, wanted.get(column.key, width))
        return width

    def comfortable(column: Column) -> int:
        if column.key in COMFORT:
            natural = min(column.natural, wanted.get(column.key, column.width))
            return max(least(column), min(COMFORT[column.key], natural))
        return least(column)

    def natural(column: Column) -> int:
        return max(least(column), min(column.natural, wanted.get(column.key, 0)))

    chosen = [BY_KEY[key] for key in ESSENTIAL]
    used = sum(comfortable(column) + PADDING for column in chosen)
    # Strictly in order of interest: a wider terminal shows more, never other, columns.
    extras = [
        column
        for extra in EXTRAS
        if extra not in hidden
        for column in (params if extra == "params" else [BY_KEY[extra]])
    ]
    for column in extras:
        cost = least(column) + PADDING
        if used + cost > available:
            break
        chosen.append(column)
        used += cost
    order: dict[str, float] = {column.key: index for index, column in enumerate(FIXED)}
    param_rank = order["psnr"] + 0.5  # a sweep's values right after the results
    chosen.sort(key=lambda column: order.get(column.key, param_rank))
    keys = [column.key for column in chosen]
    widths = [least(column) for column in chosen]
    spare = available - sum(widths) - PADDING * len(widths)
    # First both to a comfortable width, then the name, then the phase, up to what they need.
    for key, target in (
        ("name", comfortable),
        ("phase", comfortable),
        ("name", natural),
        ("phase", natural),
    ):
        index = keys.index(key)
        grow = max(0, min(target(chosen[index]) - widths[index], spare))
        widths[index] += grow
        spare -= grow
    return Layout(tuple(chosen), tuple(widths))


def layout_for(
    runs: Sequence[RunEntry],
    cell_widths: Mapping[str, Sequence[int]],
    width: int,
    sort_by: str,
) -> tuple[Layout, list[str]]:
    """The layout for the runs shown, from the widths of their cells (in :data:`COLUMN_KEYS`
    order, as :func:`.columns.row_cells` made them), and the sweep parameters among its columns,
    in the order the sweeps list them.

    Widths, not cells: the table measures a row once when it changes, while this runs on every
    refresh over every row. Measuring every cell here was about half of each refresh; with 200
    runs, redrawing one changed run took 5.6-7.1 ms before and 3.1-3.7 ms after (best of 60)."""
    keys: list[str] = []
    for entry in runs:
        keys += [key for key in entry.params if key not in keys]
    headers = param_headers(keys)
    rows = [cell_widths[entry.key] for entry in runs if entry.key in cell_widths]
    widest = [max(column) for column in zip(*rows, strict=True)] if rows else []
    wanted: dict[str, int] = {}
    for index, key in enumerate(COLUMN_KEYS):
        header = len(BY_KEY[key].header) + (2 if key == sort_by else 0)
        wanted[key] = max(header, widest[index]) if widest else header
    params = [
        param_column(
            key, headers[key], max((len(entry.params.get(key, "")) for entry in runs), default=0)
        )
        for key in keys
    ]
    hidden = frozenset(
        column for column in SPARSE if not any(has_value(entry, column) for entry in runs)
    )
    if not keys:
        hidden |= {"params"}
    return fit(width, wanted, params=params, hidden=hidden, sort_by=sort_by), keys
