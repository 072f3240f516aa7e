"""The phase rules, one row per situation: file state x job.json x scheduler answer.

Pure: runs are folded from real records (the record format's own constructor), scheduler answers
are :class:`SchedulerState` values as the SLURM parsers and the local-process checks produce them.
The same phases through real local runs, the SLURM test cluster, ``status``, the API and the TUI
are in test_lifecycle.py and test_tui.py.
"""

from __future__ import annotations

import time

import pytest

from hpc_runner.control.jobfile import JobRecord, Submission
from hpc_runner.control.phase import (
    ACTIONS,
    Phase,
    derive_phase,
    exit_description,
    format_duration,
    stall_limit,
)
from hpc_runner.control.scheduler import SchedulerState
from hpc_runner.stream.records import ExceptionData, make_record
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.status import TrainUpdateType as T

NOW = 1_000_000.0


def fold(*steps: tuple[float, int, T, object]) -> RunState:
    """A run from ``(time, attempt, type, value)`` records."""
    run = RunState()
    run.apply(
        [
            make_record(kind, value, t=t, seq=index, attempt=attempt)
            for index, (t, attempt, kind, value) in enumerate(steps)
        ]
    )
    return run


def training(attempt: int = 0, *, until: float = NOW - 1, step: float = 1.0) -> list:
    """Records of an attempt that trains: 2 epochs x 3 batches, the last batch at ``until``."""
    start = until - 6 * step
    records = [
        (start - 1, attempt, T.DEBUG, f"attempt {attempt} starting"),
        (start, attempt, T.MAX_EPOCH, 2),
        (start, attempt, T.MAX_BATCH, 3),
        (start, attempt, T.STATE, "TRAINING"),
    ]
    for index in range(6):
        moment = start + (index + 1) * step
        records += [(moment, attempt, T.BATCH, index % 3), (moment, attempt, T.LOSS, 0.5)]
    return records


def ended(attempt: int, state: str, at: float = NOW - 1) -> list:
    return [(at, attempt, T.STATE, state)]


def crashed(attempt: int = 0) -> list:
    error = ExceptionData("ValueError", "axes YX do not match\nthe data", "Traceback ...")
    return [(NOW - 2, attempt, T.EXCEPTION, error), *ended(attempt, "CRASHED")]


def job(attempt: int = 0, *, scheduler: str = "slurm", age: float = 600, **kw: object) -> JobRecord:
    submissions = [Submission(0, "100", NOW - 3600)]
    if attempt:
        submissions.append(Submission(attempt, "200", NOW - age, "resume"))
    else:
        submissions = [Submission(0, "100", NOW - age)]
    return JobRecord(scheduler=scheduler, submissions=submissions, **kw)  # type: ignore[arg-type]


def slurm(state: str, reason: str | None = None, exit_code: str | None = None, **kw: float):
    return SchedulerState("100", state, reason, exit_code, **kw)


