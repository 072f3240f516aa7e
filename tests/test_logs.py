"""``logs``: a run's own job files, per attempt - also after a sweep run was resumed into its
own submitit folder (the array's attempts live in the sweep's shared folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpc_runner.control.jobfile import JobRecord, write_job_file
from hpc_runner.control.jobs import attempts, log_files
from hpc_runner.errors import UsageError


def test_each_attempt_finds_its_logs_in_its_own_folder(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    run_dir = sweep / "seed=1"
    (sweep / "submitit").mkdir(parents=True)
    (run_dir / "submitit").mkdir(parents=True)
    (sweep / "submitit" / "40_1_0_log.err").write_text("ValueError in attempt 0\n")
    (sweep / "submitit" / "40_0_0_log.err").write_text("another task's text\n")
    (run_dir / "submitit" / "52_0_log.out").write_text("attempt 1 trains\n")
    record = JobRecord(scheduler="slurm", submissions=[], submitit_folder="../submitit")
    record.add_submission(0, "40_1", "submit")
    record.submitit_folder = "submitit"  # resume: the run's own folder
    record.add_submission(1, "52", "resume")
    write_job_file(run_dir, record)

    assert [path.read_text() for path in log_files(run_dir)] == ["attempt 1 trains\n"]
    (first,) = log_files(run_dir, attempt=0)
    assert first.read_text() == "ValueError in attempt 0\n"
    assert attempts(run_dir) == [(0, "40_1"), (1, "52")]
    with pytest.raises(UsageError, match="no attempt -1"):
        log_files(run_dir, attempt=-1)
