"""``hpc-runner``: the command line.

Each sub-command lives in its own module with ``register(subparsers)``; modules import only the
standard library at the top so that ``hpc-runner status`` starts fast, and pull in heavy
packages (careamics, torch, textual) inside the function that needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hpc_runner.cli import (
    control_cmd,
    profiles_cmd,
    status_cmd,
    submit_cmd,
    sweep_cmd,
    watch_cmd,
)
from hpc_runner.errors import HpcRunnerError

COMMANDS = [submit_cmd, sweep_cmd, status_cmd, watch_cmd, control_cmd, profiles_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpc-runner",
        description="Submit CAREamics trainings to SLURM or a local process, and watch them.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors become a one-line message and exit code 1 or 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HpcRunnerError as error:
        print(f"hpc-runner {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `hpc-runner status | head`
        return 0