CASES = [
    # (name, records, job, scheduler, phase, words in the reason)
    ("queued for priority", [], job(), slurm("PENDING", "Priority"), Phase.QUEUED, "Priority"),
    ("array throttle", [], job(), slurm("PENDING", "JobArrayTaskLimit"), Phase.QUEUED, "ArrayTask"),
    ("begin time", [], job(), slurm("PENDING", "BeginTime"), Phase.QUEUED, "BeginTime"),
    ("just submitted", [], job(age=1), slurm("SUBMITTED"), Phase.QUEUED, "not yet listed"),
    ("running, nothing yet", [], job(), slurm("RUNNING", started=NOW - 5), Phase.STARTING, "0"),
    ("trains", training(), job(), slurm("RUNNING", started=NOW - 60), Phase.TRAINING, None),
    ("trains, no scheduler", training(), None, None, Phase.TRAINING, None),
    (
        "requeued, waits",
        [*training(), (NOW - 1, 0, T.DEBUG, "requeueing as attempt 1")],
        job(),
        slurm("PENDING", "BeginTime"),
        Phase.REQUEUED,
        "attempt 1 waits; BeginTime",
    ),
    ("requeued (sacct)", training(), job(), slurm("REQUEUED"), Phase.REQUEUED, "attempt 1"),
    (
        "requeued job runs again, new attempt silent",
        training(until=NOW - 100),
        job(),
        slurm("RUNNING", started=NOW - 10),
        Phase.STARTING,
        "attempt 1 starting",
    ),
    (
        "new attempt writes",
        training(until=NOW - 100) + training(1, until=NOW - 1),
        job(),
        slurm("RUNNING", started=NOW - 10),
        Phase.TRAINING,
        None,
    ),
    (
        "silent far beyond its pace",
        training(until=NOW - 4000),
        job(),
        slurm("RUNNING", started=NOW - 5000),
        Phase.STALLED,
        "no record for 1h06m",
    ),
    (
        "requeued after a crash, the new attempt loads its data",
        [*training(), *crashed(), (NOW - 1, 1, T.DEBUG, "attempt 1 starting")],
        job(),
        slurm("RUNNING", started=NOW - 10),
        Phase.STARTING,
        "attempt 1 starting",
    ),
    (
        "requeued after a crash, the new attempt loads, nobody to ask",
        [*training(), *crashed(), (NOW - 1, 1, T.DEBUG, "attempt 1 starting")],
        None,
        None,
        Phase.STARTING,
        "no training record yet",
    ),
    (
        "requeued after a crash, the new attempt's job ended",
        [*training(), *crashed(), (NOW - 1, 1, T.DEBUG, "attempt 1 starting")],
        job(),
        slurm("COMPLETED"),
        Phase.LOST,
        "without the training recording a final state",
    ),
    (
        "resumed, the new attempt loads its data",
        [*training(), *crashed(), (NOW - 1, 1, T.DEBUG, "attempt 1 starting")],
        job(1),
        slurm("RUNNING", started=NOW - 3),
        Phase.STARTING,
        "attempt 1 starting",
    ),
    (
        "cancelled, resumed, then stopped: the reason is the newest attempt's",
        [
            *training(),
            (NOW - 3, 0, T.EXCEPTION, ExceptionData("KeyboardInterrupt")),
            *ended(0, "STOPPED", NOW - 3),
            *training(1),
            (NOW - 1, 1, T.DEBUG, "stop requested (STOP file found)"),
            *ended(1, "STOPPED"),
        ],
        job(1),
        slurm("COMPLETED"),
        Phase.STOPPED,
        "stopped on request",
    ),
    (
        "a late final state of the replaced attempt, the new one trains",
        [*training(), *training(1), *ended(0, "DONE"), *crashed(0)],
        job(1),
        slurm("RUNNING", started=NOW - 20),
        Phase.TRAINING,
        None,
    ),
    ("suspended", training(), job(), slurm("SUSPENDED"), Phase.STALLED, "suspended"),
    ("done", training() + ended(0, "DONE"), job(), slurm("COMPLETED"), Phase.DONE, None),
    (
        "done, job still writing reports",
        training() + ended(0, "DONE"),
        job(),
        slurm("RUNNING"),
        Phase.DONE,
        None,
    ),
    (
        "stopped",
        training() + ended(0, "STOPPED"),
        job(),
        slurm("COMPLETED"),
        Phase.STOPPED,
        "stopped on request",
    ),
    (
        "crashed",
        training() + crashed(),
        job(),
        slurm("FAILED", None, "1:0"),
        Phase.CRASHED,
        "ValueError: axes YX do not match",
    ),
    (
        "crash beats the scheduler",
        training() + crashed(),
        job(),
        slurm("CANCELLED"),
        Phase.CRASHED,
        "ValueError",
    ),
    (
        "scancel while training",
        training(),
        job(),
        slurm("CANCELLED", "by 0"),
        Phase.CANCELLED,
        "by 0",
    ),
    ("cancelled while queued", [], job(), slurm("CANCELLED", "by 1000"), Phase.CANCELLED, "1000"),
    (
        "local cancel records STOPPED",
        training() + ended(0, "STOPPED"),
        job(scheduler="local", cancelled=NOW - 5),
        None,
        Phase.CANCELLED,
        "hpc-runner cancel",
    ),
    (
        "out of memory",
        training(),
        job(),
        slurm("OUT_OF_MEMORY", None, "0:125"),
        Phase.LOST,
        "out of memory",
    ),
    ("time limit", training(), job(), slurm("TIMEOUT"), Phase.LOST, "time limit"),
    ("node failure", training(), job(), slurm("NODE_FAIL"), Phase.LOST, "node failure"),
    (
        "killed",
        training(),
        job(),
        slurm("FAILED", None, "0:9"),
        Phase.LOST,
        "killed by signal 9 (SIGKILL)",
    ),
    (
        "local kill -9",
        training(),
        job(scheduler="local"),
        slurm("FAILED", None, "-9"),
        Phase.LOST,
        "signal 9",
    ),
    (
        "exit code",
        [],
        job(),
        slurm("FAILED", "NonZeroExitCode", "1:0"),
        Phase.LOST,
        "exit code 1",
    ),
    (
        "completed without a final state",
        training(),
        job(),
        slurm("COMPLETED"),
        Phase.LOST,
        "without the training recording",
    ),
    ("vanished", training(), job(), slurm("NOT_FOUND"), Phase.LOST, "no longer knows"),
    # a resume: the file's final state is the previous attempt's
    (
        "resumed, queued",
        training() + crashed(),
        job(1),
        slurm("PENDING", "Priority"),
        Phase.QUEUED,
        "Priority",
    ),
    (
        "resumed, not yet listed",
        training() + crashed(),
        job(1, age=1),
        slurm("SUBMITTED"),
        Phase.QUEUED,
        "not yet listed",
    ),
    (
        "resumed, running, silent",
        training() + crashed(),
        job(1),
        slurm("RUNNING", started=NOW - 3),
        Phase.STARTING,
        "attempt 1 starting",
    ),
    (
        "resumed, trains",
        training() + crashed() + training(1),
        job(1),
        slurm("RUNNING", started=NOW - 20),
        Phase.TRAINING,
        None,
    ),
    (
        "resumed, cancelled in the queue",
        training() + crashed(),
        job(1),
        slurm("CANCELLED"),
        Phase.CANCELLED,
        None,
    ),
    # nobody to ask
    (
        "other host",
        [],
        job(scheduler="local"),
        slurm("UNKNOWN", "a local process on b"),
        Phase.STARTING,
        "a local process on b",
    ),
    ("no scheduler, no record", [], None, None, Phase.STARTING, "no training record yet"),
]


