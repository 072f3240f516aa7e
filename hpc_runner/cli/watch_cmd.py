"""``hpc-runner watch [DIR] [--poll SECONDS]``: the live TUI over every run below DIR."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``watch`` to the command line."""
    parser = subparsers.add_parser(
        "watch",
        help="watch every run below DIR live in the terminal",
        description=(
            "A live table of every run below DIR, with details, loss curves, logs and stop / "
            "cancel / resume keys. Press ? inside for every key. Uses inotify on local disks and "
            "polls on network filesystems (NFS, Lustre, GPFS, ...), where inotify does not see "
            "writes made on compute nodes."
        ),
    )
    parser.add_argument("dir", nargs="?", type=Path, help="runs directory (default: ./runs)")
    parser.add_argument(
        "--poll",
        type=_seconds,
        metavar="SECONDS",
        help="poll every SECONDS instead of using inotify (default: automatic)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the directory, then run the TUI until the user quits (textual imported only here)."""
    from hpc_runner.errors import UsageError
    from hpc_runner.stream.runs import default_runs_dir

    root: Path = args.dir or default_runs_dir()
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory (give the runs directory, e.g. ./runs)")
    from hpc_runner.tui.app import WatchApp
    from hpc_runner.tui.terminal_images import load_images

    load_images(widget=True)  # asks the terminal what pictures it shows: before the app reads stdin
    WatchApp(root, poll=args.poll).run()
    return 0
