"""Will the training finish within its time limit? One pure rule for the node and every view.

The node's monitor uses it to write a warning into the status file the first time an attempt
will not finish before its time limit; ``status --json``, ``--summary`` and the TUI use it to show
the ETA and the live ``time_limit_warning``. Both sides give it the same facts: steps done and in
total, the measured training rate (steps per second, validations and checkpoints included,
because it is measured over wall time), the time left and the attempt's time limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hpc_runner.stream.status import TrainingStatus


@dataclass(frozen=True)
class Forecast:
    """What the measured rate says about the rest of the training.

    Attributes
    ----------
    eta_s : float | None
        Seconds until the last step at the measured rate.
    time_left_s : float | None
        Seconds until the scheduler ends this attempt (None: no time limit known).
    epochs_fit : int | None
        Epochs finished when this attempt ends (capped at the training's epochs).
    requeues : int | None
        Further attempts needed after this one (full time limit each); 0 when it fits.
    warning : str | None
        ``~14 of 30 epochs fit before the time limit; 2 requeues expected``, or None when
        the training fits (or nothing is known).
    """

    eta_s: float | None = None
    time_left_s: float | None = None
    epochs_fit: int | None = None
    requeues: int | None = None
    warning: str | None = None


def steps_done(status: TrainingStatus) -> int | None:
    """Batches done over all epochs, if the status says enough to tell."""
    if status.max_batches <= 0 or status.epoch_idx < 0:
        return None
    return status.epoch_idx * status.max_batches + max(status.batch_idx, -1) + 1


def forecast(
    *,
    done: int,
    max_epochs: int,
    steps_per_epoch: int,
    steps_per_s: float | None,
    time_left_s: float | None = None,
    time_limit_s: float | None = None,
) -> Forecast:
    """The ETA and, with a time limit, how much of the training this attempt will manage.

    Parameters
    ----------
    done : int
        Training steps done (over all attempts).
    max_epochs, steps_per_epoch : int
        The training's epochs and batches per epoch (its total is their product).
    steps_per_s : float | None
        Measured rate; None or 0 when not known yet.
    time_left_s : float | None
        Seconds until this attempt's end (may be negative: already past it).
    time_limit_s : float | None
        The time limit of one attempt (a requeued attempt gets it again).
    """
    total = max_epochs * steps_per_epoch
    if total <= 0 or not steps_per_s or steps_per_s <= 0 or not math.isfinite(steps_per_s):
        return Forecast(time_left_s=time_left_s)
    remaining = max(0, total - done)
    eta = remaining / steps_per_s
    if time_left_s is None:
        return Forecast(eta_s=eta)
    within = max(0.0, time_left_s) * steps_per_s  # steps this attempt still manages
    epochs_fit = min(max_epochs, int((done + within) // steps_per_epoch))
    if eta <= max(0.0, time_left_s):
        return Forecast(eta_s=eta, time_left_s=time_left_s, epochs_fit=max_epochs, requeues=0)
    requeues: int | None = None
    if time_limit_s and time_limit_s > 0:
        requeues = math.ceil((remaining - within) / (time_limit_s * steps_per_s))
    warning = f"~{epochs_fit} of {max_epochs} epochs fit before the time limit"
    if requeues is not None:
        warning += f"; {requeues} requeue{'s' if requeues != 1 else ''} expected"
    return Forecast(
        eta_s=eta,
        time_left_s=time_left_s,
        epochs_fit=epochs_fit,
        requeues=requeues,
        warning=warning,
    )
