"""Job specs: good specs resolve through careamics, bad ones report every problem at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import yaml

from hpc_runner.spec.job import JobSpec, SpecError, dump_run_spec, load_job_spec, load_run_spec
from hpc_runner.stream.runs import RUN_SPEC_FILE
from tests.tiny import tiny_config, tiny_image

REPO = Path(__file__).resolve().parent.parent
TINY_N2V = {
    "algorithm": "n2v",
    "axes": "YX",
    "patch_size": [16, 16],
    "batch_size": 2,
    "epochs": 2,
    "masked_pixel_percentage": 5,
    "roi_size": 5,
    "n_val_patches": 2,
    "seed": 42,
}
DATA_WITH_VAL = {"train": "data/noisy.tif", "val": "data/clean.tif"}


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    """A directory with tiny TIFF images next to where the specs are written."""
    data = tmp_path / "data"
    data.mkdir()
    tifffile.imwrite(data / "noisy.tif", tiny_image(seed=1))
    tifffile.imwrite(data / "clean.tif", tiny_image(seed=2))
    np.save(data / "stack.npy", tiny_image((3, 64, 64), seed=3))
    return tmp_path


def write_spec(directory: Path, spec: dict[str, Any] | str, name: str = "job.yaml") -> Path:
    path = directory / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False))
    return path


def n2v_spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "tiny run",
        "training": dict(TINY_N2V),
        "data": {"train": "data/noisy.tif"},
        "cluster": {"profile": "test_cpu"},
    }
    spec.update(changes)
    return spec


def problems_of(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_job_spec(path, **kwargs)
    assert caught.value.exit_code == 2
    return str(caught.value).splitlines()


def test_short_n2v_spec_resolves(job_dir: Path) -> None:
    spec = load_job_spec(write_spec(job_dir, n2v_spec(evaluate={"ground_truth": "data/clean.tif"})))
    assert spec.name == "tiny_run"
    assert spec.algorithm == "n2v"
    assert spec.careamics["experiment_name"] == "tiny_run"
    assert spec.careamics["training_config"]["trainer_params"]["max_epochs"] == 2
    assert spec.careamics["data_config"]["patching"]["patch_size"] == [16, 16]
    assert spec.careamics["data_config"]["data_type"] == spec.data.data_type == "tiff"
    assert spec.data.train == str(job_dir / "data" / "noisy.tif")
    assert spec.ground_truth == str(job_dir / "data" / "clean.tif")
    assert spec.profile.name == "test_cpu" and spec.profile.partition == "cpu"
    assert spec.source == str(job_dir / "job.yaml")


def test_short_form_matches_careamics_factory(job_dir: Path) -> None:
    """The short form is careamics' own factory: same parameters, same configuration."""
    spec = load_job_spec(write_spec(job_dir, n2v_spec(name="tiny")))
    expected = tiny_config(data_type="tiff").model_dump(mode="json")
    assert spec.careamics == expected


@pytest.mark.parametrize("algorithm", ["care", "n2n"])
def test_short_supervised_spec_resolves(job_dir: Path, algorithm: str) -> None:
    training = {"algorithm": algorithm, "axes": "YX", "patch_size": [16, 16], "batch_size": 2}
    training |= {"steps": 3, "n_val_patches": 2, "augmentations": []}
    data = {"train": "data/noisy.tif", "train_target": "data/clean.tif"}
    spec = load_job_spec(write_spec(job_dir, n2v_spec(training=training, data=data)))
    assert spec.algorithm == algorithm
    assert spec.careamics["training_config"]["trainer_params"]["limit_train_batches"] == 3
    assert spec.careamics["data_config"]["augmentations"] == []
    assert spec.data.train_target == str(job_dir / "data" / "clean.tif")


