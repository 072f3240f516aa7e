"""Every phase of a local run, produced for real, as ``status --json`` and text ``status`` show it;
and the actions that do not fit a phase, refused with nothing written.

Real tiny careamics trainings in real detached local jobs (the SLURM phases are in
test_slurm_e2e.py); processes are killed with real signals. The STALLED case trains through the
Python API with a callback that sleeps inside a batch, the process recorded in ``job.json`` as
``submit`` would record it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hpc_runner.control.jobfile import JobRecord, Submission, read_job_file, write_job_file
from hpc_runner.control.submit import SubmittedRun, submit_specs
from hpc_runner.stream.processes import identify, read_processes
from hpc_runner.stream.status import TrainingState
from tests.run_support import cli, status_json, wait_for, wait_state, write_spec

pytestmark = pytest.mark.training

FINAL = (TrainingState.DONE, TrainingState.STOPPED, TrainingState.CRASHED)


def _submit(tmp_path: Path, name: str = "tiny", **spec: Any) -> SubmittedRun:
    from hpc_runner.spec.job import load_job_spec

    loaded = load_job_spec(write_spec(tmp_path / "spec", name, **spec))
    (submitted,) = submit_specs([loaded], tmp_path / "runs", cluster="local")
    return submitted


def _phase(runs: Path, run: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        entry = status_json(runs)[run]
        return entry if entry["phase"] == phase else None

    return wait_for(probe, timeout=timeout, what=f"{run} to be {phase}", interval=0.5)


def _text_row(runs: Path, run: str) -> str:
    answer = cli("status", str(runs))
    assert answer.returncode == 0, answer.stderr
    return next(line for line in answer.stdout.splitlines() if line.startswith(run + " "))


def _tasks(submitted: SubmittedRun) -> list[int]:
    def probe() -> list[int] | None:
        record = read_processes(submitted.run_dir / "submitit", submitted.job_id)
        return [task.pid for task in record.tasks] if record and record.tasks else None

    return wait_for(probe, timeout=60, what="the training process to be recorded")


def _run_processes(submitted: SubmittedRun) -> list[int]:
    """Every living process whose command line names the run's submitit folder."""
    folder = str(submitted.run_dir / "submitit").encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if folder in entry.read_bytes() and identify(int(entry.parent.name)):
                found.append(int(entry.parent.name))
        except OSError:
            continue
    return found


def test_kill_9_of_the_training_is_lost_with_its_signal(tmp_path: Path) -> None:
    submitted = _submit(tmp_path, epochs=5000)
    wait_state(submitted.run_dir, lambda r: r.status.epoch_idx >= 1, timeout=120, what="epoch 2")
    runs = tmp_path / "runs"
    assert _phase(runs, "tiny", "TRAINING")["reason"] is None
    (task,) = _tasks(submitted)
    os.kill(task, signal.SIGKILL)
    entry = _phase(runs, "tiny", "LOST")
    assert entry["reason"] == "killed by signal 9 (SIGKILL)"
    assert entry["state"] == "TRAINING"  # what the file says; the phase is what happened
    assert _text_row(runs, "tiny").split()[1] == "LOST"
    assert "killed by signal 9 (SIGKILL)" in _text_row(runs, "tiny")
    resume = cli("resume", str(submitted.run_dir))  # a lost run may be resumed
    assert resume.returncode == 0, resume.stderr
    assert resume.stdout.splitlines()[0].startswith("attempt 1 from ")
    assert cli("cancel", str(submitted.run_dir)).returncode == 0


def test_a_killed_controller_leaves_a_training_that_status_shows_and_cancel_ends(
    tmp_path: Path,
) -> None:
    """kill -9 of the local controller: the training goes on as an orphan (issue 10)."""
    submitted = _submit(tmp_path, epochs=5000)
    (task,) = _tasks(submitted)
    wait_state(submitted.run_dir, lambda r: r.status.epoch_idx >= 1, timeout=120, what="epoch 2")
    os.kill(int(submitted.job_id), signal.SIGKILL)
    runs = tmp_path / "runs"
    entry = _phase(runs, "tiny", "TRAINING")
    assert f"process {task} still trains" in str(entry["reason"])
    refused = cli("resume", str(submitted.run_dir))
    assert refused.returncode == 1 and "TRAINING" in refused.stderr
    assert len(read_job_file(submitted.run_dir).submissions) == 1  # type: ignore[union-attr]
    assert _run_processes(submitted)  # the orphan and its workers
    cancel = cli("cancel", str(submitted.run_dir))
    assert cancel.returncode == 0, cancel.stderr
    wait_for(lambda: not _run_processes(submitted), timeout=30, what="no process of the run")
    assert _phase(runs, "tiny", "CANCELLED")["phase"] == "CANCELLED"


def test_stop_is_stopped_and_refusals_write_nothing(tmp_path: Path) -> None:
    submitted = _submit(tmp_path, epochs=5000)
    run_dir = submitted.run_dir
    wait_state(run_dir, lambda r: r.status.epoch_idx >= 1, timeout=120, what="epoch 2")
    assert cli("stop", str(run_dir)).returncode == 0
    entry = _phase(tmp_path / "runs", "tiny", "STOPPED")
    assert entry["model"]["checkpoint"].endswith("tiny_last.ckpt")
    wait_for(
        lambda: status_json(tmp_path / "runs")["tiny"]["scheduler_state"] == "COMPLETED",
        timeout=60,
        what="the job to end",
    )
    (run_dir / "STOP").unlink(missing_ok=True)
    job_json = (run_dir / "job.json").read_bytes()
    for action in ("stop", "cancel"):
        answer = cli(action, str(run_dir))
        assert answer.returncode == 1, (action, answer.stderr)
        assert "tiny is STOPPED" in answer.stderr and "Traceback" not in answer.stderr
    assert not (run_dir / "STOP").exists()
    assert (run_dir / "job.json").read_bytes() == job_json


