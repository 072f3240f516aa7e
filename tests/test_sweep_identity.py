"""Sweep runs are identified by their values, not by their position in a list (issue 10).

A real local sweep over two data files with one basename (one folder with a space) trains
both; the sweep is then reordered and grown (``d/a`` first) and submitted again: only the new
value trains, every value trains exactly once, and ``status --summary`` credits each result to
the value its run trained on (checked against each run's own ``run.yaml``). Sweeps named by
position by older versions are read and matched by their records; a name taken by a run with
other values is a conflict, never a skip; checkpoints handed to a job are absolute.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import yaml

from hpc_runner.api import wait
from hpc_runner.cli import main
from hpc_runner.control.jobfile import read_job_file
from hpc_runner.control.submit import prepare_run
from hpc_runner.control.sweep_runs import RUN_VALUES_FILE, recorded_run, write_sweep_file
from hpc_runner.spec.errors import SpecError
from hpc_runner.spec.sweep import SweepRun, SweepSpec
from hpc_runner.spec.sweep_check import check_sweep
from hpc_runner.spec.sweep_file import load_sweep
from hpc_runner.spec.sweep_names import fragment
from hpc_runner.stream.runs import RUN_SPEC_FILE, STATUS_FILE, latest_checkpoint
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter
from tests.run_support import cli, write_spec

WAIT_S = 300  # three tiny trainings on a shared 2-core machine, each importing careamics

FOLDERS = ("d/b", "d/with space", "d/a")


def write_images(root: Path) -> None:
    """One 64x64 noisy image per folder, all named ``noisy.tif`` (and each different)."""
    clean = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    for seed, folder in enumerate(FOLDERS):
        noise = np.random.default_rng(seed).normal(0, 0.2, clean.shape)
        (root / folder).mkdir(parents=True)
        tifffile.imwrite(root / folder / "noisy.tif", (clean + noise).astype(np.float32))


def write_sweep(path: Path, trains: list[str]) -> None:
    document = {"name": "ident", "base": "tiny.yaml", "grid": {"data.train": trains}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def trained_on(run_dir: Path) -> str:
    """The data file the run was submitted with: its resolved ``run.yaml`` (what the node read)."""
    document = yaml.safe_load((run_dir / RUN_SPEC_FILE).read_text(encoding="utf-8"))
    return str(document["data"]["train"])


def trainings(run_dir: Path) -> int:
    """How many times the run started training: its ``TRAINING`` state records."""
    lines = (run_dir / STATUS_FILE).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return sum(r["type"] == "state" and r["value"] in ("TRAINING", 1) for r in records)


def submit(sweep_path: Path, runs: Path) -> Any:
    answer = cli("sweep", str(sweep_path), "--cluster", "local", "--runs-dir", str(runs))
    assert answer.returncode == 0, answer.stderr
    return answer


@pytest.mark.training
def test_reordered_and_grown_sweep_trains_each_value_once_and_credits_it(
    tmp_path: Path,
) -> None:
    write_spec(tmp_path, epochs=1)
    write_images(tmp_path)
    sweep_path = tmp_path / "sweep.yaml"
    runs = tmp_path / "runs"
    sweep_dir = runs / "ident"

    write_sweep(sweep_path, ["d/b/noisy.tif", "d/with space/noisy.tif"])
    first = submit(sweep_path, runs)
    assert "2 runs submitted" in first.stdout
    wait(sweep_dir, progress=False, interval_s=1, scheduler_interval_s=2, timeout_s=WAIT_S)

    # d/a first, the two others after it in another order: only d/a is new
    write_sweep(sweep_path, ["d/a/noisy.tif", "d/with space/noisy.tif", "d/b/noisy.tif"])
    dry = cli("sweep", str(sweep_path), "--dry-run", "--json", "--runs-dir", str(runs))
    assert dry.returncode == 0, dry.stderr
    entries = json.loads(dry.stdout)
    actions = {entry["overrides"]["data.train"]: entry["action"] for entry in entries}
    assert actions == {
        "d/a/noisy.tif": "new",
        "d/with space/noisy.tif": "skip",
        "d/b/noisy.tif": "skip",
    }
    second = submit(sweep_path, runs)
    assert "1 runs submitted" in second.stdout, second.stdout
    assert second.stdout.count("skipped ") == 2
    rows = wait(sweep_dir, progress=False, interval_s=1, scheduler_interval_s=2, timeout_s=WAIT_S)
    assert [row["state"] for row in rows] == ["DONE"] * 3

    run_dirs = sorted(path.parent for path in sweep_dir.glob(f"*/{STATUS_FILE}"))
    by_data = {trained_on(run_dir): run_dir for run_dir in run_dirs}
    assert sorted(by_data) == sorted(str(tmp_path / folder / "noisy.tif") for folder in FOLDERS)
    assert len(run_dirs) == 3  # no value has a second run directory
    for run_dir in run_dirs:  # each value trained exactly once, in one job
        record = read_job_file(run_dir)
        assert record is not None and len(record.submissions) == 1, run_dir.name
        assert trainings(run_dir) == 1, run_dir.name

    summary = cli("status", str(sweep_dir), "--summary", "--json")
    assert summary.returncode == 0, summary.stderr
    document = json.loads(summary.stdout)
    credited = {
        row["run"]: str(tmp_path / row["overrides"]["data.train"]) for row in document["runs"]
    }
    assert credited == {run_dir.name: trained_on(run_dir) for run_dir in run_dirs}
    assert {row["run"]: row["values"]["data.train"] for row in document["runs"]} == credited

    exported = cli("status", str(sweep_dir), "--summary", "--csv")
    assert exported.returncode == 0, exported.stderr
    table = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {row["run"]: str(tmp_path / row["set:data.train"]) for row in table} == credited


# -- sweeps made by an older hpc-runner (positional names, values only in sweep.yaml) ------------


def make_old_runs(
    sweep: SweepSpec, sweep_dir: Path, runs: dict[str, tuple[SweepRun, Any]], manifest: dict
) -> None:
    """Run directories as hpc-runner made them before runs recorded their values: named by
    position, a finished status file, and ``sweep.yaml`` with ``runs: {name: overrides}``
    (``manifest``, which may lie as the old resubmission left it)."""
    for loss, (name, (_, spec)) in enumerate(runs.items(), start=1):
        run_dir = prepare_run(replace(spec, name=name), sweep_dir)
        assert run_dir.name == name and not (run_dir / RUN_VALUES_FILE).exists()
        with StatusWriter(run_dir / STATUS_FILE) as writer:
            writer.write(TrainUpdate(TrainUpdateType.STATE, TrainingState.TRAINING))
            writer.write(TrainUpdate(TrainUpdateType.VAL_LOSS, loss / 10))
            writer.write(TrainUpdate(TrainUpdateType.STATE, TrainingState.DONE))
    old = [SweepRun(name, overrides) for name, overrides in manifest.items()]
    write_sweep_file(sweep, sweep_dir, old)


def summary_values(sweep_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["status", str(sweep_dir), "--summary", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    return {row["run"]: row["values"].get("data.train") for row in rows}


def plan(sweep_path: Path, runs: Path, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["sweep", str(sweep_path), "--dry-run", "--json", "--runs-dir", str(runs)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.training  # validates the runs as job specs: imports careamics (trains nothing)
def test_sweeps_of_positional_names_are_read_and_matched_by_their_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_spec(tmp_path, epochs=1)
    write_images(tmp_path)
    sweep_path = tmp_path / "sweep.yaml"
    runs = tmp_path / "runs"
    b, space, a = (str(tmp_path / folder / "noisy.tif") for folder in FOLDERS)

    # an honest old sweep: sweep.yaml names each directory's values
    write_sweep(sweep_path, ["d/b/noisy.tif", "d/with space/noisy.tif"])
    sweep = load_sweep(sweep_path)
    first, second = check_sweep(sweep)
    old = {"train=noisy.tif": first, "train=noisy.tif-2": second}
    manifest = {name: run.overrides for name, (run, _) in old.items()}
    make_old_runs(sweep, runs / "ident", old, manifest)
    assert summary_values(runs / "ident", capsys) == {
        "train=noisy.tif": b,
        "train=noisy.tif-2": space,
    }
    write_sweep(sweep_path, ["d/a/noisy.tif", "d/with space/noisy.tif", "d/b/noisy.tif"])
    entries = plan(sweep_path, runs, capsys)
    assert [(e["run"], e["action"]) for e in entries] == [
        (f"train={fragment('d/a/noisy.tif')}", "new"),
        ("train=noisy.tif-2", "skip"),
        ("train=noisy.tif", "skip"),
    ]

    # an old sweep after the old defect: reordered, sweep.yaml rewritten by position, d/a never
    # trained and "with space" trained twice (run.yaml says what each directory trained on)
    (tmp_path / "runs2").mkdir()
    write_sweep(sweep_path, ["d/b/noisy.tif", "d/with space/noisy.tif"])
    sweep = load_sweep(sweep_path)
    first, second = check_sweep(sweep)
    old = {"train=noisy.tif": first, "train=noisy.tif-2": second, "train=noisy.tif-3": second}
    lies = {
        "train=noisy.tif": {"data.train": "d/a/noisy.tif"},
        "train=noisy.tif-2": {"data.train": "d/b/noisy.tif"},
        "train=noisy.tif-3": {"data.train": "d/with space/noisy.tif"},
    }
    make_old_runs(sweep, tmp_path / "runs2" / "ident", old, lies)
    assert summary_values(tmp_path / "runs2" / "ident", capsys) == {
        "train=noisy.tif": b,
        "train=noisy.tif-2": space,
        "train=noisy.tif-3": space,
    }
    write_sweep(sweep_path, ["d/a/noisy.tif", "d/b/noisy.tif", "d/with space/noisy.tif"])
    entries = plan(sweep_path, tmp_path / "runs2", capsys)
    assert [(e["overrides"]["data.train"], e["run"], e["action"]) for e in entries] == [
        ("d/a/noisy.tif", f"train={fragment('d/a/noisy.tif')}", "new"),
        ("d/b/noisy.tif", "train=noisy.tif", "skip"),
        ("d/with space/noisy.tif", "train=noisy.tif-2", "skip"),
    ]
    assert a not in summary_values(tmp_path / "runs2" / "ident", capsys).values()


def test_a_lying_old_record_credits_only_what_run_yaml_confirms(tmp_path: Path) -> None:
    """sweep.yaml's entry and run.yaml disagree on the data: the run trained on run.yaml's file,
    and its other sweep.yaml values (rewritten by the same positional mistake) are not trusted.
    (A hand-made run.yaml: the disagreement is what older versions left, not a state that a
    current submission can make.)"""
    run_dir = tmp_path / "ident" / "train=noisy.tif_seed=1"
    run_dir.mkdir(parents=True)
    (run_dir / RUN_SPEC_FILE).write_text(yaml.safe_dump({"data": {"train": "/x/d/b/noisy.tif"}}))
    (tmp_path / "ident" / "sweep.yaml").write_text(
        yaml.safe_dump(
            {
                "source": "/x/sweep.yaml",
                "runs": {run_dir.name: {"data.train": "d/a/noisy.tif", "training.seed": 1}},
            }
        )
    )
    record = recorded_run(run_dir)
    assert record.overrides == record.values == {"data.train": "/x/d/b/noisy.tif"}
    assert not record.complete and record.identity is None
    honest = {"data.train": "d/b/noisy.tif", "training.seed": 1}
    (tmp_path / "ident" / "sweep.yaml").write_text(
        yaml.safe_dump({"source": "/x/sweep.yaml", "runs": {run_dir.name: honest}})
    )
    record = recorded_run(run_dir)
    assert record.overrides == honest and record.complete
    assert record.values == {"data.train": "/x/d/b/noisy.tif", "training.seed": 1}


# -- a name taken by another run -----------------------------------------------------------------


@pytest.mark.training
def test_a_name_taken_by_other_values_is_a_conflict_never_a_skip(tmp_path: Path) -> None:
    """Two sweep files of one name in two folders list ``noisy.tif`` (relative: two different
    files) into one runs directory: the second sweep's run is not the first's. It gets a name of
    its own (the name + a hash of its values), trains once, and is found again next time."""
    runs = tmp_path / "runs"
    paths = []
    for folder, seed in (("one", 0), ("two", 1)):
        write_spec(tmp_path / folder, epochs=1)
        noise = np.random.default_rng(seed).normal(0, 0.2, (64, 64)).astype(np.float32)
        tifffile.imwrite(tmp_path / folder / "noisy.tif", noise)
        paths.append(tmp_path / folder / "sweep.yaml")
        write_sweep(paths[-1], ["noisy.tif"])
    first = cli("sweep", str(paths[0]), "--cluster", "debug", "--runs-dir", str(runs))
    assert first.returncode == 0, first.stderr
    assert "train=noisy.tif: DONE" in first.stdout.splitlines()

    second = cli("sweep", str(paths[1]), "--cluster", "debug", "--runs-dir", str(runs))
    assert second.returncode == 0, second.stderr
    (note,) = [line for line in second.stderr.splitlines() if "conflict" in line]
    other = str(tmp_path / "one" / "noisy.tif")
    mine = str(tmp_path / "two" / "noisy.tif")
    assert f"train=noisy.tif is another run (data.train={json.dumps(other)}" in note
    assert f"not this one (data.train={json.dumps(mine)})" in note
    (own,) = [line.split(": ")[0] for line in second.stdout.splitlines() if "DONE" in line]
    assert own.startswith("train=noisy.tif@") and note.endswith(f"this run is {own}")
    sweep_dir = runs / "ident"
    assert trained_on(sweep_dir / "train=noisy.tif") == other
    assert trained_on(sweep_dir / own) == mine
    for run_dir in (sweep_dir / "train=noisy.tif", sweep_dir / own):
        assert trainings(run_dir) == 1

    again = cli("sweep", str(paths[1]), "--cluster", "debug", "--runs-dir", str(runs))
    assert again.returncode == 0, again.stderr
    assert f"skipped {own}: exists: DONE" in again.stdout and "conflict" not in again.stderr

    # a directory with no record of its values might be this very run: an error, not a guess
    (sweep_dir / "train=noisy.tif" / RUN_VALUES_FILE).unlink()
    (sweep_dir / "sweep.yaml").unlink()
    third = cli("sweep", str(paths[0]), "--dry-run", "--runs-dir", str(runs))
    assert third.returncode == 2
    assert third.stderr.startswith(f"hpc-runner sweep: {sweep_dir / 'train=noisy.tif'}: ")
    assert "no record of its values" in third.stderr and "Traceback" not in third.stderr


def test_latest_checkpoint_is_absolute_from_a_relative_run_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path("runs") / "r" / "work" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "old.ckpt").write_bytes(b"1")
    os.utime(folder / "old.ckpt", ns=(1, 1))
    (folder / "new.ckpt").write_bytes(b"2")
    found = latest_checkpoint(Path("runs") / "r")
    assert found == tmp_path / folder / "new.ckpt" and found.is_absolute()
    assert latest_checkpoint("nowhere") is None


def test_two_only_failed_at_once_never_give_one_run_two_jobs(tmp_path: Path) -> None:
    """Two ``sweep --only-failed`` started together both planned to retry a cancelled run and
    both submitted: two jobs trained into one run's files (found by an adversarial review).
    The retry is now checked under the run's lock: the plan made before the other command
    submitted is refused, and the run keeps one new job."""
    from hpc_runner.api import Sweep
    from hpc_runner.control.sweep_submit import plan_sweep, submit_plan
    from hpc_runner.errors import HpcRunnerError
    from tests.run_support import cli, write_spec

    spec_dir = tmp_path / "spec"
    write_spec(spec_dir, epochs=200)
    sweep = Sweep("tiny.yaml", grid={"training.seed": [1]}, name="race", directory=spec_dir)
    runs = tmp_path / "runs"
    (submitted,) = sweep.submit(runs, cluster="local")
    try:
        cancelled = cli("cancel", str(submitted.run_dir))
        assert cancelled.returncode == 0, cancelled.stderr
        checked = sweep.validate()
        sweep_dir = runs / "race"
        late, early = (plan_sweep(checked, sweep_dir, only_failed=True) for _ in range(2))
        assert [item.action for item in late + early] == ["retry", "retry"]
        (retried,) = submit_plan(early, sweep.spec, sweep_dir, cluster="local")
        with pytest.raises(HpcRunnerError, match="another command submitted it meanwhile"):
            submit_plan(late, sweep.spec, sweep_dir, cluster="local")
        record = read_job_file(submitted.run_dir)
        assert record is not None
        assert [s.job_id for s in record.submissions] == [submitted.job_id, retried.job_id]
    finally:
        cli("cancel", str(submitted.run_dir))


def test_a_sweep_named_like_a_run_does_not_go_inside_that_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``submit`` made ``runs/ident``; a sweep named ``ident`` then put its runs, its array's
    logs and its sweep.yaml inside that run, and ``--summary`` ranked the run among them."""
    write_spec(tmp_path, epochs=1)
    tifffile.imwrite(tmp_path / "noisy.tif", np.zeros((64, 64), np.float32))
    write_sweep(tmp_path / "sweep.yaml", ["noisy.tif"])
    run_dir = tmp_path / "runs" / "ident"
    run_dir.mkdir(parents=True)
    (run_dir / RUN_SPEC_FILE).write_text("name: ident\n")
    for runs_dir_holds in ("run.yaml only", "run.yaml and status.jsonl"):
        if runs_dir_holds.endswith("status.jsonl"):
            (run_dir / STATUS_FILE).write_text("")
        args = ["sweep", str(tmp_path / "sweep.yaml"), "--runs-dir", str(tmp_path / "runs")]
        assert main([*args, "--dry-run"]) == 2, runs_dir_holds
        assert capsys.readouterr().err == (
            f"hpc-runner sweep: {run_dir}: is the directory of a run, not of a sweep: name the "
            "sweep otherwise (its 'name:') or give another --runs-dir\n"
        )
    assert sorted(path.name for path in run_dir.iterdir()) == [RUN_SPEC_FILE, STATUS_FILE]