def test_full_config_inline_and_from_careamics_file(job_dir: Path) -> None:
    from careamics.config.utils.configuration_io import load_configuration, save_configuration

    config = tiny_config(experiment_name="full")
    saved = save_configuration(config, job_dir / "careamics.yml")
    from_file = load_job_spec(write_spec(job_dir, n2v_spec(training={"config": "careamics.yml"})))
    inline = load_job_spec(
        write_spec(job_dir, n2v_spec(training={"config": config.model_dump(mode="json")}))
    )
    # as careamics itself loads the file (loading adds defaults such as pin_memory)
    expected = load_configuration(saved).model_dump(mode="json")
    assert from_file.careamics == inline.careamics == expected
    assert from_file.careamics["experiment_name"] == "full"
    # the config asked for in-memory arrays: honoured, the TIFF is read on the node
    assert from_file.data.data_type == "array"


def test_full_config_with_other_data_type_is_adapted(job_dir: Path) -> None:
    config = tiny_config(data_type="zarr").model_dump(mode="json")
    spec = load_job_spec(write_spec(job_dir, n2v_spec(training={"config": config})))
    assert spec.careamics["data_config"]["data_type"] == "tiff"
    assert any("'zarr' replaced by 'tiff'" in note for note in spec.notes)


def test_every_problem_is_reported_at_once(job_dir: Path) -> None:
    spec = n2v_spec(
        nmae="typo",
        training={**TINY_N2V, "batch_sise": 4, "roi_size": 4},
        data={"train": "data/missing.tif", "val": 3},
        cluster={"profile": "test_cpu", "timeout_min": "soon"},
    )
    lines = problems_of(write_spec(job_dir, spec))
    file = str(job_dir / "job.yaml")
    assert all(line.startswith(f"{file}: ") for line in lines), lines
    by_key = {line.split(": ")[1]: line for line in lines}
    assert set(by_key) == {
        "nmae",
        "data.train",
        "data.val",
        "cluster.timeout_min",
        "training.batch_sise",
    }
    assert "did you mean 'name'?" in by_key["nmae"]
    assert "did you mean 'batch_size'?" in by_key["training.batch_sise"]
    assert "no such file or directory" in by_key["data.train"]
    assert "expected a file path (string), got an integer" in by_key["data.val"]


def test_careamics_validation_names_the_spec_key(job_dir: Path) -> None:
    training = {**TINY_N2V, "roi_size": 4, "patch_size": [16, 24], "axes": "YXQ"}
    lines = problems_of(write_spec(job_dir, n2v_spec(training=training)))
    assert lines == [
        f"{job_dir / 'job.yaml'}: training.axes: careamics: Invalid axes YXQ. "
        "Must be a combination of STCZYX.",
        f"{job_dir / 'job.yaml'}: training.patch_size: careamics: Patch size must be squared "
        "in YX, but got sizes 24 and 16.",
    ]
    lines = problems_of(write_spec(job_dir, n2v_spec(training={**TINY_N2V, "roi_size": 4})))
    assert lines == [
        f"{job_dir / 'job.yaml'}: training.roi_size: careamics: Size must be an odd number."
    ]


def test_full_config_errors_name_the_config_key(job_dir: Path) -> None:
    config = tiny_config().model_dump(mode="json")
    config["data_config"]["batch_size"] = "many"
    config["training_config"]["checkpoint_params"]["save_lst"] = True
    lines = problems_of(write_spec(job_dir, n2v_spec(training={"config": config})))
    prefix = f"{job_dir / 'job.yaml'}: training.config."
    assert len(lines) == 2
    assert lines[0].startswith(
        prefix + "data_config.batch_size: careamics: Input should be a valid"
    )
    assert lines[1].startswith(prefix + "training_config.checkpoint_params: careamics: Unknown")


def test_keys_careamics_would_ignore_are_reported(job_dir: Path) -> None:
    """pydantic drops unknown keys silently; a typo in a full config must not go unnoticed."""
    config = tiny_config().model_dump(mode="json")
    config["data_config"]["batch_sise"] = 8
    config["algorithm_config"]["model"]["dept"] = 3
    lines = problems_of(write_spec(job_dir, n2v_spec(training={"config": config})))
    prefix = f"{job_dir / 'job.yaml'}: training.config."
    assert sorted(lines) == [
        prefix + "algorithm_config.model.dept: unknown key (did you mean 'depth'?)",
        prefix + "data_config.batch_sise: unknown key (did you mean 'batch_size'?)",
    ]


