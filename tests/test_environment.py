"""The ``environment`` record's facts: SLURM's time and memory formats, what a SLURM job, a
local job and an in-process training are granted, and a real SLURM job's own view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpc_runner.node.environment import (
    collect_environment,
    granted_memory,
    parse_slurm_duration,
    parse_slurm_time,
    scheduler_facts,
)
from hpc_runner.spec.profile_fields import ClusterProfile


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1:00:00", 3600),
        ("30:00", 1800),
        ("45", 2700),
        ("2-12:00:00", 2 * 86400 + 12 * 3600),
        ("1-06", 86400 + 6 * 3600),
        ("1-06:30", 86400 + 6 * 3600 + 1800),
        ("UNLIMITED", None),
        ("NOT_SET", None),
        ("x:10", None),
        ("", None),
    ],
)
def test_slurm_durations(text: str, seconds: float | None) -> None:
    assert parse_slurm_duration(text) == seconds


def test_slurm_times_are_local_time() -> None:
    expected = time.mktime((2024, 5, 1, 12, 34, 56, 0, 0, -1))
    assert parse_slurm_time("2024-05-01T12:34:56") == expected
    assert parse_slurm_time("N/A") is None and parse_slurm_time("Unknown") is None


def test_memory_granted_per_node_or_per_cpu() -> None:
    assert granted_memory({"SLURM_MEM_PER_NODE": "8192"}, 4) == 8 << 30
    assert granted_memory({"SLURM_MEM_PER_CPU": "1024"}, 4) == 4 << 30
    assert granted_memory({}, 4) is None


def test_a_slurm_job_with_its_end_time_in_the_environment() -> None:
    environ = {
        "SLURM_JOB_ID": "77",
        "SLURM_JOB_PARTITION": "gpu",
        "SLURM_CPUS_PER_TASK": "8",
        "SLURM_MEM_PER_NODE": "65536",
        "SLURM_JOB_START_TIME": "1700000000",
        "SLURM_JOB_END_TIME": "1700003600",
    }
    facts = scheduler_facts(environ, None, started=1700000004.0)
    assert facts == {
        "partition": "gpu",
        "cpus": 8,
        "mem_bytes": 64 << 30,
        "time_limit_s": 3600.0,
        "end_time": 1700003600.0,
        "time_limit_from": "slurm",
    }


def test_a_local_job_has_the_controllers_timeout_and_the_profiles_memory() -> None:
    profile = ClusterProfile(name="local", mem_gb=4, timeout_min=30)
    environ = {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_TIMEOUT_S": "120"}
    facts = scheduler_facts(environ, profile, started=1000.0)
    assert (facts["time_limit_s"], facts["end_time"], facts["time_limit_from"]) == (
        120.0,
        1120.0,
        "local",
    )
    assert facts["mem_bytes"] == 4 << 30 and facts["cpus"] == len(os.sched_getaffinity(0))
    no_timeout = scheduler_facts({"SUBMITIT_EXECUTOR": "local"}, profile, started=1000.0)
    assert (no_timeout["time_limit_s"], no_timeout["time_limit_from"]) == (1800.0, "profile")
    in_process = scheduler_facts({}, profile, started=1000.0)  # the Python API, a debug run
    assert "time_limit_s" not in in_process and "end_time" not in in_process


def test_collect_environment_here() -> None:
    value, notes = collect_environment(job="12")
    assert value.python == ".".join(map(str, sys.version_info[:3]))
    assert value.torch and value.careamics and value.lightning and value.hpc_runner
    assert value.job == "12" and value.host and value.process is not None
    assert value.process.pid == os.getpid() and value.started is not None
    assert value.started <= time.time()
    if value.gpus is None:  # this machine has no GPU: said in a note, never guessed
        assert value.cuda_available is False
        assert os.environ.get("CUDA_VISIBLE_DEVICES") == "" or notes


@pytest.mark.slurm
def test_a_real_slurm_job_reports_its_grant_and_time_limit(
    slurm_cluster: object, tmp_path: Path
) -> None:
    out = tmp_path / "environment.json"
    code = (
        "import msgspec, sys; from hpc_runner.node.environment import collect_environment; "
        "value, notes = collect_environment(job='x'); "
        f"open({str(out)!r}, 'wb').write(msgspec.json.encode(value))"
    )
    repo = Path(__file__).resolve().parents[1]
    answer = subprocess.run(
        [
            "sbatch",
            "--wait",
            "--time=7",
            "--cpus-per-task=1",
            "--mem=600M",
            f"--output={tmp_path / 'job.out'}",
            f"--export=ALL,PYTHONPATH={repo}",
            f"--wrap={sys.executable} -c {json.dumps(code)}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert answer.returncode == 0, (answer.stderr, (tmp_path / "job.out").read_text())
    value = json.loads(out.read_text())
    assert value["time_limit_s"] == 7 * 60 and value["time_limit_from"] == "slurm"
    assert value["cpus"] == 1 and value["mem_bytes"] == 600 << 20
    assert value["partition"] and 0 < value["end_time"] - value["started"] <= 7 * 60 + 5
