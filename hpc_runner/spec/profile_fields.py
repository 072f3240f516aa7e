"""The fields of a cluster profile: the :class:`ClusterProfile` record, each value's type and
range, and how fields must agree.

Kept apart from :mod:`hpc_runner.spec.profiles` (files, loading, submitit parameters) and
:mod:`hpc_runner.spec.profile_search` (where the files are) so each stays small; nothing beyond
the standard library and the error helpers is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from hpc_runner.spec.errors import type_name

#: sbatch flags that have their own profile field: setting them through
#: ``additional_parameters`` would silently fight with that field.
_OWN_FLAGS = {
    "partition": "partition",
    "time": "timeout_min",
    "mem": "mem_gb",
    "cpus-per-task": "cpus_per_task",
    "gpus-per-node": "gpus_per_node",
    "gres": "gres",
    "account": "account",
    "qos": "qos",
    "constraint": "constraint",
    "signal": "signal_delay_s",
    "job-name": "the spec's name",
}
_GRES_GPU = re.compile(r"^gpu(?::[A-Za-z0-9_.-]+)?:(\d+)$")
#: An sbatch flag's name (``mail-type``, ``exclusive``): submitit writes it, and its value,
#: into the batch script as ``#SBATCH --NAME=VALUE`` without quoting either.
_FLAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: What no value in a batch script's ``#SBATCH`` line may hold: a line break would end the
#: line, and what follows would run as a shell command on the compute node.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _script_safe(text: str) -> Bad | None:
    """A :class:`Bad` if ``text`` cannot go on one ``#SBATCH`` line."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return Bad(
        f"{text!r} holds the control character {found.group()!r} (a line break would "
        "end the batch script's #SBATCH line and run the rest): write it on one line"
    )


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


@dataclass(frozen=True)
class Bad:
    """Why a field's value is refused, ending with the fix."""

    reason: str


def check_field(key: str, value: Any) -> Any:
    """The normalised value of one field, or a :class:`Bad` saying what is wrong and the fix."""
    optional_str = {"partition", "account", "qos", "constraint", "gres"}
    if key == "description":
        return (
            value if isinstance(value, str) else Bad(f"expected a string, got {type_name(value)}")
        )
    if key in optional_str:
        if value is None:
            return None
        if isinstance(value, str) and value.strip():
            return _script_safe(value) or value
        return Bad(f"expected a non-empty string or null, got {type_name(value)} {value!r}")
    if key in {"gpus_per_node", "cpus_per_task"}:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        return Bad(f"expected a whole number >= 0, got {type_name(value)} {value!r}")
    if key == "timeout_min":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        return Bad(f"expected a whole number of minutes >= 1, got {type_name(value)} {value!r}")
    if key == "mem_gb":
        if value is None or (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and 0 < value < float("inf")
        ):
            return None if value is None else float(value)
        return Bad(f"expected a number of GB > 0 or null, got {type_name(value)} {value!r}")
    if key == "signal_delay_s":
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return value
        return Bad(f"expected whole seconds > 0 or null (scaled), got {type_name(value)}")
    if key == "setup":
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and all(isinstance(line, str) for line in value):
            return tuple(value)
        return Bad("expected a list of shell lines (strings), e.g. ['module load cuda/12.1']")
    if key == "additional_parameters":
        return _check_additional(value)
    raise AssertionError(key)  # pragma: no cover - keys are checked before


def _check_additional(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        return Bad(f"expected a mapping of sbatch flags to values, got {type_name(value)}")
    reasons = []
    for flag, flag_value in value.items():
        name = str(flag).lstrip("-").replace("_", "-")
        if _FLAG_NAME.match(name) is None:
            reasons.append(
                f"{str(flag)!r} is not an sbatch flag name (letters, digits, '-' and '_', as "
                "in 'mail-type')"
            )
        elif name in _OWN_FLAGS:
            reasons.append(f"'{flag}' has its own field (set '{_OWN_FLAGS[name]}' instead)")
        elif not isinstance(flag_value, str | int | float | bool):
            reasons.append(
                f"'{flag}' must be a string, number or true, got {type_name(flag_value)}"
            )
        elif isinstance(flag_value, str) and (bad := _script_safe(flag_value)) is not None:
            reasons.append(f"'{flag}': {bad.reason}")
    if reasons:
        return Bad("; ".join(reasons))
    return {str(flag).lstrip("-"): flag_value for flag, flag_value in value.items()}


def check_consistency(values: dict[str, Any], report: Callable[[str, str], None]) -> None:
    """Fields that are fine alone but contradict each other (gres vs GPUs, signal vs limit)."""
    gres = values.get("gres")
    if gres and _GRES_GPU.match(gres) is None and gres.startswith("gpu"):
        report("gres", f"'{gres}' is not GPU gres syntax (write gpu:COUNT or gpu:TYPE:COUNT)")
    elif gres and "gpus_per_node" in values:
        count = gres_gpus(gres)
        if count is not None and count != values["gpus_per_node"]:
            report(
                "gpus_per_node",
                f"{values['gpus_per_node']} disagrees with gres '{gres}' ({count} GPUs): "
                "make them equal or drop gpus_per_node",
            )
    delay = values.get("signal_delay_s")
    if delay is not None:
        timeout_min = values.get("timeout_min", 60)
        limit = min(max_signal_delay(timeout_min), timeout_min * 60 // 2)
        if delay > limit:
            report(
                "signal_delay_s",
                f"{delay} s is too long for a {timeout_min}-minute limit (the job would be "
                f"signalled too early to make progress); use at most {limit} s or null",
            )


def gres_gpus(gres: str) -> int | None:
    """The GPU count of a gres string (``gpu:a100:2`` → 2), None if it names no GPUs."""
    for part in gres.split(","):
        match = _GRES_GPU.match(part.strip())
        if match:
            return int(match.group(1))
    return None


def max_signal_delay(timeout_min: int) -> int:
    """The longest signal delay submitit still recognises as a timeout rather than a preemption.

    submitit calls a USR2 a timeout when the job has run at least ``min(0.8 T, T - 10 min)``;
    a signal sent earlier is taken for a preemption and requeued without using up a retry.
    """
    total = timeout_min * 60
    return int(total - min(0.8 * total, total - 600))
