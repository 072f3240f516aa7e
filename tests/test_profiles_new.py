"""``hpc-runner profiles new``: a commented, valid profile in the user's directory, never
overwritten without --force; with --from-slurm, asked of the real test cluster, it names the
``gpu`` partition with ``gpu:1`` and the partition's time limit, and a job run with it reaches
DONE there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from hpc_runner.control.jobfile import read_job_file
from hpc_runner.spec.profile_discovery import parse_time_min
from hpc_runner.spec.profiles import load_profile
from hpc_runner.stream.status import TrainingState
from tests.run_support import cli, wait_state, write_spec
from tests.slurm_cluster import SlurmCluster


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's profile directory below a temporary XDG_CONFIG_HOME (not created yet)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "config" / "hpc-runner" / "profiles"


def test_new_writes_a_valid_template_and_never_overwrites(user_dir: Path) -> None:
    answer = cli("profiles", "new", "mine")
    assert answer.returncode == 0, answer.stderr
    path = user_dir / "mine.yaml"
    assert f"wrote {path}" in answer.stdout
    text = path.read_text()
    assert text.startswith("# Cluster profile 'mine', written by `hpc-runner profiles new mine`")
    profile = load_profile("mine")
    assert (profile.source, profile.gpus_per_node, profile.partition) == (str(path), 1, None)
    assert "    user: " + str(path) in cli("profiles").stdout

    again = cli("profiles", "new", "mine", "--partition", "short")
    assert again.returncode == 2
    assert again.stderr.strip() == f"hpc-runner profiles: {path} exists (--force replaces it)"
    assert path.read_text() == text
    forced = cli("profiles", "new", "mine", "--partition", "short", "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_profile("mine").partition == "short"
    assert [p.name for p in user_dir.iterdir()] == ["mine.yaml"]  # no temporary file left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new", "a/b"], "'a/b' is not a profile name"),
        (["new", ".hidden"], "'.hidden' is not a profile name"),
        (["new", "mine.yaml"], "give the name without its suffix (mine)"),
        (["new", "new"], "'new' is the command's own word"),
        (["new"], "give the new profile's NAME"),
        (["--force"], "'--force' only goes with `profiles new NAME`"),
        (["gpu", "--partition", "x"], "'--partition' only goes with"),
        (["gpu", "extra"], "'extra' only goes with"),
    ],
)
def test_bad_use_exits_2_and_writes_nothing(user_dir: Path, args: list[str], message: str) -> None:
    answer = cli("profiles", *args)
    assert answer.returncode == 2 and message in answer.stderr
    assert "Traceback" not in answer.stderr and not user_dir.exists()


def test_a_project_profile_of_that_name_is_pointed_out(user_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "slurm_templates").mkdir()
    (tmp_path / "slurm_templates" / "mine.yaml").write_text("description: project\n")
    answer = cli("profiles", "new", "mine")
    assert answer.returncode == 0, answer.stderr
    assert f"note: {tmp_path / 'slurm_templates' / 'mine.yaml'} (project) overrides it here" in (
        answer.stderr
    )


def test_from_slurm_without_slurm(user_dir: Path, no_slurm_path: str) -> None:
    answer = cli("profiles", "new", "mine", "--from-slurm", path=no_slurm_path)
    assert answer.returncode == 1
    assert "`sinfo` is not on PATH (run this on a login node" in answer.stderr
    assert not user_dir.exists()


@pytest.mark.slurm
def test_from_slurm_when_slurm_fails(
    user_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slurm_cluster: SlurmCluster
) -> None:
    """The real sinfo, pointed at an empty configuration, fails: its words are passed on."""
    empty = tmp_path / "slurm.conf"
    empty.touch()
    monkeypatch.setenv("SLURM_CONF", str(empty))
    answer = cli("profiles", "new", "mine", "--from-slurm")
    assert answer.returncode == 1
    assert answer.stderr.startswith("hpc-runner profiles: --from-slurm: `sinfo --noheader")
    assert "failed: sinfo: fatal: Unable to process configuration file" in answer.stderr
    assert not user_dir.exists()


@pytest.mark.slurm
def test_from_slurm_unknown_partition(user_dir: Path, slurm_cluster: SlurmCluster) -> None:
    answer = cli("profiles", "new", "mine", "--from-slurm", "--partition", "nope")
    assert answer.returncode == 2
    assert "no partition 'nope' on this cluster (partitions: " in answer.stderr
    assert not user_dir.exists()


@pytest.mark.slurm
@pytest.mark.training
def test_from_slurm_on_the_test_cluster_runs_on_gpu(
    user_dir: Path, tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    answer = cli("profiles", "new", "mine", "--from-slurm")
    assert answer.returncode == 0, answer.stderr
    values = yaml.safe_load((user_dir / "mine.yaml").read_text())
    assert (values["partition"], values["gres"]) == ("gpu", "gpu:1")
    # the partition's own limit (MaxTime, else DefaultTime), a day where it has none
    said = subprocess.run(
        ["scontrol", "--oneliner", "show", "partition", "gpu"], capture_output=True, text=True
    ).stdout
    limits = dict(part.split("=", 1) for part in said.split() if "=" in part)
    expected = parse_time_min(limits["MaxTime"]) or parse_time_min(limits["DefaultTime"]) or 1440
    assert values["timeout_min"] == expected

    shown = cli("profiles", "mine")
    assert shown.returncode == 0, shown.stderr
    for line in ("--partition=gpu", "--gres=gpu:1", f"--time={expected}"):
        assert f"#SBATCH {line}\n" in shown.stdout

    # The test node advertises 8 CPUs on 2 cores and other tests share it: the profile's share
    # of the node (all of it) would wait for the node to empty, so the spec asks for less.
    spec = write_spec(tmp_path / "spec", "on_gpu", profile="mine", cpus_per_task=1, mem_gb=2)
    runs = tmp_path / "runs"
    submitted = cli("submit", str(spec), "--cluster", "slurm", "--runs-dir", str(runs))
    assert submitted.returncode == 0, submitted.stderr
    run = wait_state(
        runs / "on_gpu",
        lambda r: r.status.state in (TrainingState.DONE, TrainingState.CRASHED),
        timeout=300,
        what="the end",
    )
    assert run.status.state is TrainingState.DONE
    record = read_job_file(runs / "on_gpu")
    assert record is not None
    job = record.job_id
    partition = subprocess.run(
        ["sacct", "-j", job, "-X", "-n", "-P", "-o", "Partition"], capture_output=True, text=True
    ).stdout.split()
    assert partition == ["gpu"]
