"""Which run is best: by PSNR against ground truth where every finished run has one, else by
the lowest val_loss; and ``--summary`` says what the ranking means for Noise2Void."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hpc_runner.cli import main
from hpc_runner.stream.records import EvaluationValue
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter
from hpc_runner.watch.results import best, rank, ranking_metric

T = TrainUpdateType


def row(run: str, phase: str, loss: float | None, psnr: float | None) -> dict[str, Any]:
    return {"rank": None, "run": run, "phase": phase, "state": phase, "best_val_loss": loss,
            "psnr": psnr, "overrides": {}}  # fmt: skip


def test_psnr_ranks_when_every_finished_run_has_one() -> None:
    rows = [
        row("a", "DONE", 0.1, 20.0),
        row("b", "DONE", 0.3, 26.0),
        row("c", "QUEUED", None, None),
    ]
    assert ranking_metric(rows) == "psnr"
    assert [(r["run"], r["rank"]) for r in rank(rows)] == [("b", 1), ("a", 2), ("c", None)]
    assert best(rows)["run"] == "b"  # the higher PSNR wins, though its val_loss is worse
    rows.append(row("d", "DONE", 0.05, None))  # one finished run without ground truth
    assert ranking_metric(rows) == "best_val_loss" and best(rows)["run"] == "d"


def test_a_diverged_run_does_not_switch_the_sweep_to_val_loss() -> None:
    """A run that diverged to NaN has no PSNR and no val_loss: it made the whole sweep rank by
    val_loss, with a note asking for the ground truth that every run has."""
    rows = [
        row("a", "DONE", 0.1, 20.0),
        row("b", "DONE", 0.3, 26.0),
        row("nan", "DONE", None, None),
    ]
    assert ranking_metric(rows) == "psnr"
    assert [(r["run"], r["rank"]) for r in rank(rows)] == [("b", 1), ("a", 2), ("nan", None)]


def test_the_val_loss_ranked_is_the_offered_models() -> None:
    """A restart without a checkpoint hand-over trains afresh: its best.ckpt holds val_loss 0.12
    while an earlier attempt once reached 0.05. Ranked by 0.05, it beat a run whose model is
    0.08, and the summary offered the 0.12 model as the best."""
    from hpc_runner.watch.results import result_row

    def summary(run: str, lowest: float, model: float) -> dict[str, Any]:
        offered = {"best_checkpoint": f"/w/{run}/best.ckpt", "best_val_loss": model}
        return {"run": run, "phase": "DONE", "state": "DONE", "best_val_loss": lowest,
                "epoch_idx": 2, "max_epochs": 3, "attempt": 0, "model": offered}  # fmt: skip

    rows = [result_row(summary("A", 0.05, 0.12)), result_row(summary("B", 0.08, 0.08))]
    assert [(r["run"], r["best_val_loss"]) for r in rank(rows)] == [("B", 0.08), ("A", 0.12)]
    assert best(rows)["run"] == "B"


def _run(run_dir: Path, val_losses: list[float], psnr: float | None) -> None:
    with StatusWriter(run_dir / "status.jsonl") as writer:
        writer.write(TrainUpdate(T.STATE, TrainingState.TRAINING))
        for value in val_losses:
            writer.write(TrainUpdate(T.VAL_LOSS, value))
        writer.write(TrainUpdate(T.STATE, TrainingState.DONE))
        if psnr is not None:
            writer.write_extension("evaluation", EvaluationValue("clean.tif", 17.0, psnr))
    (run_dir / "run.yaml").write_text("careamics:\n  algorithm_config:\n    algorithm: n2v\n")


@pytest.mark.parametrize("with_truth", [True, False])
def test_summary_explains_the_ranking_of_noise2void(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], with_truth: bool
) -> None:
    _run(tmp_path / "a", [0.4, 0.2], 21.5 if with_truth else None)
    _run(tmp_path / "b", [0.5, 0.3], 24.25 if with_truth else None)
    assert main(["status", str(tmp_path), "--summary"]) == 0
    out = capsys.readouterr().out
    if with_truth:
        assert "ranked by PSNR against the ground truth" in out
        assert "best: b (PSNR 24.25 dB)" in out
    else:
        assert "Noise2Void's val_loss is a self-supervised loss" in out
        assert "best: a (best val_loss 0.2)" in out


def test_a_run_diverged_after_a_finite_val_loss_ranks_last_by_psnr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that diverged after its first validation has a finite val_loss (0.3) and, measured
    against the ground truth, no PSNR (its prediction is NaN). It switched the whole sweep to
    val_loss and, by that 0.3, was named best over a run of PSNR 24.25."""
    import json

    _run(tmp_path / "a", [0.4, 0.2], 21.5)
    _run(tmp_path / "b", [0.5, 0.45], 24.25)
    _run(tmp_path / "diverged", [0.3, float("nan"), float("nan")], None)
    with StatusWriter(tmp_path / "diverged" / "status.jsonl") as writer:  # measured: no PSNR
        writer.write_extension("evaluation", EvaluationValue("clean.tif", 17.0, None))
    assert main(["status", str(tmp_path), "--summary", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    ranked = [(row["run"], row["rank"]) for row in summary["runs"]]
    assert ranked == [("b", 1), ("a", 2), ("diverged", None)]
    assert main(["status", str(tmp_path), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "ranked by PSNR against the ground truth" in out and "best: b (PSNR 24.25 dB)" in out


def test_the_summary_shows_a_run_that_diverged_as_nan_not_as_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run whose every val_loss was NaN (the writer records null) showed BEST_VAL_LOSS '-',
    as a run that has not validated yet; it ranks last and is never best, and JSON and CSV
    keep their null / empty cell."""
    import csv
    import io
    import json

    _run(tmp_path / "a", [0.4, 0.2], None)
    _run(tmp_path / "diverged", [float("nan"), float("nan")], None)
    _run(tmp_path / "unvalidated", [], None)
    assert main(["status", str(tmp_path), "--summary"]) == 0
    out = capsys.readouterr().out
    table = {line.split()[1]: line.split() for line in out.splitlines()[1:4]}
    assert [table[run][:5] for run in ("a", "diverged", "unvalidated")] == [
        ["1", "a", "DONE", "-", "0.2"],
        ["-", "diverged", "DONE", "-", "nan"],
        ["-", "unvalidated", "DONE", "-", "-"],
    ]
    assert "best: a (best val_loss 0.2)" in out
    assert main(["status", str(tmp_path), "--summary", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)  # strict: NaN would not parse as null
    assert summary["best"]["run"] == "a"
    assert [(r["run"], r["rank"], r["best_val_loss"]) for r in summary["runs"]] == [
        ("a", 1, 0.2),
        ("diverged", None, None),
        ("unvalidated", None, None),
    ]
    assert main(["status", str(tmp_path), "--summary", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["run"], r["best_val_loss"], r["val_loss"]) for r in rows] == [
        ("a", "0.2", "0.2"),
        ("diverged", "", ""),
        ("unvalidated", "", "-1"),
    ]


def test_runs_of_equal_value_share_their_rank_and_the_best_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs of one seed whose swept value changed nothing reach the same PSNR: --summary
    ranked them 1 and 2 and named 'best: a' alone, as if b were worse (only its name sorts
    later). They share rank 1, the best line names the other, and --json lists it."""
    import json

    _run(tmp_path / "a", [0.4, 0.2], 24.25)
    _run(tmp_path / "b", [0.4, 0.2], 24.25)
    _run(tmp_path / "c", [0.5, 0.3], 21.5)
    assert main(["status", str(tmp_path), "--summary"]) == 0
    out = capsys.readouterr().out
    table = {line.split()[1]: line.split()[0] for line in out.splitlines()[1:4]}
    assert table == {"a": "1", "b": "1", "c": "3"}
    lines = out.splitlines()
    best_line = lines.index("best: a (PSNR 24.25 dB)")
    assert lines[best_line + 1].startswith("  tied with: b ")
    assert main(["status", str(tmp_path), "--summary", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["best"]["run"], summary["tied_with"]) == ("a", ["b"])
    assert [(r["run"], r["rank"]) for r in summary["runs"]] == [("a", 1), ("b", 1), ("c", 3)]


def test_the_summary_says_when_the_best_model_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checkpoints deleted to free space: --summary named the best model's path as if it were
    there, the file a user would load to denoise."""
    from hpc_runner.stream.records import ModelLocation

    _run(tmp_path / "a", [0.4, 0.2], None)
    best = tmp_path / "a" / "work" / "checkpoints" / "best" / "best.ckpt"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"weights")
    with StatusWriter(tmp_path / "a" / "status.jsonl") as writer:
        location = ModelLocation(
            checkpoint=str(best), best_checkpoint=str(best), best_val_loss=0.2, best_epoch=1
        )
        writer.write(TrainUpdate(T.CAREAMIST, location))
    assert main(["status", str(tmp_path), "--summary"]) == 0
    assert f"  model: {best} (saved at epoch 2, val_loss 0.2)" in capsys.readouterr().out
    best.unlink()
    assert main(["status", str(tmp_path), "--summary"]) == 0
    line = f"  model: {best} (saved at epoch 2, val_loss 0.2) - not on disk any more"
    assert line in capsys.readouterr().out.splitlines()
