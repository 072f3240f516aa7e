"""``hpc-runner watch [DIR] [--poll SECONDS] [--on-event COMMAND]``: the live TUI over every run
below DIR."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

EXAMPLES = """\
examples:
  hpc-runner watch runs                      every run below runs/, sweeps grouped
  hpc-runner watch runs/n2v_demo_sweep       one sweep
  hpc-runner watch runs --poll 5             read the files every 5 s (a busy shared filesystem)
  hpc-runner watch runs --on-event 'notify-send hpc-runner'
  hpc-runner watch runs --on-event \\
      'sh -c "echo \\"$HPC_RUNNER_RUN $HPC_RUNNER_PHASE\\" >> ends.txt"'

Keys: j/k move, g/G first/last, / filters, o/O sort by the column chosen with < and >,
enter details, l logs, space marks runs and p compares them, y copies a run's model path,
s/c/r stop/cancel/resume, : all commands, ? every key, q quits (the runs go on).
"""


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
            "cancel / resume keys; a toast and the terminal bell when a run ends. Press ? "
            "inside for every key. Uses inotify on local disks and polls on network "
            "filesystems (NFS, Lustre, GPFS, ...), where inotify does not see writes made on "
            "compute nodes."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", nargs="?", type=Path, help="runs directory (default: ./runs)")
    parser.add_argument(
        "--poll",
        type=_seconds,
        metavar="SECONDS",
        help="poll every SECONDS instead of using inotify (default: automatic)",
    )
    parser.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="read every status file from its start, bypassing the reader cache",
    )
    parser.add_argument(
        "--on-event",
        metavar="COMMAND",
        help="run COMMAND when a run reaches DONE, CRASHED, LOST or STOPPED while watched. It "
        "is split like a shell would (shlex) and run without a shell; the run's name, phase, "
        "reason and directory come as the variables HPC_RUNNER_RUN, HPC_RUNNER_PHASE, "
        "HPC_RUNNER_REASON, HPC_RUNNER_RUN_DIR (use sh -c '... \"$HPC_RUNNER_RUN\"' to put "
        "them in a message)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the directory, then run the TUI until the user quits (textual imported only here)."""
    from hpc_runner.errors import UsageError
    from hpc_runner.stream.runs import default_runs_dir
    from hpc_runner.watch.events import EventCommand

    root: Path = args.dir or default_runs_dir()
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory (give the runs directory, e.g. ./runs)")
    on_event = EventCommand(args.on_event) if args.on_event is not None else None
    from hpc_runner.watch.watcher import RunWatcher

    # The first reads begin before Textual loads (~1 s): a big sweep is read meanwhile.
    watcher = RunWatcher(root, poll=args.poll, cache=args.cache)
    try:
        watcher.begin()
        from hpc_runner.tui.app import WatchApp
        from hpc_runner.tui.terminal_images import load_images

        load_images(widget=True)  # asks the terminal what it shows: before the app reads stdin
        WatchApp(root, on_event=on_event, watcher=watcher).run()
    finally:
        watcher.stop()
    return 0
