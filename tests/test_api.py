"""The Python API for scripted sweeps, end to end on the local executor (real tiny trainings).

A 4-run sweep goes out, one run crashes because its data vanished after submission,
``only_failed`` resubmits exactly that run once the data is back, and every run ends DONE; the
best run is checked against careamics' own CSV logs, not against the status stream.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hpc_runner.api import Sweep, best, results, wait
from hpc_runner.control.jobfile import read_job_file
from hpc_runner.errors import UsageError
from hpc_runner.spec.errors import SpecError
from tests.run_support import cli, write_spec


def test_api_import_is_monitoring_safe() -> None:
    code = (
        "import sys, hpc_runner.api;"
        "print(sorted(m for m in ('torch', 'careamics', 'lightning', 'submitit', 'tqdm',"
        " 'textual', 'watchdog') if m in sys.modules))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == "[]"


def test_status_summary_imports_nothing_heavy(tmp_path: Path) -> None:
    from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
    from hpc_runner.stream.writer import StatusWriter

    with StatusWriter(tmp_path / "sweep" / "a" / "status.jsonl") as writer:
        writer.write(TrainUpdate(TrainUpdateType.VAL_LOSS, 0.5))
        writer.write(TrainUpdate(TrainUpdateType.STATE, TrainingState.DONE))
    code = (
        "import contextlib, io, sys\n"
        "from hpc_runner.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    assert main(['status', {str(tmp_path / 'sweep')!r}, '--summary']) == 0\n"
        "assert 'best: a (best val_loss 0.5)' in out.getvalue(), out.getvalue()\n"
        "heavy = ('torch', 'careamics', 'lightning', 'submitit')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == "[]"


def test_sweep_in_code_expands_and_checks_its_shape(tmp_path: Path) -> None:
    write_spec(tmp_path)
    sweep = Sweep(
        "tiny.yaml",
        grid={"training.patch_size": [(16, 16), (32, 32)]},  # tuples are fine in code
        zip={"training.seed": [1, 2, 3]},
        directory=tmp_path,
    )
    assert sweep.name == "tiny_sweep"
    assert [run.name for run in sweep.expand()][:2] == [
        "patch_size=16x16_seed=1",
        "patch_size=16x16_seed=2",
    ]
    assert len(sweep.expand()) == 6
    with pytest.raises(SpecError, match=r"Sweep\('bad'\): zip: lists of different lengths"):
        Sweep(
            "tiny.yaml",
            zip={"training.seed": [1], "data.train": ["a", "b"]},
            name="bad",
            directory=tmp_path,
        )
    with pytest.raises(RuntimeError, match="submit the sweep first"):
        sweep.results()


def test_a_sweep_in_code_listing_one_training_twice_names_its_grid(tmp_path: Path) -> None:
    """Refused before anything is written, telling to fix the grid (it said "the sweep file",
    which a sweep built in Python does not have)."""
    write_spec(tmp_path)
    sweep = Sweep("tiny.yaml", grid={"training.seed": [1, 1.0]}, directory=tmp_path)
    with pytest.raises(UsageError, match=r"(?s)seed=1\.0 \(training\.seed=1\.0\) is seed=1 .*"
                       r"remove one value of each pair from the Sweep's grid or zip"):  # fmt: skip
        sweep.submit(tmp_path / "runs", cluster="debug")
    assert not (tmp_path / "runs").exists()


@pytest.mark.training
def test_numpy_values_are_the_runs_of_the_plain_numbers(tmp_path: Path) -> None:
    """A grid built with numpy (``np.logspace``, ``np.int64``, ``np.bool_``) names the runs of
    the plain numbers, and submitting it after the plain sweep trains nothing twice (it raised
    a serialization error, and ``np.float64(1e-3)`` was a run named ``np.float64_0.001_``)."""
    import numpy as np

    write_spec(tmp_path, epochs=1)
    keys = ("training.optimizer_params.lr", "training.batch_size", "training.use_n2v2")

    def sweep(lr: Any, batch: Any, n2v2: Any) -> Sweep:
        return Sweep(
            "tiny.yaml", grid=dict(zip(keys, (lr, batch, n2v2), strict=True)), directory=tmp_path
        )

    plain = sweep([1e-3], [4], [True])
    numpy = sweep(np.logspace(-3, -3, 1), [np.int64(4)], [np.bool_(True)])
    names = [run.name for run in plain.expand()]
    assert names == ["lr=0.001_batch_size=4_use_n2v2=true"]
    assert [run.name for run in numpy.expand()] == names
    assert [run.identity for run in numpy.expand()] == [run.identity for run in plain.expand()]
    assert [type(v) for v in numpy.expand()[0].overrides.values()] == [float, int, bool]
    runs = tmp_path / "runs"
    assert len(numpy.submit(runs, cluster="debug")) == 1  # recorded and trained
    assert plain.submit(runs, cluster="debug") == []  # the same run: it exists
    assert sorted(path.name for path in (runs / "tiny_sweep").iterdir() if path.is_dir()) == [
        *names,
        "submitit",
    ]


def csv_best_val_loss(run_dir: Path) -> float:
    """The lowest validation loss careamics' CSV logger wrote for a run (independent of ours)."""
    values = []
    for metrics in (run_dir / "work" / "csv_logs").rglob("metrics.csv"):
        with metrics.open() as handle:
            values += [
                float(row["val_loss"]) for row in csv.DictReader(handle) if row.get("val_loss")
            ]
    return min(values)


