"""Cluster profiles: the shipped templates, validation, submitit parameters and golden sbatch text.

Golden files live in tests/golden/; after an intended change regenerate them with
``UPDATE_GOLDEN=1 pytest tests/test_profiles.py`` and review the diff.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import submitit
from submitit.core.job_environment import SignalHandler

from hpc_runner.cli import main
from hpc_runner.spec.errors import SpecError
from hpc_runner.spec.profiles import (
    ClusterProfile,
    executor_parameters,
    list_profiles,
    load_profile,
    max_signal_delay,
    sbatch_parameters,
    sbatch_preview,
    signal_delay,
)

GOLDEN = Path(__file__).parent / "golden"
SHIPPED = ["example_site_a100", "gpu", "local", "test_cpu", "test_gpu"]
FOLDER = "/cluster/runs/demo/submitit/%j"


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty templates directory searched first, with the working directory elsewhere."""
    directory = tmp_path / "templates"
    directory.mkdir()
    monkeypatch.setenv("HPC_RUNNER_TEMPLATES", str(directory))
    monkeypatch.chdir(tmp_path)
    return directory


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def test_shipped_profiles_all_load() -> None:
    names = [profile.name for profile in list_profiles()]
    assert set(SHIPPED) <= set(names)
    a100 = load_profile("example_site_a100")
    assert a100.gres == "gpu:a100:1" and a100.gpus_per_node == 1  # derived from the gres
    assert "module load cuda/12.1" in a100.setup
    assert a100.account and a100.qos and a100.constraint
    local = load_profile("local")
    assert local.partition is None and local.gpus_per_node == 0 and local.cpus_per_task == 0


@pytest.mark.parametrize("name", SHIPPED)
def test_sbatch_script_matches_golden(name: str) -> None:
    profile = load_profile(name)
    check_golden(f"sbatch_{name}.txt", sbatch_preview(profile, FOLDER, job_name="demo"))


@pytest.mark.parametrize("name", SHIPPED)
def test_executor_parameters_match_golden(name: str) -> None:
    profile = load_profile(name)
    document = {cluster: executor_parameters(profile, cluster) for cluster in submitit_clusters()}
    check_golden(f"executor_{name}.json", json.dumps(document, indent=2, sort_keys=True) + "\n")


def submitit_clusters() -> tuple[str, ...]:
    return ("slurm", "local", "debug")


