"""Sweep specs: pure expansion (property tests), the sweep file's checks, every run validated
as a job spec, the dry run, and result ranking/export."""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hpc_runner.cli import main
from hpc_runner.control.jobfile import JobRecord
from hpc_runner.spec.errors import SpecError
from hpc_runner.spec.sweep import apply_overrides, expand, run_count
from hpc_runner.spec.sweep_file import load_sweep
from hpc_runner.spec.sweep_names import HASH_MARK, canonical, fragment, run_identity
from hpc_runner.stream.runs import safe_run_name
from hpc_runner.watch.results import best, rank, to_csv
from tests.run_support import cli, status_json, wait_state, write_spec

# -- pure expansion ------------------------------------------------------------------------------

keys = st.from_regex(r"(training|data|after)\.[a-z_]{1,8}(\.[a-z0-9]{1,3})?", fullmatch=True)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12),  # any characters: slashes, dots, control characters, emoji
    st.from_regex(r"[a-z ]{1,4}(/[a-z ]{1,4}){0,2}/noisy\.tif", fullmatch=True),  # one basename
)
values = st.one_of(scalars, st.lists(scalars, max_size=3))
value_lists = st.lists(values, min_size=1, max_size=4, unique_by=canonical)


@st.composite
def sweeps(draw: Any) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """A grid and a zip; each list (and each zip row) without a value twice, as sweep files
    must be (:func:`hpc_runner.spec.sweep_file.load_sweep` reports one listed twice)."""
    grid_keys = draw(st.lists(keys, max_size=3, unique=True))
    grid = {key: draw(value_lists) for key in grid_keys}
    zip_keys = draw(st.lists(keys.filter(lambda k: k not in grid), max_size=2, unique=True))
    zipped: dict[str, list[Any]] = {}
    if zip_keys:
        row = st.tuples(*(values for _ in zip_keys))
        rows = draw(st.lists(row, min_size=1, max_size=4, unique_by=canonical))
        zipped = {key: [r[i] for r in rows] for i, key in enumerate(zip_keys)}
    return grid, zipped


def is_safe(name: str) -> bool:
    return (
        name == safe_run_name(name)
        and "/" not in name
        and "\\" not in name
        and ".." not in name
        and not name.startswith(".")
        and 0 < len(name) <= 200
    )


def names_by_values(grid: dict[str, list[Any]], zipped: dict[str, list[Any]]) -> dict[str, str]:
    return {run_identity(run.overrides): run.name for run in expand(grid, zipped)}


@settings(max_examples=300, deadline=None)
@given(sweeps())
def test_expansion_count_names_and_values(sweep: tuple[dict[str, Any], dict[str, Any]]) -> None:
    grid, zipped = sweep
    runs = expand(grid, zipped)
    zip_length = len(next(iter(zipped.values()))) if zipped else 1
    assert len(runs) == math.prod(len(v) for v in grid.values()) * zip_length
    assert len(runs) == run_count(grid, zipped)
    names = [run.name for run in runs]
    assert len(set(names)) == len(names)
    assert all(is_safe(name) for name in names)
    assert expand(grid, zipped) == runs  # deterministic
    # every grid combination appears with every zip row exactly once
    expected = [
        (*combo, *row)
        for combo in itertools.product(*grid.values())
        for row in (list(zip(*zipped.values(), strict=True)) if zipped else [()])
    ]
    got = [tuple(run.overrides[k] for k in [*grid, *zipped]) for run in runs]
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(sweeps(), st.randoms(use_true_random=False))
def test_names_do_not_depend_on_the_order_of_values(
    sweep: tuple[dict[str, Any], dict[str, Any]], random: Any
) -> None:
    grid, zipped = sweep
    shuffled = {key: random.sample(values, len(values)) for key, values in grid.items()}
    rows = list(zip(*zipped.values(), strict=True))
    random.shuffle(rows)
    zipped_shuffled = {key: [row[i] for row in rows] for i, key in enumerate(zipped)}
    assert names_by_values(shuffled, zipped_shuffled) == names_by_values(grid, zipped)


