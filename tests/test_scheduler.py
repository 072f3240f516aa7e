"""Scheduler reconciliation: SLURM output parsing, the combined state, batching, local processes.

The real cluster is exercised in test_slurm_e2e.py; here the commands' output formats (taken from
the test cluster, slurm 22.05) are parsed directly, and the query logic runs against a recorded
command runner, so that every branch (no accounting, pending reasons, rate limiting) is covered.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpc_runner.control.jobfile import JobRecord, Submission, write_job_file
from hpc_runner.control.scheduler import (
    SchedulerPoller,
    SchedulerState,
    expand_job_id,
    local_state,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    query_slurm,
    reconcile,
    scheduler_states,
)
from hpc_runner.stream.status import TrainingState

S = TrainingState


@pytest.mark.parametrize(
    ("file_state", "scheduler", "expected", "reason_part"),
    [
        (S.TRAINING, None, S.TRAINING, None),
        (S.TRAINING, SchedulerState("5", "RUNNING"), S.TRAINING, None),
        (S.IDLE, SchedulerState("5", "PENDING", "Priority"), S.IDLE, None),
        (S.TRAINING, SchedulerState("5", "REQUEUED"), S.TRAINING, None),
        (S.TRAINING, SchedulerState("5", "PREEMPTED"), S.TRAINING, None),  # may come back
        (S.TRAINING, SchedulerState("5", "CANCELLED", "0", "0:15"), S.STOPPED, "cancelled"),
        (S.IDLE, SchedulerState("5", "CANCELLED"), S.STOPPED, "job 5 was cancelled"),
        (
            S.TRAINING,
            SchedulerState("5", "OUT_OF_MEMORY", None, "0:125"),
            S.CRASHED,
            "OUT_OF_MEMORY",
        ),
        (S.TRAINING, SchedulerState("5", "TIMEOUT"), S.CRASHED, "TIMEOUT"),
        (S.TRAINING, SchedulerState("5", "NODE_FAIL"), S.CRASHED, "NODE_FAIL"),
        (S.TRAINING, SchedulerState("5", "FAILED", None, "1:0"), S.CRASHED, "exit code 1:0"),
        (S.TRAINING, SchedulerState("5", "COMPLETED"), S.CRASHED, "without"),
        (S.DONE, SchedulerState("5", "FAILED"), S.DONE, None),  # the node knew better
        (S.CRASHED, SchedulerState("5", "CANCELLED"), S.CRASHED, None),
        (S.STOPPED, SchedulerState("5", "COMPLETED"), S.STOPPED, None),
    ],
)
def test_reconcile(
    file_state: TrainingState,
    scheduler: SchedulerState | None,
    expected: TrainingState,
    reason_part: str | None,
) -> None:
    state, reason = reconcile(file_state, scheduler)
    assert state is expected
    if reason_part is None:
        assert reason is None
    else:
        assert reason is not None and reason_part in reason


def test_expand_job_id() -> None:
    assert expand_job_id("12") == ["12"]
    assert expand_job_id("12_3") == ["12_3"]
    assert expand_job_id("12_[0-2,5%2]") == ["12_0", "12_1", "12_2", "12_5"]


SACCT = """\
74|COMPLETED|None|0:0
75|CANCELLED by 0|None|0:15
76_[1-2%2]|PENDING|None|0:0
76_0|RUNNING|None|0:0
76_0.batch|RUNNING||0:0
77|OUT_OF_MEMORY|None|0:125
"""


def test_parse_sacct() -> None:
    states = parse_sacct(SACCT)
    assert states["74"] == SchedulerState("74", "COMPLETED", None, "0:0")
    assert states["75"] == SchedulerState("75", "CANCELLED", "by 0", "0:15")
    assert states["76_0"].state == "RUNNING"
    assert states["76_1"].state == states["76_2"].state == "PENDING"
    assert states["77"].ended and states["77"].state == "OUT_OF_MEMORY"
    assert not any("." in job_id for job_id in states)


def test_parse_squeue_and_scontrol() -> None:
    queued = parse_squeue("76_[1-2%2]|PENDING|Priority\n80|RUNNING|None\n")
    assert queued["76_2"].describe() == "PENDING (Priority)"
    assert queued["80"].describe() == "RUNNING"
    line = (
        "JobId=91 ArrayJobId=90 ArrayTaskId=1 JobName=x UserId=root(0) "
        "JobState=TIMEOUT Reason=TimeLimit Dependency=(null) ExitCode=0:15\n"
        "JobId=92 JobName=y JobState=COMPLETED Reason=None ExitCode=0:0\n"
    )
    known = parse_scontrol(line)
    assert known["90_1"] == SchedulerState("90_1", "TIMEOUT", "TimeLimit", "0:15")
    assert known["92"] == SchedulerState("92", "COMPLETED", None, "0:0")


class Recorder:
    """A command runner answering from a table, remembering every command."""

    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        code, out = self.answers.get(command[0], (1, ""))
        return subprocess.CompletedProcess(command, code, out, "")


@pytest.fixture
def slurm_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holding (never run) sacct, squeue, scontrol, so that the query logic is taken."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sacct", "squeue", "scontrol"):
        tool = bin_dir / name
        tool.write_text("#!/bin/sh\nexit 99\n")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_one_sacct_call_for_all_jobs_and_squeue_only_for_pending(slurm_path: Path) -> None:
    runner = Recorder({"sacct": (0, SACCT), "squeue": (0, "76_[1-2%2]|PENDING|Priority\n")})
    states = query_slurm(["74", "75", "76_0", "76_1", "77", "999"], run=runner)
    assert [command[0] for command in runner.commands] == ["sacct", "squeue"]
    assert runner.commands[0][-2:] == ["-j", "74,75,76,77,999"]
    assert runner.commands[1][-2:] == ["-j", "76"]  # only the pending job's reason is asked
    assert states["76_1"].describe() == "PENDING (Priority)"
    assert states["75"].state == "CANCELLED"
    assert "999" not in states  # unknown to the scheduler: no answer rather than a guess


def test_no_squeue_when_nothing_pends(slurm_path: Path) -> None:
    runner = Recorder({"sacct": (0, "74|COMPLETED|None|0:0\n")})
    assert query_slurm(["74"], run=runner)["74"].state == "COMPLETED"
    assert len(runner.commands) == 1


def test_without_accounting_falls_back_to_squeue_then_scontrol(slurm_path: Path) -> None:
    runner = Recorder(
        {
            "sacct": (1, ""),  # "Slurm accounting storage is disabled"
            "squeue": (0, "80|RUNNING|None\n"),
            "scontrol": (0, "JobId=81 JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0\n"),
        }
    )
    states = query_slurm(["80", "81"], run=runner)
    assert [command[0] for command in runner.commands] == ["sacct", "squeue", "scontrol"]
    assert "--me" in runner.commands[1]
    assert states["80"].state == "RUNNING"
    assert states["81"] == SchedulerState("81", "FAILED", "NonZeroExitCode", "1:0")


def test_a_hanging_scheduler_gives_no_answer(slurm_path: Path) -> None:
    def hanging(command: list[str]) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(command, 20)

    assert query_slurm(["80"], run=hanging) == {}


def _slurm_record(job_id: str) -> JobRecord:
    return JobRecord(scheduler="slurm", submissions=[Submission(0, job_id, time.time())])


def test_poller_rate_limits_and_never_asks_about_an_ended_job_again(slurm_path: Path) -> None:
    runner = Recorder({"sacct": (0, "74|COMPLETED|None|0:0\n75|RUNNING|None|0:0\n")})
    jobs = {Path("a"): _slurm_record("74"), Path("b"): _slurm_record("75")}
    poller = SchedulerPoller(min_interval_s=3600, run=runner)
    first = poller.states(jobs)
    assert first[Path("a")].state == "COMPLETED"  # type: ignore[union-attr]
    assert poller.states(jobs) == first and len(runner.commands) == 1  # within the interval
    poller.states(jobs, force=True)
    assert len(runner.commands) == 2
    assert runner.commands[1][-2:] == ["-j", "75"]  # 74 has ended: its state is final


def test_a_cancel_slurm_forgot_is_cancelled(slurm_path: Path) -> None:
    """A pending array task cancelled before the array split leaves no trace in sacct/squeue."""
    runner = Recorder({"sacct": (0, ""), "squeue": (0, "")})
    cancelled, forgotten = _slurm_record("90_3"), _slurm_record("90_2")
    cancelled.cancelled = time.time()
    states = scheduler_states({Path("a"): cancelled, Path("b"): forgotten}, run=runner)
    assert states[Path("a")] is not None and states[Path("a")].state == "CANCELLED"
    assert states[Path("b")] is None  # never cancelled by us: no guess
    shown, why = reconcile(TrainingState.IDLE, states[Path("a")])
    assert shown is TrainingState.STOPPED and why is not None and "before it started" in why


def test_no_command_without_slurm_jobs(slurm_path: Path, tmp_path: Path) -> None:
    runner = Recorder({})
    local = JobRecord(scheduler="local", submissions=[Submission(0, "1", 0.0)], host="elsewhere")
    states = scheduler_states({tmp_path: None, tmp_path / "x": local}, run=runner)
    assert runner.commands == []
    assert states[tmp_path] is None
    assert states[tmp_path / "x"] == SchedulerState("1", "UNKNOWN", "local process on elsewhere")


# -- local processes ---------------------------------------------------------------------------


def _local_run(tmp_path: Path, pid: int, **fields: object) -> tuple[Path, JobRecord]:
    record = JobRecord(
        scheduler="local",
        submissions=[Submission(0, str(pid), time.time())],
        host=socket.gethostname(),
        **fields,  # type: ignore[arg-type]
    )
    (tmp_path / "submitit").mkdir(exist_ok=True)
    write_job_file(tmp_path, record)
    return tmp_path, record


def test_local_state_follows_the_controller_process(tmp_path: Path) -> None:
    # a stand-in controller: its command line names submitit, as the real one does
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "submitit.local._local"]
    )
    try:
        run_dir, record = _local_run(tmp_path, process.pid)
        assert local_state(run_dir, record) == SchedulerState(str(process.pid), "RUNNING")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    ended = local_state(run_dir, record)
    assert ended is not None and ended.state == "FAILED" and "without a result" in str(ended.reason)

    record.cancelled = time.time()
    assert local_state(run_dir, record).state == "CANCELLED"  # type: ignore[union-attr]

    result = run_dir / "submitit" / f"{process.pid}_0_result.pkl"
    result.write_bytes(pickle.dumps(("error", "Traceback (...)\nValueError: axes YX, data SYX")))
    failed = local_state(run_dir, record)
    assert failed == SchedulerState(str(process.pid), "FAILED", "ValueError: axes YX, data SYX")
    result.write_bytes(pickle.dumps(("success", {"state": "DONE"})))
    assert local_state(run_dir, record).state == "COMPLETED"  # type: ignore[union-attr]


def test_a_reused_pid_is_not_taken_for_the_controller(tmp_path: Path) -> None:
    run_dir, record = _local_run(tmp_path, os.getpid())  # alive, but not a submitit controller
    assert local_state(run_dir, record).state == "FAILED"  # type: ignore[union-attr]


# -- the status command: one query, none without SLURM jobs, nothing heavy --------------------


def _fake_sacct(bin_dir: Path, log: Path, answer: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "sacct"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nprintf '{answer}'\n")
    script.chmod(0o755)


def _status(root: Path, path: str) -> tuple[list[dict[str, object]], list[str]]:
    code = (
        "import sys, json\nfrom hpc_runner.cli import main\n"
        f"rc = main(['status', {str(root)!r}, '--json'])\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'lightning', 'careamics', 'submitit'))))\n"
    )
    env = {**os.environ, "PATH": path}
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    *table, modules = answer.stdout.strip().splitlines()
    return json.loads("\n".join(table)), json.loads(modules)


def test_status_asks_sacct_once_and_only_for_slurm_runs(tmp_path: Path) -> None:
    root, log, bin_dir = tmp_path / "runs", tmp_path / "sacct.log", tmp_path / "bin"
    _fake_sacct(bin_dir, log, "41|RUNNING|None|0:0\\n42|OUT_OF_MEMORY|None|0:125\\n")
    for name in ("plain", "local"):
        (root / name).mkdir(parents=True)
        (root / name / "status.jsonl").write_text("")
    write_job_file(
        root / "local",
        JobRecord(scheduler="local", submissions=[Submission(0, "1", 0.0)], host="elsewhere"),
    )
    summaries, modules = _status(root, str(bin_dir))
    assert not log.exists()  # no job.json with a SLURM job: sacct is never run
    assert modules == []
    assert [s["scheduler_state"] for s in summaries] == ["UNKNOWN", None]

    for name, job_id in (("a", "41"), ("b", "42")):
        (root / name).mkdir()
        (root / name / "status.jsonl").write_text(
            '{"v":1,"type":"state","value":"TRAINING","t":1.0,"seq":1,"attempt":0}\n'
        )
        write_job_file(root / name, _slurm_record(job_id))
    summaries, modules = _status(root, str(bin_dir))
    assert len(log.read_text().splitlines()) == 1  # one batched call for both jobs
    assert "-j 41,42" in log.read_text()
    assert modules == []
    by_run = {s["run"]: s for s in summaries}
    assert (by_run["a"]["state"], by_run["a"]["scheduler_state"], by_run["a"]["job"]) == (
        "TRAINING",
        "RUNNING",
        "41",
    )
    assert by_run["b"]["state"] == "CRASHED" and "OUT_OF_MEMORY" in str(by_run["b"]["reason"])

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    summaries, _ = _status(root, str(empty))  # no SLURM commands at all: still works
    assert {s["run"]: s["scheduler_state"] for s in summaries}["a"] is None
