"""A run's phase: what the user sees, derived in one place from the file, job.json and scheduler.

The status file says what the training recorded (careamics-napari's ``TrainingState``), but a
file cannot say that its job waits in the queue, was killed for memory, or hangs in a data
loader; the scheduler cannot say that a training crashed on bad axes. :func:`derive_phase`
combines the three sources into exactly one :class:`Phase` with a one-line reason, and every
view - ``status`` (text, ``--json``, ``--summary``), ``watch``, the Python API, ``submit
--watch`` - and every action (stop, cancel, resume) uses it, so they cannot disagree.

Rules, in order:

1. A final state (DONE, STOPPED, CRASHED) written by the current submission's attempt (or a
   later one), and by the newest attempt the file knows of, is trusted: the node knew more
   than the scheduler. A STOPPED run whose job was cancelled with ``hpc-runner cancel`` is
   CANCELLED.
2. Otherwise the scheduler decides whether the job waits (QUEUED; REQUEUED when this
   submission already trained and waits for its next attempt), runs (STARTING until a record
   newer than the job's start exists, then TRAINING, or STALLED when silent for longer than
   the run's own rhythm explains), or ended without a final record (CANCELLED, or LOST with
   what the scheduler knows: out of memory, time limit, a signal, an exit code).
3. Without anyone to ask (no job.json, another host's local run, no SLURM commands here), the
   file alone decides, and the reason says that nobody could confirm it.

Monitoring side: standard library only.
"""

from __future__ import annotations

import enum
import math
import os
import signal
from dataclasses import dataclass

from hpc_runner.control.jobfile import JobRecord
from hpc_runner.control.scheduler import SchedulerState
from hpc_runner.stream.run_state import RunState
from hpc_runner.stream.status import TrainingState


class Phase(enum.Enum):
    """Where a run is in its life; see the module docstring and the README."""

    QUEUED = "QUEUED"
    STARTING = "STARTING"
    TRAINING = "TRAINING"
    REQUEUED = "REQUEUED"
    STALLED = "STALLED"
    DONE = "DONE"
    STOPPED = "STOPPED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"
    LOST = "LOST"

    @property
    def live(self) -> bool:
        """A job of the run waits or runs (it may still change by itself)."""
        return self in LIVE_PHASES

    @property
    def final(self) -> bool:
        """Nothing runs for this run any more; only a ``resume`` changes it."""
        return not self.live


LIVE_PHASES = frozenset(
    {Phase.QUEUED, Phase.STARTING, Phase.TRAINING, Phase.REQUEUED, Phase.STALLED}
)

#: Which command makes sense in which phase (everything else is refused with a message).
ACTIONS: dict[str, frozenset[Phase]] = {
    "stop": frozenset({Phase.STARTING, Phase.TRAINING, Phase.STALLED}),
    "cancel": LIVE_PHASES,
    "resume": frozenset({Phase.STOPPED, Phase.CRASHED, Phase.CANCELLED, Phase.LOST}),
}

#: A run is STALLED after this long without a record, at the least (seconds).
STALL_FLOOR_S = float(os.environ.get("HPC_RUNNER_STALL_FLOOR_S", "300"))

#: ... and after this many times its longest normal silence (a validation, a checkpoint save).
STALL_FACTOR = 5.0

