"""Smoke tests: submitit round trips through a real SLURM cluster (see tests/slurm_cluster.py).

The submitted functions are defined inside the tests so that cloudpickle ships them by value;
the job does not need to import this test module.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit")

pytestmark = pytest.mark.slurm

WAIT_S = 20  # per job; a trivial round trip takes ~1-2 s on the test cluster


def _executor(folder: Path, partition: str, **params) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(
        name="hpc_runner-smoke",
        timeout_min=2,
        # USR2 goes out this long before the limit; keep it well below timeout_min (the 90 s
        # default would hit a 2-minute job after 30 s and make checkpointable jobs requeue).
        slurm_signal_delay_s=15,
        cpus_per_task=1,
        mem_gb=1,
        slurm_partition=partition,
        **params,
    )
    return executor


def _sacct_state(job_id: str) -> str:
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    return out.splitlines()[-1] if out else ""


def _squeue(job_id: str, fmt: str) -> str:
    """Live view from slurmctld (sacct lags a few seconds behind); "" once the job has left."""
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", fmt],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()


def _wait_until(what: str, predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def _result(job: submitit.Job, timeout: float = WAIT_S):
    """job.result() without the risk of blocking a test run forever."""
    try:
        _wait_until(f"job {job.job_id} to finish", job.done, timeout)
    except AssertionError:
        job.cancel(check=False)
        raise
    return job.result()


def test_cpu_job_completes(slurm_cluster, tmp_path):
    def add(a, b):
        return a + b, os.environ.get("SLURM_JOB_PARTITION")

    job = _executor(tmp_path, slurm_cluster.cpu_partition).submit(add, 2, 3)
    assert _result(job) == (5, slurm_cluster.cpu_partition)
    # sacct lags a few seconds behind the result file
    _wait_until("sacct to show COMPLETED", lambda: _sacct_state(job.job_id) == "COMPLETED")
    assert job.get_info()["State"] == "COMPLETED"


def test_gpu_job_sees_one_gpu(slurm_cluster, tmp_path):
    if slurm_cluster.gpu_partition is None:
        pytest.skip("this cluster has no 'gpu' partition")

    def visible_devices():
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    executor = _executor(tmp_path, slurm_cluster.gpu_partition, gpus_per_node=1)
    job = executor.submit(visible_devices)
    assert _result(job) == "0"


def test_cancelled_job_is_cancelled_in_sacct(slurm_cluster, tmp_path):
    def sleep_long():
        time.sleep(90)

    job = _executor(tmp_path, slurm_cluster.cpu_partition).submit(sleep_long)
    try:
        _wait_until("the job to run", lambda: _squeue(job.job_id, "%T") == "RUNNING")
        job.cancel()
        # sacct reports "CANCELLED by <uid>"
        _wait_until(
            "sacct to show CANCELLED", lambda: _sacct_state(job.job_id).startswith("CANCELLED")
        )
        assert job.done(force_check=True)
        assert job.state.startswith("CANCELLED")
    finally:
        if not job.done():
            job.cancel(check=False)


def test_release_held_starts_a_held_job(slurm_cluster, tmp_path):
    # A job that may only start in an hour stands in for a freshly requeued (held) job.
    executor = _executor(
        tmp_path, slurm_cluster.cpu_partition, slurm_additional_parameters={"begin": "now+1hour"}
    )
    job = executor.submit(os.getpid)
    try:
        _wait_until(
            "the job to be held", lambda: _squeue(job.job_id, "%T %r") == "PENDING BeginTime"
        )
        slurm_cluster.release_held(job.job_id)
        assert isinstance(_result(job), int)
    finally:
        if not job.done():
            job.cancel(check=False)


def test_a_job_slurm_does_not_know_is_an_answer_not_silence(slurm_cluster):
    """``squeue -j`` of one id it does not know exits 1 ("Invalid job id specified"): that
    is SLURM saying the job is not queued, so the job is not UNKNOWN (which would keep its run
    from ever being resumed) but unlisted, and NOT_FOUND once its submission is old."""
    from hpc_runner.control.slurm_query import query_slurm

    unknown = str(10**8 + 7)
    answer = subprocess.run(["squeue", "-h", "-j", unknown], capture_output=True, text=True)
    assert answer.returncode == 1 and "Invalid job id specified" in answer.stderr
    assert query_slurm([unknown]) == {}
