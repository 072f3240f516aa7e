"""A 4-run sweep as one throttled job array on the real SLURM test cluster (tests/slurm_cluster.py).

The last array task is cancelled while it waits behind the throttle, the other three reach
DONE, ``--only-failed`` resubmits exactly the cancelled run, and ``status --summary`` names the
best run - checked against careamics' own CSV logs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from hpc_runner.api import wait
from hpc_runner.control.jobfile import read_job_file
from tests.run_support import cli, status_json, wait_for, write_spec
from tests.slurm_cluster import SlurmCluster
from tests.test_api import csv_best_val_loss

pytestmark = [pytest.mark.slurm, pytest.mark.training]

WAIT_S = 240  # jobs queue behind other tests' jobs, then import careamics


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