def test_errors_in_a_careamics_file_name_that_file(job_dir: Path) -> None:
    (job_dir / "careamics.yml").write_text("experiment_name: x\nalgorithm_config: [\n")
    lines = problems_of(write_spec(job_dir, n2v_spec(training={"config": "careamics.yml"})))
    assert len(lines) == 1 and lines[0].startswith(f"{job_dir / 'careamics.yml'}: line 3")


def test_yaml_syntax_error_reports_the_line(job_dir: Path) -> None:
    lines = problems_of(write_spec(job_dir, "name: x\ntraining:\n  algorithm: n2v\n   axes: YX\n"))
    assert len(lines) == 1
    assert lines[0].startswith(f"{job_dir / 'job.yaml'}: line 4, column ")
    assert "YAML syntax error" in lines[0]


def test_duplicate_key_is_reported(job_dir: Path) -> None:
    text = yaml.safe_dump(n2v_spec(), sort_keys=False) + "name: again\n"
    lines = problems_of(write_spec(job_dir, text))
    assert any("duplicate key 'name'" in line for line in lines), lines


def test_yaml_merge_keys_are_read_as_yaml_reads_them(tmp_path: Path) -> None:
    """``<<: *defaults`` was refused as a syntax error ("could not determine a constructor for
    the tag ... merge"), though PyYAML's safe_load reads it; a key written beside it overrides
    the merged one, which is not a duplicate. (One loader reads specs, sweeps and profiles.)"""
    from hpc_runner.spec.errors import Problems, load_yaml_mapping

    text = "base: &base {epochs: 2, lr: 0.1}\nrun:\n  <<: *base\n  epochs: 1\n"
    path = tmp_path / "merge.yaml"
    path.write_text(text)
    problems = Problems(path)
    assert load_yaml_mapping(path, problems) == yaml.safe_load(text)
    assert yaml.safe_load(text)["run"] == {"epochs": 1, "lr": 0.1} and not problems.items
    path.write_text(text + "  epochs: 3\n")
    problems = Problems(path)
    load_yaml_mapping(path, problems)
    assert ["duplicate key 'epochs'" in item.reason for item in problems.items] == [True]


def test_wrong_types(job_dir: Path) -> None:
    spec = n2v_spec(name=["a"], training=["n2v"], data="noisy.tif", cluster={"profile": 3})
    keys = [line.split(": ")[1] for line in problems_of(write_spec(job_dir, spec))]
    assert keys == ["name", "data", "cluster.profile", "training"]


def test_trainer_numbers_careamics_passes_unchecked(job_dir: Path) -> None:
    """careamics accepts any trainer_params; a bad epoch count must not wait for the node."""
    spec = n2v_spec()
    spec["training"].update(epochs="two", steps=-3)
    lines = problems_of(write_spec(job_dir, spec))
    assert any(": training.epochs: expected a whole number of epochs" in line for line in lines)
    assert any(": training.steps: expected a number of batches" in line for line in lines)
    spec["training"].update(epochs="1e2", steps=4)
    lines = problems_of(write_spec(job_dir, spec))
    assert [line.removeprefix(str(job_dir) + "/") for line in lines] == [
        "job.yaml: training.epochs: expected a whole number of epochs >= 1, got '1e2': write"
        " 1.0e+2 (to PyYAML, a number with an exponent needs a dot and a sign)"
    ]

    config = tiny_config().model_dump(mode="json")
    config["training_config"]["trainer_params"]["max_epochs"] = 2.5
    lines = problems_of(write_spec(job_dir, n2v_spec(training={"config": config})))
    key = "training.config.training_config.trainer_params.max_epochs"
    assert any(f": {key}: expected a whole number of epochs" in line for line in lines), lines


