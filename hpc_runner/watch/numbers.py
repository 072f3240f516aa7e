"""How a loss is shown in text: the one function every text view calls.

``status`` (table, ``--summary``), ``submit --watch`` and the TUI (table, group rows, detail
view) all show losses through :func:`format_loss`, so that a training that diverged reads the
same everywhere - ``nan``, ``inf``, ``-inf`` - and never as the ``-`` of a value not known yet.
Exports are not text views: ``--json`` writes a non-finite number as ``null`` (see
:func:`hpc_runner.stream.text.json_text`), ``--csv`` as an empty cell, as before.
"""

from __future__ import annotations

import math


def format_loss(value: float | None, digits: int = 4) -> str:
    """A loss (or val_loss) as text: ``0.1235`` with ``digits`` significant digits.

    Parameters
    ----------
    value : float | None
        The loss; None or the seed's ``-1`` when it is not known (yet).
    digits : int
        Significant digits (``--summary`` shows six: runs close in val_loss stay apart).

    Returns
    -------
    str
        ``-`` when unknown; ``nan``, ``inf`` or ``-inf`` for a recorded loss that is not finite
        (the training diverged: the status file records it as null, read back as NaN).
    """
    if value is None or value == -1:
        return "-"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"
