"""Text from files, made safe to show: never markup, never terminal control.

Run names, debug messages, exception messages, tracebacks and job logs come from files that a
training (or a user) wrote. Rich ``Text`` objects never interpret ``[bold]``-style markup, but a
raw ESC or BEL in them would still reach the terminal and recolour, retitle or garble the screen.
So every such string goes through :func:`printable` or :func:`strip_ansi` (for logs) before it
becomes a ``Text``. What is unsafe, and how it is shown, is decided once for the command line and
the TUI alike, by :func:`hpc_runner.stream.text.terminal_safe`; this module only lays text out
(a newline in a one-line cell becomes ⏎, tabs become spaces).
"""

from __future__ import annotations

from rich.text import Text

from hpc_runner.stream.text import cell_text, log_text, terminal_safe

_ONE_LINE = str.maketrans({"\n": " \u23ce ", "\t": " "})


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control character shown as an escape (``\\u001b``).

    Parameters
    ----------
    text : str
        Untrusted text.
    one_line : bool
        Also replace newlines (by ⏎), for table cells and single-line labels.
    """
    if one_line:
        return terminal_safe(text.translate(_ONE_LINE))
    return terminal_safe(text).replace("\t", "    ")


def literal(text: str, style: str = "", *, one_line: bool = True) -> Text:
    """A ``Text`` that shows ``text`` exactly, as characters: no markup, no escapes."""
    return Text(printable(text, one_line=one_line), style=style)


def name_text(name: str, style: str = "") -> Text:
    """A run's name (or label) as the command line's tables show it
    (:func:`~hpc_runner.stream.text.cell_text`): also spaces at either end and spaces other
    than the plain one escaped, so that ``run `` is not read as ``run``."""
    return Text(cell_text(name), style=style)


def strip_ansi(text: str) -> str:
    """Log text as a terminal would leave it (see :func:`hpc_runner.stream.text.log_text`):
    ANSI sequences removed, ``\\r`` rewrites applied, other controls escaped; tabs as spaces."""
    return log_text(text).replace("\t", "    ")


def wrap_path(path: str, width: int) -> str:
    """A long path on several lines, each broken after a separator (``/``), never inside a
    name unless one name alone is wider than ``width``."""
    width = max(8, width)
    parts = [part + "/" for part in path.split("/")]
    parts[-1] = parts[-1][:-1]
    lines: list[str] = []
    line = ""
    for part in parts:
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        while len(part) > width:
            lines.append(part[:width])
            part = part[width:]
        line += part
    lines.append(line)
    return "\n".join(lines)