def test_numbers_pyyaml_reads_as_text_name_the_key_and_the_fix(job_dir: Path) -> None:
    """``lr: 1e-3`` is text to PyYAML (YAML 1.1); careamics passes optimizer and scheduler
    parameters on unchecked, and torch stopped the training with a TypeError on the node."""
    spec = yaml.safe_dump(n2v_spec(), sort_keys=False).replace(
        "training:\n",
        "training:\n  optimizer_params: {lr: 1e-3, weight_decay: '0.01'}\n"
        "  lr_scheduler_params: {factor: 5E-1, mode: min}\n",
    )
    lines = problems_of(write_spec(job_dir, spec))
    assert [line.removeprefix(str(job_dir) + "/") for line in lines] == [
        "job.yaml: training.optimizer_params.lr: '1e-3' is text, not a number: write 1.0e-3"
        " (to PyYAML, a number with an exponent needs a dot and a sign)",
        "job.yaml: training.optimizer_params.weight_decay: '0.01' is text, not a number:"
        " write 0.01 without quotes",
        "job.yaml: training.lr_scheduler_params.factor: '5E-1' is text, not a number:"
        " write 5.0E-1 (to PyYAML, a number with an exponent needs a dot and a sign)",
    ]
    written = spec.replace("1e-3", "1.0e-3").replace("'0.01'", "0.01").replace("5E-1", "5.0E-1")
    job = load_job_spec(write_spec(job_dir, written))
    algorithm = job.careamics["algorithm_config"]
    assert algorithm["optimizer"]["parameters"] == {"lr": 0.001, "weight_decay": 0.01}
    assert algorithm["lr_scheduler"]["parameters"] == {"factor": 0.5, "mode": "min"}

    config = tiny_config().model_dump(mode="json")
    config["algorithm_config"]["optimizer"]["parameters"] = {"lr": "2e-4"}
    lines = problems_of(write_spec(job_dir, n2v_spec(training={"config": config})))
    assert [line.removeprefix(str(job_dir) + "/") for line in lines] == [
        "job.yaml: training.config.algorithm_config.optimizer.parameters.lr: '2e-4' is text,"
        " not a number: write 2.0e-4 (to PyYAML, a number with an exponent needs a dot and"
        " a sign)"
    ]


@pytest.mark.parametrize(
    ("training", "key", "words"),
    [
        ({"optimizer_params": {"lr": -1.0}}, "optimizer_params", "Invalid learning rate: -1.0"),
        ({"optimizer_params": {"betas": [0.9]}}, "optimizer_params", "torch.optim.Adam refuses"),
        ({"lr_scheduler_params": {"factor": 5.0}}, "lr_scheduler_params", "Factor should be < 1"),
        ({"lr_scheduler_params": {"mode": "up"}}, "lr_scheduler_params", "mode up is unknown"),
        ({"train_dataloader_params": {"shufle": True}}, "train_dataloader_params", "'shufle'"),
        ({"seed": 2**64}, "seed", "Seed must be between 0 and 2**32 - 1"),
    ],
)
def test_what_careamics_hands_torch_unchecked_is_checked_by_torch_here(
    job_dir: Path, training: dict[str, Any], key: str, words: str
) -> None:
    """Each of these validated, was submitted, waited in the queue and then stopped the
    training on the node with a ValueError, TypeError or IndexError from torch or numpy."""
    spec = n2v_spec()
    spec["training"].update(training)
    (line,) = problems_of(write_spec(job_dir, spec))
    assert f"job.yaml: training.{key}: " in line and words in line, line


def test_unknown_profile_lists_available(job_dir: Path) -> None:
    lines = problems_of(write_spec(job_dir, n2v_spec(cluster={"profile": "gpu_big"})))
    assert len(lines) == 1
    assert "cluster.profile: unknown cluster profile 'gpu_big' (available: " in lines[0]
    assert "test_cpu" in lines[0]


