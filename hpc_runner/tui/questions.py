"""What the stop, cancel and resume dialogs ask, and what the TUI says when a key does not fit.

Pure functions of a run and its phase, so that the words are tested without an app. A question
names what will happen - a stop saves a checkpoint, a cancel does not, a resume starts attempt N
from a named checkpoint or from the start - because a user acts on what the dialog says.
"""

from __future__ import annotations

from rich.text import Text

from hpc_runner.control.phase import ACTIONS, Phase, RunPhase
from hpc_runner.tui.model import RunEntry
from hpc_runner.tui.text import literal

#: The screen actions of the run keys, and the command of :mod:`hpc_runner.control.jobs`
#: (and :data:`hpc_runner.control.phase.ACTIONS`) each one is.
RUN_ACTIONS = {"stop_run": "stop", "cancel_run": "cancel", "resume_run": "resume"}

#: (confirming button, declining button) of each dialog: they say what they do.
BUTTONS = {
    "stop": ("Stop", "Don't stop"),
    "cancel": ("Cancel job", "Keep it"),
    "resume": ("Resume", "Don't resume"),
}


def allowed(action: str, phase: RunPhase) -> bool:
    """Whether ``action`` (stop, cancel, resume) means something in this phase."""
    return phase.phase in ACTIONS[action]


def refusal(action: str, entry: RunEntry, phase: RunPhase) -> str | None:
    """Why ``action`` does not fit the run's phase, in the command line's own words; None if
    it does (:func:`hpc_runner.control.jobs.refuse_unless` decides, for both)."""
    from hpc_runner.control.jobs import ActionRefused, RunView, refuse_unless

    try:
        refuse_unless(action, entry.run_dir, RunView(phase, entry.run, entry.job, entry.scheduler))
    except ActionRefused as refused:
        return str(refused)
    return None


def stop_question(entry: RunEntry, phase: RunPhase) -> Text:
    """``Stop NAME after the current batch and save a checkpoint?``"""
    text = Text.assemble(
        "Stop ",
        literal(entry.label, "bold"),
        " after the current batch and save a checkpoint?\n\n",
        f"It is {phase.describe()}. The training finishes its batch, saves its last checkpoint "
        "and ends as STOPPED; resume (r) continues it from there.",
    )
    if phase.phase is Phase.STALLED:
        text.append(
            "\n\nA stalled training may never reach the end of its batch: "
            "cancel (c) ends its job at once.",
            style="yellow",
        )
    return text


def cancel_question(entry: RunEntry, phase: RunPhase) -> Text:
    """``Cancel job 1234 (RUNNING) of NAME?`` and what is lost."""
    job = entry.job_id or entry.run.job or "(no job id recorded)"
    said = entry.scheduler.state if entry.scheduler is not None else "state unknown"
    if phase.phase is Phase.QUEUED:
        consequence = "The job leaves the queue before it starts; nothing has trained yet."
    elif phase.phase is Phase.REQUEUED:
        consequence = (
            f"The job leaves the queue: {phase.reason or 'its next attempt'} never runs. The "
            "checkpoints saved so far stay; resume (r) continues from them later."
        )
    else:
        consequence = (
            "The training stops without a final checkpoint: what it learnt since its last "
            "checkpoint is lost. Stop (s) ends it gracefully, with a checkpoint."
        )
    return Text.assemble(
        f"Cancel job {job} ({said}) of ",
        literal(entry.label, "bold"),
        "?\n\n",
        f"It is {phase.describe()}. {consequence}",
    )


def resume_question(entry: RunEntry, phase: RunPhase, plan: list[str] | None) -> Text:
    """``Resume NAME?`` with what resume would do (None: still being worked out)."""
    text = Text.assemble(
        "Resume ", literal(entry.label, "bold"), f"?\n\nIt is {phase.describe()}. "
    )
    if plan is None:
        text.append("Checking what resume would do (asks the scheduler)…", style="dim italic")
        return text
    text.append("Resuming submits a new job:\n")
    for line in plan:
        text.append("\n  ")
        text.append_text(literal(line))
    return text


def refused_question(entry: RunEntry, why: str) -> Text:
    """The dialog's text when the slow look found that the action cannot be done."""
    return Text.assemble(
        "Cannot resume ", literal(entry.label, "bold"), ":\n\n", literal(why, one_line=False)
    )
