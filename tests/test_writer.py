"""The writer: whole lines, rank 0 only, and faults that never reach the training."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from hpc_runner.stream.run_state import replay
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter, StatusWriteWarning

T = TrainUpdateType


def test_lines_are_whole_and_numbered(tmp_path: Path) -> None:
    path = tmp_path / "run" / "status.jsonl"
    with StatusWriter(path, attempt=2, job="77_1") as writer:
        writer.write(TrainUpdate(T.MAX_EPOCH, 3))
        writer.write(TrainUpdate(T.STATE, TrainingState.TRAINING))
        writer.write(TrainUpdate(T.LOSS, 0.5))
    data = path.read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == 3
    run = replay(path)
    assert (run.status.max_epochs, run.status.state, run.status.loss) == (
        3,
        TrainingState.TRAINING,
        0.5,
    )
    assert (run.attempt, run.job, run.records) == (2, "77_1", 3)


def test_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    StatusWriter(path).write(TrainUpdate(T.LOSS, 1.0))
    resumed = StatusWriter(path, attempt=1)
    resumed.write(TrainUpdate(T.LOSS, 0.5))
    resumed.close()
    run = replay(path)
    assert list(run.losses) == [1.0, 0.5] and run.attempt == 1


def test_only_global_rank_zero_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "status.jsonl"
    StatusWriter(path, rank=1).write(TrainUpdate(T.LOSS, 1.0))
    monkeypatch.setenv("SLURM_PROCID", "3")
    StatusWriter(path).write(TrainUpdate(T.LOSS, 1.0))
    assert not path.exists()
    monkeypatch.setenv("SLURM_PROCID", "0")
    StatusWriter(path).write(TrainUpdate(T.LOSS, 1.0))
    assert path.exists()


def test_full_disk_warns_once_and_goes_on() -> None:
    """/dev/full is a real device whose every write fails with ENOSPC."""
    writer = StatusWriter("/dev/full")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(50):
            writer.write(TrainUpdate(T.LOSS, 1.0))
        writer.write(TrainUpdate(T.STATE, TrainingState.DONE))
        writer.close()
    status_warnings = [w for w in caught if issubclass(w.category, StatusWriteWarning)]
    assert len(status_warnings) == 1
    assert "/dev/full" in str(status_warnings[0].message)


def test_vanished_directory_warns_once_and_goes_on(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    writer = StatusWriter(run_dir / "status.jsonl")
    writer.write(TrainUpdate(T.LOSS, 1.0))
    (run_dir / "status.jsonl").unlink()
    run_dir.rmdir()
    writer.close()  # the next write must reopen, and finds no directory
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(10):
            writer.write(TrainUpdate(T.LOSS, 0.5))
    assert [w.category for w in caught] == [StatusWriteWarning]
    assert not run_dir.exists()  # not silently recreated behind the user's back


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_permission_denied_warns_and_goes_on(tmp_path: Path) -> None:
    """A real denial: the effective user becomes `nobody`, the run directory belongs to root."""
    run_dir = tmp_path / "locked"
    run_dir.mkdir(mode=0o755)
    writer = StatusWriter(run_dir / "status.jsonl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        os.seteuid(65534)
        try:
            for _ in range(20):
                writer.write(TrainUpdate(T.LOSS, 1.0))
        finally:
            os.seteuid(0)
    assert [w.category for w in caught] == [StatusWriteWarning]
    assert "Permission denied" in str(caught[0].message)
    assert not (run_dir / "status.jsonl").exists()