@pytest.mark.parametrize("name", SHIPPED)
def test_preview_is_what_submitit_writes(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feed the parameters to a real AutoExecutor: it accepts them and writes the same script."""
    # SlurmExecutor refuses to exist without srun; the script text does not need a cluster.
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    profile = load_profile(name)
    folder = tmp_path / "submitit" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(name="demo", **executor_parameters(profile, "slurm"))
    slurm = executor._executor
    assert slurm.parameters == sbatch_parameters(profile, job_name="demo")
    written = slurm._make_submission_file_text(slurm._submitit_command_str, "uid")
    assert written == sbatch_preview(profile, folder, job_name="demo", python=slurm.python)


@pytest.mark.parametrize("cluster", ["local", "debug"])
@pytest.mark.parametrize("name", SHIPPED)
def test_local_and_debug_parameters_are_accepted(name: str, cluster: str, tmp_path: Path) -> None:
    executor = submitit.AutoExecutor(folder=tmp_path, cluster=cluster)
    executor.update_parameters(**executor_parameters(load_profile(name), cluster))


@pytest.mark.parametrize("timeout_min", [1, 2, 3, 5, 10, 15, 30, 49, 50, 60, 240, 1440, 10080])
def test_signal_delay_is_a_timeout_for_submitit(timeout_min: int) -> None:
    """USR2 at (limit - delay) must be judged a timeout by submitit's own rule, not a
    preemption, and leave most of the limit for training."""
    delay = signal_delay(ClusterProfile("p", timeout_min=timeout_min))
    handler = SignalHandler.__new__(SignalHandler)
    handler._delayed = types.SimpleNamespace(_timeout_min=timeout_min)
    handler._logger = logging.getLogger("test")
    handler._start_time = time.time() - (timeout_min * 60 - delay)
    assert handler.has_timed_out()
    assert 1 <= delay <= 90
    assert delay <= 0.2 * timeout_min * 60  # at least 80 % of the limit trains
    assert delay <= max_signal_delay(timeout_min)


def test_short_limits_get_short_delays() -> None:
    delays = {t: signal_delay(ClusterProfile("p", timeout_min=t)) for t in (1, 2, 5, 10, 60)}
    assert delays == {1: 10, 2: 18, 5: 45, 10: 90, 60: 90}
    assert signal_delay(ClusterProfile("p", timeout_min=60, signal_delay_s=300)) == 300


def test_every_problem_of_a_profile_is_reported(templates: Path) -> None:
    (templates / "bad.yaml").write_text(
        "partiton: gpu\n"
        "gpus_per_node: two\n"
        "mem_gb: -1\n"
        "timeout_min: 0\n"
        "gres: 'gpu:a100:2'\n"
        "setup: [1, 2]\n"
        "additional_parameters: {time: 5, mail-type: [END]}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_profile("bad")
    lines = str(caught.value).splitlines()
    file = str(templates / "bad.yaml")
    assert all(line.startswith(f"{file}: ") for line in lines)
    keys = [problem.key for problem in caught.value.problems]
    assert keys == [
        "partiton",
        "gpus_per_node",
        "mem_gb",
        "timeout_min",
        "setup",
        "additional_parameters",
    ]
    assert "did you mean 'partition'?" in lines[0]
    assert "set 'timeout_min' instead" in lines[-1] and "'mail-type' must be" in lines[-1]
    assert caught.value.exit_code == 2


def test_gres_and_gpu_count_must_agree(templates: Path) -> None:
    (templates / "p.yaml").write_text("gres: gpu:a100:2\ngpus_per_node: 1\n")
    with pytest.raises(SpecError, match="gpus_per_node: 1 disagrees with gres"):
        load_profile("p")
    (templates / "q.yaml").write_text("gres: gpu:2x\n")
    with pytest.raises(SpecError, match="not GPU gres syntax"):
        load_profile("q")


def test_too_long_signal_delay_is_refused(templates: Path) -> None:
    (templates / "p.yaml").write_text("timeout_min: 2\nsignal_delay_s: 90\n")
    with pytest.raises(SpecError, match=r"signal_delay_s: 90 s is too long .* at most 60 s"):
        load_profile("p")


def test_yaml_syntax_error_names_the_line(templates: Path) -> None:
    (templates / "p.yaml").write_text("partition: gpu\nsetup: [unclosed\ntimeout_min: 5\n")
    with pytest.raises(SpecError) as caught:
        load_profile("p")
    assert caught.value.problems[0].key.startswith("line ")
    assert "YAML syntax error" in str(caught.value)


def test_overrides_are_reported_against_the_spec(templates: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_profile("gpu", {"timeout_min": "1h", "partion": "x"}, source="job.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "job.yaml: cluster.partion: unknown key (did you mean 'partition'?)",
        "job.yaml: cluster.timeout_min: expected a whole number of minutes >= 1, got a string '1h'",
    ]
    profile = load_profile("gpu", {"timeout_min": 5, "partition": "short"}, source="job.yaml")
    assert (profile.timeout_min, profile.partition, profile.gpus_per_node) == (5, "short", 1)


def test_unknown_profile_lists_the_available_ones(templates: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_profile("gpus", source="job.yaml")
    message = str(caught.value)
    assert message.startswith("job.yaml: cluster.profile: unknown cluster profile 'gpus'")
    for name in SHIPPED:
        assert name in message


def test_profiles_command_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "PARTITION", "GPUS", "CPUS", "MEM", "TIME", "DESCRIPTION"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert set(SHIPPED) <= set(rows)
    assert rows["test_gpu"][1:6] == ["gpu", "gpu:1", "1", "2G", "0:10"]
    assert rows["local"][1:6] == ["(default)", "0", "all", "-", "24:00"]


def test_profiles_command_shows_a_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "example_site_a100"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --gres=gpu:a100:1" in out and "module load cuda/12.1" in out
    assert main(["profiles", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    test_cpu = next(p for p in listed if p["name"] == "test_cpu")
    assert test_cpu["slurm_parameters"]["slurm_partition"] == "cpu"


def test_profiles_command_bad_name_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "nope"]) == 2
    captured = capsys.readouterr()
    assert "unknown cluster profile 'nope'" in captured.err
    assert "test_cpu" in captured.err and "Traceback" not in captured.err


def test_profiles_command_imports_nothing_heavy() -> None:
    probe = (
        "import contextlib, io, json, sys\n"
        "from hpc_runner.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['profiles']) == 0\n"
        "import hpc_runner.spec.job, hpc_runner.data.sources\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout.splitlines()[-1])
    heavy = [m for m in modules if m.split(".")[0] in {"torch", "lightning", "careamics"}]
    assert heavy == []
    assert "hpc_runner.spec.job" in modules  # the probe really imported the spec module
