"""Submitting without a cluster: the run directory, the local process, and the run-control commands.

Every run here is a real tiny careamics training in a real local submitit job, started detached
from the submitting process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from hpc_runner.control.jobfile import read_job_file
from hpc_runner.control.jobs import ActionRefused, cancel_run, log_files, resume_run
from hpc_runner.control.submit import choose_cluster, create_run_dir, submit_specs
from hpc_runner.errors import HpcRunnerError, UsageError
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

pytestmark = pytest.mark.training

FINAL = (TrainingState.DONE, TrainingState.STOPPED, TrainingState.CRASHED)


def test_choose_cluster(no_slurm_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", no_slurm_path)
    assert choose_cluster("auto") == "local"
    fake = Path(no_slurm_path).parent / "with-sbatch"
    fake.mkdir()
    (fake / "sbatch").write_text("#!/bin/sh\n")
    (fake / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{no_slurm_path}")
    assert choose_cluster("auto") == "slurm"
    assert choose_cluster("debug") == "debug"
    with pytest.raises(UsageError, match="unknown cluster"):
        choose_cluster("kubernetes")


def test_run_directories_never_collide(tmp_path: Path) -> None:
    first = create_run_dir(tmp_path / "runs", "n2v")
    second = create_run_dir(tmp_path / "runs", "n2v")
    assert (first.name, second.name) == ("n2v", "n2v-2")


def test_submit_watch_locally_reaches_done(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", ground_truth=True)
    runs = tmp_path / "runs"
    answer = cli("submit", str(spec), "--cluster", "local", "--runs-dir", str(runs), "--watch")
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.splitlines()
    assert lines[0] == f"run directory: {runs.absolute() / 'tiny'}"
    assert lines[1].startswith("job: ") and lines[1].endswith("(local)")
    done = next(i for i, line in enumerate(lines) if line.startswith("DONE  epoch 2/2  batch 7/7"))
    assert any(line.startswith("  attempt 0 starting on host") for line in lines[2:done])
    # what the job reports after the training (PSNR) is shown before --watch returns
    summary = lines.index("", done)  # then the run's summary (issue 14)
    reports = [line.split(":")[0] for line in lines[done + 1 : summary] if "PSNR" in line]
    assert reports == ["  PSNR before denoising", "  PSNR after denoising"]
    assert lines[summary + 1].startswith("DONE: tiny after ")
    assert (
        lines[summary + 2].startswith("  PSNR: ") and "against tiny_clean.npy" in lines[summary + 2]
    )
    run_dir = runs / "tiny"
    assert {p.name for p in run_dir.iterdir()} >= {"run.yaml", "status.jsonl", "job.json", "work"}
    record = read_job_file(run_dir)
    assert record is not None and record.scheduler == "local" and record.python == sys.executable
    entry = wait_for(
        lambda: (e := status_json(runs)["tiny"])["scheduler_state"] == "COMPLETED" and e,
        timeout=60,
        what="the local job to finish",
    )
    assert (entry["state"], entry["phase"], entry["job"]) == ("DONE", "DONE", record.job_id)
    assert entry["model"]["checkpoint"].endswith("tiny_last.ckpt")

    logs = cli("logs", "tiny", "--runs-dir", str(runs))
    assert logs.returncode == 0
    assert f"==> {log_files(run_dir)[0]} <==" in logs.stdout
    assert "Job completed successfully" in logs.stdout


def test_submit_returns_while_the_training_goes_on_then_stop(
    tmp_path: Path, no_slurm_path: str
) -> None:
    """`submit` (auto, no SLURM on PATH) exits at once; its detached job outlives it; `stop`."""
    spec = write_spec(tmp_path / "spec", epochs=400)
    runs = tmp_path / "runs"
    answer = cli("submit", str(spec), "--runs-dir", str(runs), path=no_slurm_path)
    assert answer.returncode == 0, answer.stderr
    assert "(local)" in answer.stdout
    run_dir = runs / "tiny"
    # the submitting process has exited; the training now starts and goes on without it
    wait_state(run_dir, lambda r: r.status.epoch_idx >= 1, timeout=120, what="epoch 2")
    stop = cli("stop", str(run_dir))
    assert stop.returncode == 0 and "stop requested" in stop.stdout
    run = wait_state(run_dir, lambda r: r.status.state in FINAL, timeout=60, what="a final state")
    assert run.status.state is TrainingState.STOPPED
    assert run.status.epoch_idx < 399 and run.model is not None

    wait_for(
        lambda: status_json(runs)["tiny"]["scheduler_state"] == "COMPLETED",
        timeout=60,
        what="the stopped job's process to exit",
    )
    # resume: the next attempt continues from the last checkpoint (and the STOP file is gone)
    plan, resumed_job = resume_run(run_dir)
    assert plan.attempt == 1 and str(plan.checkpoint).endswith(".ckpt")
    stopped_at = run.status.epoch_idx
    resumed = wait_state(
        run_dir, lambda r: r.attempt == 1 and r.status.epoch_idx > stopped_at, timeout=120,
        what="the resumed attempt to train",
    )  # fmt: skip
    steps = len(run.losses)  # the stopped attempt's optimizer steps: the resume starts there
    assert any(
        m.startswith("resumed at epoch") and m.endswith(f", step {steps}")
        for m in debug_messages(resumed)
    ), (steps, debug_messages(resumed))
    record = read_job_file(run_dir)
    assert record is not None and [s.how for s in record.submissions] == ["submit", "resume"]
    assert record.job_id == resumed_job.job_id and resumed_job.scheduler == "local"
    with pytest.raises(ActionRefused, match="stop or cancel it first"):
        resume_run(run_dir)  # its job is running

    ended = cancel_run(run_dir)
    assert ended.startswith("interrupted processes "), ended
    pids = ended.removeprefix("interrupted processes ").split(", ")
    assert len(pids) == len(set(pids)), ended  # the controller was named twice
    run = wait_state(run_dir, lambda r: r.status.state in FINAL, timeout=30, what="cancellation")
    assert run.status.state is TrainingState.STOPPED  # the interrupt was recorded
    entry = status_json(runs)["tiny"]
    assert (entry["phase"], entry["state"], entry["scheduler_state"], entry["attempt"]) == (
        "CANCELLED",
        "STOPPED",
        "CANCELLED",
        1,
    )


def test_cancel_interrupts_a_job_started_with_sigint_ignored(
    tmp_path: Path, no_slurm_path: str
) -> None:
    """A shell script's ``hpc-runner submit job.yaml &`` runs with SIGINT ignored (POSIX, no
    job control), and the job's controller and training inherited that: cancel's interrupt
    did nothing, and 15 s later the job was killed without recording STOPPED."""
    import subprocess

    spec = write_spec(tmp_path / "spec", epochs=400)
    runs = tmp_path / "runs"
    ignoring = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, '-m', 'hpc_runner', *sys.argv[1:]])"
    )
    command = [sys.executable, "-c", ignoring, "submit", str(spec), "--runs-dir", str(runs)]
    env = dict(os.environ, PATH=no_slurm_path)
    answer = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert answer.returncode == 0 and "(local)" in answer.stdout, answer.stderr
    run_dir = runs / "tiny"
    wait_state(run_dir, lambda r: r.status.epoch_idx >= 1, timeout=120, what="epoch 2")
    ended = cancel_run(run_dir)
    assert ended.startswith("interrupted processes "), ended
    run = wait_state(run_dir, lambda r: r.status.state in FINAL, timeout=30, what="cancellation")
    assert run.status.state is TrainingState.STOPPED


def test_a_preempted_local_job_is_requeued_and_resumes(tmp_path: Path) -> None:
    """USR2 to the training process, as the local controller sends near its time limit."""
    from hpc_runner.spec.job import load_job_spec

    spec = load_job_spec(write_spec(tmp_path / "spec", epochs=20))
    (submitted,) = submit_specs([spec], tmp_path / "runs", cluster="local")
    run_dir = submitted.run_dir
    wait_state(run_dir, lambda r: r.status.epoch_idx >= 2, timeout=120, what="epoch 3")
    task = _training_process(int(submitted.job_id))
    os.kill(task, signal.SIGUSR2)
    run = wait_state(run_dir, lambda r: r.status.state in FINAL, timeout=180, what="DONE")
    assert run.status.state is TrainingState.DONE
    assert run.attempt == 1
    assert len(run.losses) == 20 * 7  # not one step lost or repeated
    messages = debug_messages(run)
    assert any("SIGUSR2 received" in m for m in messages)
    saved = next(m for m in messages if m.startswith("saved requeue-attempt0.ckpt"))
    assert "requeueing as attempt 1" in saved
    assert any(
        m.startswith("attempt 1 starting") and "requeue-attempt0.ckpt" in m for m in messages
    )
    lines = [json.loads(line) for line in (run_dir / "status.jsonl").read_text().splitlines()]
    states = [(r["attempt"], r["value"]) for r in lines if r["type"] == "state"]
    assert states == [(0, "TRAINING"), (1, "TRAINING"), (1, "DONE")]  # no CRASHED in between


def _training_process(controller: int) -> int:
    from hpc_runner.control.local_process import training_processes

    def find() -> int | None:
        tasks = training_processes(controller)
        return tasks[0] if tasks else None

    return wait_for(find, timeout=30, what="the training process")


def test_bad_spec_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec")
    spec.write_text(spec.read_text().replace("epochs: 2", "epochz: 2"))
    runs = tmp_path / "runs"
    answer = cli("submit", str(spec), "--cluster", "local", "--runs-dir", str(runs))
    assert answer.returncode == 2
    assert answer.stderr.startswith("hpc-runner submit: ") and "training.epochz" in answer.stderr
    assert "Traceback" not in answer.stderr
    assert not runs.exists()


def test_a_failed_submission_leaves_no_run_directory(
    tmp_path: Path, no_slurm_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpc_runner.spec.job import load_job_spec

    spec = load_job_spec(write_spec(tmp_path / "spec"))
    monkeypatch.setenv("PATH", no_slurm_path)
    with pytest.raises(HpcRunnerError, match="srun is not on PATH"):
        submit_specs([spec], tmp_path / "runs", cluster="slurm")
    assert list((tmp_path / "runs").iterdir()) == []


def test_debug_cluster_trains_inside_submit(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec")
    answer = cli("submit", str(spec), "--cluster", "debug", "--runs-dir", str(tmp_path / "runs"))
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines()[-1] == "state: DONE"
    run = run_state(tmp_path / "runs" / "tiny")
    assert run.status.state is TrainingState.DONE and (run.job or "").startswith("DEBUG_")
    cancel = cli("cancel", str(tmp_path / "runs" / "tiny"))
    assert cancel.returncode == 1 and "is DONE" in cancel.stderr
    assert "nothing to cancel" in cancel.stderr


def _crashed_debug_run(tmp_path: Path) -> tuple[Path, Exception]:
    """A debug run whose training crashed (its data made 3-D after the spec was checked), and
    what run_debug raised."""
    import numpy as np

    from hpc_runner.control.submit import run_debug
    from hpc_runner.spec.job import load_job_spec

    spec = load_job_spec(write_spec(tmp_path / "spec", "crash"))  # valid when checked ...
    np.save(tmp_path / "spec" / "crash.npy", np.zeros((3, 64, 64), np.float32))  # ... then 3-D
    (submitted,) = submit_specs([spec], tmp_path / "runs", cluster="debug")
    with pytest.raises(Exception, match="Axes 'YX'") as raised:
        run_debug(submitted)
    assert run_state(submitted.run_dir).status.state is TrainingState.CRASHED
    return submitted.run_dir, raised.value


def test_resume_of_a_debug_run_that_crashes_again_ends_in_one_line(tmp_path: Path) -> None:
    """`resume --cluster debug` trains in the command; a crash there ended in the training's
    traceback (submit's debug path had its own handling, resume none): now run_debug, which
    submit, sweep and resume share, ends it in one line naming the run and its status file."""
    run_dir, error = _crashed_debug_run(tmp_path)
    answer = cli("resume", str(run_dir), "--cluster", "debug")
    assert answer.returncode == 1, answer.stdout + answer.stderr
    assert "Traceback" not in answer.stderr, answer.stderr
    last = answer.stderr.splitlines()[-1]
    assert last.startswith("hpc-runner resume: crash: the training failed: ValueError: Axes"), last
    assert last.endswith(f"(its traceback is in {run_dir / 'status.jsonl'}; "
                         "`hpc-runner status` shows the run)")  # fmt: skip
    run = run_state(run_dir)
    assert run.status.state is TrainingState.CRASHED and run.attempt == 1
    # the API's run_debug (Sweep.submit) says the same, the training's error as its cause
    assert isinstance(error, HpcRunnerError) and isinstance(error.__cause__, ValueError)
    assert str(error).startswith("crash: the training failed: ValueError: Axes 'YX'")


def test_resume_debug_says_what_it_resumes_before_it_trains(tmp_path: Path) -> None:
    """`resume --cluster debug` trains inside the command: its plan and job were printed only
    after the training had run. Now they come first, as `submit --cluster debug` prints its
    run directory and job before training (stdout and stderr in one pipe, in order)."""
    import subprocess

    run_dir, _ = _crashed_debug_run(tmp_path)
    write_spec(tmp_path / "spec", "crash")  # 2-D data again: this attempt trains to the end
    answer = subprocess.run(
        [sys.executable, "-m", "hpc_runner", "resume", str(run_dir), "--cluster", "debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    lines = answer.stdout.splitlines()
    assert answer.returncode == 0, answer.stdout
    plan = lines.index("attempt 1 from the start: no checkpoint")
    job = next(i for i, line in enumerate(lines) if line.startswith("submitted: job DEBUG_"))
    training = next(i for i, line in enumerate(lines) if line.startswith("GPU available"))
    assert plan < job < training, lines  # said before lightning starts the training
    assert lines[job].endswith(" (debug)")
    assert lines[-1] == "state: DONE"
    assert run_state(run_dir).status.state is TrainingState.DONE


def test_control_commands_name_a_missing_run(tmp_path: Path) -> None:
    for command in ("stop", "cancel", "resume", "logs"):
        answer = cli(command, "nope", "--runs-dir", str(tmp_path))
        assert answer.returncode == 2, command
        assert answer.stderr.startswith(f"hpc-runner {command}: nope: no such run")


def test_a_run_name_is_found_in_either_unicode_spelling(tmp_path: Path) -> None:
    """A run directory `café` (NFC, as safe_run_name writes it) and `cafe` + a combining accent
    typed (NFD: macOS terminals, copy-pastes) were no such run for stop, cancel and resume;
    two directories that differ only so are an error naming both, never one picked."""
    from hpc_runner.control.jobs import resolve_run

    nfc, nfd = "caf\u00e9", "cafe\u0301"
    runs = tmp_path / "runs"
    run_dir = runs / "sweep" / nfc
    run_dir.mkdir(parents=True)
    (run_dir / "status.jsonl").touch()
    assert resolve_run(f"sweep/{nfd}", runs) == run_dir.absolute()
    assert resolve_run(str(runs / "sweep" / nfd)) == run_dir.absolute()  # a path, too
    assert resolve_run(f"sweep/{nfc}", runs) == run_dir.absolute()
    answer = cli("stop", f"sweep/{nfd}", "--runs-dir", str(runs))
    assert answer.returncode == 0 and (run_dir / "STOP").exists(), answer.stderr
    (run_dir / "STOP").unlink()
    for command in ("cancel", "resume"):  # found, and refused: it has no job
        answer = cli(command, f"sweep/{nfd}", "--runs-dir", str(runs))
        assert answer.returncode != 0 and "no such run" not in answer.stderr, answer.stderr
        assert nfc in answer.stderr, answer.stderr

    (runs / "sweep" / nfd).mkdir()
    (runs / "sweep" / nfd / "status.jsonl").touch()
    for typed in (nfd, nfc):
        with pytest.raises(UsageError, match="differ only in their Unicode spelling") as refused:
            resolve_run(f"sweep/{typed}", runs)
        assert str(runs / "sweep" / nfc) in str(refused.value)
        assert str(runs / "sweep" / nfd) in str(refused.value)
    answer = cli("stop", f"sweep/{nfd}", "--runs-dir", str(runs))
    assert answer.returncode == 2 and "differ only in their Unicode spelling" in answer.stderr
    assert not (run_dir / "STOP").exists() and not (runs / "sweep" / nfd / "STOP").exists()


def test_a_job_never_imports_code_from_the_directory_it_was_submitted_from(
    tmp_path: Path,
) -> None:
    """A job runs where ``submit`` (or ``resume .``) ran, and ``python -m`` puts that directory
    first on ``sys.path``: a ``careamics.py`` there (planted in a run directory) ran as the
    user and crashed the training. Jobs start their Python with ``-P``. (The console script is
    used here as a user would: ``python -m hpc_runner`` would itself import from there.)"""
    import subprocess
    import sys

    spec = write_spec(tmp_path / "spec")
    here = tmp_path / "here"
    here.mkdir()
    marker = tmp_path / "imported"
    for module in ("careamics", "submitit", "hpc_runner"):
        (here / f"{module}.py").write_text(
            f"open({str(marker)!r}, 'a').write('{module}\\n')\nraise ImportError('planted')\n"
        )
    command = [str(Path(sys.executable).with_name("hpc-runner")), "submit", str(spec)]
    answer = subprocess.run(
        [*command, "--cluster", "local", "--runs-dir", str(tmp_path / "runs"), "--watch"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert not marker.exists(), marker.read_text()
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert any(line.startswith("DONE  epoch 2/2") for line in answer.stdout.splitlines())


def test_cancelling_a_copy_of_a_training_debug_run_leaves_the_original_training(
    tmp_path: Path,
) -> None:
    """``cp -a`` of a debug run that trains copies its job.json, which names the ``submit``
    process that trains the original: the copy's ``cancel`` stopped the original's training."""
    import subprocess
    import time

    spec = write_spec(tmp_path / "spec", epochs=1000)
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "hpc_runner", "submit", str(spec), "--cluster", "debug"]
    submitter = subprocess.Popen(
        [*command, "--runs-dir", str(runs)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_state(
            runs / "tiny",
            lambda run: run.status.state is TrainingState.TRAINING and run.status.epoch_idx >= 1,
            timeout=120,
            what="training",
        )
        subprocess.run(["cp", "-a", str(runs / "tiny"), str(runs / "copy")], check=True)
        answer = cli("cancel", str(runs / "copy"))
        assert answer.returncode == 1, answer.stdout
        assert "copy is LOST" in answer.stderr
        time.sleep(1.0)
        assert submitter.poll() is None  # the original trains on
        assert cli("cancel", str(runs / "tiny")).returncode == 0
        assert submitter.wait(timeout=60) != 0
    finally:
        submitter.kill()
        submitter.wait()
