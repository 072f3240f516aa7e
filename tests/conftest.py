"""Shared fixtures: tiny real careamics configurations and images, and the SLURM test cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.slurm_cluster"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "training: trains a real (tiny) careamics model on the CPU")


SLURM_COMMANDS = {"sbatch", "srun", "squeue", "sacct", "scancel", "scontrol", "sinfo", "salloc"}


@pytest.fixture
def no_slurm_path(tmp_path: Path) -> str:
    """A PATH like this machine's, minus SLURM's commands: a workstation without a cluster."""
    shadow = tmp_path / "no-slurm-bin"
    shadow.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            link = shadow / name
            if name not in SLURM_COMMANDS and not link.exists():
                link.symlink_to(Path(directory) / name)
    return str(shadow)
