"""Text from files, made safe to show: never markup, never terminal control.

Run names, debug messages, exception messages, tracebacks and job logs come from files that a
training (or a user) wrote. Rich ``Text`` objects never interpret ``[bold]``-style markup, but a
raw ESC or BEL in them would still reach the terminal and recolour, retitle or garble the screen.
So every such string goes through :func:`printable` (control characters become visible symbols)
or :func:`strip_ansi` (for logs, where colour codes are noise) before it becomes a ``Text``.
"""

from __future__ import annotations

import re

from rich.text import Text

#: C0 controls become their Unicode "control picture" (ESC → ␛), DEL → ␡; C1 controls and
#: invisible direction overrides (which reorder what follows them) become U+FFFD.
_CONTROL_MAP: dict[int, str] = {code: chr(0x2400 + code) for code in range(0x20)}
_CONTROL_MAP[0x7F] = "\u2421"
_CONTROL_MAP.update({code: "\ufffd" for code in range(0x80, 0xA0)})
_CONTROL_MAP.update(
    {code: "\ufffd" for code in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)
_KEEP_NEWLINES = {**_CONTROL_MAP, 0x0A: "\n", 0x09: "    "}
_ONE_LINE = {**_CONTROL_MAP, 0x0A: " \u23ce ", 0x09: " "}

#: ANSI sequences as programs write them into logs: CSI (colours, cursor), OSC (titles) and
#: two-character escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control character replaced by a visible stand-in.

    Parameters
    ----------
    text : str
        Untrusted text.
    one_line : bool
        Also replace newlines (by ⏎), for table cells and single-line labels.
    """
    return text.translate(_ONE_LINE if one_line else _KEEP_NEWLINES)


def literal(text: str, style: str = "", *, one_line: bool = True) -> Text:
    """A ``Text`` that shows ``text`` exactly, as characters: no markup, no escapes."""
    return Text(printable(text, one_line=one_line), style=style)


def strip_ansi(text: str) -> str:
    """Log text as a terminal would leave it: ANSI sequences removed, ``\\r`` rewrites applied.

    Progress bars redraw a line with carriage returns; only what follows the last one is kept.
    Other control characters are then made visible with :func:`printable`.
    """
    text = _ANSI.sub("", text)
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]
    return printable("\n".join(lines))
