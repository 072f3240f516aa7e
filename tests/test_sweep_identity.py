"""Sweep runs are identified by their values, not by their position in a list (issue 10).

A real local sweep over two data files with one basename (one folder with a space) trains
both; the sweep is then reordered and grown (``d/a`` first) and submitted again: only the new
value trains, every value trains exactly once, and ``status --summary`` credits each result to
the value its run trained on (checked against each run's own ``run.yaml``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import yaml

from hpc_runner.api import wait
from hpc_runner.control.jobfile import read_job_file
from hpc_runner.stream.runs import RUN_SPEC_FILE, STATUS_FILE
from tests.run_support import cli, write_spec

WAIT_S = 300  # three tiny trainings on a shared 2-core machine, each importing careamics

FOLDERS = ("d/b", "d/with space", "d/a")


def write_images(root: Path) -> None:
    """One 64x64 noisy image per folder, all named ``noisy.tif`` (and each different)."""
    clean = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    for seed, folder in enumerate(FOLDERS):
        noise = np.random.default_rng(seed).normal(0, 0.2, clean.shape)
        (root / folder).mkdir(parents=True)
        tifffile.imwrite(root / folder / "noisy.tif", (clean + noise).astype(np.float32))


def write_sweep(path: Path, trains: list[str]) -> None:
    document = {"name": "ident", "base": "tiny.yaml", "grid": {"data.train": trains}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def trained_on(run_dir: Path) -> str:
    """The data file the run was submitted with: its resolved ``run.yaml`` (what the node read)."""
    document = yaml.safe_load((run_dir / RUN_SPEC_FILE).read_text(encoding="utf-8"))
    return str(document["data"]["train"])


def trainings(run_dir: Path) -> int:
    """How many times the run started training: its ``TRAINING`` state records."""
    lines = (run_dir / STATUS_FILE).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return sum(r["type"] == "state" and r["value"] in ("TRAINING", 1) for r in records)


def submit(sweep_path: Path, runs: Path) -> Any:
    answer = cli("sweep", str(sweep_path), "--cluster", "local", "--runs-dir", str(runs))
    assert answer.returncode == 0, answer.stderr
    return answer


@pytest.mark.training
def test_reordered_and_grown_sweep_trains_each_value_once_and_credits_it(
    tmp_path: Path,
) -> None:
    write_spec(tmp_path, epochs=1)
    write_images(tmp_path)
    sweep_path = tmp_path / "sweep.yaml"
    runs = tmp_path / "runs"
    sweep_dir = runs / "ident"

    write_sweep(sweep_path, ["d/b/noisy.tif", "d/with space/noisy.tif"])
    first = submit(sweep_path, runs)
    assert "2 runs submitted" in first.stdout
    wait(sweep_dir, progress=False, interval_s=1, scheduler_interval_s=2, timeout_s=WAIT_S)

    # d/a first, the two others after it in another order: only d/a is new
    write_sweep(sweep_path, ["d/a/noisy.tif", "d/with space/noisy.tif", "d/b/noisy.tif"])
    dry = cli("sweep", str(sweep_path), "--dry-run", "--json", "--runs-dir", str(runs))
    assert dry.returncode == 0, dry.stderr
    entries = json.loads(dry.stdout)
    actions = {entry["overrides"]["data.train"]: entry["action"] for entry in entries}
    assert actions == {
        "d/a/noisy.tif": "new",
        "d/with space/noisy.tif": "skip",
        "d/b/noisy.tif": "skip",
    }
    second = submit(sweep_path, runs)
    assert "1 runs submitted" in second.stdout, second.stdout
    assert second.stdout.count("skipped ") == 2
    rows = wait(sweep_dir, progress=False, interval_s=1, scheduler_interval_s=2, timeout_s=WAIT_S)
    assert [row["state"] for row in rows] == ["DONE"] * 3

    run_dirs = sorted(path.parent for path in sweep_dir.glob(f"*/{STATUS_FILE}"))
    by_data = {trained_on(run_dir): run_dir for run_dir in run_dirs}
    assert sorted(by_data) == sorted(str(tmp_path / folder / "noisy.tif") for folder in FOLDERS)
    assert len(run_dirs) == 3  # no value has a second run directory
    for run_dir in run_dirs:  # each value trained exactly once, in one job
        record = read_job_file(run_dir)
        assert record is not None and len(record.submissions) == 1, run_dir.name
        assert trainings(run_dir) == 1, run_dir.name

    summary = cli("status", str(sweep_dir), "--summary", "--json")
    assert summary.returncode == 0, summary.stderr
    document = json.loads(summary.stdout)
    credited = {
        row["run"]: str(tmp_path / row["overrides"]["data.train"]) for row in document["runs"]
    }
    assert credited == {run_dir.name: trained_on(run_dir) for run_dir in run_dirs}

    exported = cli("status", str(sweep_dir), "--summary", "--csv")
    assert exported.returncode == 0, exported.stderr
    table = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {row["run"]: str(tmp_path / row["set:data.train"]) for row in table} == credited