@settings(max_examples=300, deadline=None)
@given(sweeps(), sweeps(), st.randoms(use_true_random=False))
def test_adding_values_renames_no_run(
    sweep: tuple[dict[str, Any], dict[str, Any]],
    more: tuple[dict[str, Any], dict[str, Any]],
    random: Any,
) -> None:
    """Values added anywhere in a list (or zip rows added), also to a key that had one value,
    leave the names of the runs that were there; the grown sweep's names stay unique."""
    grid, zipped = sweep
    more_grid, more_zip = more
    grown = {}
    for index, (key, values) in enumerate(grid.items()):
        extra = list(more_grid.values())[index] if index < len(more_grid) else []
        added = [v for v in extra if canonical(v) not in {canonical(w) for w in values}]
        grown[key] = values + added
        random.shuffle(grown[key])
    grown_zip = {key: list(values) for key, values in zipped.items()}
    if zipped and more_zip:
        source = next(iter(more_zip.values()))
        known = {canonical(row) for row in zip(*zipped.values(), strict=True)}
        for value in source:
            row = tuple(value for _ in zipped)
            if canonical(row) not in known:
                known.add(canonical(row))
                for key in grown_zip:
                    grown_zip[key].append(value)
    before = names_by_values(grid, zipped)
    after = names_by_values(grown, grown_zip)
    assert {identity: after[identity] for identity in before} == before
    assert len(set(after.values())) == len(after)
    assert all(is_safe(name) for name in after.values())


def test_names_come_from_the_values_never_from_positions() -> None:
    runs = expand(
        {"training.patch_size": [[32, 32], [64, 64]], "training.learning_rate": [1e-4]},
        {"data.train": ["a.tif", "x.h5:/train/noisy"], "training.seed": [1, 2]},
    )
    noisy = fragment("x.h5:/train/noisy")
    assert noisy.startswith("noisy@") and len(noisy) == len("noisy@") + 6
    assert [run.name for run in runs] == [
        "patch_size=32x32_learning_rate=0.0001_train=a.tif_seed=1",
        f"patch_size=32x32_learning_rate=0.0001_train={noisy}_seed=2",
        "patch_size=64x64_learning_rate=0.0001_train=a.tif_seed=1",
        f"patch_size=64x64_learning_rate=0.0001_train={noisy}_seed=2",
    ]  # a key with one value is in the names too: a second value later renames nothing
    # two files of one name in different folders: told apart by a hash of the whole path
    trains = ["d/b/noisy.tif", "d/with space/noisy.tif"]
    first = [run.name for run in expand({"data.train": trains})]
    assert all(name.startswith("train=noisy.tif@") for name in first) and len(set(first)) == 2
    again = [run.name for run in expand({"data.train": ["d/a/noisy.tif", *reversed(trains)]})]
    assert again[1:] == list(reversed(first)) and again[0] not in first
    # 1, 1.0 and "1" are three values; a string that reads as a number or keyword gets a hash
    tags = [run.name for run in expand({"training.tag": [1, 1.0, "1", True, "true", None]})]
    assert tags[:2] == ["tag=1", "tag=1.0"] and tags[3] == "tag=true" and tags[5] == "tag=none"
    assert tags[2].startswith("tag=1@") and tags[4].startswith("tag=true@")
    assert len(set(tags)) == 6
    same = [run.name for run in expand({"training.tag": ["a/b", "a?b", "a_b", ".."]})]
    assert same[2] == "tag=a_b" and all(is_safe(n) for n in same) and len(set(same)) == 4
    long = [run.name for run in expand({"training.tag": ["x" * 300, "x" * 299 + "y"]})]
    assert all(len(n) <= 4 + 40 + 7 for n in long) and len(set(long)) == 2
    assert [run.name for run in expand({"data.seed": [1], "training.seed": [2, 3]})] == [
        "data.seed=1_training.seed=2",
        "data.seed=1_training.seed=3",
    ]
    assert expand({}) == expand({}, {}) and [r.name for r in expand({})] == ["run"]
    with pytest.raises(ValueError, match="list each value once"):
        expand({"training.seed": [1, 1]})


def test_unicode_values_are_named_by_safe_run_name() -> None:
    """Whatever safe_run_name keeps of a value is the readable part; a value it changes gets a
    hash, so values it maps to one text (letters it replaces) still get their own names."""
    names = [run.name for run in expand({"training.tag": ["名前", "日本", "a\x1bb", "é"]})]
    assert len(set(names)) == 4 and all(is_safe(name) for name in names)
    for value, name in zip(["名前", "日本", "é"], [names[0], names[1], names[3]], strict=True):
        kept = safe_run_name(value) == value
        assert (name == f"tag={value}") is kept and (HASH_MARK in name) is not kept
    assert names[2].startswith("tag=a_b@")


