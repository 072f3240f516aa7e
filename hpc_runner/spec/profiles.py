"""Cluster profiles: reading and checking the profile files, and what submitit is asked for.

A profile says where and how a job runs (partition, GPUs, CPUs, memory, time limit, setup lines,
extra sbatch flags); a job spec names one and may override any field. Where the files are
found (shipped, site, user, project, ``$HPC_RUNNER_TEMPLATES``) is the business of
:mod:`hpc_runner.spec.profile_search`. This module is monitoring-safe (standard library, PyYAML
and, only inside :func:`sbatch_preview`, submitit): ``hpc-runner profiles`` lists profiles
without importing torch or careamics.

Everything that turns a profile into scheduler parameters is a pure function, so the parameters
can be checked against golden files (``tests/golden/``) without a cluster.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_runner.spec.errors import (
    Problem,
    Problems,
    SpecError,
    check_keys,
    join_key,
    load_yaml_mapping,
)
from hpc_runner.spec.profile_fields import (
    PROFILE_KEYS,
    Bad,
    ClusterProfile,
    check_consistency,
    check_field,
    gres_gpus,
    max_signal_delay,
)
from hpc_runner.spec.profile_search import ProfileScan, scan_profiles

__all__ = [
    "PROFILE_KEYS",
    "ClusterProfile",
    "ProfileListing",
    "executor_parameters",
    "find_profiles",
    "list_profiles",
    "load_profile",
    "max_signal_delay",
    "profile_files",
    "profile_from_mapping",
    "read_profile",
    "sbatch_parameters",
    "sbatch_preview",
    "signal_delay",
]

CLUSTERS = ("slurm", "local", "debug")


def profile_files() -> dict[str, Path]:
    """Every profile name found (see :mod:`hpc_runner.spec.profile_search`), mapped to the
    file that is used for it."""
    return {name: found.path for name, found in scan_profiles().files.items()}


def load_profile(
    name: str, overrides: Mapping[str, Any] | None = None, *, source: str = ""
) -> ClusterProfile:
    """Read profile ``name`` and apply ``overrides``; every problem is reported at once.

    Parameters
    ----------
    name : str
        Profile name (a file ``NAME.yaml`` in one of the places searched).
    overrides : mapping, optional
        Field values from a job spec's ``cluster:`` section, applied over the file's.
    source : str
        The job spec the overrides come from, named in problems about them (their keys are
        reported as ``cluster.KEY``).

    Raises
    ------
    SpecError
        Unknown profile (the available ones and the places searched are listed), bad keys,
        types or values.
    """
    scan = scan_profiles()
    if name not in scan.files:
        available = ", ".join(sorted(scan.files)) or "none"
        problems = Problems(source or f"{name}.yaml")
        problems.add(
            "cluster.profile" if source else "-",
            f"unknown cluster profile '{name}' (available: {available}; searched "
            f"{scan.searched()}; `hpc-runner profiles new {name}` writes one)",
        )
        problems.raise_if_any()
    return read_profile(scan.files[name].path, name, overrides, source=source)


def read_profile(
    path: Path, name: str, overrides: Mapping[str, Any] | None = None, *, source: str = ""
) -> ClusterProfile:
    """Read and check one profile file (see :func:`load_profile`)."""
    problems = Problems(path)
    data = load_yaml_mapping(path, problems)
    problems.raise_if_any()
    assert data is not None
    return profile_from_mapping(name, data, path, overrides, source=source, problems=problems)


def profile_from_mapping(
    name: str,
    data: Mapping[str, Any],
    path: str | os.PathLike[str],
    overrides: Mapping[str, Any] | None = None,
    *,
    source: str = "",
    problems: Problems | None = None,
) -> ClusterProfile:
    """A profile from the mapping of file ``path`` with ``overrides`` applied (pure).

    Raises
    ------
    SpecError
        Every problem: those of the file named with ``path``, those of the overrides with
        ``source`` and ``cluster.KEY``.
    """
    problems = problems if problems is not None else Problems(os.fspath(path))
    check_keys(data, PROFILE_KEYS, "", problems)
    merged = {k: v for k, v in data.items() if k in PROFILE_KEYS}
    override_problems = Problems(source or os.fspath(path))
    if overrides:
        check_keys(overrides, PROFILE_KEYS, "cluster", override_problems)
        merged.update({k: v for k, v in overrides.items() if k in PROFILE_KEYS})
    origin = {k: "cluster" if overrides and k in overrides else "" for k in merged}
    profile = _build(name, os.fspath(path), merged, origin, problems, override_problems)
    all_problems = problems.items + override_problems.items
    if all_problems:
        raise SpecError(all_problems)
    assert profile is not None
    return profile


@dataclass(frozen=True)
class ProfileListing:
    """Every profile found: those that load, where each comes from, and what is broken.

    A broken file does not hide the others: its problems are listed beside them.
    """

    profiles: list[ClusterProfile]
    scan: ProfileScan
    problems: list[Problem]


def find_profiles() -> ProfileListing:
    """Load every profile that is used (the winner of each name), sorted by name."""
    scan = scan_profiles()
    profiles: list[ClusterProfile] = []
    problems: list[Problem] = list(scan.problems)
    for name, found in scan.files.items():
        try:
            profiles.append(read_profile(found.path, name))
        except SpecError as error:
            problems += error.problems
    return ProfileListing(profiles, scan, problems)


def list_profiles() -> list[ClusterProfile]:
    """Every profile that loads, sorted by name.

    Raises
    ------
    SpecError
        If any profile file is invalid (all of their problems together).
    """
    listing = find_profiles()
    if listing.problems:
        raise SpecError(listing.problems)
    return listing.profiles


def _build(
    name: str,
    path: str,
    data: dict[str, Any],
    origin: dict[str, str],
    problems: Problems,
    override_problems: Problems,
) -> ClusterProfile | None:
    """Check each field's type and value; report on the file or on the spec that set it."""

    def report(key: str, reason: str) -> None:
        if origin.get(key):
            override_problems.add(join_key("cluster", key), reason)
        else:
            problems.add(key, reason)

    values: dict[str, Any] = {}
    for key, value in data.items():
        checked = check_field(key, value)
        if isinstance(checked, Bad):
            report(key, checked.reason)
        else:
            values[key] = checked
    check_consistency(values, report)
    if problems or override_problems:
        return None
    if values.get("gres") and "gpus_per_node" not in values:
        values["gpus_per_node"] = gres_gpus(values["gres"]) or 0
    return ClusterProfile(name=name, source=path, **values)


