"""Text from files, made safe to show on a terminal: the one sanitiser every output path uses.

Run names, exception messages, model paths, job logs and the values quoted in spec errors come
from files a training or a user wrote, possibly to attack whoever looks at them (an admin running
``hpc-runner status`` as root over users' runs). Printed raw, an ESC starts a CSI or OSC sequence
that recolours, retitles, moves the cursor, rewrites the clipboard or hides text; a carriage
return overwrites what a line said; a bidirectional override reorders it; C1 controls
(U+0080-U+009F) are interpreted as CSI/OSC by some terminals even inside UTF-8.

:func:`terminal_safe` replaces each such character by a visible escape: ``\\r``, ``\\u001b``.
That form is also a valid JSON string escape meaning the same character, so the function can be
applied to JSON text as a whole and the data stay exact (``msgspec`` escapes C0 controls but
writes DEL, C1 and bidi characters raw; ``json.dumps`` with ``ensure_ascii`` escapes them all).
The command line and the TUI both call it; nothing else decides what is safe to show.
"""

from __future__ import annotations

import os
import re
from typing import Any

#: What never reaches a terminal: C0 controls (tab and newline are decided per call), DEL, C1,
#: the bidirectional marks, embeddings, overrides and isolates, the Unicode line and paragraph
#: separators, lone surrogates (undecodable bytes of a file name, which cannot be encoded), and
#: the characters a terminal draws as nothing (soft hyphen, zero-width space and joiners, word
#: joiner, invisible operators, byte order mark): ``run\u200b`` would read as ``run``, another run.
_UNSAFE_CHARS = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff\ud800-\udfff"
)
_UNSAFE = re.compile(f"[{_UNSAFE_CHARS}]")
_UNSAFE_ONE_LINE = re.compile(f"[\t\n{_UNSAFE_CHARS}]")
#: A table cell or a run's name: also every space but the plain one (a no-break space reads as
#: one), and plain spaces at either end, which a cell shows as nothing (``run `` and ``run`` are
#: two runs). Not for whole lines of messages, whose indentation is theirs.
_UNSAFE_CELL = re.compile(
    f"[\t\n{_UNSAFE_CHARS}\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]|^ +| +$"
)

#: ANSI sequences as programs write them into logs: CSI (colours, cursor), OSC (titles, links)
#: and two-character escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


#: The short escapes JSON knows too; every other character becomes ``\\uXXXX``.
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def _escape(match: re.Match[str]) -> str:
    chars = match.group()  # one character, or the spaces at an end of a line
    return "".join(_SHORT.get(char) or f"\\u{ord(char):04x}" for char in chars)


def json_text(value: Any) -> str:
    """``value`` as indented JSON for scripts, safe to print: every command's ``--json`` uses
    it. A number that is not finite (a status record may claim 1e308, a sweep value ``.inf``)
    becomes ``null``, since ``NaN`` and ``Infinity`` are not JSON and strict parsers reject
    them (``json.dumps`` wrote them in ``status --summary --json``); then :func:`terminal_safe`.
    """
    import msgspec

    return terminal_safe(msgspec.json.format(msgspec.json.encode(value)).decode())


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """``text`` with every character that could control a terminal shown as ``\\uXXXX``.

    Parameters
    ----------
    text : str
        Untrusted text.
    one_line : bool
        Escape newlines and tabs too (table cells, single-line labels and messages); otherwise
        they are kept, as in multi-line text such as a traceback.

    Returns
    -------
    str
        Printable text; unchanged (the same object) when there was nothing to escape, and
        applying the function twice changes nothing more.
    """
    pattern = _UNSAFE_ONE_LINE if one_line else _UNSAFE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def cell_text(text: str) -> str:
    """A table cell or a run's name (:func:`terminal_safe` of one line), with spaces other
    than the plain one and plain spaces at either end escaped too: runs whose names differ only
    there must not read as one."""
    if _UNSAFE_CELL.search(text) is None:
        return text
    return _UNSAFE_CELL.sub(_escape, text)


def log_text(text: str) -> str:
    """Log text as a terminal would leave it, made safe: ANSI sequences dropped (colours are
    noise here), ``\\r`` rewrites applied (progress bars redraw a line; only what follows the
    last carriage return is kept), and other controls escaped by :func:`terminal_safe`."""
    text = _ANSI.sub("", text)
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]
    return terminal_safe("\n".join(lines))


def path_text(path: str | os.PathLike[str]) -> str:
    """A path as text that encodes: bytes that are not UTF-8 (kept by Python as surrogates)
    become ``\\x9b``-style escapes, so that printing or JSON-encoding it cannot fail."""
    raw = os.fspath(path)
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(raw).decode("utf-8", errors="backslashreplace")
    return raw


def spreadsheet_safe(value: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula.

    Excel and LibreOffice evaluate a cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab or
    carriage return before one) as a formula, which can run commands (DDE) or send data away;
    run names and exception messages are chosen by whoever writes the run directory. Such a
    text cell gets a leading ``'`` (OWASP's advice), which spreadsheets show as text. Numbers
    are never passed here, so a negative loss stays a number; ``--json`` is the exact export.
    """
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def last_lines(text: str, count: int) -> str:
    """The last ``count`` lines of ``text`` (each with its newline). Counted on the text as
    shown (after :func:`log_text`): counted on the raw bytes, every ``\\r`` of a progress bar
    started a line, and ``logs -n 3`` showed three frames of one bar."""
    position = len(text) - 1 if text.endswith("\n") else len(text)
    for _ in range(count):
        position = text.rfind("\n", 0, position)
        if position < 0:
            return text
    return text[position + 1 :]
