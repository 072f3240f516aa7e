"""``hpc-runner preview RUN [--epoch N]``: a run's preview picture, in the terminal.

On a terminal the picture is drawn the way the TUI draws it (:mod:`hpc_runner.tui.
terminal_images`: Kitty graphics or Sixel where the terminal has them, Unicode half-blocks
elsewhere), followed by a line with the epoch, the crop's PSNR and the file's path. When stdout
is not a terminal (a pipe, a file) only the path is printed, one line, so that
``hpc-runner preview RUN | xargs xdg-open`` works. textual is never imported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: Widest picture drawn, in terminal cells (a preview is ~520 pixels wide).
MAX_WIDTH = 120


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``preview`` to the command line."""
    parser = subparsers.add_parser(
        "preview",
        help="show a run's preview picture (input | prediction) in the terminal",
        description=(
            "Show the newest preview picture of a run (input and prediction of one crop, "
            "written during training), or that of epoch N, and print its path. Where stdout "
            "is not a terminal, only the path is printed. HPC_RUNNER_IMAGES=auto|kitty|sixel|"
            "halfblock picks how the picture is drawn."
        ),
    )
    parser.add_argument("run", metavar="RUN", help="run directory or run name")
    parser.add_argument(
        "--epoch", type=int, metavar="N", help="the preview taken after epoch N (default: newest)"
    )
    parser.add_argument(
        "--runs-dir", type=Path, help="where run names are looked up (default: ./runs)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpc_runner.control.jobs import resolve_run
    from hpc_runner.errors import HpcRunnerError, UsageError
    from hpc_runner.stream.previews import preview_file, preview_history, preview_relpath
    from hpc_runner.stream.run_state import replay
    from hpc_runner.stream.runs import STATUS_FILE
    from hpc_runner.stream.text import terminal_safe

    run_dir = resolve_run(args.run, args.runs_dir)
    state = replay(run_dir / STATUS_FILE)
    history = dict(preview_history(state.preview_epochs, state.preview_psnrs))
    name = terminal_safe(run_dir.name, one_line=True)
    if not history:
        off = (
            "" if state.status.state.name in ("IDLE", "TRAINING") else "; is `preview: false` set?"
        )
        raise HpcRunnerError(f"{name}: no preview yet{off}")
    epoch = max(history) if args.epoch is None else args.epoch
    if epoch not in history:
        epochs = ", ".join(str(e) for e in sorted(history))
        raise UsageError(f"{name}: no preview of epoch {epoch} (previews of epochs {epochs})")
    path = preview_file(run_dir, preview_relpath(epoch))
    assert path is not None  # the name is one of ours
    shown = terminal_safe(str(path), one_line=True)
    if not sys.stdout.isatty():
        print(shown)
        return 0
    psnr = history[epoch]
    facts = f"epoch {epoch}" + ("" if psnr is None else f", PSNR {psnr:.2f} dB (the crop)")
    problem = _draw(path)
    if problem:
        print(f"(no picture: {terminal_safe(problem, one_line=True)})", file=sys.stderr)
    print(f"{name}: {facts}")
    print(shown)
    return 0


def _draw(path: Path) -> str | None:
    """Draw the picture on the terminal; why not, if it cannot be."""
    from rich.console import Console

    from hpc_runner.errors import HpcRunnerError
    from hpc_runner.tui.terminal_images import load_images, read_picture

    picture = read_picture(path)
    if isinstance(picture, str):
        raise HpcRunnerError(f"{path.name}: {picture}")
    images = load_images()
    if images.renderable is None:
        return images.problem
    console = Console()
    width = max(8, min(console.width, MAX_WIDTH))
    console.print(images.renderable(picture, width, "auto"))
    return None
