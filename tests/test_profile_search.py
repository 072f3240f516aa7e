"""Where profiles come from: shipped, site, user, project, $HPC_RUNNER_TEMPLATES — a later place
overrides an earlier one by name, and says which file it shadows.

Temporary directories stand in for ``/etc/hpc-runner/profiles`` and ``~`` (through
``$HPC_RUNNER_SITE_PROFILES``, ``$XDG_CONFIG_HOME`` and ``$HOME``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import hpc_runner
from hpc_runner.spec.errors import SpecError
from hpc_runner.spec.profile_search import (
    SITE_DEFAULT,
    package_dir,
    scan_profiles,
    search_dirs,
    user_dir,
)
from hpc_runner.spec.profiles import find_profiles, load_profile
from tests.run_support import cli

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty site, user (through XDG_CONFIG_HOME), project and environment directories."""
    dirs = {
        "site": tmp_path / "etc" / "hpc-runner" / "profiles",
        "user": tmp_path / "home" / ".config" / "hpc-runner" / "profiles",
        "project": tmp_path / "project" / "slurm_templates",
        "env": tmp_path / "env",
    }
    for directory in dirs.values():
        directory.mkdir(parents=True)
    monkeypatch.setenv("HPC_RUNNER_SITE_PROFILES", str(dirs["site"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("HPC_RUNNER_TEMPLATES", str(dirs["env"]))
    monkeypatch.chdir(dirs["project"].parent)
    return dirs


def profile(directory: Path, name: str, description: str, extra: str = "") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(f"description: {description}\ntimeout_min: 30\n{extra}")
    return path


def test_the_shipped_profiles_are_inside_the_package() -> None:
    """In a checkout hpc_runner/slurm_templates is the link to the top-level folder, so an
    editable install, a checkout on PYTHONPATH and a wheel all find them at one place."""
    assert package_dir() == Path(hpc_runner.__file__).parent / "slurm_templates"
    assert (package_dir() / "local.yaml").is_file()
    assert package_dir().resolve() == REPOSITORY / "slurm_templates"


def test_search_order_and_shadowing(places: dict[str, Path]) -> None:
    assert [(d.place, d.path) for d in search_dirs()] == [
        ("package", package_dir()),
        ("site", places["site"]),
        ("user", places["user"]),
        ("project", Path.cwd() / "slurm_templates"),
        ("env", places["env"]),
    ]
    shipped = package_dir() / "gpu.yaml"
    assert load_profile("gpu").source == str(shipped)
    written = {}
    for place in ("site", "user", "project", "env"):  # each later place overrides the earlier
        written[place] = profile(places[place], "gpu", f"gpu from {place}")
        assert load_profile("gpu").description == f"gpu from {place}"
        assert load_profile("gpu").source == str(written[place])
    found = scan_profiles().files["gpu"]
    assert (found.place, found.path) == ("env", written["env"])
    assert found.shadows == (
        ("project", written["project"]),
        ("user", written["user"]),
        ("site", written["site"]),
        ("package", shipped),
    )
    # a name only one place has is found there, whatever the others hold
    profile(places["site"], "site_only", "from the site")
    assert scan_profiles().files["site_only"].place == "site"
    assert scan_profiles().files["site_only"].shadows == ()


def test_the_listing_names_each_file_and_what_it_shadows(places: dict[str, Path]) -> None:
    site = profile(places["site"], "gpu", "site gpu")
    user = profile(places["user"], "gpu", "my gpu")
    mine = profile(places["user"], "mine", "mine")
    answer = cli("profiles")
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("gpu "))
    assert lines[row].split()[-2:] == ["my", "gpu"]
    assert lines[row + 1].split() == ["user:", str(user)]
    assert lines[row + 2].split() == ["shadows", "site:", str(site)]
    assert lines[row + 3].split() == ["shadows", "package:", str(package_dir() / "gpu.yaml")]
    assert f"    user: {mine}" in lines
    assert f"    local: {package_dir() / 'local.yaml'}" not in lines
    assert f"    package: {package_dir() / 'local.yaml'}" in lines
    assert f"    site {places['site']}" in lines and f"    env {places['env']}" in lines

    listed = {p["name"]: p for p in json.loads(cli("profiles", "--json").stdout)}
    assert listed["gpu"]["place"] == "user" and listed["gpu"]["source"] == str(user)
    assert listed["gpu"]["shadows"] == [
        {"place": "site", "path": str(site)},
        {"place": "package", "path": str(package_dir() / "gpu.yaml")},
    ]
    shown = cli("profiles", "gpu")
    assert shown.stdout.startswith(f"# gpu: my gpu (user: {user}; shadows site: {site}; ")


def test_several_directories_in_a_variable_the_first_wins(
    places: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    profile(first, "p", "first")
    profile(second, "p", "second")
    monkeypatch.setenv("HPC_RUNNER_TEMPLATES", os.pathsep.join([str(first), str(second)]))
    assert load_profile("p").description == "first"
    monkeypatch.setenv("HPC_RUNNER_SITE_PROFILES", os.pathsep.join([str(second), str(first)]))
    monkeypatch.delenv("HPC_RUNNER_TEMPLATES")
    assert load_profile("p").description == "second"
    assert scan_profiles().files["p"].shadows == (("site", first / "p.yaml"),)


def test_defaults_without_the_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPC_RUNNER_SITE_PROFILES")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    dirs = {d.place: d.path for d in search_dirs()}
    assert dirs["site"] == Path(SITE_DEFAULT)
    assert dirs["user"] == tmp_path / ".config" / "hpc-runner" / "profiles"
    assert "env" not in dirs
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/config")  # ignored, as XDG says
    assert user_dir() == tmp_path / ".config" / "hpc-runner" / "profiles"
    monkeypatch.setenv("HPC_RUNNER_SITE_PROFILES", "")  # set but empty: no site directory
    assert "site" not in {d.place for d in search_dirs()}


def test_the_repository_as_project_does_not_shadow_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPOSITORY)  # ./slurm_templates is the shipped directory
    assert [d.place for d in search_dirs()].count("package") == 1
    assert "project" not in [d.place for d in search_dirs()]
    found = scan_profiles().files["gpu"]
    assert (found.place, found.shadows) == ("package", ())


def test_yaml_beats_yml_and_hidden_files_are_ignored(places: dict[str, Path]) -> None:
    (places["user"] / "p.yml").write_text("description: yml\n")
    (places["user"] / "p.yaml").write_text("description: yaml\n")
    (places["user"] / ".#p.yaml").write_text("not: a profile\n")  # an editor's lock file
    (places["user"] / "notes.txt").write_text("nothing\n")
    found = scan_profiles().files
    assert found["p"].path == places["user"] / "p.yaml"
    assert found["p"].shadows == (("user", places["user"] / "p.yml"),)
    assert not any(name.startswith(".") for name in found) and "notes" not in found


def test_a_broken_profile_hides_no_other(places: dict[str, Path]) -> None:
    broken_site = places["site"] / "broken.yaml"
    broken_site.write_text("partiton: gpu\n")
    broken_user = places["user"] / "syntax.yaml"
    broken_user.write_text("setup: [unclosed\n")
    profile(places["project"], "fine", "fine")
    listing = find_profiles()
    assert {"fine", "local", "gpu"} <= {p.name for p in listing.profiles}
    assert [(p.file, p.key) for p in listing.problems] == [
        (str(broken_site), "partiton"),
        (str(broken_user), "line 2, column 1"),
    ]
    answer = cli("profiles")
    assert answer.returncode == 2
    assert "fine" in answer.stdout and "local" in answer.stdout  # the others are listed
    errors = answer.stderr.splitlines()
    assert errors[0] == (
        f"hpc-runner profiles: {broken_site}: partiton: unknown key (did you mean 'partition'?)"
    )
    assert errors[1].startswith(f"{broken_user}: line 2, column 1: YAML syntax error")
    assert len(errors) == 2 and "Traceback" not in answer.stderr
    assert load_profile("fine").description == "fine"  # submitting with another profile works
    with pytest.raises(SpecError, match="partiton"):
        load_profile("broken")


def test_an_unreadable_directory_is_one_problem() -> None:
    """Run as an unprivileged user (root reads everything), so the permission error is real."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root, to run the probe as another user with setpriv")
    root = Path(tempfile.mkdtemp(prefix="hpc-runner-perm-"))  # pytest's tmp_path is root-only
    try:
        root.chmod(0o755)
        site, user = root / "site", root / "config" / "hpc-runner" / "profiles"
        site.mkdir(), user.mkdir(parents=True)
        profile(site, "secret", "secret")
        profile(user, "mine", "mine")
        site.chmod(0o000)
        probe = (
            "import json; from hpc_runner.spec.profiles import find_profiles; l = find_profiles()\n"
            "print(json.dumps([[p.name for p in l.profiles], [str(p) for p in l.problems]]))"
        )
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(sys.path),
            HPC_RUNNER_SITE_PROFILES=str(site),
            XDG_CONFIG_HOME=str(root / "config"),
        )
        env.pop("HPC_RUNNER_TEMPLATES", None)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        answer = subprocess.run(
            [*nobody, sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            check=False,
        )
    finally:
        (root / "site").chmod(0o755)
        shutil.rmtree(root)
    assert answer.returncode == 0, answer.stderr
    names, problems = json.loads(answer.stdout)
    assert "mine" in names and "local" in names and "secret" not in names
    assert problems == [
        f"{site}: -: cannot read this profile directory (Permission denied): its profiles are "
        "left out (fix its permissions)"
    ]
