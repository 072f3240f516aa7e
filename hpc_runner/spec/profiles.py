"""Cluster profiles: the ``slurm_templates/*.yaml`` files and what submitit is asked for.

A profile says where and how a job runs (partition, GPUs, CPUs, memory, time limit, setup lines,
extra sbatch flags); a job spec names one and may override any field. This module is
monitoring-safe (standard library, PyYAML and, only inside :func:`sbatch_preview`, submitit):
``hpc-runner profiles`` lists profiles without importing torch or careamics.

Everything that turns a profile into scheduler parameters is a pure function, so the parameters
can be checked against golden files (``tests/golden/``) without a cluster.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hpc_runner.spec.errors import Problems, SpecError, check_keys, join_key
from hpc_runner.spec.profile_fields import (
    Bad,
    check_consistency,
    check_field,
    gres_gpus,
    max_signal_delay,
)

#: Where the search for profiles starts; several directories are separated by ``os.pathsep``.
TEMPLATES_ENV = "HPC_RUNNER_TEMPLATES"
TEMPLATES_DIR = "slurm_templates"
CLUSTERS = ("slurm", "local", "debug")


@dataclass(frozen=True)
class ClusterProfile:
    """Where and how a job runs; plain data so that it pickles and prints.

    Parameters
    ----------
    name : str
        The profile's name (its file name without ``.yaml``).
    description : str
        One line shown by ``hpc-runner profiles``.
    partition : str or None
        SLURM partition; None uses the cluster's default partition.
    gpus_per_node : int
        GPUs the training uses (0 = CPU). Requested as ``--gpus-per-node`` unless ``gres`` is set.
    cpus_per_task : int
        CPUs requested (``--cpus-per-task``); 0 = do not request (partition default on SLURM,
        every core of the machine for a local process). Data loader workers follow it.
    mem_gb : float or None
        Memory per node in GB (``--mem``); None = the partition default.
    timeout_min : int
        Time limit in minutes; the job is checkpointed and requeued shortly before it.
    setup : tuple of str
        Shell lines run before the job starts (``module load ...``, environment activation).
    account, qos, constraint : str or None
        ``--account``, ``--qos``, ``--constraint`` (node features, e.g. ``a100``).
    gres : str or None
        Generic resources verbatim (``gpu:a100:1``), for sites that want GPUs typed this way.
    signal_delay_s : int or None
        Seconds before the time limit at which the job is told to checkpoint; None scales it
        to the time limit (see :func:`signal_delay`).
    additional_parameters : dict
        Extra sbatch flags without the leading ``--`` (``{"mail-type": "END"}``).
    source : str
        The file the profile was read from (for messages).
    """

    name: str
    description: str = ""
    partition: str | None = None
    gpus_per_node: int = 0
    cpus_per_task: int = 0
    mem_gb: float | None = None
    timeout_min: int = 60
    setup: tuple[str, ...] = ()
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gres: str | None = None
    signal_delay_s: int | None = None
    additional_parameters: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The YAML-able fields (without name and source), as a profile file would hold them."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.pop("name")
        data.pop("source")
        data["setup"] = list(self.setup)
        data["additional_parameters"] = dict(self.additional_parameters)
        return data


#: Keys a profile file (or a spec's ``cluster:`` section) may set.
PROFILE_KEYS = tuple(f.name for f in fields(ClusterProfile) if f.name not in {"name", "source"})


def templates_dirs() -> list[Path]:
    """The directories searched for profiles, first match wins.

    ``$HPC_RUNNER_TEMPLATES`` (``os.pathsep``-separated), then ``./slurm_templates``, then the
    ``slurm_templates/`` directory beside the installed package (the repository's own).
    """
    candidates: list[Path] = []
    env = os.environ.get(TEMPLATES_ENV, "")
    candidates += [Path(part) for part in env.split(os.pathsep) if part]
    candidates.append(Path.cwd() / TEMPLATES_DIR)
    candidates.append(Path(__file__).resolve().parents[2] / TEMPLATES_DIR)
    unique: list[Path] = []
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def profile_files() -> dict[str, Path]:
    """Every profile name found in :func:`templates_dirs`, mapped to its file (first wins)."""
    found: dict[str, Path] = {}
    for directory in templates_dirs():
        if not directory.is_dir():
            continue
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            found.setdefault(path.stem, path)
    return found


def load_profile(
    name: str, overrides: Mapping[str, Any] | None = None, *, source: str = ""
) -> ClusterProfile:
    """Read profile ``name`` and apply ``overrides``; every problem is reported at once.

    Parameters
    ----------
    name : str
        Profile name (a file ``NAME.yaml`` in :func:`templates_dirs`).
    overrides : mapping, optional
        Field values from a job spec's ``cluster:`` section, applied over the file's.
    source : str
        The job spec the overrides come from, named in problems about them (their keys are
        reported as ``cluster.KEY``).

    Raises
    ------
    SpecError
        Unknown profile (the available ones are listed), bad keys, types or values.
    """
    files = profile_files()
    if name not in files:
        available = ", ".join(sorted(files)) or "none"
        dirs = ", ".join(str(d) for d in templates_dirs())
        problems = Problems(source or (files[next(iter(files))].parent if files else TEMPLATES_DIR))
        problems.add(
            "cluster.profile" if source else name,
            f"unknown cluster profile '{name}' (available: {available}; searched {dirs})",
        )
        problems.raise_if_any()
    path = files[name]
    problems = Problems(path)
    from hpc_runner.spec.errors import load_yaml_mapping

    data = load_yaml_mapping(path, problems)
    problems.raise_if_any()
    assert data is not None
    check_keys(data, PROFILE_KEYS, "", problems)
    merged = {k: v for k, v in data.items() if k in PROFILE_KEYS}
    override_problems = Problems(source or path)
    if overrides:
        check_keys(overrides, PROFILE_KEYS, "cluster", override_problems)
        merged.update({k: v for k, v in overrides.items() if k in PROFILE_KEYS})
    origin = {k: "cluster" if overrides and k in overrides else "" for k in merged}
    profile = _build(name, str(path), merged, origin, problems, override_problems)
    all_problems = problems.items + override_problems.items
    if all_problems:
        raise SpecError(all_problems)
    assert profile is not None
    return profile


def list_profiles() -> list[ClusterProfile]:
    """Every profile that loads, sorted by name.

    Raises
    ------
    SpecError
        If any profile file is invalid (all of their problems together).
    """
    profiles: list[ClusterProfile] = []
    problems: list[Any] = []
    for name in sorted(profile_files()):
        try:
            profiles.append(load_profile(name))
        except SpecError as error:
            problems += error.problems
    if problems:
        raise SpecError(problems)
    return profiles


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
