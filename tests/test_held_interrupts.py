"""Ctrl+C while a job is being submitted: never a job that job.json does not name.

The window between the scheduler accepting a job and job.json naming it cannot be hit on cue
with a real scheduler (the submission helper hit it with an sbatch made slow on purpose), so
the resume test below fakes the scheduler's answer (a declared test double: ``_submit``
returns a job object and sends the interrupt, as a user's Ctrl+C in that window would).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from hpc_runner.control.held_interrupts import interrupts_held
from hpc_runner.control.jobfile import read_job_file
from tests.tui_support import FakeTraining, write_run_spec


def test_an_interrupt_in_the_block_acts_at_its_end() -> None:
    reached = []
    with pytest.raises(KeyboardInterrupt), interrupts_held():
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("after the interrupt")
    assert reached == ["after the interrupt"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with interrupts_held(hold=False), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)  # (a debug job trains in the block: not held)
        signal.pause()  # pragma: no cover - the interrupt ends it


def test_an_ignored_interrupt_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)


class _Job:
    job_id = "4242"


def test_ctrl_c_while_resume_submits_leaves_the_job_named_in_job_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interrupt came after sbatch accepted the job and before job.json was written: the
    job ran, unknown to cancel, and the next resume submitted a second one for the run."""
    from hpc_runner.control import submit
    from hpc_runner.spec.profiles import load_profile

    run_dir = tmp_path / "run"
    FakeTraining(run_dir).begin(3, 4).epoch(0, [0.5]).crash("ValueError", "x")
    write_run_spec(run_dir, profile="test_cpu")

    def accepted_then_interrupted(*_args: Any) -> list[_Job]:
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl+C, just after sbatch answered
        return [_Job()]

    monkeypatch.setattr(submit, "_submit", accepted_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        submit.resubmit(
            run_dir, attempt=1, checkpoint=None, profile=load_profile("test_cpu"), cluster="slurm"
        )
    record = read_job_file(run_dir)
    assert record is not None and record.job_id == "4242" and record.current.attempt == 1
