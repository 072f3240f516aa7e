"""The time-limit forecast (one rule for the node and the views) and the ETA of a recorded steady
stream, folded as every view folds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpc_runner.stream.forecast import forecast
from hpc_runner.stream.records import ENCODER, make_record
from hpc_runner.stream.run_state import RunState, replay
from hpc_runner.stream.status import TrainingState, TrainUpdateType
from hpc_runner.stream.system_values import EnvironmentValue, SystemValue
from hpc_runner.watch.resources import run_forecast

T = TrainUpdateType


def test_a_training_that_fits_has_no_warning() -> None:
    outlook = forecast(
        done=100, max_epochs=10, steps_per_epoch=100, steps_per_s=10.0, time_left_s=90.0
    )
    assert outlook.eta_s == pytest.approx(90.0) and outlook.warning is None
    assert (outlook.epochs_fit, outlook.requeues) == (10, 0)


def test_the_warning_counts_epochs_and_requeues() -> None:
    # 30 epochs of 100 steps at 1 step/s: 3000 s; 1400 s left of a 1400 s limit
    outlook = forecast(
        done=0,
        max_epochs=30,
        steps_per_epoch=100,
        steps_per_s=1.0,
        time_left_s=1400.0,
        time_limit_s=1400.0,
    )
    assert outlook.epochs_fit == 14
    assert outlook.requeues == 2  # 1600 steps left after this attempt, 1400 per attempt
    assert outlook.warning == "~14 of 30 epochs fit before the time limit; 2 requeues expected"


def test_the_edge_of_fitting_and_one_requeue() -> None:
    fits = forecast(done=0, max_epochs=1, steps_per_epoch=100, steps_per_s=1.0, time_left_s=100.0)
    assert fits.warning is None  # exactly on time: it fits
    late = forecast(
        done=0,
        max_epochs=1,
        steps_per_epoch=100,
        steps_per_s=1.0,
        time_left_s=99.0,
        time_limit_s=100.0,
    )
    assert late.warning == "~0 of 1 epochs fit before the time limit; 1 requeue expected"
    unknown = forecast(done=0, max_epochs=2, steps_per_epoch=10, steps_per_s=1.0, time_left_s=5.0)
    assert unknown.warning == "~0 of 2 epochs fit before the time limit"  # no limit: no count


@pytest.mark.parametrize("rate", [None, 0.0, float("nan")])
def test_no_rate_no_forecast(rate: float | None) -> None:
    outlook = forecast(done=5, max_epochs=2, steps_per_epoch=10, steps_per_s=rate, time_left_s=9)
    assert (outlook.eta_s, outlook.warning, outlook.time_left_s) == (None, None, 9)


def write_steady_stream(
    path: Path, *, epochs: int, batches: int, step_s: float, t0: float, interval: float
) -> float:
    """A training at a steady pace, with a system sample every ``interval`` seconds, as the
    node writes it (records built by the one record module); returns the end time."""
    lines: list[bytes] = []
    seq = 0

    def put(kind: TrainUpdateType | str, value: object, t: float) -> None:
        nonlocal seq
        seq += 1
        lines.append(ENCODER.encode(make_record(kind, value, t=t, seq=seq, attempt=0)) + b"\n")

    put("environment", EnvironmentValue(started=t0 - 5, time_limit_s=3600, end_time=t0 + 3595), t0)
    put(T.MAX_EPOCH, epochs, t0)
    put(T.MAX_BATCH, batches, t0)
    put(T.STATE, "TRAINING", t0)
    t, steps, next_sample = t0, 0, t0 + interval
    for epoch in range(epochs):
        put(T.EPOCH, epoch, t)
        for batch in range(batches):
            t += step_s
            steps += 1
            put(T.BATCH, batch, t)
            put(T.LOSS, 0.5, t)
            while next_sample <= t:
                put("system", SystemValue(steps=steps, cpu_time_s=1.0, time=next_sample), t)
                next_sample += interval
    put(T.STATE, "DONE", t)
    path.write_bytes(b"".join(lines))
    return t


def prefix_state(path: Path, until: float) -> RunState:
    """The fold of every record written up to ``until``, as a reader would have seen it then."""
    from hpc_runner.stream.records import decode_lines

    lines = [line for line in path.read_bytes().split(b"\n") if line]
    records, _ = decode_lines(lines)
    run = RunState()
    run.apply([record for record in records if record.t <= until])
    return run


def test_eta_of_a_recorded_steady_stream_is_within_20_percent(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    t0 = 1_700_000_000.0
    end = write_steady_stream(path, epochs=20, batches=50, step_s=0.25, t0=t0, interval=10.0)
    assert replay(path).status.state is TrainingState.DONE
    for share in (0.2, 0.35, 0.5, 0.75, 0.9):
        now = t0 + share * (end - t0)
        outlook = run_forecast(prefix_state(path, now), now)
        assert outlook.eta_s is not None
        actual = end - now
        assert abs(outlook.eta_s - actual) <= 0.2 * actual, (share, outlook.eta_s, actual)
        assert outlook.warning is None  # 250 s of training against an hour


def test_forecast_from_a_fold_warns_with_a_short_limit(tmp_path: Path) -> None:
    path = tmp_path / "status.jsonl"
    t0 = 1_700_000_000.0
    end = write_steady_stream(path, epochs=20, batches=50, step_s=0.25, t0=t0, interval=10.0)
    now = t0 + 0.3 * (end - t0)
    run = prefix_state(path, now)
    assert run.environment is not None
    run.environment = EnvironmentValue(time_limit_s=120, end_time=t0 + 115)
    outlook = run_forecast(run, now)
    assert outlook.warning is not None and "of 20 epochs fit" in outlook.warning
    assert outlook.requeues is not None and outlook.requeues >= 1
