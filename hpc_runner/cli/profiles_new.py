"""``hpc-runner profiles new NAME [--from-slurm] [--partition P] [--force]``.

Writes a commented profile into the user's profile directory. With ``--from-slurm`` the cluster
is asked once each, read-only: ``sinfo``, ``scontrol show partition``, ``scontrol show node``
(:mod:`hpc_runner.spec.profile_discovery` reads the answers). The text is checked as a profile
before it is written, it is written atomically, and an existing file is replaced only with
``--force``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hpc_runner.errors import HpcRunnerError, UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
#: Seconds one SLURM command may take before the cluster is called unreachable.
COMMAND_TIMEOUT_S = 60


def write_new_profile(name: str, from_slurm: bool, partition: str | None, force: bool) -> int:
    """Write profile ``name``; print where, and what overrides it here if anything does."""
    from hpc_runner.spec.profile_search import scan_profiles, user_dir
    from hpc_runner.spec.profile_template import check_rendered, render_profile

    check_name(name)
    directory = user_dir()
    if directory is None:
        raise UsageError("no home directory; set XDG_CONFIG_HOME to a directory")
    path = directory / f"{name}.yaml"
    if path.exists() and not force:
        raise UsageError(f"{path} exists (--force replaces it)")
    command = " ".join(
        ["hpc-runner profiles new", shlex.quote(name)]
        + (["--from-slurm"] if from_slurm else [])
        + (["--partition", shlex.quote(partition)] if partition else [])
    )
    suggestion = None
    if from_slurm:
        from hpc_runner.spec.profile_discovery import (
            DiscoveryError,
            parse_cluster,
            suggest_profile,
        )

        try:
            suggestion = suggest_profile(parse_cluster(*ask_slurm()), partition)
        except DiscoveryError as error:
            raise UsageError(f"--from-slurm: {error}") from None
    text = render_profile(name, command, suggestion, partition)
    check_rendered(name, text, str(path))  # never write a profile hpc-runner cannot read
    write_atomically(path, text)
    _print(f"wrote {path}")
    if suggestion is not None:
        chosen = ", ".join(f"{k}={v}" for k, v in suggestion.values.items() if k != "partition")
        _print(f"partition {suggestion.partition.name}: {chosen}")
        if not suggestion.partition.gpu_nodes:
            _print(f"note: partition {suggestion.partition.name} has no GPU nodes", file=sys.stderr)
    winner = scan_profiles().files.get(name)
    if winner is not None and winner.path != path:
        _print(
            f"note: {winner.path} ({winner.place}) overrides it here; "
            f"`hpc-runner profiles {name}` shows that one",
            file=sys.stderr,
        )
    _print(f"next: edit it, then `hpc-runner profiles {name}` shows its sbatch script")
    return 0


def check_name(name: str) -> None:
    """A profile name is a file name: letters, digits, ``_.+-``, not ``new``, no ``.yaml``."""
    if name.endswith((".yaml", ".yml")):
        raise UsageError(f"give the name without its suffix ({Path(name).stem})")
    if not _NAME.match(name):
        raise UsageError(
            f"'{name}' is not a profile name (letters, digits and _.+- only, "
            "starting with a letter or digit)"
        )
    if name == "new":
        raise UsageError("'new' is the command's own word; choose another name")


def ask_slurm() -> tuple[str, str, str]:
    """The outputs of ``sinfo``, ``scontrol show partition``, ``scontrol show node`` (once each).

    Raises
    ------
    HpcRunnerError
        A command is missing, fails or does not answer in time (its own words are passed on).
    """
    from hpc_runner.spec.profile_discovery import NODES_ARGS, PARTITIONS_ARGS, SINFO_ARGS

    outputs = []
    for args in (SINFO_ARGS, PARTITIONS_ARGS, NODES_ARGS):
        command = " ".join(args)
        if shutil.which(args[0]) is None:
            raise HpcRunnerError(
                f"--from-slurm: `{args[0]}` is not on PATH (run this on a login "
                "node of the cluster, or write a profile without --from-slurm)"
            )
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise HpcRunnerError(
                f"--from-slurm: `{command}` gave no answer in {COMMAND_TIMEOUT_S} s"
            ) from None
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            raise HpcRunnerError(f"--from-slurm: `{command}` failed: {said}")
        outputs.append(done.stdout)
    return outputs[0], outputs[1], outputs[2]


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a hidden temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _print(text: str, file: Any = None) -> None:
    """What the cluster's commands said is shown with control characters escaped."""
    from hpc_runner.stream.text import terminal_safe

    print(terminal_safe(text), file=file)
