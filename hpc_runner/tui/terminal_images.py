"""How pictures reach the terminal: textual-image's Kitty graphics, Sixel, or Unicode half-blocks.

textual-image asks the terminal what it can show when it is first imported (an escape sequence
written to stdout, the answer read from stdin), so it must be imported before a Textual app
starts reading stdin: ``hpc-runner watch`` calls :func:`load_images` first. Its probe fails
with a traceback when stdin is not a terminal while stdout is, or when the terminal reports a
size of 0x0 (checked with textual-image 0.12.0); :func:`probe_problem` says so beforehand, and
the views then name the picture's path instead of showing it.

``HPC_RUNNER_IMAGES`` picks the method: ``auto`` (default: what the terminal answers, half-blocks
when it answers nothing), ``kitty``, ``sixel`` or ``halfblock``. The TUI and ``hpc-runner
preview`` both follow it. No textual import here: the command line loads only the renderables.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_runner.stream.files import UnreadableFile, read_regular

ENV = "HPC_RUNNER_IMAGES"
MODES = ("auto", "kitty", "sixel", "halfblock")
#: textual-image's class names by mode.
_CLASSES = {"kitty": "TGPImage", "sixel": "SixelImage", "halfblock": "HalfcellImage"}


@dataclass(frozen=True)
class Images:
    """The picture classes to use, or why there are none.

    Attributes
    ----------
    mode : str
        ``kitty``, ``sixel`` or ``halfblock`` (empty when there are no pictures).
    renderable : type | None
        A Rich renderable class (``Cls(image, width, height)``).
    widget : type | None
        A Textual widget class (``Cls(image)``), when asked for.
    problem : str | None
        Why pictures cannot be shown (then both classes are None).
    """

    mode: str = ""
    renderable: Any = None
    widget: Any = None
    problem: str | None = None


_loaded: dict[bool, Images] = {}

#: A preview PNG is ~100 KiB; anything far larger is not one.
MAX_PICTURE_BYTES = 16 << 20
#: Largest picture shown, per side (a preview is at most ~520 x 280 pixels).
MAX_PICTURE_SIDE = 4096


def read_picture(path: Path) -> Any:
    """The decoded picture at ``path`` (a PIL image), or a one-line reason why there is none.

    A run directory is written by a training nobody vouches for: a FIFO, a huge file or a
    decompression bomb named like a preview is refused, never read whole or decoded.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        data = read_regular(path, max_bytes=MAX_PICTURE_BYTES)
        picture = Image.open(io.BytesIO(data))
        if max(picture.size) > MAX_PICTURE_SIDE:
            return f"{picture.size[0]}x{picture.size[1]} pixels: not a preview"
        picture.load()
    except FileNotFoundError:
        return "the file is not there (yet)"
    except UnreadableFile as error:
        return str(error)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        return f"not a readable PNG ({type(error).__name__})"
    return picture


def requested_mode() -> str:
    """The mode ``HPC_RUNNER_IMAGES`` asks for (``auto`` when unset or not one of :data:`MODES`)."""
    mode = os.environ.get(ENV, "auto").strip().lower()
    return mode if mode in MODES else "auto"


def probe_problem() -> str | None:
    """Why textual-image's terminal probe would fail here, or None when it is safe to import."""
    stdout, stdin = sys.__stdout__, sys.__stdin__
    if stdout is None or stdout.closed:
        return "stdout is closed"
    try:
        if not stdout.isatty():
            return None  # no probe: textual-image falls back without asking
        if stdin is None or stdin.closed or not stdin.isatty():
            return "stdin is not a terminal, so the terminal cannot be asked what it shows"
        size = os.get_terminal_size(stdout.fileno())
    except (OSError, ValueError) as error:
        return f"the terminal cannot be asked what it shows ({error})"
    if size.columns == 0 or size.lines == 0:
        return "the terminal reports a size of 0x0"
    return None


def load_images(*, widget: bool = False, may_probe: bool = True) -> Images:
    """The classes for pictures (imported once; see the module's note on the probe).

    Parameters
    ----------
    widget : bool
        Also the Textual widget class (imports textual).
    may_probe : bool
        False inside a running Textual app: the terminal cannot be asked any more, so unless
        the classes were loaded before, there are none.
    """
    if widget in _loaded:
        return _loaded[widget]
    problem = probe_problem()
    stdout = sys.__stdout__
    if problem is None and not may_probe and stdout is not None and stdout.isatty():
        problem = "the terminal was not asked what it shows before the app started"
    if problem is not None:
        return Images(problem=problem)
    # Its probe logs a warning with a traceback when the terminal does not answer, then falls
    # back on its own; with no handler, Python's last-resort one would print that to stderr.
    logging.getLogger("textual_image").addHandler(logging.NullHandler())
    try:
        import textual_image.renderable as renderables

        widgets: Any = None
        if widget:
            import textual_image.widget as widgets
    except Exception as error:  # the probe talks to the terminal: no error of it may end a view
        images = Images(problem=f"textual-image failed: {type(error).__name__}: {error}")
    else:
        mode = requested_mode()
        if mode == "auto":
            auto = renderables.Image
            mode = "kitty" if auto is renderables.TGPImage else "halfblock"
            mode = "sixel" if auto is renderables.SixelImage else mode
        name = _CLASSES[mode]
        images = Images(
            mode=mode,
            renderable=getattr(renderables, name),
            widget=getattr(widgets, name) if widgets is not None else None,
        )
    _loaded[widget] = images
    return images
