"""Asking the scheduler: SLURM output parsing, batching, politeness, fresh jobs, local processes.

The real cluster is exercised in test_slurm_e2e.py and test_lifecycle.py; here the commands'
output formats (taken from the test cluster, slurm 22.05) are parsed directly, and the query logic
runs against a recorded command runner (a declared fake of sacct/squeue output), so that every
branch (no accounting, pending reasons, sacct's lag, rate limiting) is covered. Local processes
are real processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hpc_runner.control.jobfile import JobRecord, Submission, write_job_file
from hpc_runner.control.scheduler import (
    SUBMIT_GRACE_S,
    SchedulerPoller,
    SchedulerState,
    live_jobs,
    local_state,
    not_exited,
    scheduler_states,
    submission_states,
)
from hpc_runner.control.slurm_query import (
    expand_job_id,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    query_slurm,
)
from hpc_runner.stream.processes import JobProcesses, identify, write_processes


def test_expand_job_id() -> None:
    assert expand_job_id("12") == ["12"]
    assert expand_job_id("12_3") == ["12_3"]
    assert expand_job_id("12_[0-2,5%2]") == ["12_0", "12_1", "12_2", "12_5"]


SACCT = """\
74|COMPLETED|None|0:0|2026-12-01T02:27:41
75|CANCELLED by 0|None|0:15|2026-12-01T02:27:41
76_[1-2%2]|PENDING|None|0:0|Unknown
76_0|RUNNING|None|0:0|2026-12-01T02:30:00
76_0.batch|RUNNING||0:0|2026-12-01T02:30:00
77|OUT_OF_MEMORY|None|0:125|2026-12-01T02:27:41
"""


def test_parse_sacct() -> None:
    states = parse_sacct(SACCT)
    assert states["74"] == SchedulerState("74", "COMPLETED", None, "0:0")
    started = time.mktime(time.strptime("2026-12-01T02:30:00", "%Y-%m-%dT%H:%M:%S"))
    assert states["76_0"].started == started and states["76_1"].started is None
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


#: What squeue -j prints (exit 1) for one id it does not know (the test cluster, slurm 22.05).
NO_SUCH_JOB = "slurm_load_jobs error: Invalid job id specified\n"


class Recorder:
    """A command runner answering from a table, remembering every command."""

    def __init__(self, answers: dict[str, tuple[int, str] | tuple[int, str, str]]) -> None:
        self.answers = answers  # command: (exit code, stdout[, stderr])
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        code, out, *err = self.answers.get(command[0], (1, ""))
        return subprocess.CompletedProcess(command, code, out, "".join(err))


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


def test_one_sacct_call_for_all_jobs_and_squeue_only_for_pending_or_unlisted(
    slurm_path: Path,
) -> None:
    runner = Recorder({"sacct": (0, SACCT), "squeue": (0, "76_[1-2%2]|PENDING|Priority\n")})
    states = query_slurm(["74", "75", "76_0", "76_1", "77", "999"], run=runner)
    assert states is not None
    assert [command[0] for command in runner.commands] == ["sacct", "squeue"]
    assert runner.commands[0][-2:] == ["-j", "74,75,76,77,999"]
    # the pending job's reason, and the job sacct does not list (yet) - squeue knows fresh jobs
    assert runner.commands[1][-2:] == ["-j", "76,999"]
    assert states["76_1"].describe() == "PENDING (Priority)"
    assert states["75"].state == "CANCELLED"
    assert "999" not in states  # listed nowhere: no answer rather than a guess


def test_a_fresh_job_sacct_does_not_list_yet_comes_from_squeue(slurm_path: Path) -> None:
    runner = Recorder({"sacct": (0, ""), "squeue": (0, "300|PENDING|None\n")})
    states = query_slurm(["300"], run=runner)
    assert states == {"300": SchedulerState("300", "PENDING")}


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
    assert states is not None
    assert [command[0] for command in runner.commands] == ["sacct", "squeue", "scontrol"]
    assert runner.commands[1][-2:] == ["-j", "80,81"]  # by id: a lab-mate's jobs too
    assert states["80"].state == "RUNNING"
    assert states["81"] == SchedulerState("81", "FAILED", "NonZeroExitCode", "1:0")


def test_without_accounting_a_job_neither_queue_nor_scontrol_answers_for_is_unknown(
    slurm_path: Path,
) -> None:
    """No accounting, the job not queued, and scontrol (the controller's memory of recent
    jobs, which would list it) did not answer: not gone, unknown."""
    runner = Recorder({"sacct": (1, ""), "squeue": (0, "80|RUNNING|None\n")})
    states = query_slurm(["80", "81"], run=runner)
    unknown = SchedulerState("81", "UNKNOWN", "squeue does not list it and scontrol did not answer")
    assert states == {"80": SchedulerState("80", "RUNNING"), "81": unknown}


def test_a_hanging_scheduler_gives_no_answer(slurm_path: Path) -> None:
    def hanging(command: list[str]) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(command, 20)

    assert query_slurm(["80"], run=hanging) is None  # nothing answered: nothing concluded


def _slurm_record(job_id: str, submitted: float | None = None) -> JobRecord:
    when = time.time() if submitted is None else submitted
    return JobRecord(scheduler="slurm", submissions=[Submission(0, job_id, when)])


def test_poller_rate_limits_and_asks_about_an_ended_job_only_when_forced_or_rarely(
    slurm_path: Path,
) -> None:
    """An ended job's answer stands between polls, but SLURM can requeue it under its id
    (``scontrol requeue``, a node failure): the TUI showed such a run LOST for good, even after
    the user asked again (ctrl+r). A forced look and an answer older than ``max_interval_s``
    ask again."""
    runner = Recorder({"sacct": (0, "74|COMPLETED|None|0:0\n75|RUNNING|None|0:0\n")})
    jobs = {Path("a"): _slurm_record("74"), Path("b"): _slurm_record("75")}
    poller = SchedulerPoller(min_interval_s=10, max_interval_s=600, run=runner)

    def asked() -> list[str]:  # the jobs of the last sacct call
        return [command for command in runner.commands if command[0] == "sacct"][-1][-2:]

    first = poller.states(jobs)
    assert first[Path("a")].state == "COMPLETED"  # type: ignore[union-attr]
    assert poller.states(jobs) == first and len(runner.commands) == 1  # within the interval
    poller._last_query = float("-inf")  # as if the interval had passed
    poller.states(jobs)
    assert asked() == ["-j", "75"]  # 74 ended moments ago: not asked
    runner.answers["sacct"] = (0, "74|PENDING|BeginTime|0:0\n75|RUNNING|None|0:0\n")
    requeued = poller.states(jobs, force=True)[Path("a")]
    assert asked() == ["-j", "74,75"]
    assert requeued is not None and requeued.describe() == "PENDING (BeginTime)"
    answer = poller.states(jobs)[Path("b")]
    assert answer is not None and answer.asked is not None and answer.asked <= time.time()
    runner.answers["sacct"] = (0, "74|FAILED|None|1:0\n")
    poller.states(jobs, force=True)
    poller._last_query = float("-inf")
    poller.states(jobs)
    assert asked() == ["-j", "75"]
    key = (Path("a"), "74")
    poller._cache[key] = replace(poller._cache[key], asked=time.time() - 601)  # type: ignore[type-var]
    poller._last_query = float("-inf")
    poller.states(jobs)
    assert asked() == ["-j", "74,75"]  # its answer is old: asked again


def test_ids_that_are_not_slurm_job_ids_are_never_passed_to_slurm(slurm_path: Path) -> None:
    """One odd id in a batched ``sacct -j`` made the whole call fail ("Bad job/step
    specified"), and every other run's job looked purged: LOST."""
    runner = Recorder({"sacct": (0, "220|CANCELLED by 0|None|0:0\n"), "squeue": (0, "")})
    states = query_slurm(["220", "abc", "1,2", "12\x003", "../7", "76_[1-2%2]"], run=runner)
    assert runner.commands[0][-2:] == ["-j", "220,76"]
    assert states is not None and set(states) == {"220"}


def test_poller_backs_off_while_nothing_changes(slurm_path: Path) -> None:
    runner = Recorder({"sacct": (0, "75|RUNNING|None|0:0\n")})
    poller = SchedulerPoller(min_interval_s=0.0, max_interval_s=0.0, run=runner)
    assert poller.interval_s == 0.0
    polite = SchedulerPoller(min_interval_s=10, max_interval_s=40, run=runner)
    jobs = {Path("b"): _slurm_record("75")}
    polite._last_query = float("-inf")
    for expected in (10, 20, 40, 40):
        polite._last_query = float("-inf")  # as if the interval had passed
        polite.states(jobs)
        assert polite.interval_s == expected  # nothing changed after the first answer
    runner.answers["sacct"] = (0, "75|COMPLETED|None|0:0\n")
    polite._last_query = float("-inf")
    polite.states(jobs)
    assert polite.interval_s == 10  # a change: back to the shortest interval


def test_a_resumed_run_never_shows_its_old_job_state(slurm_path: Path) -> None:
    """The cache is per run and job: a new job id is asked about at once."""
    runner = Recorder({"sacct": (0, "74|FAILED|None|1:0\n")})
    poller = SchedulerPoller(min_interval_s=3600, run=runner)
    record = _slurm_record("74")
    assert poller.states({Path("a"): record})[Path("a")].state == "FAILED"  # type: ignore[union-attr]
    record.add_submission(1, "80", "resume")
    runner.answers["sacct"] = (0, "")
    runner.answers["squeue"] = (0, "80|PENDING|Priority\n")
    answer = poller.states({Path("a"): record})[Path("a")]
    assert answer == SchedulerState("80", "PENDING", "Priority")


def test_a_fresh_job_listed_nowhere_is_submitted_then_not_found(slurm_path: Path) -> None:
    # (squeue -j of ids it does not know: exit 1 and this message, an answer)
    runner = Recorder({"sacct": (0, ""), "squeue": (1, "", NO_SUCH_JOB)})
    fresh = _slurm_record("90")
    old = _slurm_record("91", submitted=time.time() - SUBMIT_GRACE_S - 1)
    states = scheduler_states({Path("a"): fresh, Path("b"): old}, run=runner)
    assert states[Path("a")].state == "SUBMITTED"  # type: ignore[union-attr]
    assert states[Path("b")].state == "NOT_FOUND"  # type: ignore[union-attr]


def test_no_answer_at_all_is_unknown_not_dead(slurm_path: Path) -> None:
    runner = Recorder({})  # every command fails
    states = scheduler_states({Path("a"): _slurm_record("91", submitted=0.0)}, run=runner)
    assert states[Path("a")] == SchedulerState("91", "UNKNOWN", "the scheduler did not answer")


def test_a_job_sacct_does_not_list_while_squeue_fails_is_unknown_not_lost(
    slurm_path: Path,
) -> None:
    """sacct answered without the job (slurmdbd lags behind a busy controller) and squeue, which
    would have listed it, timed out: the job was NOT_FOUND a minute after sbatch, the run LOST,
    and resume or --only-failed submitted a second job beside the one that runs."""
    timeout = "squeue: error: slurm_load_jobs error: Socket timed out on send/recv operation"
    runner = Recorder({"sacct": (0, ""), "squeue": (1, "", timeout)})
    old = _slurm_record("91", submitted=time.time() - SUBMIT_GRACE_S - 1)
    (state,) = scheduler_states({Path("a"): old}, run=runner).values()
    assert state is not None and state.state == "UNKNOWN"
    assert state.reason == "sacct does not list it yet and squeue did not answer"


def test_resume_waits_for_a_slurm_job_nobody_could_ask_about(slurm_path: Path) -> None:
    """A job SLURM did not answer about may run: it is not taken for ended (resume and
    --only-failed refuse, saying so); a local job of another host, which nobody here can ask
    about, is left to the status file as before."""
    slurm = _slurm_record("91", submitted=0.0)
    local = JobRecord(scheduler="local", submissions=[Submission(0, "1", 0.0)], host="elsewhere")
    alive = live_jobs({Path("a"): slurm, Path("b"): local}, run=Recorder({}))
    assert [state.state for state in alive[Path("a")]] == ["UNKNOWN"] and alive[Path("b")] == []
    assert not_exited(alive[Path("a")]) == (
        "SLURM did not say whether job 91 has exited (the scheduler did not answer)"
    )
    running = SchedulerState("92", "RUNNING")
    assert not_exited([running, *alive[Path("a")]]) == (
        "job 92 (RUNNING) has not exited yet; "
        "SLURM did not say whether job 91 has exited (the scheduler did not answer)"
    )


def test_a_cancel_slurm_forgot_is_cancelled(slurm_path: Path) -> None:
    """A pending array task cancelled before the array split leaves no trace in sacct/squeue."""
    runner = Recorder({"sacct": (0, ""), "squeue": (0, "")})
    cancelled, forgotten = _slurm_record("90_3", 0.0), _slurm_record("90_2", 0.0)
    cancelled.cancelled = time.time()
    states = scheduler_states({Path("a"): cancelled, Path("b"): forgotten}, run=runner)
    assert states[Path("a")] is not None and states[Path("a")].state == "CANCELLED"
    assert "before it started" in str(states[Path("a")].reason)  # type: ignore[union-attr]
    assert states[Path("b")].state == "NOT_FOUND"  # type: ignore[union-attr]


def test_no_command_without_slurm_jobs(slurm_path: Path, tmp_path: Path) -> None:
    runner = Recorder({})
    local = JobRecord(scheduler="local", submissions=[Submission(0, "1", 0.0)], host="elsewhere")
    states = scheduler_states({tmp_path: None, tmp_path / "x": local}, run=runner)
    assert runner.commands == []
    assert states[tmp_path] is None
    assert states[tmp_path / "x"] == SchedulerState("1", "UNKNOWN", "a local process on elsewhere")


# -- local processes ---------------------------------------------------------------------------


def _sleeper(run_dir: Path) -> subprocess.Popen[bytes]:
    """A process standing in for a local job's controller or task: like them, it names the
    run's submitit folder on its command line (what tells that it runs this job)."""
    folder = run_dir / "submitit"
    folder.mkdir(parents=True, exist_ok=True)
    code = "import time; time.sleep(60)"
    return subprocess.Popen([sys.executable, "-c", code, str(folder)])


def _local_run(tmp_path: Path, controller: subprocess.Popen[bytes]) -> tuple[Path, JobRecord]:
    job_id = str(controller.pid)
    record = JobRecord(
        scheduler="local",
        submissions=[Submission(0, job_id, time.time(), process=identify(controller.pid))],
        host=socket.gethostname(),
    )
    (tmp_path / "submitit").mkdir(exist_ok=True)
    write_job_file(tmp_path, record)
    return tmp_path, record


def test_local_state_follows_the_recorded_processes(tmp_path: Path) -> None:
    controller, task = _sleeper(tmp_path), _sleeper(tmp_path)
    run_dir, record = _local_run(tmp_path, controller)
    job_id = record.job_id
    try:
        assert local_state(run_dir, record).state == "RUNNING"
        processes = JobProcesses(
            host=socket.gethostname(),
            controller=identify(controller.pid),  # type: ignore[arg-type]
            tasks=[identify(task.pid)],  # type: ignore[list-item]
            started=123.0,
        )
        write_processes(run_dir / "submitit", job_id, processes)
        assert local_state(run_dir, record).started == 123.0
        controller.kill()
        controller.wait()
        orphan = local_state(run_dir, record)  # the controller was killed, the training goes on
        assert orphan.state == "RUNNING" and f"process {task.pid} still trains" in str(
            orphan.reason
        )
        task.kill()
        task.wait()
        gone = local_state(run_dir, record)
        assert (gone.state, gone.reason) == ("FAILED", "its processes ended without reporting how")
        processes.exit_codes = [-9]
        write_processes(run_dir / "submitit", job_id, processes)
        assert local_state(run_dir, record) == SchedulerState(job_id, "FAILED", None, "-9")
        processes.exit_codes = [0]
        write_processes(run_dir / "submitit", job_id, processes)
        assert local_state(run_dir, record).state == "COMPLETED"
        record.cancelled = time.time()
        assert local_state(run_dir, record).state == "CANCELLED"
    finally:
        for process in (controller, task):
            process.kill()
            process.wait()


def test_a_live_process_of_another_job_is_not_taken_for_the_runs(tmp_path: Path) -> None:
    """job.json lies in the run directory: the process it names counts (RUNNING, and what
    ``cancel`` signals) only if its own command line names the run's submitit folder."""
    stranger = _sleeper(tmp_path / "another run")
    try:
        (tmp_path / "run").mkdir()
        run_dir, record = _local_run(tmp_path / "run", stranger)
        state = local_state(run_dir, record)
        assert (state.state, state.reason) == (
            "FAILED",
            "its processes ended without reporting how",
        )
    finally:
        stranger.kill()
        stranger.wait()


def test_a_reused_pid_is_not_taken_for_the_controller(tmp_path: Path) -> None:
    """Same pid, another start time: another process (pids are reused)."""
    me = identify(os.getpid())
    assert me is not None
    record = JobRecord(
        scheduler="local",
        submissions=[
            Submission(0, str(me.pid), time.time(), process=type(me)(me.pid, me.start - 1))
        ],
        host=socket.gethostname(),
    )
    assert local_state(tmp_path, record).state == "FAILED"
    older = JobRecord(  # job.json of an older version: the pid alone, checked by command line
        scheduler="local", submissions=[Submission(0, str(os.getpid()), 0.0)], host=record.host
    )
    assert local_state(tmp_path, older).state == "FAILED"  # alive, but not a submitit controller


def test_a_planted_result_pickle_is_never_loaded(tmp_path: Path) -> None:
    """Reading runs executes nothing from a run directory (issue 10): the monitor used to load
    submitit's ``*_result.pkl`` of a dead local job; a crafted pickle ran its code."""
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    dead = _sleeper(tmp_path)
    run_dir, record = _local_run(tmp_path, dead)
    dead.kill()
    dead.wait()
    (run_dir / "status.jsonl").write_text("")
    (run_dir / "submitit" / f"{record.job_id}_0_result.pkl").write_bytes(pickle.dumps(Payload()))
    assert local_state(run_dir, record).state == "FAILED"
    answer = subprocess.run(
        [sys.executable, "-m", "hpc_runner", "status", str(tmp_path.parent), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert not marker.exists()
    pickle.loads(pickle.dumps(Payload()))  # the check can fail: loading it does run the code
    assert marker.exists()


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
    assert [s["phase"] for s in summaries] == ["STARTING", "STARTING"]

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
    assert (by_run["b"]["state"], by_run["b"]["phase"]) == ("TRAINING", "LOST")
    assert by_run["b"]["reason"] == "out of memory"

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    summaries, _ = _status(root, str(empty))  # no SLURM commands at all: still works
    by_run = {s["run"]: s for s in summaries}
    assert (by_run["a"]["scheduler_state"], by_run["a"]["scheduler_reason"]) == (
        "UNKNOWN",
        "no SLURM commands here",
    )


def test_the_log_folder_of_a_job_is_read_from_scontrol(slurm_path: Path) -> None:
    """``StdOut`` runs to the next ``Key=``: run directory names may hold spaces."""
    from hpc_runner.control.slurm_query import job_output_folder

    line = (
        "JobId=257 JobName=original UserId=root(0) JobState=PENDING Reason=BeginTime "
        "StdErr=/runs/copy of a/submitit/257_0_log.err StdIn=/dev/null "
        "StdOut=/runs/copy of a/submitit/257_0_log.out Power= \n"
    )
    runner = Recorder({"scontrol": (0, line)})
    assert job_output_folder("257", run=runner) == "/runs/copy of a/submitit"
    assert runner.commands == [["scontrol", "-o", "show", "job", "257"]]
    assert job_output_folder("--me", run=runner) is None and len(runner.commands) == 1
    assert job_output_folder("258", run=Recorder({})) is None  # scontrol failed: no answer


def test_a_debug_job_runs_in_the_process_that_holds_its_status_file(tmp_path: Path) -> None:
    """A debug job trains inside the process that submitted it (a script using the API, too):
    that process counts as its job only while it holds the run's status file open, or is an
    hpc-runner command; any other live process named in job.json does not."""
    from hpc_runner.control.local_process import holds_open

    status = tmp_path / "status.jsonl"
    status.write_text("")
    holding = f"import time; handle = open({str(status)!r}, 'a'); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", holding])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        deadline = time.monotonic() + 30
        while not holds_open(holder.pid, status) and time.monotonic() < deadline:
            time.sleep(0.05)
        for process, expected in ((holder, "RUNNING"), (other, "FAILED")):
            submission = Submission(0, "DEBUG_1", time.time(), process=identify(process.pid))
            record = JobRecord(scheduler="debug", submissions=[submission])
            assert local_state(tmp_path, record).state == expected
    finally:
        for process in (holder, other):
            process.kill()
            process.wait()


def test_a_copy_of_a_training_debug_run_is_not_its_job(tmp_path: Path) -> None:
    """``cp -a`` of a debug run that trains copies its job.json, which names the submitting
    hpc-runner process: that process runs the original directory, not the copy, so the copy's
    job is not running and cancelling the copy leaves the original's training alone."""
    from hpc_runner.control.jobs import ActionRefused, cancel_run
    from hpc_runner.stream.processes import identify_path

    original = tmp_path / "run"
    original.mkdir()
    # an hpc-runner command that trains the run in another folder (its status writer's file is
    # not open here, as between two epochs' writes of a real writer that reopens it)
    command = [sys.executable, "-c", "import time; time.sleep(60)", "hpc_runner", "submit"]
    submitter = subprocess.Popen(command)
    try:
        process = identify(submitter.pid)
        submission = Submission(
            0, "DEBUG_1", time.time(), process=process, directory=identify_path(original)
        )
        record = JobRecord(scheduler="debug", submissions=[submission])
        write_job_file(original, record)
        (original / "status.jsonl").write_text(
            '{"v":1,"type":"state","value":"TRAINING","t":1.0,"seq":1,"attempt":0}\n'
        )
        copy = tmp_path / "copy"
        subprocess.run(["cp", "-a", str(original), str(copy)], check=True)

        assert submission_states(original, record)[0].state == "RUNNING"
        assert submission_states(copy, record)[0].state != "RUNNING"
        with pytest.raises(ActionRefused, match="copy is LOST"):
            cancel_run(copy, wait_s=1.0)
        assert submitter.poll() is None  # the original trains on
        moved = tmp_path / "moved"
        original.rename(moved)  # a renamed directory is still the one submitted
        assert submission_states(moved, record)[0].state == "RUNNING"
    finally:
        submitter.kill()
        submitter.wait()