def test_sweep_file_lists_each_value_once(tmp_path: Path) -> None:
    write_spec(tmp_path)
    path = sweep_file(
        tmp_path,
        {
            "base": "tiny.yaml",
            "grid": {"training.seed": [1, 2, 1], "training.epochs": [1, 1.0, "1"]},
            "zip": {"data.train": ["a.npy", "a.npy"], "training.batch_size": [2, 2]},
        },
    )
    with pytest.raises(SpecError) as caught:
        load_sweep(path)
    assert {(p.key, p.reason) for p in caught.value.problems} == {
        ("grid.training.seed", "1 is listed twice: a run is its values, list each once"),
        (
            "zip",
            'two rows set the same values {"data.train":"a.npy","training.batch_size":2}: '
            "list each row once",
        ),
    }  # 1, 1.0 and "1" are three values


@pytest.mark.parametrize("spelling", ["./tiny.npy", "sub/../tiny.npy", "ABSOLUTE", "link.npy"])
def test_one_file_under_two_names_is_listed_twice(tmp_path: Path, spelling: str) -> None:
    """Two names of one file would train the same run twice under two run names."""
    write_spec(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.npy").symlink_to("tiny.npy")
    other = str(tmp_path / "tiny.npy") if spelling == "ABSOLUTE" else spelling
    path = sweep_file(
        tmp_path,
        {
            "base": "tiny.yaml",
            "grid": {"data.train": ["tiny.npy", other]},
            "zip": {"data.val": [other, "tiny.npy"], "training.seed": [1, 1]},
        },
    )
    with pytest.raises(SpecError) as caught:
        load_sweep(path)
    assert {(p.key, p.reason) for p in caught.value.problems} == {
        (
            "grid.data.train",
            f'"{other}" names the same file as "tiny.npy": a run is its values, list each once',
        ),
        (
            "zip",
            'two rows set the same values {"data.val":"tiny.npy","training.seed":1} '
            "(the same files as row 1): list each row once",
        ),
    }


def test_long_names_are_cut_and_stay_unique() -> None:
    grid = {f"training.key{i}": [f"value{i}" + "v" * 30, f"other{i}" + "o" * 30] for i in range(6)}
    names = [run.name for run in expand(grid)]
    assert len(set(names)) == len(names) == 64
    assert all(is_safe(name) and len(name) <= 180 for name in names)


def test_long_names_of_any_script_keep_their_hash() -> None:
    """Names were cut at 180 characters, then at 200 bytes: a long Japanese file name lost its
    value's hash, two runs got one name, and a conflict name equal to the name it replaces
    told the user to move a finished run away."""
    from hpc_runner.spec.sweep_names import conflict_name, value_hash

    stem = "日本語の画像データ" * 3
    grid = {
        "data.train": [f"data/{stem}_noisy.tif"],
        "evaluate.ground_truth": [f"data/{stem}_clean_a.tif", f"data/{stem}_clean_b.tif"],
        "training.seed": [1],
    }
    runs = expand(grid)
    names = [run.name for run in runs]
    assert len(set(names)) == 2 and all(is_safe(name) for name in names)
    for run in runs:
        assert len(run.name.encode()) <= 180
        assert run.name.endswith("@" + value_hash(dict(run.overrides), 10))
        other = conflict_name(run.name, run.identity)
        assert other != run.name and len(other.encode()) <= 200 and is_safe(other)


def test_apply_overrides() -> None:
    base = {"training": {"patch_size": [64, 64], "epochs": 3}, "data": {"train": "a.tif"}}
    result = apply_overrides(
        base, {"training.patch_size.1": 32, "after.predict.tile_size": [8, 8], "name": "x"}
    )
    assert result["training"]["patch_size"] == [64, 32]
    assert result["after"] == {"predict": {"tile_size": [8, 8]}} and result["name"] == "x"
    assert base["training"]["patch_size"] == [64, 64] and "after" not in base  # not mutated
    with pytest.raises(KeyError, match=r"training\.epochs\.x: training\.epochs is an integer"):
        apply_overrides(base, {"training.epochs.x": 1})


# -- the sweep file ------------------------------------------------------------------------------


def sweep_file(directory: Path, document: dict[str, Any], name: str = "sweep.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_sweep_file_problems_are_reported_together(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        {
            "base": "missing.yaml",
            "grid": {
                "training.batch_size": 3,
                "training.epochs": [1, 2],
                "cluster.timeout_min": [1, 2],
                "name": ["a"],
                "training": [{}],
                "bad key!": [1],
            },
            "zip": {"training.seed": [1, 2], "data.train": ["a"], "training.epochs": [1, 2]},
            "cluster": {"array_parallelism": 0, "timeot_min": 5},
            "grdi": {},
        },
    )
    with pytest.raises(SpecError) as caught:
        load_sweep(path)
    found = {(p.key, p.reason.split(" (")[0].split(":")[0]) for p in caught.value.problems}
    assert all(p.file == str(path) for p in caught.value.problems)
    keys = {key for key, _ in found}
    assert keys >= {
        "base",
        "grid.training.batch_size",
        "grid.training.epochs",
        "grid.cluster.timeout_min",
        "grid.name",
        "grid.bad key!",
        "zip",
        "zip.training.epochs",
        "cluster.array_parallelism",
        "cluster.timeot_min",
        "grdi",
    }
    text = str(caught.value)
    assert "did you mean 'timeout_min'" in text and "did you mean 'grid'" in text
    assert "lists of different lengths" in text


