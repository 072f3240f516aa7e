"""Where a run's preview images are, and their history: shared by the node, which writes them,
and every view that shows them (``status --json``, the TUI, ``hpc-runner preview``).

The node writes ``previews/epoch_NNNN.png`` in the run directory, one per preview, named by the
epochs completed (:func:`preview_relpath`), and then a ``preview`` record naming it
(:class:`~hpc_runner.stream.records.PreviewValue`). A record comes from a file nobody vouches
for: :func:`preview_file` accepts only a path of that shape, inside the run's ``previews/``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

#: The folder of preview images in a run directory.
PREVIEWS_DIR = "previews"

_NAME = re.compile(r"^epoch_(\d{4,10})\.png$")


def preview_relpath(epoch: int) -> str:
    """``previews/epoch_0012.png``: the image taken after ``epoch`` epochs, relative to the run."""
    return f"{PREVIEWS_DIR}/epoch_{epoch:04d}.png"


def preview_file(run_dir: str | Path, relpath: str) -> Path | None:
    """The image a record names, or None when the name is not one the node writes.

    Only ``previews/epoch_N.png`` is accepted: no absolute path, no ``..``, no other folder,
    so that a planted record cannot make a view read (or show) any other file.
    """
    parts = relpath.split("/")
    if len(parts) != 2 or parts[0] != PREVIEWS_DIR or not _NAME.match(parts[1]):
        return None
    return Path(run_dir) / PREVIEWS_DIR / parts[1]


def preview_history(
    epochs: Iterable[int], psnrs: Iterable[float]
) -> list[tuple[int, float | None]]:
    """One ``(epoch, psnr)`` per previewed epoch, by epoch; PSNR None where none was measured.

    A resumed run may preview an epoch again: the newest record of an epoch wins.
    """
    by_epoch: dict[int, float | None] = {}
    for epoch, psnr in zip(epochs, psnrs, strict=True):
        by_epoch[epoch] = psnr if math.isfinite(psnr) else None
    return sorted(by_epoch.items())


def psnr_curve(history: Iterable[tuple[int, float | None]]) -> list[list[float]]:
    """``[[epoch, psnr], ...]`` of the previews that measured a PSNR (``status --json``)."""
    return [[epoch, psnr] for epoch, psnr in history if psnr is not None]