def test_a_done_run_refuses_every_action_and_a_crash_is_crashed(tmp_path: Path) -> None:
    import numpy as np

    done = _submit(tmp_path, "done")
    wait_state(done.run_dir, lambda r: r.status.state in FINAL, timeout=120, what="DONE")
    runs = tmp_path / "runs"
    _phase(runs, "done", "DONE")
    job_json = (done.run_dir / "job.json").read_bytes()
    for action in ("stop", "cancel", "resume"):
        answer = cli(action, str(done.run_dir))
        assert answer.returncode == 1, action
        assert answer.stderr.startswith(f"hpc-runner {action}: done is DONE: the training")
    assert not (done.run_dir / "STOP").exists()
    assert (done.run_dir / "job.json").read_bytes() == job_json

    from hpc_runner.spec.job import load_job_spec

    spec = load_job_spec(write_spec(tmp_path / "spec", "crash"))  # valid when checked ...
    np.save(tmp_path / "spec" / "crash.npy", np.zeros((3, 64, 64), np.float32))  # ... then 3-D
    (crash,) = submit_specs([spec], runs, cluster="local")
    entry = _phase(runs, "crash", "CRASHED", timeout=120)
    assert entry["reason"].startswith("ValueError: ") and "axes" in entry["reason"].lower()
    row = _text_row(runs, "crash")
    assert row.split()[1] == "CRASHED" and "ValueError" in row
    answer = cli("stop", str(crash.run_dir))
    assert answer.returncode == 1 and "crash is CRASHED" in answer.stderr
    wait_for(
        lambda: status_json(runs)["crash"]["scheduler_state"] == "FAILED",
        timeout=60,
        what="the crashed job's process to exit",
    )
    plan = cli("resume", str(crash.run_dir))  # no checkpoint: the message says so
    assert plan.returncode == 0 and "from the start: no checkpoint" in plan.stdout


STALLING_TRAINING = """
import sys, time
from lightning.pytorch import Callback
from hpc_runner import train_with_status
from tests.tiny import tiny_config, tiny_image

class Hang(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 3:
            time.sleep(600)  # a hung data loader or collective, as far as anyone can see

train_with_status(sys.argv[1], config=tiny_config(num_epochs=5), train_data=tiny_image(),
                  callbacks=[Hang()])
"""


def test_a_training_that_hangs_inside_a_batch_is_stalled(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "hang"
    (run_dir / "submitit").mkdir(parents=True)
    process = subprocess.Popen(  # (naming its submitit folder, as a local job's processes do)
        [sys.executable, "-c", STALLING_TRAINING, str(run_dir / "status.jsonl"),
         str(run_dir / "submitit")],
        cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    try:
        submission = Submission(0, str(process.pid), time.time(), "submit", identify(process.pid))
        write_job_file(run_dir, JobRecord(scheduler="local", submissions=[submission]))
        wait_state(
            run_dir,
            lambda r: r.status.epoch_idx == 1 and r.status.batch_idx == 3,
            timeout=120,
            what="the hanging batch",
        )
        env = dict(os.environ, HPC_RUNNER_STALL_FLOOR_S="3")

        def stalled() -> dict[str, Any] | None:
            answer = subprocess.run(
                [sys.executable, "-m", "hpc_runner", "status", str(tmp_path / "runs"), "--json"],
                capture_output=True, text=True, env=env, check=True, timeout=60,
            )  # fmt: skip
            entry = json.loads(answer.stdout)[0]
            return entry if entry["phase"] == "STALLED" else None

        entry = wait_for(stalled, timeout=60, what="STALLED", interval=1.0)
        assert entry["reason"].startswith("no record for ") and entry["state"] == "TRAINING"
    finally:
        process.kill()
        process.wait()


def test_a_debug_run_stops_on_sigterm_and_a_killed_one_is_lost(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    spec = write_spec(tmp_path / "spec", "debug", epochs=5000)
    command = [
        sys.executable, "-m", "hpc_runner", "submit", str(spec), "--cluster", "debug",
        "--runs-dir", str(runs),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = runs / "debug"
    wait_state(run_dir, lambda r: r.status.epoch_idx >= 1, timeout=120, what="epoch 2")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) != 0  # ended by the signal, not after 5000 epochs
    run = wait_state(run_dir, lambda r: r.status.state in FINAL, timeout=10, what="STOPPED")
    assert run.status.state is TrainingState.STOPPED
    assert "SIGTERM" in str(run.exception)
    assert _phase(runs, "debug", "STOPPED")["phase"] == "STOPPED"

    spec = write_spec(tmp_path / "spec", "killed", epochs=5000)
    command[4] = str(spec)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_state(runs / "killed", lambda r: r.status.epoch_idx >= 1, timeout=120, what="epoch 2")
    process.kill()
    process.wait()
    entry = _phase(runs, "killed", "LOST")
    assert entry["reason"] == "its processes ended without reporting how"
