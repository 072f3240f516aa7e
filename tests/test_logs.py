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


def test_an_attempt_that_never_was_has_no_logs(tmp_path: Path) -> None:
    """``--attempt 9`` of a run whose newest attempt is 2 showed attempt 1's logs as if they
    were attempt 9's. A requeue runs the next attempt in its job's files, so an attempt
    beyond the last submission exists only if the status file has seen it."""
    from hpc_runner.stream.records import ENCODER, make_record
    from hpc_runner.stream.status import TrainUpdateType

    (tmp_path / "submitit").mkdir()
    (tmp_path / "submitit" / "52_0_log.out").write_text("attempts 1 and 2\n")
    record = JobRecord(scheduler="slurm", submissions=[], submitit_folder="submitit")
    record.add_submission(0, "40", "submit")
    record.add_submission(1, "52", "resume")
    write_job_file(tmp_path, record)
    with pytest.raises(UsageError, match=r"no attempt 2 \(the newest is 1\)"):
        log_files(tmp_path, attempt=2)
    requeued = make_record(TrainUpdateType.EPOCH, 3, t=1.0, seq=1, attempt=2, job="52")
    (tmp_path / "status.jsonl").write_bytes(ENCODER.encode(requeued) + b"\n")
    (logs,) = log_files(tmp_path, attempt=2)
    assert logs.read_text() == "attempts 1 and 2\n"
    with pytest.raises(UsageError, match=r"no attempt 9 \(the newest is 2\)"):
        log_files(tmp_path, attempt=9)


def test_a_status_file_claiming_a_huge_attempt_lists_a_bounded_few(tmp_path: Path) -> None:
    """The logs screen lists every attempt: a record with ``attempt`` 10**12 made it build a
    list of that many (memory grew by gigabytes, the screen never showed). Requeues of one job
    share its logs, so the newest ones and every submission are enough."""
    from hpc_runner.control.jobs import MAX_ATTEMPTS_LISTED
    from hpc_runner.stream.run_state import RunState

    record = JobRecord(scheduler="slurm", submissions=[])
    record.add_submission(0, "40", "submit")
    record.add_submission(3, "52", "resume")
    write_job_file(tmp_path, record)
    run = RunState()
    run.attempt = 5
    assert attempts(tmp_path, run) == [(0, "40"), (1, "40"), (2, "40"), (3, "52"), (4, "52"),
                                       (5, "52")]  # fmt: skip
    run.attempt = 10**12
    listed = attempts(tmp_path, run)
    assert len(listed) == MAX_ATTEMPTS_LISTED + 2
    assert listed[:3] == [(0, "40"), (3, "52"), (10**12 - MAX_ATTEMPTS_LISTED + 1, "52")]
    assert listed[-1] == (10**12, "52")


def test_the_last_lines_are_counted_as_the_terminal_shows_them(tmp_path: Path) -> None:
    """``logs -n`` split the raw bytes, where each ``\\r`` of a progress bar ends a "line": it
    showed frames a terminal never kept (and ``logs -f -n`` did not), plus a blank line for an
    empty log."""
    from tests.run_support import cli

    (tmp_path / "submitit").mkdir()
    log = tmp_path / "submitit" / "52_0_log.out"
    log.write_text("line A\nline B\n\rEpoch 0:   0%|\rEpoch 0:  90%|\rEpoch 0: 100%|\nline C\n")
    (tmp_path / "submitit" / "52_0_log.err").write_text("")
    record = JobRecord(scheduler="slurm", submissions=[])
    record.add_submission(0, "52", "submit")
    write_job_file(tmp_path, record)
    answer = cli("logs", str(tmp_path), "-n", "3")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines() == [
        f"==> {log} <==",
        "line B",
        "Epoch 0: 100%|",
        "line C",
        f"==> {log.with_suffix('.err')} <==",
    ]
