"""pytest plugin: a real one-node SLURM cluster for tests marked ``slurm``.

Load it from ``tests/conftest.py`` with ``pytest_plugins = ["tests.slurm_cluster"]``.

The session fixture ``slurm_cluster`` uses an already running cluster when ``sinfo`` shows a
usable node and ``sacct`` answers (submitit learns job states only from ``sacct``). Otherwise, when
running as root, it starts the project's test cluster with ``.ci/slurm_cluster.sh start`` (which
is left running for later sessions). If no cluster can be had the tests are skipped - except when
``CI=true``, where they fail, so CI can never silently skip the SLURM tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "slurm_cluster.sh"
# sinfo short node states in which jobs can (eventually) run; "plnd" (and a "-" suffix) means
# the backfill scheduler has planned a pending job there
_USABLE_STATES = {"idle", "mix", "alloc", "comp", "plnd"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slurm: needs a real SLURM cluster (use the slurm_cluster fixture)"
    )


@dataclass(frozen=True)
class SlurmCluster:
    """What the tests need to know about the cluster."""

    partitions: tuple[str, ...]
    cpu_partition: str  # the default partition
    gpu_partition: str | None  # a partition with (possibly fake) GPUs, if there is one

    def release_held(self, job_id: str | int) -> None:
        """Make a held job (e.g. just requeued, ``Reason=BeginTime``) eligible at once.

        Slurm keeps a requeued job pending for ~2 minutes; this keeps requeue tests short. It
        waits 2 s first: slurmd revokes the killed instance's credential and refuses a new one
        created within the same second ("Killing non-startable batch JobId=N: Job credential
        revoked", the requeued job FAILED at once; seen under load when released at once).
        """
        time.sleep(2)
        _run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)


def _run(cmd: list[str], check: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


def _probe() -> tuple[SlurmCluster | None, str]:
    """Return (cluster, "") if a usable cluster answers, else (None, reason)."""
    if not all(shutil.which(cmd) for cmd in ("scontrol", "sinfo", "sacct")):
        return None, "the SLURM client commands (scontrol, sinfo, sacct) are not installed"
    try:
        # `scontrol ping` fails at once when slurmctld is down (sinfo would retry for ~9 s)
        ping = _run(["scontrol", "ping"])
        if ping.returncode != 0:
            return None, f"slurmctld does not answer: {(ping.stdout + ping.stderr).strip()}"
        info = _run(["sinfo", "-h", "-o", "%P|%a|%t"])
        if info.returncode != 0:
            return None, f"sinfo failed: {(info.stderr or info.stdout).strip()}"
        acct = _run(["sacct", "-n", "-X", "-S", "now-1minutes"])
        if acct.returncode != 0:
            return None, f"sacct failed (no accounting?): {(acct.stderr or acct.stdout).strip()}"
    except subprocess.TimeoutExpired as exc:
        return None, f"{exc.cmd[0]} timed out"
    partitions, default, usable = [], None, False
    for line in info.stdout.splitlines():
        name, avail, state = line.split("|")
        if name.endswith("*"):
            name = default = name[:-1]
        if name not in partitions:
            partitions.append(name)
        usable |= avail == "up" and state.rstrip("-") in _USABLE_STATES
    if not usable:
        return None, f"no partition has a usable node:\n{info.stdout.strip()}"
    cluster = SlurmCluster(
        partitions=tuple(partitions),
        cpu_partition=default or partitions[0],
        gpu_partition="gpu" if "gpu" in partitions else None,
    )
    return cluster, ""


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    cluster, problem = _probe()
    if cluster is None:
        if os.geteuid() != 0:
            problem += f" (not root, so {SCRIPT.name} start was not tried)"
        else:
            try:
                start = subprocess.run(
                    [shutil.which("bash") or "/bin/bash", str(SCRIPT), "start"],
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                problem += f"; {SCRIPT} start could not run: {exc}"
            else:
                if start.returncode == 0:
                    cluster, problem = _probe()
                else:
                    problem = (
                        f"{SCRIPT} start failed (exit {start.returncode}):\n"
                        f"{start.stdout}{start.stderr}"
                    )
    if cluster is None:
        message = f"no usable SLURM cluster: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield cluster