@pytest.mark.parametrize(
    ("records", "record", "scheduler", "expected", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_phase(
    records: list,
    record: JobRecord | None,
    scheduler: SchedulerState | None,
    expected: Phase,
    words: str | None,
) -> None:
    run = fold(*records) if records else RunState()
    phase = derive_phase(run, record, scheduler, now=NOW, stall_floor_s=300)
    assert phase.phase is expected, phase
    if words is None:
        assert phase.reason is None
    else:
        assert phase.reason is not None and words in phase.reason


def test_stall_limit_adapts_to_the_run_pace() -> None:
    quick = fold(*training(step=1.0))
    slow = fold(*training(step=200.0))  # e.g. a long validation after every epoch
    assert stall_limit(quick, 300) == 300
    assert stall_limit(slow, 300) == 5 * 200
    silent = NOW + 900  # 15 minutes after the last record
    running = slurm("RUNNING", started=0)
    assert derive_phase(quick, job(), running, now=silent, stall_floor_s=300).phase is Phase.STALLED
    assert derive_phase(slow, job(), running, now=silent, stall_floor_s=300).phase is Phase.TRAINING


def test_a_new_attempt_clears_the_exception_and_outranks_late_records() -> None:
    """What ended an attempt is not the newer attempt's: its exception is gone once the new
    attempt writes, and a state or an exception the replaced attempt writes late is passed over
    (the last value of each type wins among the newest attempt's records only)."""
    run = fold(*training(), *crashed())
    assert run.exception is not None and run.exception.exc_type == "ValueError"
    run = fold(*training(), *crashed(), *training(1))
    assert run.exception is None and run.status.state.name == "TRAINING"
    late = fold(*training(), *training(1), *crashed(0), *ended(0, "DONE"))
    assert late.exception is None
    assert (late.status.state.name, late.state_attempt, late.attempt) == ("TRAINING", 1, 1)


def test_a_new_attempt_has_its_own_pace() -> None:
    run = fold(*training(step=500.0, until=NOW - 10_000), *training(1, step=1.0))
    assert run.longest_step_gap == 1.0


def test_actions_by_phase() -> None:
    assert ACTIONS["stop"] == {Phase.STARTING, Phase.TRAINING, Phase.STALLED}
    assert Phase.QUEUED in ACTIONS["cancel"] and Phase.DONE not in ACTIONS["cancel"]
    assert ACTIONS["resume"] == {Phase.STOPPED, Phase.CRASHED, Phase.CANCELLED, Phase.LOST}
    assert all(phase.live == (phase in ACTIONS["cancel"]) for phase in Phase)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("0:0", None),
        ("0", None),
        ("1:0", "exit code 1"),
        ("0:9", "killed by signal 9 (SIGKILL)"),
        ("-15", "killed by signal 15 (SIGTERM)"),
        ("2", "exit code 2"),
        ("x", "exit x"),
        (None, None),
    ],
)
def test_exit_descriptions(code: str | None, text: str | None) -> None:
    assert exit_description(code) == text


def test_durations() -> None:
    assert [format_duration(s) for s in (None, 5, 65, 3700, 90000)] == [
        "-",
        "5s",
        "1m05s",
        "1h01m",
        "1d01h",
    ]
    assert time.time() > NOW  # the fixed clock is in the past: no case depends on today