def test_profile_argument_replaces_the_spec_profile(job_dir: Path) -> None:
    path = write_spec(job_dir, n2v_spec(cluster={"profile": "nope", "timeout_min": 3}))
    spec = load_job_spec(path, profile="test_gpu")
    assert (spec.profile.name, spec.profile.timeout_min, spec.profile.gres) == (
        "test_gpu",
        3,
        "gpu:1",
    )
    assert spec.profile_overrides == {"timeout_min": 3}


def test_missing_sections_and_defaults(job_dir: Path) -> None:
    lines = problems_of(write_spec(job_dir, {"name": "x"}))
    assert [line.split(": ")[1] for line in lines] == ["data", "training"]
    spec = load_job_spec(
        write_spec(job_dir, {"training": TINY_N2V, "data": {"train": "data/noisy.tif"}})
    )
    assert spec.name == "job" and spec.profile.name == "local"


def test_targets_must_fit_the_algorithm(job_dir: Path) -> None:
    lines = problems_of(
        write_spec(
            job_dir, n2v_spec(data={"train": "data/noisy.tif", "train_target": "data/clean.tif"})
        )
    )
    assert [line.split(": ", 1)[1] for line in lines] == [
        "data.train_target: n2v is self-supervised: remove the targets"
    ]
    care = {"algorithm": "care", "axes": "YX", "patch_size": [16, 16], "batch_size": 2}
    data = {"train": "data/noisy.tif", "val": "data/noisy.tif"}
    keys = [
        line.split(": ")[1]
        for line in problems_of(write_spec(job_dir, n2v_spec(training=care, data=data)))
    ]
    assert keys == ["data.train_target", "data.val_target"]


def test_images_must_fit_axes_and_patch(job_dir: Path) -> None:
    lines = problems_of(write_spec(job_dir, n2v_spec(data={"train": "data/stack.npy"})))
    assert lines == [
        f"{job_dir / 'job.yaml'}: data.train: image has 3 dimensions (3, 64, 64) but training "
        "axes 'YX' has 2 (set the axes to match the data)"
    ]
    training = {**TINY_N2V, "axes": "SYX", "patch_size": [128, 128]}
    lines = problems_of(
        write_spec(job_dir, n2v_spec(training=training, data={"train": "data/stack.npy"}))
    )
    assert len(lines) == 1 and "image smaller than the patch (Y=64 < 128, X=64 < 128)" in lines[0]


def test_nan_and_infinity_are_refused_where_careamics_would_read_them_as_unset(
    job_dir: Path,
) -> None:
    """careamics' JSON dump writes NaN as null, which then means "not set": ``epochs: .nan``
    validated and trained for Lightning's default of 1000 epochs (found by the submission
    helper). Every NaN or infinity in the training section or a full configuration is named."""
    training = {**TINY_N2V, "epochs": float("nan"), "optimizer_params": {"lr": float("inf")}}
    assert [line.split(": ", 1)[1] for line in problems_of(
        write_spec(job_dir, n2v_spec(training=training))
    )] == [
        "training.epochs: nan is not a finite number: write a number",
        "training.optimizer_params.lr: inf is not a finite number: write a number",
    ]  # fmt: skip
    config = job_dir / "careamics.yml"
    config.write_text("algorithm_config:\n  optimizer:\n    parameters: {lr: .nan}\n")
    lines = problems_of(write_spec(job_dir, n2v_spec(training={"config": "careamics.yml"})))
    assert lines == [
        f"{config}: algorithm_config.optimizer.parameters.lr: nan is not a finite number: "
        "write a number"
    ]


