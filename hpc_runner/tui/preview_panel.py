"""The preview pictures of one run in the detail view: the newest one, or any earlier epoch.

The picture is read on a worker thread (a run directory may sit on a slow shared filesystem;
:func:`~hpc_runner.tui.terminal_images.read_picture` refuses FIFOs and anything too large) and
handed to the screen with ``call_from_thread``. It is shown with textual-image
(:mod:`hpc_runner.tui.terminal_images`): Kitty graphics or Sixel where the terminal has them,
Unicode half-blocks elsewhere. The panel follows the newest preview until ``[`` or ``]`` picks
another epoch; stepping back to the newest follows again. Hidden while a run has no previews.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from hpc_runner.stream.previews import preview_file, preview_relpath
from hpc_runner.tui.terminal_images import load_images, read_picture


class PreviewPanel(Vertical):
    """A caption (epoch, PSNR, keys) over the picture."""

    DEFAULT_CSS = """
    PreviewPanel { width: 2fr; display: none; padding: 0 1; }
    PreviewPanel.-shown { display: block; }
    PreviewPanel #preview-caption { height: 1; }
    PreviewPanel #preview-picture { width: auto; height: auto; max-height: 100%; }
    PreviewPanel #preview-note { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_dir: Path | None = None
        self.history: list[tuple[int, float | None]] = []
        self.index = -1  # into history; -1: none shown
        self.following = True
        self.images = load_images(widget=True, may_probe=False)
        self._requested: tuple[Path, int] | None = None
        self._shown: int | None = None  # the epoch whose picture is on screen

    def compose(self) -> ComposeResult:
        yield Static(id="preview-caption", markup=False)
        if self.images.widget is not None:
            yield self.images.widget(id="preview-picture")
        yield Static(id="preview-note", markup=False)

    @property
    def epoch(self) -> int | None:
        """The epoch of the preview selected (None without previews)."""
        return self.history[self.index][0] if 0 <= self.index < len(self.history) else None

    def show(self, run_dir: Path, history: list[tuple[int, float | None]]) -> None:
        """The run's previews (``(epoch, psnr)`` by epoch) as they are now."""
        self.run_dir = run_dir
        epoch = self.epoch
        self.history = history
        if self.following or epoch is None:
            self.index = len(history) - 1
        else:  # stay on the epoch picked
            epochs = [entry[0] for entry in history]
            self.index = epochs.index(epoch) if epoch in epochs else len(history) - 1
        self.set_class(bool(history), "-shown")
        self._update()

    def step(self, delta: int) -> bool:
        """Select the preview ``delta`` epochs on (clamped); False when there is none there."""
        target = self.index + delta
        if not self.history or not 0 <= target < len(self.history):
            return False
        self.index = target
        self.following = target == len(self.history) - 1
        self._update()
        return True

    def _update(self) -> None:
        epoch = self.epoch
        caption = self.query_one("#preview-caption", Static)
        if epoch is None or self.run_dir is None:
            caption.update("")
            return
        psnr = self.history[self.index][1]
        text = Text(f"preview epoch {epoch}", style="bold")
        if psnr is not None:
            text.append(f"  PSNR {psnr:.2f} dB")
        text.append(f"  {self.index + 1}/{len(self.history)}", style="dim")
        caption.update(text)
        path = preview_file(self.run_dir, preview_relpath(epoch))
        if path is None or (path, epoch) == self._requested:
            return
        self._requested = (path, epoch)
        if self.images.widget is None:
            self._note(f"{path.name} ({self.images.problem})")
            return
        self.run_worker(
            lambda: self._load(path, epoch), thread=True, group="preview", exclusive=True
        )

    def _load(self, path: Path, epoch: int) -> None:
        picture = read_picture(path)
        self.app.call_from_thread(self._loaded, path, epoch, picture)

    def _loaded(self, path: Path, epoch: int, picture: Any) -> None:
        if self._requested != (path, epoch):
            return  # another epoch was picked meanwhile
        if isinstance(picture, str):
            self._requested = None  # try again on the next update (the file may come)
            self._note(f"{path.name}: {picture}")
            return
        self.query_one("#preview-picture").image = picture  # type: ignore[attr-defined]
        self._shown = epoch
        self._note("")

    def _note(self, text: str) -> None:
        from hpc_runner.tui.text import literal

        self.query_one("#preview-note", Static).update(literal(text) if text else "")