def signal_delay(profile: ClusterProfile) -> int:
    """Seconds before the time limit at which SLURM sends USR2 (checkpoint and requeue).

    A fixed 90 s delay on a 2-minute limit signals after 30 s, which submitit takes for a
    preemption, so the job requeues in a loop making little progress. Scaled instead: 15 % of
    the limit, at least 10 s, at most 90 s (enough to save a checkpoint), and never beyond
    :func:`max_signal_delay`.
    """
    if profile.signal_delay_s is not None:
        return profile.signal_delay_s
    scaled = round(0.15 * profile.timeout_min * 60)
    return max(1, min(max(10, min(90, scaled)), max_signal_delay(profile.timeout_min) - 1))


def executor_parameters(profile: ClusterProfile, cluster: str) -> dict[str, Any]:
    """The keyword arguments for ``submitit.AutoExecutor(folder, cluster=cluster)
    .update_parameters(**params)``; pure.

    Generic keys (``timeout_min``, ``mem_gb``, ``cpus_per_task``, ``gpus_per_node``, ``nodes``,
    ``tasks_per_node``) plus ``slurm_*`` keys for SLURM and ``local_setup`` for a local process.
    The job name is not included (it is the run's name, set by the submitter).

    Parameters
    ----------
    profile : ClusterProfile
        The resolved profile.
    cluster : {"slurm", "local", "debug"}
        The submitit executor.
    """
    if cluster not in CLUSTERS:
        raise ValueError(f"unknown cluster {cluster!r} (expected one of {', '.join(CLUSTERS)})")
    params: dict[str, Any] = {"timeout_min": profile.timeout_min, "nodes": 1, "tasks_per_node": 1}
    if profile.cpus_per_task:
        params["cpus_per_task"] = profile.cpus_per_task
    if cluster == "debug":
        return params
    if profile.gpus_per_node and not (cluster == "slurm" and profile.gres):
        params["gpus_per_node"] = profile.gpus_per_node
    if cluster == "local":
        if profile.setup:
            params["local_setup"] = list(profile.setup)
        return params
    if profile.mem_gb is not None:
        params["mem_gb"] = profile.mem_gb
    params["slurm_signal_delay_s"] = signal_delay(profile)
    optional = {
        "partition": profile.partition,
        "account": profile.account,
        "qos": profile.qos,
        "constraint": profile.constraint,
        "gres": profile.gres,
    }
    params.update({f"slurm_{key}": value for key, value in optional.items() if value is not None})
    if profile.setup:
        params["slurm_setup"] = list(profile.setup)
    if profile.additional_parameters:
        params["slurm_additional_parameters"] = dict(profile.additional_parameters)
    return params


def sbatch_parameters(profile: ClusterProfile, *, job_name: str = "hpc-runner") -> dict[str, Any]:
    """The keyword arguments of submitit's ``_make_sbatch_string`` for this profile (pure).

    This is what ``AutoExecutor(cluster="slurm").update_parameters(**executor_parameters(...))``
    leaves in the SLURM executor: generic names translated (``timeout_min`` → ``time``,
    ``mem_gb`` → ``mem`` in submitit's unit string) and the ``slurm_`` prefix dropped.
    """
    translate = {
        "timeout_min": "time",
        "mem_gb": "mem",
        "tasks_per_node": "ntasks_per_node",
    }
    params: dict[str, Any] = {"job_name": job_name}
    for key, value in executor_parameters(profile, "slurm").items():
        key = key.removeprefix("slurm_")
        params[translate.get(key, key)] = value
    if "mem" in params:
        from submitit.slurm.slurm import _convert_mem

        params["mem"] = _convert_mem(params["mem"])
    return params


def job_python() -> tuple[str, ...]:
    """How a job's Python starts: this interpreter with ``-P``, which leaves the working
    directory out of ``sys.path``. A job runs in the directory it was submitted from, and
    ``python -m`` imports from there first: a ``careamics.py`` there (in a run directory, for
    ``resume .``) ran as the user before careamics itself."""
    return (sys.executable, "-P")


def sbatch_preview(
    profile: ClusterProfile,
    folder: str | os.PathLike[str],
    *,
    job_name: str = "hpc-runner",
    python: str = "python",
) -> str:
    """The sbatch script submitit would write for this profile (pure).

    Made by submitit's own ``_make_sbatch_string``, so it shows exactly the ``#SBATCH`` lines,
    setup lines and ``srun`` command of a real submission. ``folder`` is the submitit folder
    (it appears in the log paths; make it absolute, submitit resolves it against the current
    directory), ``python`` the interpreter submitit would run (``sys.executable`` there).
    """
    from submitit.slurm.slurm import _make_sbatch_string

    command = " ".join([python, "-u -m submitit.core._submit", shlex.quote(str(folder))])
    return _make_sbatch_string(
        command=command, folder=os.fspath(folder), **sbatch_parameters(profile, job_name=job_name)
    )