def test_a_nul_in_a_data_path_is_reported_not_raised(
    job_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``data.train: "noisy\\0.tif"`` ended in ValueError: embedded null byte (a traceback),
    in submit and, through the sweep's path check, in sweep (found by the submission helper)."""
    from hpc_runner.cli import main

    spec = write_spec(job_dir, n2v_spec(data={"train": "data/noisy\0.tif"}))
    (line,) = problems_of(spec)
    assert line.endswith("data.train: 'data/noisy\\x00.tif' holds a NUL character, which no file "
                         "name can: remove it")  # fmt: skip
    write_spec(job_dir, n2v_spec(), "base.yaml")
    sweep = {"name": "s", "base": "base.yaml", "grid": {"data.train": ["data/noisy\0.tif"]}}
    path = write_spec(job_dir, sweep, "sweep.yaml")
    assert main(["sweep", str(path), "--dry-run", "--runs-dir", str(job_dir / "runs")]) == 2
    error = capsys.readouterr().err
    assert "holds a NUL character" in error and "Traceback" not in error


def test_a_sweep_value_with_keys_of_mixed_types_is_reported_not_raised(
    job_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A grid value ``{1: a, b: c}`` ended in "TypeError: '<' not supported" while the runs
    were named (JSON cannot sort keys of two types; found by the submission helper)."""
    from hpc_runner.cli import main

    write_spec(job_dir, n2v_spec(), "base.yaml")
    grid = {"training.optimizer_params": [{1: "a", "b": "c"}, {None: 1, "lr": 0.1}]}
    path = write_spec(job_dir, {"name": "s", "base": "base.yaml", "grid": grid}, "sweep.yaml")
    assert main(["sweep", str(path), "--dry-run", "--runs-dir", str(job_dir / "runs")]) == 2
    error = capsys.readouterr().err
    assert "training.optimizer_params" in error and "Traceback" not in error


def test_validation_patches_must_leave_training_patches(job_dir: Path) -> None:
    """Without data.val, careamics sets n_val_patches of the training patches aside, and with
    none left it stopped on the node (ValueError in create_val_split) after a valid spec. The
    count is careamics' own: 16 patches of 16x16 in 64x64, 48 in three such samples (S)."""
    for axes, train, available in (("YX", "data/noisy.tif", 16), ("SYX", "data/stack.npy", 48)):
        for n_val, fits in ((available - 1, True), (available, False), (10**6, False)):
            training = {**TINY_N2V, "axes": axes, "n_val_patches": n_val}
            path = write_spec(job_dir, n2v_spec(training=training, data={"train": train}))
            if fits:
                load_job_spec(path)
                continue
            assert problems_of(path) == [
                f"{path}: data.train: gives {available} training patch(es) of [16, 16], and "
                f"n_val_patches={n_val} of them would be set aside for validation, leaving none "
                "to train on: lower training.n_val_patches (data_config.n_val_patches in a full "
                "config) or training.patch_size, or give validation images as data.val"
            ]
    training = {**TINY_N2V, "n_val_patches": 10**6}  # validation images given: nothing is split
    load_job_spec(write_spec(job_dir, n2v_spec(training=training, data=dict(DATA_WITH_VAL))))


def test_ground_truth_must_match_the_training_image(job_dir: Path) -> None:
    tifffile.imwrite(job_dir / "data" / "small.tif", tiny_image((32, 32)))
    lines = problems_of(write_spec(job_dir, n2v_spec(evaluate={"ground_truth": "data/small.tif"})))
    assert len(lines) == 1
    assert "evaluate.ground_truth: shape (32, 32) differs from data.train (64, 64)" in lines[0]
    lines = problems_of(write_spec(job_dir, n2v_spec(evaluate={"ground_truth": "data/nope.tif"})))
    assert [line.split(": ")[1] for line in lines] == ["evaluate.ground_truth"]


def test_nothing_is_written(job_dir: Path) -> None:
    path = write_spec(job_dir, n2v_spec(data={"train": "data/missing.tif"}))
    before = sorted(p.relative_to(job_dir) for p in job_dir.rglob("*"))
    with pytest.raises(SpecError):
        load_job_spec(path)
    load_job_spec(write_spec(job_dir, n2v_spec()))
    after = sorted(p.relative_to(job_dir) for p in job_dir.rglob("*"))
    assert after == before


def test_run_yaml_round_trips(job_dir: Path) -> None:
    spec = load_job_spec(
        write_spec(
            job_dir,
            n2v_spec(
                cluster={"profile": "example_site_a100", "timeout_min": 30},
                evaluate={"ground_truth": "data/clean.tif"},
            ),
        )
    )
    run_dir = job_dir / "runs" / spec.name
    run_dir.mkdir(parents=True)
    (run_dir / RUN_SPEC_FILE).write_text(dump_run_spec(spec))
    loaded = load_run_spec(run_dir)
    assert isinstance(loaded, JobSpec)
    assert loaded == spec
    assert loaded.profile.setup == spec.profile.setup and isinstance(loaded.profile.setup, tuple)


def test_demo_spec_round_trips() -> None:
    subprocess.run([sys.executable, str(REPO / "examples" / "make_demo_data.py")], check=True)
    spec = load_job_spec(REPO / "examples" / "n2v_demo.yaml")
    assert spec.ground_truth is not None and spec.data.data_type == "tiff"
    text = dump_run_spec(spec)
    assert yaml.safe_load(text)["careamics"] == spec.careamics


def test_bad_run_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_run_spec(tmp_path)
    (tmp_path / RUN_SPEC_FILE).write_text("version: 1\nname: x\n")
    with pytest.raises(SpecError, match=r"not a valid run\.yaml"):
        load_run_spec(tmp_path)


BAD_SPECS = {
    "syntax": ("name: x\ntraining: [\n", "line 3, column 1: YAML syntax error"),
    "unknown key": (
        {"training": {**TINY_N2V, "epochz": 3}},
        "training.epochz: unknown key (did you mean 'epochs'?)",
    ),
    "wrong type": (
        {"cluster": {"profile": "test_cpu", "mem_gb": "lots"}},
        "cluster.mem_gb: expected",
    ),
    "missing data": ({"data": {"train": "data/gone.tif"}}, "data.train: no such file or directory"),
    "unknown profile": (
        {"cluster": {"profile": "gpuz"}},
        "cluster.profile: unknown cluster profile",
    ),
    "careamics value": (
        {"training": {**TINY_N2V, "patch_size": [16, 20]}},
        "training.patch_size: careamics: Patch size must be squared",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_submit_command_reports_bad_spec(
    job_dir: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the command line: exit 2, file and key named, nothing written."""
    from hpc_runner.cli import main

    content, expected = BAD_SPECS[case]
    spec = content if isinstance(content, str) else n2v_spec(**content)
    path = write_spec(job_dir, spec)
    runs = job_dir / "runs"
    assert main(["submit", str(path), "--cluster", "local", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected}" in err
    assert not runs.exists() or not any(runs.iterdir())


def test_submit_command_bad_spec_has_no_traceback(job_dir: Path) -> None:
    path = write_spec(job_dir, n2v_spec(training={**TINY_N2V, "epochz": 3}, nmae="x"))
    runs = job_dir / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "hpc_runner", "submit", str(path), "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("hpc-runner submit: ")
    assert f"{path}: nmae: unknown key (did you mean 'name'?)" in result.stderr
    assert f"{path}: training.epochz: unknown key (did you mean 'epochs'?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not runs.exists() or not any(runs.iterdir())


# -- hostile and mismatched inputs (issue 10) ----------------------------------------------------


def _care(**changes: Any) -> dict[str, Any]:
    training = {"algorithm": "care", "axes": "YX", "patch_size": [16, 16], "batch_size": 2}
    return {**training, "n_val_patches": 2, **changes}


@pytest.mark.parametrize("algorithm", ["care", "n2n"])
def test_targets_must_have_their_inputs_shape(job_dir: Path, algorithm: str) -> None:
    """A 64x64 input with a 32x32 target trained to DONE (careamics cuts patches from both)."""
    tifffile.imwrite(job_dir / "data" / "half.tif", tiny_image((32, 32)))
    data = {
        "train": "data/noisy.tif",
        "train_target": "data/half.tif",
        "val": "data/noisy.tif",
        "val_target": "data/half.tif",
    }
    path = write_spec(job_dir, n2v_spec(training=_care(algorithm=algorithm), data=data))
    lines = problems_of(path)
    assert lines == [
        f"{path}: data.{key}_target: shape (32, 32) does not match data.{key} (64, 64) "
        "(Y 32 vs 64, X 32 vs 64): each target must be its input's counterpart, pixel for pixel"
        for key in ("train", "val")
    ]


def test_target_directories_need_one_target_per_image(job_dir: Path) -> None:
    for folder, count in (("inputs", 2), ("targets", 1)):
        (job_dir / folder).mkdir()
        for index in range(count):
            tifffile.imwrite(job_dir / folder / f"im{index}.tif", tiny_image(seed=index))
    data = {"train": "inputs", "train_target": "targets"}
    lines = problems_of(write_spec(job_dir, n2v_spec(training=_care(), data=data)))
    assert [line.split(": ", 2)[1:] for line in lines] == [
        [
            "data.train_target",
            "1 images but data.train has 2 (give one target per input image, with the same "
            "file names)",
        ]
    ]


def test_channels_must_match_the_model(job_dir: Path) -> None:
    """3 channels in the data with n_channels: 2 passed and crashed on the node."""
    np.save(job_dir / "data" / "rgb.npy", tiny_image((64, 64, 3)))
    np.save(job_dir / "data" / "two.npy", tiny_image((64, 64, 2)))
    training = {**TINY_N2V, "axes": "YXC", "n_channels": 2}
    path = write_spec(job_dir, n2v_spec(training=training, data={"train": "data/rgb.npy"}))
    assert problems_of(path) == [
        f"{path}: data.train: the images have 3 channel(s) (axis C of 'YXC') but the model "
        "takes 2: set training.n_channels (algorithm_config.model.in_channels in a full "
        "config) to 3, or pick channels with training.channels"
    ]
    care = _care(axes="YXC", n_channels_in=3, n_channels_out=3)
    data = {"train": "data/rgb.npy", "train_target": "data/two.npy"}
    path = write_spec(job_dir, n2v_spec(training=care, data=data))
    assert problems_of(path) == [
        f"{path}: data.train_target: the targets have 2 channel(s) (axis C of 'YXC') but the "
        "model puts out 3: set training.n_channels_out (algorithm_config.model.num_classes in "
        "a full config) to 2"
    ]
    ok = load_job_spec(
        write_spec(
            job_dir,
            n2v_spec(training={**training, "n_channels": 3}, data={"train": "data/rgb.npy"}),
        )
    )
    assert ok.careamics["algorithm_config"]["model"]["in_channels"] == 3


def test_an_empty_name_says_it_is_empty(job_dir: Path) -> None:
    lines = problems_of(write_spec(job_dir, n2v_spec(name="")))
    assert lines == [
        f"{job_dir / 'job.yaml'}: name: expected a non-empty string, got an empty string"
    ]


@pytest.mark.parametrize("which", ["spec", "data", "config"])
def test_a_fifo_instead_of_a_file_is_refused_at_once(job_dir: Path, which: str) -> None:
    """A FIFO as spec or data file made `submit` wait forever for a writer."""
    spec = n2v_spec()
    if which == "data":
        os.mkfifo(job_dir / "data" / "pipe.tif")
        spec["data"] = {"train": "data/pipe.tif"}
    if which == "config":
        os.mkfifo(job_dir / "careamics.yml")
        spec["training"] = {"config": "careamics.yml"}
    path = write_spec(job_dir, spec)
    if which == "spec":
        path = job_dir / "pipe.yaml"
        os.mkfifo(path)
    result = subprocess.run(  # a timeout, not a speed assertion: before the fix it never returned
        [sys.executable, "-m", "hpc_runner", "submit", str(path), "--runs-dir", str(job_dir / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "FIFO" in result.stderr or "not a regular file" in result.stderr
    assert not (job_dir / "r").exists()
