"""Real trainings through the real one-node SLURM test cluster (tests/slurm_cluster.py).

Each test submits tiny careamics trainings with the ``test_cpu`` profile (partition ``cpu``, one
CPU, 10 minutes) and follows them through their status files and ``hpc-runner status --json``.
Where a test must act on a running training (cancel, preempt) the training is made long by its
number of epochs, and the test waits for the status file to show progress before acting.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from hpc_runner.control.jobfile import read_job_file
from hpc_runner.control.submit import SubmittedRun, submit_specs
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.status import TrainingState
from tests.run_support import (
    cli,
    debug_messages,
    run_state,
    status_json,
    wait_for,
    wait_state,
    write_spec,
)
from tests.slurm_cluster import SlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.training]

FINAL = (TrainingState.DONE, TrainingState.STOPPED, TrainingState.CRASHED)
START_S = 180  # a job waits for a free CPU (other tests share the cluster), then imports careamics


def _submit(tmp_path: Path, name: str, **spec: object) -> SubmittedRun:
    from hpc_runner.spec.job import load_job_spec

    path = write_spec(tmp_path / "spec", name, profile="test_cpu", **spec)  # type: ignore[arg-type]
    loaded = load_job_spec(path)
    (submitted,) = submit_specs([loaded], tmp_path / "runs", cluster="slurm")
    return submitted


def _final(run_dir: Path, timeout: float = START_S) -> RunState:
    return wait_state(run_dir, lambda r: r.status.state in FINAL, timeout=timeout, what="the end")


def _scheduler_says(runs: Path, run: str, state: str) -> dict[str, object]:
    def probe() -> dict[str, object] | None:
        entry = status_json(runs)[run]
        return entry if entry["scheduler_state"] == state else None

    return wait_for(probe, timeout=60, what=f"{run}: sacct to say {state}", interval=1.0)


def _states(run_dir: Path) -> list[tuple[int, str]]:
    lines = (run_dir / "status.jsonl").read_text().splitlines()
    return [(r["attempt"], r["value"]) for r in map(json.loads, lines) if r["type"] == "state"]


def test_tiny_spec_reaches_done_with_a_checkpoint(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    spec = write_spec(tmp_path / "spec", ground_truth=True)
    runs = tmp_path / "runs"
    answer = cli(
        "submit", str(spec), "--cluster", "slurm", "--profile", "test_cpu", "--runs-dir", str(runs)
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines()[1].endswith("(slurm)")
    run_dir = runs / "tiny"
    record = read_job_file(run_dir)
    assert record is not None and record.scheduler == "slurm"

    run = _final(run_dir)
    assert run.status.state is TrainingState.DONE, run.exception
    assert run.model is not None and Path(run.model.checkpoint or "").is_file()
    assert run.job == record.job_id  # every record names the SLURM job
    entry = _scheduler_says(runs, "tiny", "COMPLETED")
    assert (entry["state"], entry["job"], entry["reason"]) == ("DONE", record.job_id, None)
    final = run_state(run_dir)  # complete now: the job has ended
    messages = debug_messages(final)
    environment = final.environment
    assert environment is not None and environment.executable == sys.executable  # the venv
    assert (environment.cpus, environment.job) == (1, record.job_id)  # the profile's grant
    assert environment.partition == slurm_cluster.cpu_partition
    assert any(m.startswith("PSNR before denoising") for m in messages)  # after DONE
    assert any(m.startswith("PSNR after denoising") for m in messages)
    logs = cli("logs", str(run_dir))
    assert logs.returncode == 0 and "Job completed successfully" in logs.stdout


def test_three_runs_as_one_job_array(tmp_path: Path, slurm_cluster: SlurmCluster) -> None:
    from hpc_runner.spec.job import load_job_spec

    specs = [
        load_job_spec(write_spec(tmp_path / "spec", name, profile="test_cpu"))
        for name in ("a", "b", "c")
    ]
    submitted = submit_specs(specs, tmp_path / "runs" / "sweep", cluster="slurm")
    array = submitted[0].job_id.split("_")[0]  # one sbatch, three tasks
    assert [run.job_id for run in submitted] == [f"{array}_{i}" for i in range(3)]
    for run in submitted:
        state = _final(run.run_dir)
        assert state.status.state is TrainingState.DONE, state.exception
        assert state.job == run.job_id
    runs = tmp_path / "runs"
    for label in ("sweep/a", "sweep/b", "sweep/c"):
        assert _scheduler_says(runs, label, "COMPLETED")["state"] == "DONE"
    assert (tmp_path / "runs" / "sweep" / "submitit").is_dir()  # one submitit folder for the array
    assert cli("logs", str(submitted[2].run_dir)).returncode == 0


def test_a_cancelled_run_is_shown_cancelled(tmp_path: Path, slurm_cluster: SlurmCluster) -> None:
    submitted = _submit(tmp_path, "cancelme", epochs=5000)
    run_dir = submitted.run_dir
    wait_state(run_dir, lambda r: r.status.epoch_idx >= 1, timeout=START_S, what="epoch 2")
    answer = cli("cancel", str(run_dir))
    assert answer.returncode == 0 and answer.stdout.strip() == f"scancel {submitted.job_id}"
    entry = _scheduler_says(tmp_path / "runs", "cancelme", "CANCELLED")
    assert (entry["phase"], entry["state"]) == ("CANCELLED", "TRAINING")
    assert entry["reason"] == "by 0"  # sacct: cancelled by uid 0 (root runs the tests)
    record = read_job_file(run_dir)
    assert record is not None and record.cancelled is not None


def test_a_preempted_run_is_requeued_and_resumes(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """USR2 as on preemption: REQUEUED, then attempt 1 trains - and, sampled every 0.5 s from
    the requeue to the end, the run is never shown CRASHED, LOST or CANCELLED in between."""
    import threading

    from hpc_runner.watch.report import summaries

    submitted = _submit(tmp_path, "preempt", epochs=40)
    run_dir, job_id = submitted.run_dir, submitted.job_id
    wait_state(run_dir, lambda r: r.status.epoch_idx >= 2, timeout=START_S, what="epoch 3")
    seen: list[tuple[str, int]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            (entry,) = summaries(tmp_path / "runs")
            seen.append((entry["phase"], entry["attempt"]))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
    wait_for(lambda: slurm_pending(job_id), timeout=60, what="the job to be requeued")
    wait_for(lambda: ("REQUEUED", 0) in seen, timeout=30, what="REQUEUED to be shown")
    slurm_cluster.release_held(job_id)  # instead of SLURM's ~2 minute hold
    run = _final(run_dir)
    sampling.set()
    sampler.join(timeout=30)
    phases = [phase for phase, _ in seen]
    assert not {"CRASHED", "LOST", "CANCELLED", "STOPPED"} & set(phases), seen
    requeued = phases.index("REQUEUED")
    assert ("TRAINING", 1) in seen[requeued:] or ("DONE", 1) in seen[requeued:], seen
    assert run.status.state is TrainingState.DONE, run.exception
    assert run.attempt == 1
    assert len(run.losses) == 40 * 7  # the epochs continued: not one step lost or repeated
    assert _states(run_dir) == [(0, "TRAINING"), (1, "TRAINING"), (1, "DONE")]
    messages = debug_messages(run)
    assert any(m.startswith("saved requeue-attempt0.ckpt") for m in messages)
    assert any(m.startswith("resumed at epoch") for m in messages)
    assert _scheduler_says(tmp_path / "runs", "preempt", "COMPLETED")["attempt"] == 1


def test_a_crash_in_training_is_crashed_with_its_reason(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    from hpc_runner.spec.job import load_job_spec

    path = write_spec(tmp_path / "spec", "crash", profile="test_cpu")
    spec = load_job_spec(path)  # valid when checked ...
    np.save(tmp_path / "spec" / "crash.npy", np.zeros((3, 64, 64), np.float32))  # ... then 3-D
    (submitted,) = submit_specs([spec], tmp_path / "runs", cluster="slurm")
    run = _final(submitted.run_dir)
    assert run.status.state is TrainingState.CRASHED
    assert run.exception is not None and "axes" in run.exception.message.lower()
    entry = _scheduler_says(tmp_path / "runs", "crash", "FAILED")
    assert entry["state"] == entry["phase"] == "CRASHED"
    assert entry["exception"].startswith(run.exception.exc_type)
    assert entry["reason"].startswith(f"{run.exception.exc_type}: ")


def test_the_time_limit_requeues_with_a_scaled_signal_delay(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """A 1-minute limit: USR2 comes 10 s before it (not the 90 s default, which is at once)."""
    submitted = _submit(tmp_path, "limit", epochs=100_000, timeout_min=1)
    run_dir, job_id = submitted.run_dir, submitted.job_id
    script = (run_dir / "submitit" / f"{job_id}_submission.sh").read_text()
    assert "#SBATCH --signal=USR2@10" in script and "#SBATCH --time=1" in script
    run = wait_state(
        run_dir,
        lambda r: any("requeueing as attempt 1" in m for m in debug_messages(r)),
        timeout=START_S,
        what="the time limit's USR2",
    )
    # SLURM sends the signal `delay` before the limit, or up to its 30 s check period earlier:
    # 20-50 s into a 1-minute job. The 90 s default would signal at the job's start.
    signalled = next(t for t, m in run.debug if m.startswith("SIGUSR2 received"))
    assert signalled - job_start(job_id) >= 19
    wait_for(lambda: slurm_pending(job_id), timeout=60, what="the requeued job to pend")
    slurm_cluster.release_held(job_id)
    wait_state(
        run_dir,
        lambda r: r.state_attempt == 1 and r.status.state is TrainingState.TRAINING,
        timeout=START_S,
        what="attempt 1 to train",
    )
    assert cli("stop", str(run_dir)).returncode == 0
    run = _final(run_dir)
    assert (run.status.state, run.attempt) == (TrainingState.STOPPED, 1)


def slurm_pending(job_id: str) -> bool:
    command = ["squeue", "-h", "-j", job_id, "-o", "%T"]
    answer = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return answer.stdout.strip() == "PENDING"


def job_start(job_id: str) -> float:
    """When SLURM first started the job (sacct's Start, local time), as a unix time."""
    command = ["sacct", "-n", "-X", "-D", "-P", "-o", "Start", "-j", job_id]  # -D: requeues too
    answer = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    starts = [line for line in answer.stdout.split() if line[:1].isdigit()]
    return min(time.mktime(time.strptime(start, "%Y-%m-%dT%H:%M:%S")) for start in starts)


def test_a_refused_submission_is_reported_and_leaves_nothing(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    spec = write_spec(tmp_path / "spec", profile="test_cpu", partition="no-such-partition")
    runs = tmp_path / "runs"
    answer = cli("submit", str(spec), "--cluster", "slurm", "--runs-dir", str(runs))
    assert answer.returncode == 1
    assert "hpc-runner submit: the slurm submission failed: " in answer.stderr
    assert "invalid partition" in answer.stderr.lower() and "Traceback" not in answer.stderr
    assert list(runs.iterdir()) == []
    # a sweep over that spec: the same one line (it ended in a traceback), nothing left
    sweep = tmp_path / "spec" / "sweep.yaml"
    sweep.write_text(
        yaml.safe_dump({"name": "s", "base": spec.name, "grid": {"training.seed": [1]}})
    )
    answer = cli("sweep", str(sweep), "--cluster", "slurm", "--runs-dir", str(runs))
    assert answer.returncode == 1, answer.stderr
    assert "hpc-runner sweep: the slurm submission failed: " in answer.stderr
    assert "invalid partition" in answer.stderr.lower() and "Traceback" not in answer.stderr
    assert [path.name for path in (runs / "s").iterdir() if path.name != "submitit"] == []
    # what the sweep directory held before is put back as it was, an empty sweep.yaml too
    # (it was deleted: "empty" stood for "there was none")
    (runs / "s" / "sweep.yaml").write_bytes(b"")
    answer = cli("sweep", str(sweep), "--cluster", "slurm", "--runs-dir", str(runs))
    assert answer.returncode == 1 and "submission failed" in answer.stderr, answer.stderr
    assert (runs / "s" / "sweep.yaml").read_bytes() == b""


# -- phases on the cluster (issue 9): what every view shows at each moment of a run's life --------


def _phase_of(runs: Path, run: str, phase: str, timeout: float = 60) -> dict[str, object]:
    def probe() -> dict[str, object] | None:
        entry = status_json(runs)[run]
        return entry if entry["phase"] == phase else None

    return wait_for(probe, timeout=timeout, what=f"{run} to be {phase}", interval=1.0)


def test_a_run_held_until_later_is_queued_with_the_reason_and_resumed_only_once(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """``--begin`` in the future: QUEUED (BeginTime) everywhere; what makes no sense is refused;
    two ``resume`` at once after a cancel make exactly one job (issue 10)."""
    submitted = _submit(tmp_path, "later", additional_parameters={"begin": "now+1hour"})
    runs, run_dir = tmp_path / "runs", submitted.run_dir
    entry = _phase_of(runs, "later", "QUEUED")
    assert entry["reason"] == "BeginTime" and entry["scheduler_age_s"] is not None
    row = next(line for line in cli("status", str(runs)).stdout.splitlines() if "later" in line)
    assert row.split()[1] == "QUEUED" and row.rstrip().endswith("BeginTime")
    for action in ("stop", "resume"):
        refused = cli(action, str(run_dir))
        assert refused.returncode == 1 and "later is QUEUED (BeginTime)" in refused.stderr
    assert not (run_dir / "STOP").exists()

    assert cli("cancel", str(run_dir)).stdout.strip() == f"scancel {submitted.job_id}"
    assert _phase_of(runs, "later", "CANCELLED")["reason"] == "by 0"

    # two resumes at once: the run's lock lets one decide and submit, the other sees its job
    command = [sys.executable, "-m", "hpc_runner", "resume", str(run_dir)]
    racers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = sorted((racer.wait(timeout=120), racer.communicate()) for racer in racers)
    (won, (won_out, _)), (lost, (_, lost_err)) = outcomes
    assert (won, lost) == (0, 1), outcomes
    assert "submitted: job " in won_out and "later is QUEUED" in lost_err
    record = read_job_file(run_dir)
    assert record is not None and [s.how for s in record.submissions] == ["submit", "resume"]
    queue = subprocess.run(
        ["squeue", "-h", "-n", "later", "-o", "%i"], capture_output=True, text=True, check=True
    )
    assert queue.stdout.split() == [record.job_id]  # exactly one live job for the run
    assert cli("cancel", str(run_dir)).returncode == 0
    _phase_of(runs, "later", "CANCELLED")


def test_cancel_of_a_copied_run_never_cancels_the_original_job(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """A copied run directory names the original's job in its job.json: ``cancel`` of the copy
    cancelled the original's training (found by an adversarial review). The job's own log
    folder (scontrol's StdOut) must be the run's."""
    submitted = _submit(tmp_path, "original", additional_parameters={"begin": "now+1hour"})
    runs = tmp_path / "runs"
    _phase_of(runs, "original", "QUEUED")
    copy = runs / "copy of original"
    shutil.copytree(submitted.run_dir, copy)
    refused = cli("cancel", str(copy))
    assert refused.returncode == 1, refused.stdout
    assert refused.stderr.strip() == (
        f"hpc-runner cancel: copy of original is LOST (job {submitted.job_id} was submitted for "
        "another directory (this one is a copy)): nothing runs any more; `hpc-runner resume` "
        "continues it"
    )
    # a job.json of an older version records no directory: SLURM's log folder tells
    record = json.loads((copy / "job.json").read_text())
    for submission in record["submissions"]:
        submission.pop("directory")
    (copy / "job.json").write_text(json.dumps(record))
    refused = cli("cancel", str(copy))
    assert refused.returncode == 1, refused.stdout
    folder = submitted.run_dir / "submitit"
    assert refused.stderr.strip() == (
        f"hpc-runner cancel: copy of original: job {submitted.job_id} writes its logs to "
        f"{folder}, not to this run's {(copy / 'submitit').resolve()} (a copied run "
        "directory?): not cancelled. Cancel it from its own run directory, or with scancel"
    )
    queue = subprocess.run(
        ["squeue", "-h", "-j", submitted.job_id, "-o", "%T"], capture_output=True, text=True
    )
    assert queue.stdout.split() == ["PENDING"]  # the original's job is untouched
    assert cli("cancel", str(submitted.run_dir)).stdout.strip() == f"scancel {submitted.job_id}"


def test_array_tasks_behind_the_throttle_are_queued_and_have_no_log(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    import yaml

    write_spec(tmp_path, "base", epochs=5000, profile="test_cpu")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "name": "throttled",
                "base": "base.yaml",
                "grid": {"training.seed": [1, 2, 3]},
                "cluster": {"array_parallelism": 1},
            }
        )
    )
    runs = tmp_path / "runs"
    answer = cli("sweep", str(sweep), "--cluster", "slurm", "--runs-dir", str(runs))
    assert answer.returncode == 0, answer.stderr

    def by_task() -> dict[str, dict[str, object]] | None:
        entries = status_json(runs)
        if any(
            entry["phase"] != "QUEUED"
            for entry in entries.values()
            if str(entry["job"]).endswith(("_1", "_2"))
        ):
            return None
        return {str(entry["job"]).rsplit("_", 1)[1]: entry for entry in entries.values()}

    tasks = wait_for(by_task, timeout=60, what="tasks 1 and 2 queued", interval=1.0)
    for task in ("1", "2"):
        assert tasks[task]["reason"] == "JobArrayTaskLimit", tasks[task]
    first = runs / str(tasks["0"]["run"])
    wait_state(first, lambda r: r.status.epoch_idx >= 0, timeout=START_S, what="task 0 trains")
    third = runs / str(tasks["2"]["run"])
    logs = cli("logs", str(third))
    assert logs.returncode == 1 and "no log yet" in logs.stderr and logs.stdout == ""
    own = cli("logs", str(first))
    assert own.returncode == 0 and f"{tasks['0']['job']}_0_log.out" in own.stdout
    assert f"{tasks['1']['job']}_0_log" not in own.stdout
    for task in ("0", "1", "2"):
        assert cli("cancel", str(runs / str(tasks[task]["run"]))).returncode == 0


def test_cancel_of_a_local_run_resumed_on_slurm_asks_each_job_of_its_own_scheduler(
    tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    """A run submitted locally and resumed on SLURM: job.json had one scheduler for both jobs, so
    ``cancel`` asked sacct about the local job's pid, and a SLURM job of that number (another
    user's) made it refuse to cancel the run's own job. The fake: the local submission's pid is
    set to a live stranger job's id, a collision that cannot be arranged for real."""
    import msgspec

    from hpc_runner.control.jobfile import write_job_file

    spec = write_spec(tmp_path / "spec", epochs=1000, profile="test_cpu")
    runs = tmp_path / "runs"
    submitted = cli("submit", str(spec), "--cluster", "local", "--runs-dir", str(runs))
    assert submitted.returncode == 0, submitted.stderr
    run_dir = runs / "tiny"
    assert cli("cancel", str(run_dir)).returncode == 0
    stranger = subprocess.run(
        ["sbatch", "--parsable", "-o", "/dev/null", "--wrap", "sleep 300"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    try:
        resumed = cli("resume", str(run_dir), "--cluster", "slurm")
        assert resumed.returncode == 0, resumed.stderr
        record = read_job_file(run_dir)
        assert record is not None and len(record.submissions) == 2
        first = msgspec.structs.replace(record.submissions[0], job_id=stranger)
        record.submissions[0] = first
        write_job_file(run_dir, record)
        answer = cli("cancel", str(run_dir))
        assert answer.returncode == 0, answer.stderr
        assert f"scancel {record.job_id}" in answer.stdout
        queued = subprocess.run(
            ["squeue", "-h", "-j", stranger, "-o", "%T"], capture_output=True, text=True
        )
        assert queued.stdout.strip() in ("PENDING", "RUNNING")  # the stranger's job lives on
    finally:
        subprocess.run(["scancel", stranger], check=False)
        current = read_job_file(run_dir)
        if current is not None and current.scheduler == "slurm":
            subprocess.run(["scancel", current.job_id], check=False)
