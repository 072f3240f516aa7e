"""Sweeps on the real SLURM test cluster (tests/slurm_cluster.py).

A 4-run sweep as one throttled job array: the last array task is cancelled while it waits
behind the throttle, the other three reach DONE, ``--only-failed`` resubmits exactly the
cancelled run, and ``status --summary`` names the best run - checked against careamics' own CSV
logs. A killed run whose jobs start in another folder resumes from an absolute checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpc_runner.api import wait
from hpc_runner.control.jobfile import read_job_file
from hpc_runner.stream.runs import latest_checkpoint
from hpc_runner.stream.status import TrainingState
from tests.run_support import (
    cli,
    debug_messages,
    status_json,
    wait_for,
    wait_state,
    write_spec,
)
from tests.slurm_cluster import SlurmCluster
from tests.test_api import csv_best_val_loss

pytestmark = [pytest.mark.slurm, pytest.mark.training]

WAIT_S = 240  # jobs queue behind other tests' jobs, then import careamics
FINAL = (TrainingState.DONE, TrainingState.STOPPED, TrainingState.CRASHED)


def test_sweep_job_array_cancel_only_failed_and_summary(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    write_spec(tmp_path, epochs=2, profile="test_cpu")
    sweep_path = tmp_path / "sweep.yaml"
    sweep_path.write_text(
        yaml.safe_dump(
            {
                "name": "array",
                "base": "tiny.yaml",
                "grid": {"training.patch_size": [[16, 16], [32, 32]]},
                "zip": {"training.seed": [1, 2]},
                "cluster": {"array_parallelism": 2},
            }
        )
    )
    runs = tmp_path / "runs"
    answer = cli("sweep", str(sweep_path), "--cluster", "slurm", "--runs-dir", str(runs))
    assert answer.returncode == 0, answer.stderr
    jobs = dict(re.findall(r"^(\S+): job (\S+)$", answer.stdout, re.M))
    names = ["patch_size=16x16_seed=1", "patch_size=16x16_seed=2", "patch_size=32x32_seed=1"]
    last = "patch_size=32x32_seed=2"
    assert sorted(jobs) == [*names, last]
    array = jobs[names[0]].split("_")[0]
    assert [jobs[name] for name in [*names, last]] == [f"{array}_{i}" for i in range(4)]
    assert "one job array, at most 2 at once" in answer.stdout
    sweep_dir = runs / "array"
    script = next((sweep_dir / "submitit").glob("*_submission.sh")).read_text()
    assert "#SBATCH --array=0-3%2" in script and "#SBATCH --partition=cpu" in script

    # the throttle keeps task 3 pending: cancel it before it ever starts
    cancel = cli("cancel", str(sweep_dir / last))
    assert cancel.returncode == 0, cancel.stderr
    rows = wait(sweep_dir, progress=False, interval_s=1, scheduler_interval_s=2, timeout_s=WAIT_S)
    states = {row["run"]: (row["phase"], row["scheduler_state"]) for row in rows}
    assert states.pop(last)[0] == "CANCELLED"
    assert states == {name: ("DONE", "COMPLETED") for name in names}
    cancelled = rows[-1]
    assert cancelled["run"] == last and cancelled["epoch"] == 0
    # SLURM 22.05 may keep no record of a pending array task cancelled before the array was
    # split (sacct and squeue forget it): then the cancel in job.json says it is over
    assert cancelled["scheduler_state"] == "CANCELLED"

    retry = cli(
        "sweep", str(sweep_path), "--cluster", "slurm", "--runs-dir", str(runs), "--only-failed"
    )
    assert retry.returncode == 0, retry.stderr
    lines = retry.stdout.splitlines()
    assert sorted(line for line in lines if line.startswith("skipped")) == [
        f"skipped {name}: exists: DONE" for name in names
    ]
    (resubmitted,) = [line for line in lines if ": job " in line]
    assert resubmitted.startswith(f"{last}: job ") and "(CANCELLED" in resubmitted
    assert resubmitted.endswith(", attempt 1)")
    record = read_job_file(sweep_dir / last)
    assert record is not None and [s.how for s in record.submissions] == ["submit", "resume"]

    rows = wait(sweep_dir, progress=False, interval_s=1, scheduler_interval_s=2, timeout_s=WAIT_S)
    assert {row["run"]: row["state"] for row in rows} == dict.fromkeys([*names, last], "DONE")
    wait_for(
        lambda: all(e["scheduler_state"] == "COMPLETED" for e in status_json(sweep_dir).values()),
        timeout=60,
        what="sacct to say COMPLETED for every run",
        interval=1.0,
    )

    expected = min([*names, last], key=lambda name: csv_best_val_loss(sweep_dir / name))
    summary = cli("status", str(sweep_dir), "--summary", "--json")
    document = json.loads(summary.stdout)
    assert document["best"]["run"] == expected
    assert document["best"]["model"].startswith(str(sweep_dir / expected / "work"))
    assert [row["rank"] for row in document["runs"]] == [1, 2, 3, 4]


def kill_tasks(job_id: str) -> None:
    """SIGKILL the job's tasks (not its batch script), as the kernel's OOM killer would: SLURM
    records the job FAILED. (``scancel --signal=KILL`` would be recorded as CANCELLED.)"""
    listing = subprocess.run(
        ["scontrol", "listpids", job_id], capture_output=True, text=True, timeout=30, check=True
    ).stdout.splitlines()[1:]
    pids = [int(cols[0]) for cols in map(str.split, listing) if cols[2] != "batch"]
    assert pids, listing
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def test_only_failed_resumes_from_an_absolute_checkpoint_when_the_job_starts_elsewhere(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """A profile with ``additional_parameters: {chdir: /tmp}`` starts every job in /tmp. The
    sweep goes into a relative ``--runs-dir``; its run is killed (as the OOM killer would) after
    its first checkpoints, so its job FAILS; ``--only-failed`` hands the next attempt the newest
    checkpoint as an absolute path, so it resumes there and reaches DONE. (A relative path was
    resolved against /tmp: FileNotFoundError.) SLURM only: a local job ignores
    ``additional_parameters``."""
    write_spec(tmp_path, epochs=40, profile="test_cpu")
    (tmp_path / "sweep.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "elsewhere",
                "base": "tiny.yaml",
                "grid": {"training.seed": [7]},
                "cluster": {"additional_parameters": {"chdir": "/tmp"}},
            }
        )
    )

    def sweep(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "hpc_runner", "sweep", "sweep.yaml", *extra]
        command += ["--cluster", "slurm", "--runs-dir", "runs"]  # relative to the sweep's cwd
        answer = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        assert answer.returncode == 0, answer.stderr
        return answer

    first = sweep()
    (job_id,) = re.findall(r"^seed=7: job (\S+)$", first.stdout, re.M)
    run_dir = tmp_path / "runs" / "elsewhere" / "seed=7"
    script = next((run_dir.parent / "submitit").glob("*_submission.sh")).read_text()
    assert "#SBATCH --chdir=/tmp" in script
    wait_state(
        run_dir,
        lambda run: run.status.epoch_idx >= 2 and latest_checkpoint(run_dir) is not None,
        timeout=WAIT_S,
        what="epoch 3 with a checkpoint",
    )
    kill_tasks(job_id)
    wait_for(
        lambda: status_json(run_dir.parent)["seed=7"]["phase"] == "LOST",
        timeout=120,
        what="the killed run to show LOST",
        interval=1.0,
    )
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint is not None and checkpoint.is_absolute()

    retry = sweep("--only-failed")
    retried = r"^seed=7: job \S+ \(LOST \(.+\), attempt 1\)$"  # the task was killed
    assert re.search(retried, retry.stdout, re.M), retry.stdout
    run = wait_state(
        run_dir,
        lambda run: run.attempt == 1 and run.status.state in FINAL,
        timeout=WAIT_S,
        what="the retried attempt to end",
    )
    messages = debug_messages(run)
    assert run.status.state is TrainingState.DONE, messages
    assert run.status.epoch_idx == 39
    started = [m for m in messages if m.startswith("attempt 1 starting")]
    assert started and f"resuming from {run_dir / 'work'}" in started[0], messages
    assert any(m.startswith("resumed at epoch") for m in messages), messages
