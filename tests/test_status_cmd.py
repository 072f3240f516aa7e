"""`hpc-runner status [DIR] [--json]` over real run directories."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpc_runner.cli import main
from hpc_runner.stream.records import EvaluationValue, PreviewValue
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.system_values import EnvironmentValue
from hpc_runner.stream.writer import StatusWriter

T = TrainUpdateType
KEYS = {
    "run",
    "state",
    "max_epochs",
    "epoch_idx",
    "max_batches",
    "batch_idx",
    "loss",
    "val_loss",
    "attempt",
    "skipped_lines",
    "scheduler_state",
    "job",
    "phase",
    "reason",
    "scheduler_age_s",
}


def make_run(
    run_dir: Path, *updates: TrainUpdate, attempt: int = 0, job: str | None = None
) -> None:
    with StatusWriter(run_dir / "status.jsonl", attempt=attempt, job=job) as writer:
        for update in updates:
            writer.write(update)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    make_run(
        tmp_path / "b-run",
        TrainUpdate(T.MAX_EPOCH, 10),
        TrainUpdate(T.MAX_BATCH, 7),
        TrainUpdate(T.STATE, TrainingState.TRAINING),
        TrainUpdate(T.EPOCH, 3),
        TrainUpdate(T.BATCH, 2),
        TrainUpdate(T.LOSS, math.nan),
        job="991",
        attempt=1,
    )
    make_run(
        tmp_path / "sweep" / "a-run",
        TrainUpdate(T.STATE, TrainingState.TRAINING),
        TrainUpdate(T.VAL_LOSS, 0.25),
        TrainUpdate(T.STATE, TrainingState.DONE),
    )
    with (tmp_path / "sweep" / "a-run" / "status.jsonl").open("ab") as file:
        file.write(b"garbage\n")
    # Not runs: a checkpoint folder inside a run and a folder without a status file.
    make_run(tmp_path / "b-run" / "work", TrainUpdate(T.LOSS, 1.0))
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_json_lists_every_run_sorted_with_the_contract_keys(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", str(runs), "--json"]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert [s["run"] for s in summaries] == ["b-run", "sweep/a-run"]
    assert all(set(s) >= KEYS for s in summaries)
    b_run, a_run = summaries
    assert (b_run["state"], b_run["epoch_idx"], b_run["max_epochs"], b_run["batch_idx"]) == (
        "TRAINING",
        3,
        10,
        2,
    )
    assert b_run["loss"] is None  # NaN is not JSON: unknown/non-finite loss is null
    assert (b_run["attempt"], b_run["job"], b_run["val_loss"]) == (1, "991", -1)
    assert (a_run["state"], a_run["val_loss"], a_run["skipped_lines"]) == ("DONE", 0.25, 1)
    assert a_run["max_epochs"] == -1 and a_run["scheduler_state"] is None
    assert (b_run["phase"], a_run["phase"], a_run["reason"]) == ("TRAINING", "DONE", None)
    assert a_run["scheduler_age_s"] is None  # nobody was asked


def test_table(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "RUN", "PHASE", "EPOCH", "BATCH", "LOSS", "VAL_LOSS", "GPU%", "MEM", "ATTEMPT", "REASON"
    ]  # fmt: skip
    assert lines[1].split()[:4] == ["b-run", "TRAINING", "4/10", "3/7"]
    assert lines[2].split()[:2] == ["sweep/a-run", "DONE"]


def test_a_loss_that_diverged_reads_nan_not_unknown(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """b-run's loss is NaN (the writer records null): the table showed '-', as for a loss not
    known yet (its val_loss, never recorded). --json and --csv keep null and an empty cell."""
    import csv
    import io

    assert main(["status", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    b_run = dict(zip(header, lines[1].split(), strict=False))
    assert (b_run["RUN"], b_run["LOSS"], b_run["VAL_LOSS"]) == ("b-run", "nan", "-")
    assert main(["status", str(runs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["loss"] is None  # strict JSON: no NaN
    assert main(["status", str(runs), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert (rows[0]["run"], rows[0]["loss"], rows[0]["val_loss"]) == ("b-run", "", "-1")


def test_late_progress_of_a_replaced_attempt_is_not_the_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attempt 0 outlived its requeue and wrote epoch 7 and a loss after attempt 1 began its
    epoch 1: the table showed 7/10 and attempt 0's loss for attempt 1 (and --json the same)."""
    run_dir = tmp_path / "requeued"
    started = (TrainUpdate(T.MAX_EPOCH, 10), TrainUpdate(T.MAX_BATCH, 7))
    training = TrainUpdate(T.STATE, TrainingState.TRAINING)
    make_run(run_dir, *started, training, TrainUpdate(T.EPOCH, 5), TrainUpdate(T.LOSS, 0.5))
    make_run(
        run_dir,
        *started,
        training,
        TrainUpdate(T.EPOCH, 0),
        TrainUpdate(T.BATCH, 1),
        TrainUpdate(T.LOSS, 2.0),
        attempt=1,
    )
    late = (TrainUpdate(T.EPOCH, 6), TrainUpdate(T.BATCH, 0), TrainUpdate(T.LOSS, 0.45))
    make_run(run_dir, *late, TrainUpdate(T.VAL_LOSS, 0.4))
    assert main(["status", str(tmp_path), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)
    assert (summary["attempt"], summary["epoch_idx"], summary["batch_idx"]) == (1, 0, 1)
    assert (summary["loss"], summary["val_loss"], summary["best_val_loss"]) == (2.0, -1, None)
    assert main(["status", str(tmp_path)]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:5] == ["requeued", "TRAINING", "1/10", "2/7", "2"]


def test_late_pictures_and_facts_of_a_replaced_attempt_are_not_the_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attempt 0 outlived its requeue and wrote its environment (its time limit), a preview
    and its PSNR after attempt 1 began: --json showed attempt 0's time limit (the forecast of
    when attempt 1 hits its limit used it), its picture and a PSNR of a model the run does
    not offer, as the TUI's detail view did."""
    run_dir = tmp_path / "requeued"
    training = TrainUpdate(T.STATE, TrainingState.TRAINING)
    make_run(run_dir, training, TrainUpdate(T.EPOCH, 5))
    with StatusWriter(run_dir / "status.jsonl", attempt=1) as writer:
        writer.write(training)
        writer.write_extension("environment", EnvironmentValue(end_time=2000.0))
        writer.write_extension("preview", PreviewValue("previews/epoch_0001.png", 1, 20.0))
    with StatusWriter(run_dir / "status.jsonl", attempt=0) as writer:  # late, attempt 0
        writer.write_extension("environment", EnvironmentValue(end_time=1000.0))
        writer.write_extension("preview", PreviewValue("previews/epoch_0006.png", 6, 25.0))
        writer.write_extension("evaluation", EvaluationValue("clean.tif", 17.0, 26.0))
    assert main(["status", str(tmp_path), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)
    assert summary["attempt"] == 1
    assert summary["environment"] == {"end_time": 2000.0}
    assert (summary["preview_epoch"], summary["preview_psnr"]) == (1, 20.0)
    assert summary["psnr_history"] == [[1, 20.0]]
    assert (summary["psnr"], summary["evaluation"]) == (None, None)


def test_empty_and_missing_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["status", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "no such directory" in err and "Traceback" not in err


def test_console_script_and_module_entry(runs: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpc_runner", "status", str(runs), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(json.loads(result.stdout)) == 2
    hpc_runner = Path(sys.executable).parent / "hpc-runner"
    result = subprocess.run([str(hpc_runner), "status", str(runs)], capture_output=True, text=True)
    assert result.returncode == 0 and "sweep/a-run" in result.stdout


@pytest.mark.parametrize(("newer_val_loss", "best_kept"), [(0.4, False), (0.6, True)])
def test_a_model_recorded_by_an_earlier_attempt_names_the_newest_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], newer_val_loss: float, best_kept: bool
) -> None:
    """Attempt 0 recorded its model and stopped; attempt 1 (resumed) trained on and was
    killed. The views named attempt 0's last checkpoint, not the newer one a resume continues
    from, and kept its best val_loss though a newer validation was lower (the best checkpoint
    may then be the newer model, whose loss is not recorded)."""
    from hpc_runner.stream.record_values import ModelLocation
    from hpc_runner.stream.run_state import replay
    from hpc_runner.tui.model import RunEntry
    from hpc_runner.tui.run_info import info_text
    from hpc_runner.watch.meta import load_meta
    from hpc_runner.watch.report import needs_disk

    run_dir = tmp_path / "run"
    checkpoints = run_dir / "work" / "checkpoints"
    older, newer, best = (checkpoints / "run_0" / "last.ckpt", checkpoints / "run_1" / "last.ckpt",
                          checkpoints / "best" / "best.ckpt")  # fmt: skip
    recorded = ModelLocation(str(older), str(best), best_val_loss=0.5, best_epoch=2)
    with StatusWriter(run_dir / "status.jsonl", attempt=0) as writer:
        writer.write(TrainUpdate(T.STATE, TrainingState.TRAINING))
        writer.write(TrainUpdate(T.VAL_LOSS, 0.5))
        writer.write(TrainUpdate(T.CAREAMIST, recorded))
        writer.write(TrainUpdate(T.STATE, TrainingState.STOPPED))
    make_run(run_dir, TrainUpdate(T.STATE, TrainingState.TRAINING),
             TrainUpdate(T.VAL_LOSS, newer_val_loss), attempt=1)  # fmt: skip
    for index, path in enumerate((best, older, newer)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        os.utime(path, (1000 + index, 1000 + index))
    assert main(["status", str(tmp_path), "--json"]) == 0
    model = json.loads(capsys.readouterr().out)[0]["model"]
    assert model["checkpoint"] == str(newer.absolute())
    assert model["best_checkpoint"] == str(best)
    assert (model.get("best_val_loss"), model.get("best_epoch")) == (
        (0.5, 2) if best_kept else (None, None)
    )
    entry = RunEntry(str(run_dir), "run", run_dir)  # the detail view's facts: the same rule
    entry.run = replay(run_dir / "status.jsonl")
    meta = load_meta(run_dir, checkpoints=needs_disk(entry.run))
    shown = info_text(entry, meta, now=2000.0).plain
    assert "last checkpoint  work/checkpoints/run_1/last.ckpt" in shown
    assert ("saved at       val_loss 0.5" in shown) is best_kept
