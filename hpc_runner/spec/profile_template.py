"""The text of a new profile file: every value commented, the unknown ones as commented lines.

``hpc-runner profiles new`` writes what :func:`render_profile` returns; the text is checked by
loading it back (:func:`check_rendered`) before anything is written, so a new profile is always
valid. Pure: the same inputs give the same text (golden-file tested).
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from hpc_runner.spec.profile_discovery import Suggestion
from hpc_runner.spec.profile_fields import ClusterProfile

#: Column at which the comments of value lines start.
COMMENT_COLUMN = 26

#: The starting point when the cluster is not asked.
TEMPLATE_VALUES: dict[str, Any] = {
    "partition": None,
    "gpus_per_node": 1,
    "cpus_per_task": 8,
    "mem_gb": 32,
    "timeout_min": 240,
}
TEMPLATE_NOTES = {
    "partition": "EDIT: `sinfo -s` lists the partitions; null = the cluster's default",
    "gpus_per_node": 'GPUs; or gres: "gpu:TYPE:1" where the site types its GPUs',
    "cpus_per_task": "data-loader workers follow it",
    "mem_gb": "memory per node",
    "timeout_min": "checkpointed and requeued shortly before the limit",
}

#: What the cluster cannot tell: each a commented line (key, example value, how to find out).
UNKNOWN = (
    ("account", "my_lab", "`sacctmgr show assoc user=$USER format=account` lists yours"),
    ("qos", "normal", "`sacctmgr show qos format=name,maxwall`"),
    ("constraint", "a100", "node features: `sinfo -o '%P %f'`"),
)
SETUP_EXAMPLES = ("module load cuda/12.1", "source $HOME/venvs/careamics/bin/activate")


def render_profile(
    name: str, command: str, suggestion: Suggestion | None = None, partition: str | None = None
) -> str:
    """The commented YAML of a new profile.

    Parameters
    ----------
    name : str
        The profile's name.
    command : str
        The command line that wrote it (named in the header).
    suggestion : Suggestion, optional
        What the cluster said (``--from-slurm``); without it a starting point to edit.
    partition : str, optional
        ``--partition`` without ``--from-slurm``: the template's partition.
    """
    if suggestion is not None:
        values, notes = dict(suggestion.values), dict(suggestion.notes)
        if suggestion.others:
            notes["partition"] = f"other partitions with GPUs: {', '.join(suggestion.others)}"
        header = (
            f"Cluster profile '{name}', written by `{command}` from what the cluster reported "
            "(sinfo, scontrol show partition, scontrol show node). Check it, then "
            f"`hpc-runner profiles {name}` shows the sbatch script it produces."
        )
    else:
        values, notes = dict(TEMPLATE_VALUES), dict(TEMPLATE_NOTES)
        if partition is not None:
            values["partition"] = partition
            notes["partition"] = "`sinfo -s` lists the partitions; null = the cluster's default"
        header = (
            f"Cluster profile '{name}', written by `{command}`: a starting point, edit the "
            f"values (`hpc-runner profiles new {name} --from-slurm --force` asks the cluster "
            f"instead); `hpc-runner profiles {name}` shows the sbatch script it produces."
        )
    lines = [f"# {line}" for line in textwrap.wrap(header, width=96, break_on_hyphens=False)]
    lines.append(_line("description", describe(values), ""))
    lines += [_line(key, value, notes.get(key, "")) for key, value in values.items()]
    lines.append("# Not known from the cluster: uncomment and set what your site needs.")
    lines += [_line(f"# {key}", example, hint) for key, example, hint in UNKNOWN]
    lines.append(f"{'# setup:'.ljust(COMMENT_COLUMN - 1)} # shell lines run before the job, e.g.")
    lines += [f"#   - {json.dumps(example)}" for example in SETUP_EXAMPLES]
    lines.append(_line("# additional_parameters", {"mail-type": "END,FAIL"}, "other sbatch flags"))
    return "\n".join(lines) + "\n"


def describe(values: dict[str, Any]) -> str:
    """One line for ``hpc-runner profiles``: partition, GPU, CPUs, memory, time."""
    gres = values.get("gres")
    gpus = f"1 GPU ({gres})" if gres else f"{values.get('gpus_per_node', 0)} GPU"
    hours, minutes = divmod(int(values["timeout_min"]), 60)
    time = f"{hours} h" if not minutes else f"{hours}:{minutes:02d} h"
    partition = values.get("partition")
    where = f"partition {partition}" if partition else "default partition"
    return f"{where}, {gpus}, {values.get('cpus_per_task')} CPUs, {values.get('mem_gb')} GB, {time}"


def check_rendered(name: str, text: str, path: str) -> ClusterProfile:
    """Load the rendered text as hpc-runner will (raises SpecError if it is not a valid profile)."""
    from hpc_runner.spec.profiles import profile_from_mapping
    from hpc_runner.spec.yaml_load import safe_load

    return profile_from_mapping(name, safe_load(text), path)


def _line(key: str, value: Any, note: str) -> str:
    code = f"{key}: {_scalar(value)}"
    if not note:
        return code
    return f"{code.ljust(COMMENT_COLUMN - 1)} # {note}"


def _scalar(value: Any) -> str:
    """A YAML flow value (JSON is YAML): strings quoted, null, numbers, flow mappings."""
    return json.dumps(value)
