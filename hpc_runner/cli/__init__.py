"""``hpc-runner``: the command line.

Each sub-command lives in its own module with ``register(subparsers)``; modules import only the
standard library at the top so that ``hpc-runner status`` starts fast, and pull in heavy
packages (careamics, torch, textual) inside the function that needs them.

Errors end as one line (a spec error: one line per problem) and an exit code, never a
traceback: :class:`~hpc_runner.errors.HpcRunnerError` with its own code, any other ``OSError``
(a full disk, a file where a directory should be) with 1. Messages quote paths and values from
the user's files and argv, so they are shown through the terminal sanitiser, as is argparse's
own complaint about an argument.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from hpc_runner.cli import (
    control_cmd,
    preview_cmd,
    profiles_cmd,
    status_cmd,
    submit_cmd,
    sweep_cmd,
    watch_cmd,
)
from hpc_runner.errors import HpcRunnerError
from hpc_runner.stream.text import terminal_safe

COMMANDS = [submit_cmd, sweep_cmd, status_cmd, watch_cmd, control_cmd, preview_cmd, profiles_cmd]


class _Parser(argparse.ArgumentParser):
    """argparse echoes a rejected value (``invalid choice: '...'``): never raw to the terminal."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {terminal_safe(message, one_line=True)}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        _complain(args.command, str(error))
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `hpc-runner status | head`
        return 0
    except OSError as error:  # a full disk, a file where a directory should be, ...
        _complain(args.command, describe_os_error(error))
        return 1


def describe_os_error(error: OSError) -> str:
    """``runs/x: no space left on device``: the path the system named, and its reason."""
    from hpc_runner.stream.files import reason_of
    from hpc_runner.stream.text import path_text

    where = [path_text(name) for name in (error.filename, error.filename2) if name is not None]
    return ": ".join([" -> ".join(where), reason_of(error)] if where else [reason_of(error)])


def _complain(command: str, message: str) -> None:
    """One line per line of ``message`` on stderr, every one made safe for the terminal."""
    lines = message.strip("\n").split("\n") or [""]
    text = "\n".join(terminal_safe(line, one_line=True) for line in lines)
    print(f"hpc-runner {command}: {text}", file=sys.stderr)