def test_cli_bad_sweep_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    write_spec(tmp_path)
    path = sweep_file(
        tmp_path, {"base": "tiny.yaml", "zip": {"training.seed": [1], "training.epochs": [1, 2]}}
    )
    runs = tmp_path / "runs"
    answer = cli("sweep", str(path), "--runs-dir", str(runs))
    assert answer.returncode == 2
    assert answer.stderr.startswith(f"hpc-runner sweep: {path}: zip: lists of different lengths")
    assert "Traceback" not in answer.stderr and not runs.exists()


@pytest.mark.training
def test_runs_are_validated_as_job_specs_and_dry_run_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In this process (careamics is imported once for the test session): ``main`` is what the
    ``hpc-runner`` script runs."""
    write_spec(tmp_path / "specs")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "more.npy").write_bytes((tmp_path / "specs" / "tiny.npy").read_bytes())
    bad = sweep_file(
        tmp_path,
        {
            "base": "specs/tiny.yaml",
            "grid": {"training.batch_size": [2, 0], "training.patch_size": [[16, 16], [128, 128]]},
            "zip": {"data.train": ["data/more.npy", "data/nothere.npy"]},
        },
        "bad.yaml",
    )
    assert main(["sweep", str(bad), "--dry-run", "--runs-dir", str(tmp_path / "runs")]) == 2
    stderr = capsys.readouterr().err
    lines = stderr.removeprefix("hpc-runner sweep: ").splitlines()
    by_key = {line.split(": ")[1]: line for line in lines}
    assert set(by_key) == {"grid.training.batch_size", "zip.data.train", "grid.training.patch_size"}
    assert by_key["grid.training.batch_size"].startswith(
        f"{bad}: grid.training.batch_size: value 0"
    )
    assert "nothere.npy" in by_key["zip.data.train"]  # relative to the sweep file
    assert "smaller than the patch" in by_key["grid.training.patch_size"]
    more = fragment("data/more.npy")  # more.npy@<hash of the path>: a path is shown by its name
    assert f"batch_size=0_patch_size=16x16_train={more}" in by_key["grid.training.batch_size"]

    good = sweep_file(
        tmp_path,
        {
            "name": "demo",
            "base": "specs/tiny.yaml",
            "grid": {"training.patch_size": [[16, 16], [32, 32]]},
            "zip": {"training.seed": [1, 2], "data.train": ["data/more.npy", "specs/tiny.npy"]},
            "cluster": {"array_parallelism": 2, "timeout_min": 5},
        },
        "good.yaml",
    )
    args = ["sweep", str(good), "--dry-run", "--json", "--runs-dir", str(tmp_path / "runs")]
    assert main(args) == 0
    entries = json.loads(capsys.readouterr().out)
    tiny = fragment("specs/tiny.npy")
    assert [entry["run"] for entry in entries] == [
        f"patch_size=16x16_seed=1_train={more}",
        f"patch_size=16x16_seed=2_train={tiny}",
        f"patch_size=32x32_seed=1_train={more}",
        f"patch_size=32x32_seed=2_train={tiny}",
    ]
    assert entries[1]["overrides"] == {
        "training.patch_size": [16, 16],
        "training.seed": 2,
        "data.train": "specs/tiny.npy",
    }
    assert {entry["action"] for entry in entries} == {"new"}
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing

    from hpc_runner.spec.sweep_check import check_sweep

    checked = check_sweep(load_sweep(good))
    spec = checked[1][1]
    assert spec.name == f"patch_size=16x16_seed=2_train={tiny}"
    assert spec.data.train == str(tmp_path / "specs" / "tiny.npy")
    assert spec.profile.timeout_min == 5  # the sweep's cluster keys reach every run
    assert spec.careamics["data_config"]["seed"] == 2


@pytest.mark.training
def test_a_learning_rate_pyyaml_reads_as_text_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grid of ``[1e-3, 2.0e-4]``: PyYAML reads the first as text, which trained nowhere
    (torch's TypeError on the node). The sweep is refused, naming the key and the fix."""
    write_spec(tmp_path / "specs")
    path = tmp_path / "sweep.yaml"
    path.write_text("base: specs/tiny.yaml\ngrid:\n  training.optimizer_params.lr: [1e-3, 2.0e-4]")
    assert main(["sweep", str(path), "--dry-run", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"hpc-runner sweep: {path}: grid.training.optimizer_params.lr: value '1e-3': '1e-3' is"
        " text, not a number: write 1.0e-3 (to PyYAML, a number with an exponent needs a dot"
        " and a sign) (run lr=1e-3@202fd1)"
    ]


def test_the_sweeps_cluster_keys_over_a_base_without_a_cluster_mapping(tmp_path: Path) -> None:
    """The problem is the base's ``cluster:``; it was reported at ``zip.cluster.timeout_min`` of
    a sweep that has no zip."""
    import yaml as pyyaml

    base = write_spec(tmp_path)
    document = pyyaml.safe_load(base.read_text())
    document["cluster"] = "local"
    base.write_text(pyyaml.safe_dump(document))
    path = sweep_file(
        tmp_path,
        {"base": base.name, "grid": {"training.seed": [1, 2]}, "cluster": {"timeout_min": 5}},
    )
    from hpc_runner.spec.sweep_check import check_sweep

    with pytest.raises(SpecError) as caught:
        check_sweep(load_sweep(path))
    assert [(p.file, p.key, p.reason) for p in caught.value.problems] == [
        (
            str(tmp_path / base.name),
            "cluster",
            "cluster is a string, not a mapping (the sweep's cluster.timeout_min goes into it)",
        )
    ]


def test_a_problem_of_a_key_the_sweep_sets_is_the_sweeps_though_every_run_has_it(
    tmp_path: Path,
) -> None:
    """The base says ``epochs``, the sweep sets ``training.num_epochs``: every run has the
    problem, and it was blamed on the base, which is fine on its own."""
    base = write_spec(tmp_path)
    path = sweep_file(tmp_path, {"base": base.name, "grid": {"training.num_epochs": [1, 2]}})
    from hpc_runner.spec.sweep_check import check_sweep

    with pytest.raises(SpecError) as caught:
        check_sweep(load_sweep(path))
    (problem,) = caught.value.problems
    assert (problem.file, problem.key) == (str(path), "grid.training.num_epochs")
    assert problem.reason.startswith("value 1 or 2: given twice"), problem.reason


def test_debug_sweep_with_watch_prints_the_summary(tmp_path: Path) -> None:
    """``--cluster debug`` trains in the command itself; ``--watch`` off a terminal waits with a
    progress bar and prints the ranked summary."""
    write_spec(tmp_path, epochs=1)
    path = sweep_file(
        tmp_path, {"name": "dbg", "base": "tiny.yaml", "zip": {"training.seed": [1, 2]}}
    )
    runs = tmp_path / "runs"
    answer = cli("sweep", str(path), "--cluster", "debug", "--watch", "--runs-dir", str(runs))
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.splitlines()
    assert {"seed=1: DONE", "seed=2: DONE"} <= set(lines)
    best_line = next(line for line in lines if line.startswith("best: seed="))
    assert "100%" in answer.stderr and best_line.split()[1] in ("seed=1", "seed=2")


@contextlib.contextmanager
def _training_sweep(tmp_path: Path) -> Iterator[tuple[Path, Path, JobRecord]]:
    """A local sweep of one run (seed=1) that trains for long: (sweep file, run directory, its
    job record) once it trains; its processes are killed when the block ends."""
    from hpc_runner.control.local_process import job_processes
    from hpc_runner.control.scheduler import job_records
    from hpc_runner.stream.processes import alive
    from hpc_runner.stream.status import TrainingState

    write_spec(tmp_path, epochs=1000)
    path = sweep_file(tmp_path, {"name": "sw", "base": "tiny.yaml", "zip": {"training.seed": [1]}})
    runs = tmp_path / "runs"
    answer = cli("sweep", str(path), "--cluster", "local", "--runs-dir", str(runs))
    assert answer.returncode == 0, answer.stderr
    run_dir = runs / "sw" / "seed=1"
    record = job_records([run_dir])[run_dir]
    assert record is not None
    try:
        wait_state(
            run_dir,
            lambda run: run.status.state is TrainingState.TRAINING,
            timeout=120,
            what="training",
        )
        yield path, run_dir, record
    finally:
        tasks, others = job_processes(record.folder(run_dir), record.job_id, None)
        for process in [*tasks, *others, record.current.process]:
            if process is not None and alive(process):
                os.kill(process.pid, signal.SIGKILL)


def test_cancelling_a_copy_inside_the_sweep_leaves_the_original_training(tmp_path: Path) -> None:
    """``cp -a`` of a training run of a local sweep, beside it in the sweep directory (a backup),
    copies its job.json, which names the original's job in the sweep's shared submitit folder:
    the processes name that folder, so the copy's ``cancel`` interrupted the original."""
    import subprocess
    import time

    from hpc_runner.control.local_process import job_processes

    with _training_sweep(tmp_path) as (_, original, record):
        copy = original.parent / "backup"
        subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
        answer = cli("cancel", str(copy))
        assert answer.returncode == 1, answer.stdout
        assert "backup is LOST (job" in answer.stderr and "a copy" in answer.stderr
        time.sleep(1.0)
        tasks, _ = job_processes(record.folder(original), record.job_id, record.current.process)
        assert tasks  # the original trains on
        assert status_json(original.parent)["seed=1"]["phase"] == "TRAINING"
        answer = cli("cancel", str(original))
        assert answer.returncode == 0, answer.stderr


def test_only_failed_does_not_retry_a_run_whose_job_has_not_exited(tmp_path: Path) -> None:
    """A run's status file can say CRASHED (or CANCELLED, right after ``scancel``) while its job
    still ends: ``resume`` refuses it until the job has exited, ``--only-failed`` retried it at
    once, two jobs in one run directory. The CRASHED record is written here by the test (the
    fake: a job that records its end and lingers cannot be made on cue); the job is real."""
    from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
    from hpc_runner.stream.writer import StatusWriter

    with _training_sweep(tmp_path) as (path, run_dir, record):
        with StatusWriter(run_dir / "status.jsonl") as writer:
            writer.write(TrainUpdate(TrainUpdateType.STATE, TrainingState.CRASHED))
        runs = run_dir.parent.parent
        args = ["sweep", str(path), "--only-failed", "--dry-run", "--runs-dir", str(runs)]
        answer = cli(*args, "--json")
        assert answer.returncode == 0, answer.stderr
        (planned,) = json.loads(answer.stdout)
        assert planned["action"] == "skip", planned
        assert f"job {record.job_id} (" in planned["reason"]
        assert "has not exited yet" in planned["reason"]
        resume = cli("resume", str(run_dir))
        assert resume.returncode == 1 and "has not exited yet" in resume.stderr


# -- results -------------------------------------------------------------------------------------


def row(run: str, state: str, loss: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "rank": None,
        "run": run,
        "phase": state,
        "state": state,
        "best_val_loss": loss,
        "overrides": extra,
    }


def test_ranking_best_and_csv() -> None:
    rows = rank(
        [
            row("c", "DONE", 0.5, **{"training.seed": 1}),
            row("a", "CRASHED", 0.1),
            row("b", "DONE", None),
            row("d", "TRAINING", 0.3, **{"data.train": "x"}),
            row("e", "DONE", 0.2, **{"training.patch_size": [8, 8]}),
        ]
    )
    assert [(r["run"], r["rank"]) for r in rows] == [
        ("a", 1),
        ("e", 2),
        ("d", 3),
        ("c", 4),
        ("b", None),
    ]
    assert best(rows)["run"] == "e"  # the best run that is DONE
    assert best([row("x", "CRASHED", 0.1)]) is None
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [line["run"] for line in table] == ["a", "e", "d", "c", "b"]
    assert table[1]["set:training.patch_size"] == "[8, 8]" and table[0]["set:training.seed"] == ""
    assert table[4]["best_val_loss"] == "" and table[3]["set:training.seed"] == "1"
