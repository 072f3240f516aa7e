"""Shared fixtures: tiny real careamics configurations and images, and the SLURM test cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.slurm_cluster"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "training: trains a real (tiny) careamics model on the CPU")


@pytest.fixture(autouse=True, scope="session")
def isolated_profile_places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Profiles come from the package, ./slurm_templates and $HPC_RUNNER_TEMPLATES only: the
    machine's /etc/hpc-runner/profiles and the user's ~/.config/hpc-runner/profiles must not
    change what the tests see, and no test may write into the real home."""
    places = tmp_path_factory.mktemp("profile-places")
    saved = {key: os.environ.get(key) for key in ("HPC_RUNNER_SITE_PROFILES", "XDG_CONFIG_HOME")}
    os.environ["HPC_RUNNER_SITE_PROFILES"] = str(places / "site")
    os.environ["XDG_CONFIG_HOME"] = str(places / "config")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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


@pytest.fixture(autouse=True, scope="session")
def _reader_cache_in_a_temporary_directory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """The reader cache (``$XDG_CACHE_HOME/hpc-runner``) of every test, and of every command a
    test runs, lives in the test session's temporary directory, never in the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(autouse=True)
def _ctrl_c_reaches_the_processes_a_test_starts() -> Iterator[None]:
    """Each test starts with SIGINT raising KeyboardInterrupt, so that the processes it starts
    cannot inherit it ignored. Two CI runs failed as an inherited ignored SIGINT makes them
    fail (a local job killed instead of interrupted, which test_submit reproduces that way,
    and a ``logs -f`` that never saw its ctrl-c); what in a worker could leave it ignored was
    not found. Jobs take SIGINT whatever they inherit (node/interrupts.py); a command such
    as ``logs -f`` keeps the shell's choice, as any command does."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
