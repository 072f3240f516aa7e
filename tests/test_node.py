"""The node entry: what it pickles, how it counts attempts, workers, and a real run in-process."""

from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path

import pytest
from submitit.helpers import DelayedSubmission

from hpc_runner.node.job import (
    NodeJob,
    dataloader_workers,
    limit_workers,
    rerun_attempt,
)
from hpc_runner.node.signals import preempt_signal
from hpc_runner.stream.runs import STATUS_FILE, latest_checkpoint
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter
from tests.run_support import debug_messages, run_state, write_spec


def test_the_pickle_holds_plain_data_only(tmp_path: Path) -> None:
    job = NodeJob(str(tmp_path), attempt=2, checkpoint="/c.ckpt")
    job.requeue_checkpoint = "/node/only.ckpt"  # set on the node; never travels
    data = pickle.dumps(job)
    assert len(data) < 300
    copy = pickle.loads(data)
    assert (copy.run_dir, copy.attempt, copy.checkpoint_path) == (str(tmp_path), 2, "/c.ckpt")
    assert copy.requeue_checkpoint is None


def test_checkpoint_hands_over_the_next_attempt(tmp_path: Path) -> None:
    job = NodeJob(str(tmp_path), attempt=1, checkpoint="/start.ckpt")
    following = job.checkpoint()
    assert isinstance(following, DelayedSubmission)
    nxt = following.function
    assert isinstance(nxt, NodeJob) and (nxt.attempt, nxt.checkpoint_path) == (2, "/start.ckpt")
    job.requeue_checkpoint = "/saved-at-signal.ckpt"  # what the requeue callback saved
    assert job.checkpoint().function.checkpoint_path == "/saved-at-signal.ckpt"

    fresh = NodeJob(str(tmp_path))  # signalled before any checkpoint it knew of: newest on disk
    assert fresh.checkpoint().function.checkpoint_path is None
    older, newer = tmp_path / "work/a/old.ckpt", tmp_path / "work/b/new.ckpt"
    for path in (older, newer):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    os.utime(older, ns=(1, 1))
    assert latest_checkpoint(tmp_path) == newer
    assert fresh.checkpoint().function.checkpoint_path == str(newer)


def test_workers_stay_within_the_slurm_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert dataloader_workers(4) == 4  # not on SLURM: as configured
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert dataloader_workers(4) == 2  # one CPU for the training process
    assert dataloader_workers(1) == 1  # a smaller explicit value is kept
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    config = {
        "data_config": {
            "num_workers": 4,
            "train_dataloader_params": {
                "shuffle": True,
                "num_workers": 4,
                "persistent_workers": True,
            },
            "val_dataloader_params": {"num_workers": 4},
        },
        "algorithm_config": {},
    }
    limited = limit_workers(config)
    data = limited["data_config"]
    assert data["num_workers"] == 0
    assert data["train_dataloader_params"] == {"shuffle": True, "num_workers": 0}
    assert data["val_dataloader_params"] == {"num_workers": 0}
    assert config["data_config"]["num_workers"] == 4  # the input is not modified


def _records(run_dir: Path, attempt: int) -> None:
    with StatusWriter(run_dir / STATUS_FILE, attempt=attempt) as writer:
        writer.write(TrainUpdate(TrainUpdateType.STATE, TrainingState.TRAINING))


def test_a_job_restarted_by_the_scheduler_continues_as_the_next_attempt(tmp_path: Path) -> None:
    status = tmp_path / STATUS_FILE
    job = NodeJob(str(tmp_path), attempt=0)
    assert rerun_attempt(job, status) == (0, None, None)  # no file yet
    status.touch()
    assert rerun_attempt(job, status) == (0, None, None)  # fresh submission: empty file
    _records(tmp_path, 0)
    checkpoint = tmp_path / "work/checkpoints/x_last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"")
    attempt, resume_from, note = rerun_attempt(job, status)  # same pickle, ran before
    assert (attempt, resume_from) == (1, str(checkpoint))
    assert note is not None and "restarted by the scheduler" in note
    handed_over = NodeJob(str(tmp_path), attempt=1, checkpoint="/given.ckpt")
    assert rerun_attempt(handed_over, status) == (1, "/given.ckpt", None)


def test_preempt_signal_follows_submitit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert preempt_signal() is signal.SIGUSR2
    monkeypatch.setenv("SUBMITIT_PREEMPT_SIGNAL", "USR1")
    assert preempt_signal() is signal.SIGUSR1


@pytest.mark.training
def test_run_in_process_trains_records_model_and_psnr(tmp_path: Path) -> None:
    """The node entry outside submitit (the Python API): a real tiny training to DONE."""
    from hpc_runner.control.submit import prepare_run
    from hpc_runner.spec.job import load_job_spec

    spec = load_job_spec(write_spec(tmp_path / "spec", ground_truth=True))
    run_dir = prepare_run(spec, tmp_path / "runs")
    handlers = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR2))
    result = NodeJob(str(run_dir))()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR2)) == handlers

    run = run_state(run_dir)
    assert run.status.state is TrainingState.DONE and result["state"] == "DONE"
    assert run.model is not None and result["checkpoint"] == run.model.checkpoint
    assert Path(run.model.checkpoint).is_relative_to(run_dir / "work")  # type: ignore[arg-type]
    messages = debug_messages(run)
    assert messages[0].startswith("attempt 0 starting on host")
    before = next(m for m in messages if m.startswith("PSNR before"))
    after = next(m for m in messages if m.startswith("PSNR after"))
    assert "dB" in before and "tiny_clean.npy" in after
    assert run.job is None  # not under a scheduler


@pytest.mark.training
def test_a_broken_run_yaml_is_recorded_as_crashed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.yaml").write_text("version: 1\nname: [unclosed\n")
    from hpc_runner.spec.job import SpecError

    with pytest.raises(SpecError):
        NodeJob(str(run_dir))()
    run = run_state(run_dir)
    assert run.status.state is TrainingState.CRASHED
    assert run.exception is not None and "run.yaml" in run.exception.message


def _loaded_after(statement: str) -> set[str]:
    import json
    import subprocess
    import sys

    code = f"{statement}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in json.loads(answer.stdout)}


def test_import_hygiene_of_the_execution_modules() -> None:
    node_side = _loaded_after(
        "import hpc_runner.node.job, hpc_runner.node.signals, hpc_runner.control.submit"
    )
    assert {"textual", "watchdog"}.isdisjoint(node_side)
    assert "lightning" in node_side  # the probe sees what a module pulls in
    monitoring = _loaded_after(
        "import hpc_runner.control.scheduler, hpc_runner.control.jobs, hpc_runner.control.jobfile"
    )
    assert {"torch", "lightning", "careamics", "submitit", "textual"}.isdisjoint(monitoring)