@pytest.mark.training
def test_local_sweep_only_failed_and_summary(tmp_path: Path) -> None:
    spec_dir = tmp_path / "spec"
    write_spec(spec_dir, epochs=2)
    shutil.copy(spec_dir / "tiny.npy", spec_dir / "later.npy")
    sweep = Sweep(
        "tiny.yaml",
        grid={"training.patch_size": [[16, 16], [32, 32]]},
        zip={"training.seed": [1, 2], "data.train": ["tiny.npy", "later.npy"]},
        name="local",
        cluster={"timeout_min": 10},
        directory=spec_dir,
    )
    runs = tmp_path / "runs"
    submitted = sweep.submit(runs, cluster="local")
    (spec_dir / "later.npy").rename(spec_dir / "moved.npy")  # before the nodes read their data
    assert len(submitted) == 4 and {s.scheduler for s in submitted} == {"local"}
    sweep_dir = runs / "local"
    assert sweep.directory == sweep_dir.absolute()

    progress = io.StringIO()
    rows = sweep.wait(
        progress=True, file=progress, interval_s=0.5, scheduler_interval_s=1, timeout_s=300
    )
    states = {row["run"]: row["state"] for row in rows}
    crashed = {"patch_size=16x16_seed=2_train=later.npy", "patch_size=32x32_seed=2_train=later.npy"}
    assert states == {name: "CRASHED" if name in crashed else "DONE" for name in states}
    assert len(states) == 4
    assert "CRASHED 2 DONE 2" in progress.getvalue() and "100%" in progress.getvalue()

    # submitting again makes no duplicates; only_failed picks exactly the crashed runs
    (spec_dir / "moved.npy").rename(spec_dir / "later.npy")
    assert sweep.submit(runs, cluster="local") == []
    assert sorted(p.name for p in sweep_dir.iterdir() if (p / "status.jsonl").exists()) == sorted(
        states
    )
    again = sweep.submit(runs, cluster="local", only_failed=True)
    assert sorted(s.run_dir.name for s in again) == sorted(crashed)
    rows = sweep.wait(progress=False, interval_s=0.5, scheduler_interval_s=1, timeout_s=300)
    assert {row["state"] for row in rows} == {"DONE"}
    for row in rows:
        assert row["attempt"] == (1 if row["run"] in crashed else 0)
        assert row["epoch"] == row["max_epochs"] == 2 and Path(row["model"]).is_file()
        assert row["overrides"]["data.train"] in ("tiny.npy", "later.npy")
    record = read_job_file(sweep_dir / sorted(crashed)[0])
    assert record is not None and [s.how for s in record.submissions] == ["submit", "resume"]

    # the best run by careamics' own logs
    expected = min(states, key=lambda name: csv_best_val_loss(sweep_dir / name))
    assert best(rows)["run"] == expected == best(results(sweep_dir))["run"]
    summary = cli("status", str(sweep_dir), "--summary")
    assert summary.returncode == 0, summary.stderr
    assert f"best: {expected} (best val_loss" in summary.stdout
    assert f"  model: {best(rows)['model']}" in summary.stdout
    exported = cli("status", str(sweep_dir), "--summary", "--json")
    document = json.loads(exported.stdout)
    assert document["best"]["run"] == expected and len(document["runs"]) == 4
    table = list(
        csv.DictReader(io.StringIO(cli("status", str(sweep_dir), "--summary", "--csv").stdout))
    )
    assert [line["rank"] for line in table] == ["1", "2", "3", "4"] and table[0]["run"] == expected
    assert {line["set:training.seed"] for line in table} == {"1", "2"}


def test_waiting_on_a_directory_that_is_not_there_says_so(tmp_path: Path) -> None:
    """A mistyped path waited forever for runs to appear."""
    with pytest.raises(FileNotFoundError, match="no such runs directory"):
        wait(tmp_path / "no_such_sweep", progress=False)