#: Scheduler states of a job that waits to run (the first time, or again after a requeue).
WAITING = frozenset(
    {"SUBMITTED", "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
)
#: Scheduler states of a job that runs.
RUNNING = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"})

#: How the scheduler's end states read as the reason of a LOST run.
LOST_REASONS = {
    "OUT_OF_MEMORY": "out of memory",
    "TIMEOUT": "time limit reached",
    "NODE_FAIL": "node failure",
    "BOOT_FAIL": "node failed to boot",
    "DEADLINE": "deadline reached",
    "PREEMPTED": "preempted",
    "REVOKED": "revoked",
    "NOT_FOUND": "the scheduler no longer knows its job",
}

_FINAL_STATES = {
    TrainingState.DONE: Phase.DONE,
    TrainingState.STOPPED: Phase.STOPPED,
    TrainingState.CRASHED: Phase.CRASHED,
}


@dataclass(frozen=True)
class RunPhase:
    """A run's phase and why (``None`` when the phase says it all)."""

    phase: Phase
    reason: str | None = None

    def describe(self) -> str:
        """``QUEUED (Priority)``, ``LOST (out of memory)``, ``DONE``."""
        return f"{self.phase.value} ({self.reason})" if self.reason else self.phase.value


def derive_phase(
    run: RunState,
    job: JobRecord | None,
    scheduler: SchedulerState | None,
    *,
    now: float,
    stall_floor_s: float | None = None,
) -> RunPhase:
    """The phase of one run (see the module docstring for the rules).

    Parameters
    ----------
    run : RunState
        The run's status file, folded.
    job : JobRecord | None
        Its ``job.json`` (None: not submitted by hpc-runner, or unreadable).
    scheduler : SchedulerState | None
        What the scheduler says about the current job (None: nobody could be asked).
    now : float
        Unix time, for the STALLED rule.
    stall_floor_s : float, optional
        Overrides :data:`STALL_FLOOR_S`.
    """
    attempt = job.current.attempt if job is not None else 0
    state = run.status.state
    # (a requeue keeps the job and its submission's attempt; the newer attempt's own records
    # say it began, and until it writes a state the last one is the earlier attempt's)
    if state in _FINAL_STATES and run.state_attempt >= max(attempt, run.attempt):
        return _final(run, job, _FINAL_STATES[state])
    if scheduler is None or scheduler.state == "UNKNOWN":
        nobody = scheduler.reason if scheduler is not None and scheduler.reason else None
        return _unconfirmed(run, attempt, now, stall_floor_s, nobody)
    name = scheduler.state
    trained_here = run.records > 0 and run.attempt >= attempt  # this submission's job ran
    if name in WAITING:
        if trained_here:
            waits = f"attempt {run.attempt + 1} waits"
            return RunPhase(Phase.REQUEUED, _join(waits, scheduler.reason))
        return RunPhase(Phase.QUEUED, scheduler.reason or _submitted_reason(name))
    if name in RUNNING or name == "SUSPENDED":
        if name == "SUSPENDED":
            return RunPhase(Phase.STALLED, "suspended by the scheduler")
        started = scheduler.started
        fresh = run.last_time is not None and (started is None or run.last_time >= started)
        if not fresh or not trained_here or state is not TrainingState.TRAINING:
            # an attempt that wrote since the job started is the one starting, else the next
            number = run.attempt if fresh and trained_here else _next_attempt(run, attempt)
            return RunPhase(Phase.STARTING, f"attempt {number} starting")
        return _training(run, now, stall_floor_s, scheduler.reason)
    if name == "CANCELLED":
        return RunPhase(Phase.CANCELLED, scheduler.reason)
    if name == "COMPLETED":
        return RunPhase(Phase.LOST, "its job ended without the training recording a final state")
    return RunPhase(Phase.LOST, lost_reason(scheduler))


def _final(run: RunState, job: JobRecord | None, phase: Phase) -> RunPhase:
    if phase is Phase.CRASHED:
        return RunPhase(phase, exception_line(run))
    if phase is Phase.STOPPED:
        if job is not None and job.cancelled is not None:
            return RunPhase(Phase.CANCELLED, "by hpc-runner cancel")
        return RunPhase(phase, exception_line(run) if run.exception else "stopped on request")
    return RunPhase(phase)


def _unconfirmed(
    run: RunState, attempt: int, now: float, stall_floor_s: float | None, nobody: str | None
) -> RunPhase:
    """The file alone: nobody could tell whether a job waits, runs or died."""
    if run.status.state is TrainingState.TRAINING and run.attempt >= attempt:
        return _training(run, now, stall_floor_s, nobody)
    return RunPhase(Phase.STARTING, _join("no training record yet", nobody))


def _training(run: RunState, now: float, stall_floor_s: float | None, note: str | None) -> RunPhase:
    silent = now - (run.last_time or now)
    limit = stall_limit(run, stall_floor_s)
    if silent > limit:
        return RunPhase(
            Phase.STALLED,
            f"no record for {format_duration(silent)} (this run's longest normal pause: "
            f"{format_duration(run.longest_step_gap)})",
        )
    return RunPhase(Phase.TRAINING, note)


def stall_limit(run: RunState, floor_s: float | None = None) -> float:
    """Seconds of silence after which a training counts as STALLED: the floor, or several times
    the longest pause the run has made so far between two steps (validation and checkpoints
    included), whichever is longer - a slow run is not a stalled one."""
    floor = STALL_FLOOR_S if floor_s is None else floor_s
    return max(floor, STALL_FACTOR * run.longest_step_gap)


def _next_attempt(run: RunState, attempt: int) -> int:
    return max(attempt, run.attempt + 1) if run.records and run.attempt >= attempt else attempt


def _submitted_reason(state: str) -> str | None:
    return "submitted; not yet listed by the scheduler" if state == "SUBMITTED" else None


def lost_reason(scheduler: SchedulerState) -> str:
    """Why a job ended without a final record, in the scheduler's words made plain."""
    known = LOST_REASONS.get(scheduler.state)
    if scheduler.state == "NOT_FOUND" and scheduler.reason:  # (a copy's: says why)
        known = scheduler.reason
    exit_text = exit_description(scheduler.exit_code)
    if known:
        return known
    detail = _join(exit_text, scheduler.reason) if scheduler.reason != exit_text else exit_text
    return detail or f"job {scheduler.state.lower()}"


def exit_description(exit_code: str | None) -> str | None:
    """``killed by signal 9 (SIGKILL)``, ``exit code 1``; None for success or unknown.

    Accepts SLURM's ``exit:signal`` (``0:9``) and a local return code (``-9`` = signal 9).
    """
    if not exit_code:
        return None
    code, _, sig = exit_code.partition(":")
    try:
        number, signum = int(code), int(sig or 0)
    except ValueError:
        return f"exit {exit_code}"
    if number < 0:
        number, signum = 0, -number
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {signum} ({name})"
    return f"exit code {number}" if number else None


def exception_line(run: RunState) -> str | None:
    """``ValueError: axes ...``: the recorded exception's type and first message line."""
    exception = run.exception
    if exception is None:
        return None
    first = exception.message.strip().splitlines()[:1]
    return f"{exception.exc_type}: {first[0]}" if first else exception.exc_type


def _join(first: str | None, second: str | None) -> str | None:
    parts = [part for part in (first, second) if part]
    return "; ".join(parts) if parts else None


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"
