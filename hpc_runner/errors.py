"""Errors that the command line turns into a message and an exit code, never a traceback."""

from __future__ import annotations


class HpcRunnerError(Exception):
    """A runtime failure the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(HpcRunnerError):
    """Bad input: a missing file, a wrong argument, an invalid spec (exit code 2)."""

    exit_code = 2
