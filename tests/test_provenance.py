"""run.yaml records what made the run: the hpc_runner version, and the job spec file (for a
sweep run: the sweep file and its base spec) with the SHA-256 each had when it was submitted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

import hpc_runner
from hpc_runner.api import Sweep
from hpc_runner.control.submit import prepare_run
from hpc_runner.spec.job import load_job_spec, load_run_spec
from hpc_runner.spec.sweep_check import check_sweep
from hpc_runner.spec.sweep_file import load_sweep
from tests.run_support import write_spec


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_yaml_names_the_spec_and_its_hash(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path / "spec")
    submitted_hash = sha256(spec_path)
    spec = load_job_spec(spec_path)
    run_dir = prepare_run(spec, tmp_path / "runs")
    spec_path.write_text(spec_path.read_text() + "# edited after the submission\n")

    document = yaml.safe_load((run_dir / "run.yaml").read_text())
    assert document["provenance"] == {
        "hpc_runner": hpc_runner.__version__,
        "spec": {"path": str(spec_path), "sha256": submitted_hash},
    }
    assert sha256(spec_path) != submitted_hash  # what was submitted, not what is there now
    assert load_run_spec(run_dir) == spec  # read back whole on the node


def test_sweep_runs_name_the_sweep_and_the_base(tmp_path: Path) -> None:
    base = write_spec(tmp_path / "specs")
    sweep_path = tmp_path / "sweep.yaml"
    sweep_path.write_text(
        "name: s\nbase: specs/tiny.yaml\ngrid:\n  training.seed: [1, 2]\n", encoding="utf-8"
    )
    checked = check_sweep(load_sweep(sweep_path))
    assert len(checked) == 2
    for _, spec in checked:
        run_dir = prepare_run(spec, tmp_path / "runs" / "s")
        record = yaml.safe_load((run_dir / "run.yaml").read_text())["provenance"]
        assert record == {
            "hpc_runner": hpc_runner.__version__,
            "spec": {"path": str(base), "sha256": sha256(base)},
            "sweep": {"path": str(sweep_path), "sha256": sha256(sweep_path)},
        }
        assert load_run_spec(run_dir).sweep == spec.sweep


def test_a_sweep_built_in_python_has_no_sweep_file(tmp_path: Path) -> None:
    base = write_spec(tmp_path / "specs")
    sweep = Sweep(base=base, grid={"training.seed": [1]}, directory=tmp_path)
    ((_, spec),) = sweep.validate()
    assert spec.sweep is None and spec.source == str(base) and spec.source_sha256 == sha256(base)