# -- the same values, another training -----------------------------------------------------------


@pytest.mark.training
def test_a_run_trained_with_other_settings_is_never_skipped_as_this_sweeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sweep's runs were found by the values it varies only: after the base spec changed
    (more epochs), submitting the sweep again skipped every run as DONE, and ``--summary``
    ranked one-epoch models as the new sweep's. Now that is refused, naming the run, the key
    and the fix; a base edited without changing what trains (a comment, key order) and a
    run.yaml from another careamics (fields added, another format version) still match."""
    spec_path = write_spec(tmp_path, epochs=1)
    tifffile.imwrite(tmp_path / "noisy.tif", np.zeros((64, 64), np.float32))
    sweep_path = tmp_path / "sweep.yaml"
    sweep_path.write_text(
        yaml.safe_dump({"name": "ident", "base": "tiny.yaml", "grid": {"training.seed": [1]}})
    )
    runs = tmp_path / "runs"
    first = cli("sweep", str(sweep_path), "--cluster", "debug", "--runs-dir", str(runs))
    assert first.returncode == 0, first.stderr
    run_dir = runs / "ident" / "seed=1"
    assert trainings(run_dir) == 1
    base = yaml.safe_load(spec_path.read_text())
    args = ["sweep", str(sweep_path), "--dry-run", "--json", "--runs-dir", str(runs)]

    base["training"]["epochs"] = 3
    spec_path.write_text(yaml.safe_dump(base))
    for only_failed in ([], ["--only-failed"]):
        assert main([*args, *only_failed]) == 2
        error = capsys.readouterr().err
        assert error == (
            f"hpc-runner sweep: {runs / 'ident'}: 1 run(s) of this sweep exist, trained with "
            "other settings than this submission (found by the values the sweep varies; their "
            "run.yaml says what they trained with):\n"
            "  seed=1: careamics.training_config.trainer_params.max_epochs: 1 there, 3 now\n"
            "kept as they are, their results would stand for settings they were not trained "
            "with: give this sweep another name (its 'name:'), or move that sweep directory "
            "away\n"
        )
    # crashed with nothing to continue from, a retry would still keep its best checkpoint of
    # the settings of then: refused too
    with StatusWriter(run_dir / STATUS_FILE) as writer:
        writer.write(TrainUpdate(TrainUpdateType.STATE, TrainingState.CRASHED))
    for checkpoint in (run_dir / "work").rglob("*.ckpt"):
        if checkpoint.parent.name != "best":
            checkpoint.unlink()
    assert main([*args, "--only-failed"]) == 2
    assert "seed=1: careamics.training_config" in capsys.readouterr().err

    # a key careamics passes on as given, set now and not before (torch's default then)
    base["training"]["epochs"] = 1
    base["training"]["optimizer_params"] = {"lr": 0.5}
    spec_path.write_text(yaml.safe_dump(base))
    assert main(args) == 2
    assert (
        "  seed=1: careamics.algorithm_config.optimizer.parameters.lr: unset there, 0.5 now\n"
        in capsys.readouterr().err
    )
    del base["training"]["optimizer_params"]

    base["training"]["epochs"] = 1  # back, in another key order and with a comment
    spec_path.write_text("# the base\n" + yaml.safe_dump(dict(reversed(list(base.items())))))
    recorded = yaml.safe_load((run_dir / RUN_SPEC_FILE).read_text())
    recorded["careamics"]["version"] = "0.0.1"  # (as another careamics would have written it)
    recorded["careamics"]["data_config"]["a_field_added_later"] = 7
    del recorded["careamics"]["training_config"]["checkpoint_params"]
    (run_dir / RUN_SPEC_FILE).write_text(yaml.safe_dump(recorded, sort_keys=False))
    assert main(args) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert (entry["run"], entry["action"]) == ("seed=1", "skip")
    assert trainings(run_dir) == 1


@pytest.mark.parametrize(
    ("recorded", "now", "changes"),
    [
        ({"a": 12, "b": {"c": [1, 2]}}, {"a": 12.0, "b": {"c": [1, 2]}}, []),
        ({"a": True}, {"a": 1}, [("careamics.a", True, 1)]),
        ({"a": None}, {"a": 0}, [("careamics.a", None, 0)]),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}, [("careamics.a", [1, 2], [1, 2, 3])]),
        (
            {"a": [{"p": 0.5, "old": 1}]},
            {"a": [{"p": 0.7, "new": 2}]},
            [("careamics.a.0.p", 0.5, 0.7)],
        ),
        ({"a": {"b": 1}}, {"a": "text"}, [("careamics.a", {"b": 1}, "text")]),
        (
            {"version": "0.2", "experiment_name": "x"},
            {"version": "0.3", "experiment_name": "y"},
            [],
        ),
    ],
)
def test_training_changes_compare_what_both_sides_hold(
    recorded: Any, now: Any, changes: list[tuple[str, Any, Any]]
) -> None:
    from hpc_runner.control.sweep_runs import UNSET, training_changes

    found = training_changes({"careamics": recorded}, {"careamics": now})
    assert [(key, repr(old) if old is UNSET else old, new) for key, old, new in found] == changes


@pytest.mark.training  # validates the run as a job spec: imports careamics (trains nothing)
def test_a_sweep_that_cannot_be_recorded_submits_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sweep.yaml was written after the jobs were submitted: where it could not be (here a
    directory of that name), the command said it failed while its job ran, and printed no job
    (found by the submission helper). It is written first now: nothing is submitted."""
    write_spec(tmp_path, epochs=1)
    tifffile.imwrite(tmp_path / "noisy.tif", np.zeros((64, 64), np.float32))
    write_sweep(tmp_path / "sweep.yaml", ["noisy.tif"])
    sweep_dir = tmp_path / "runs" / "ident"
    (sweep_dir / "sweep.yaml").mkdir(parents=True)
    args = ["sweep", str(tmp_path / "sweep.yaml"), "--cluster", "local"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 1
    last = capsys.readouterr().err.splitlines()[-1]  # (after careamics' notes)
    assert last == (
        f"hpc-runner sweep: cannot record the sweep in {sweep_dir}/sweep.yaml: is a directory "
        "(nothing was submitted)"
    )
    assert sorted(path.name for path in sweep_dir.iterdir()) == ["sweep.yaml"]


@pytest.mark.training
def test_one_hdf5_dataset_spelled_apart_is_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``stack.h5:g/d``, ``stack.h5:/g//d`` and ``stack.h5:/g/d`` name one dataset: a sweep
    submitted again with another spelling trained it a second time, listing two spellings
    trained it twice, and a run recorded by an older hpc-runner (the inner path as the user
    wrote it) was refused as trained on other data. Now all are the one run."""
    import h5py

    write_spec(tmp_path, epochs=1)
    with h5py.File(tmp_path / "stack.h5", "w") as handle:
        handle["g/d"] = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    sweep_path = tmp_path / "sweep.yaml"
    with pytest.raises(SpecError, match="names the same file as"):
        write_sweep(sweep_path, ["stack.h5:g/d", "stack.h5:/g//d"])
        load_sweep(sweep_path)
    write_sweep(sweep_path, ["stack.h5:g/d"])
    runs = tmp_path / "runs"
    first = cli("sweep", str(sweep_path), "--cluster", "debug", "--runs-dir", str(runs))
    assert first.returncode == 0, first.stderr
    (run_dir,) = [path for path in (runs / "ident").iterdir() if (path / STATUS_FILE).exists()]
    assert trainings(run_dir) == 1
    source = f"{tmp_path / 'stack.h5'}:/g/d"
    assert trained_on(run_dir) == source

    write_sweep(sweep_path, ["stack.h5:/g//d/"])
    assert [(entry["run"], entry["action"]) for entry in plan(sweep_path, runs, capsys)] == [
        (run_dir.name, "skip")
    ]
    # recorded as an older hpc-runner wrote the inner path: as the sweep file spelled it
    for name in (RUN_VALUES_FILE, RUN_SPEC_FILE):
        text = (run_dir / name).read_text(encoding="utf-8")
        (run_dir / name).write_text(text.replace(source, f"{tmp_path / 'stack.h5'}:g/d"))
    assert trained_on(run_dir).endswith("stack.h5:g/d")
    assert [(entry["run"], entry["action"]) for entry in plan(sweep_path, runs, capsys)] == [
        (run_dir.name, "skip")
    ]
    assert trainings(run_dir) == 1


@pytest.mark.training
def test_a_key_listed_at_the_base_value_is_the_run_that_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The base trains with seed 42 and one epoch: a sweep that lists ``training.seed: [42]``
    (in its grid or zip) or stops listing ``training.epochs: [1]`` names the runs that exist
    with other values, and submitting it trained each a second time into a directory of its
    own (``--summary`` listed both). Such a run is now the existing run, found by its settings
    (said in a note), and nothing records it otherwise; a run that trains alike but is measured
    against another ground truth is another run, and a run that two existing runs are is not
    guessed at."""
    import shutil

    from hpc_runner.api import Sweep
    from hpc_runner.control.sweep_runs import SWEEP_FILE

    write_spec(tmp_path, epochs=1)
    for seed, name in enumerate(("a", "b", "c")):
        truth = np.random.default_rng(seed).normal(size=(64, 64)).astype(np.float32)
        np.save(tmp_path / f"{name}.npy", truth)
    sweep_path, runs = tmp_path / "sweep.yaml", tmp_path / "runs"
    sweep_dir = runs / "ident"

    def write(grid: dict[str, list[Any]], zipped: dict[str, list[Any]] | None = None) -> None:
        document = {"name": "ident", "base": "tiny.yaml", "grid": grid, "zip": zipped or {}}
        sweep_path.write_text(yaml.safe_dump(document, sort_keys=False))

    def made() -> dict[str, str]:
        """Ground truth -> run directory, by each run's own record of its values."""
        return {
            json.loads((path / RUN_VALUES_FILE).read_text())["overrides"][
                "evaluate.ground_truth"
            ]: path.name
            for path in sweep_dir.iterdir()
            if (path / STATUS_FILE).exists()
        }

    write({"evaluate.ground_truth": ["a.npy", "b.npy"], "training.epochs": [1]})
    first = cli("sweep", str(sweep_path), "--cluster", "debug", "--runs-dir", str(runs))
    assert first.returncode == 0, first.stderr
    own = made()
    assert sorted(own) == ["a.npy", "b.npy"]
    records = {name: (sweep_dir / name / RUN_VALUES_FILE).read_bytes() for name in own.values()}
    entries = yaml.safe_load((sweep_dir / SWEEP_FILE).read_text())["runs"]

    # the base's seed listed, and a third ground truth: only that one trains, for real
    write({"evaluate.ground_truth": ["a.npy", "b.npy", "c.npy"], "training.epochs": [1],
           "training.seed": [42]})  # fmt: skip
    again = cli("sweep", str(sweep_path), "--cluster", "debug", "--runs-dir", str(runs))
    assert again.returncode == 0, again.stderr
    for truth in ("a.npy", "b.npy"):
        assert f"skipped {own[truth]}: exists: DONE" in again.stdout
        assert f"is the existing run {own[truth]} (" in again.stderr
    assert "1 runs submitted (debug)" in again.stdout
    now = made()
    assert {truth: now[truth] for truth in own} == own and "c.npy" in now
    assert all(trainings(sweep_dir / name) == 1 for name in now.values())
    assert sorted(summary_values(sweep_dir, capsys)) == sorted(now.values())
    # the runs found by their settings keep their records: they stay the runs they were
    assert {name: (sweep_dir / name / RUN_VALUES_FILE).read_bytes() for name in records} == records
    kept = yaml.safe_load((sweep_dir / SWEEP_FILE).read_text())["runs"]
    assert {name: kept[name] for name in entries} == entries

    # the seed as a zip key, the epochs key dropped, the first sweep again: all three exist
    sweeps = [
        ({"evaluate.ground_truth": ["a.npy", "b.npy", "c.npy"]}, {"training.seed": [42]}),
        ({"evaluate.ground_truth": ["a.npy", "b.npy", "c.npy"]}, None),
        ({"evaluate.ground_truth": ["a.npy", "b.npy"], "training.epochs": [1]}, None),
    ]
    for grid, zipped in sweeps:
        write(grid, zipped)
        found = {e["overrides"]["evaluate.ground_truth"]: e for e in plan(sweep_path, runs, capsys)}
        assert {truth: entry["run"] for truth, entry in found.items()} == {
            truth: now[truth] for truth in grid["evaluate.ground_truth"]
        }
        assert {entry["action"] for entry in found.values()} == {"skip"}
    # one planning function: the API's Sweep submits nothing either
    sweep = Sweep("tiny.yaml", grid=sweeps[1][0], name="ident", directory=tmp_path)
    assert sweep.submit(runs, cluster="debug") == []

    # one training in two directories (copied by hand): which one a run is, is not guessed
    shutil.copytree(sweep_dir / now["a.npy"], sweep_dir / "copy")
    write({"evaluate.ground_truth": ["a.npy"], "training.seed": [7]})
    assert [entry["action"] for entry in plan(sweep_path, runs, capsys)] == ["new"]
    write({"evaluate.ground_truth": ["a.npy"]})
    assert main(["sweep", str(sweep_path), "--dry-run", "--runs-dir", str(runs)]) == 2
    error = capsys.readouterr().err
    assert "2 runs of this sweep exist with the settings of its run ground_truth=" in error
    assert f"{sorted(['copy', now['a.npy']])[0]}, " in error


@pytest.mark.training
def test_one_training_listed_twice_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``training.seed: [1, 1.0]`` lists two values (two run names) that train one thing: both
    were planned as new runs and trained. A new run with the settings of another run of the
    plan (new, or existing and found by its values or by its settings) is now refused, dry run
    or not, naming both runs and their values; nothing is written. A value listed twice as
    it is was refused already, by the sweep file's check."""
    write_spec(tmp_path, epochs=1)
    sweep_path, runs = tmp_path / "sweep.yaml", tmp_path / "runs"
    args = ["sweep", str(sweep_path), "--runs-dir", str(runs)]

    def write(grid: dict[str, list[Any]]) -> None:
        document = {"name": "ident", "base": "tiny.yaml", "grid": grid}
        sweep_path.write_text(yaml.safe_dump(document, sort_keys=False))

    def refused(*extra: str) -> str:
        assert main([*args, *extra]) == 2
        error = capsys.readouterr().err
        assert "Traceback" not in error
        return error

    def one_line(pair: str) -> str:
        return (
            f"hpc-runner sweep: {sweep_path}: 1 run(s) of this sweep would train what another "
            "of its runs trains (the same data, careamics configuration, evaluate and after; "
            f"values written apart can set one thing):\n  {pair}\nlist each setting once: "
            "remove one value of each pair from the sweep file, then submit again\n"
        )

    write({"training.seed": [1, 1.0]})
    both_new = one_line("seed=1.0 (training.seed=1.0) is seed=1 (training.seed=1)")
    assert refused("--dry-run") == both_new
    assert refused("--cluster", "debug") == both_new
    assert not runs.exists()

    write({"training.seed": [1]})
    first = cli("sweep", str(sweep_path), "--cluster", "debug", "--runs-dir", str(runs))
    assert first.returncode == 0, first.stderr
    sweep_dir = runs / "ident"
    made = sorted(path.name for path in sweep_dir.iterdir())
    assert trainings(sweep_dir / "seed=1") == 1

    # the second value of a run that exists (found by its values)
    write({"training.seed": [1, 1.0]})
    exists = one_line("seed=1.0 (training.seed=1.0) is seed=1 (training.seed=1), which exists")
    assert refused("--dry-run") == exists
    assert refused("--cluster", "debug") == exists
    # both found by their settings (a key added at the base's value): the first took the run
    # that exists, the second was new
    write({"training.seed": [1, 1.0], "training.epochs": [1]})
    assert refused("--dry-run") == one_line(
        "seed=1.0_epochs=1 (training.seed=1.0, training.epochs=1) is seed=1 "
        "(training.seed=1, training.epochs=1), which exists"
    )
    # listed twice as it is: the sweep file's own check
    write({"training.seed": [1, 1]})
    assert refused("--dry-run") == (
        f"hpc-runner sweep: {sweep_path}: grid.training.seed: 1 is listed twice: a run is its "
        "values, list each once\n"
    )
    assert sorted(path.name for path in sweep_dir.iterdir()) == made
    assert trainings(sweep_dir / "seed=1") == 1

    # values that train apart are not refused
    write({"training.seed": [1, 2]})
    entries = plan(sweep_path, runs, capsys)
    assert [(e["run"], e["action"]) for e in entries] == [("seed=1", "skip"), ("seed=2", "new")]
