"""What a SLURM cluster says about itself, turned into a cluster profile (pure functions).

``hpc-runner profiles new NAME --from-slurm`` runs ``sinfo``, ``scontrol show partition`` and
``scontrol show node`` once each (read-only) and hands their text to :func:`parse_cluster`;
:func:`suggest_profile` then picks a GPU partition and one GPU of it, a fair share of a GPU
node's CPUs and memory, and the partition's time limit. Everything here is pure so it is tested
on recorded outputs (``tests/data/slurm/``); the commands are run by the command line.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

#: The arguments of the three commands asked, in the form :func:`parse_cluster` reads.
SINFO_ARGS = ("sinfo", "--noheader", "--format=%R|%a|%T|%D")
PARTITIONS_ARGS = ("scontrol", "--oneliner", "show", "partition")
NODES_ARGS = ("scontrol", "--oneliner", "show", "node")

#: A CAREamics training's data loading rarely uses more; more only waits longer in the queue.
MAX_CPUS = 8
#: Memory asked per CPU at most (GB).
MAX_GB_PER_CPU = 4
#: Time limit when the partition has none (minutes).
NO_LIMIT_MIN = 24 * 60
_USABLE = {"idle", "mixed", "allocated", "completing", "planned"}
_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z][A-Za-z0-9_]*)=")
_GPU = re.compile(r"(?:^|,)gpu(?::([A-Za-z0-9_.\-]+))?:(\d+)")


class DiscoveryError(ValueError):
    """The cluster's answers hold nothing to build a profile from (the message says why)."""


@dataclass(frozen=True)
class Node:
    """One node: what a job on it can have."""

    name: str
    cpus: int
    memory_mb: int
    gpus: tuple[tuple[str | None, int], ...]  # (type or None, count) per GPU gres entry
    partitions: tuple[str, ...]
    state: str

    @property
    def gpu_count(self) -> int:
        return sum(count for _, count in self.gpus)


@dataclass(frozen=True)
class Partition:
    """One partition's limits (None = unlimited or not set)."""

    name: str
    default: bool = False
    up: bool = True
    default_time_min: int | None = None
    max_time_min: int | None = None
    max_cpus_per_node: int | None = None
    max_mem_per_node_mb: int | None = None
    max_mem_per_cpu_mb: int | None = None
    usable_nodes: int = 0  # nodes that take jobs now (sinfo); -1 when sinfo did not say
    nodes: tuple[Node, ...] = field(default=())

    @property
    def gpu_nodes(self) -> tuple[Node, ...]:
        return tuple(node for node in self.nodes if node.gpu_count)


@dataclass(frozen=True)
class Suggestion:
    """The values of a suggested profile, and a note per value saying where it came from."""

    values: dict[str, object]
    notes: dict[str, str]
    partition: Partition
    others: tuple[str, ...]  # the other partitions with GPUs


def records(text: str) -> list[dict[str, str]]:
    """``KEY=VALUE ...`` records of ``scontrol --oneliner show ...``, one per line.

    A value runs to the next `` KEY=``, so values with spaces (``OS=Linux 6.1 #1 SMP``,
    ``Reason=Not responding``) stay whole; ``=`` inside a value (``CfgTRES=cpu=8``) is kept.
    """
    result = []
    for line in text.splitlines():
        keys = list(_KEY.finditer(line))
        record = {}
        for match, following in zip(keys, [*keys[1:], None], strict=True):
            end = following.start() if following else len(line)
            record[match.group(1)] = line[match.end() : end].strip()
        if record:
            result.append(record)
    return result


def parse_time_min(text: str) -> int | None:
    """SLURM's time syntax in whole minutes (at least 1); None for ``UNLIMITED``/``NONE``.

    ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``.
    """
    text = text.strip()
    days, _, rest = text.rpartition("-")
    try:
        parts = [int(part) for part in rest.split(":")]
        int(days or 0)
    except ValueError:  # UNLIMITED, NONE, infinite, N/A
        return None
    if days:
        hours, minutes, seconds = [*parts, 0, 0][:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        hours, minutes, seconds = 0, parts[0], (parts[1] if len(parts) > 1 else 0)
    total = ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds
    return max(1, total // 60)


def parse_gpus(gres: str) -> tuple[tuple[str | None, int], ...]:
    """The GPU entries of a node's ``Gres=`` (``gpu:a100:4(S:0-1),gpu:v100:2,mps:200``)."""
    return tuple((match.group(1), int(match.group(2))) for match in _GPU.finditer(gres))


def parse_cluster(sinfo: str, partitions: str, nodes: str) -> list[Partition]:
    """The partitions with their nodes, from the three commands' outputs (see ``*_ARGS``).

    Raises
    ------
    DiscoveryError
        When ``scontrol show partition`` lists no partition.
    """
    usable: Counter[str] = Counter()
    for line in sinfo.splitlines():
        fields_ = line.strip().split("|")
        if len(fields_) == 4 and fields_[3].isdigit():
            name, avail, state, count = fields_
            base = re.sub(r"[^a-z_]", "", state.lower())
            usable[name] += int(count) if avail == "up" and base in _USABLE else 0
    known = {line.split("|")[0] for line in sinfo.splitlines() if "|" in line}
    node_list = [_node(record) for record in records(nodes) if "NodeName" in record]
    result = []
    for record in records(partitions):
        if not record.get("PartitionName"):
            continue
        name = record["PartitionName"]
        result.append(
            Partition(
                name=name,
                default=record.get("Default", "NO") == "YES",
                up=record.get("State", "UP") == "UP",
                default_time_min=parse_time_min(record.get("DefaultTime", "NONE")),
                max_time_min=parse_time_min(record.get("MaxTime", "UNLIMITED")),
                max_cpus_per_node=_number(record.get("MaxCPUsPerNode")),
                max_mem_per_node_mb=_number(record.get("MaxMemPerNode")),
                max_mem_per_cpu_mb=_number(record.get("MaxMemPerCPU")),
                usable_nodes=usable[name] if name in known else -1,
                nodes=tuple(node for node in node_list if name in node.partitions),
            )
        )
    if not result:
        raise DiscoveryError("`scontrol show partition` listed no partition")
    return result


def choose_partition(partitions: list[Partition], wanted: str | None = None) -> Partition:
    """``wanted``, else the best GPU partition, else the default partition.

    GPU partitions rank by: nodes that take jobs now, then the share of their nodes that have
    GPUs (a GPU partition rather than a general one holding a GPU node), then a name that says
    ``gpu``, then the number of GPU nodes, then being the default.

    Raises
    ------
    DiscoveryError
        ``wanted`` is not a partition of this cluster (the message lists them).
    """
    by_name = {partition.name: partition for partition in partitions}
    if wanted is not None:
        if wanted not in by_name:
            raise DiscoveryError(
                f"no partition '{wanted}' on this cluster (partitions: {', '.join(by_name)})"
            )
        return by_name[wanted]
    with_gpus = [partition for partition in partitions if partition.gpu_nodes]
    if not with_gpus:
        return next((p for p in partitions if p.default), partitions[0])

    def rank(partition: Partition) -> tuple[bool, float, bool, int, bool]:
        share = len(partition.gpu_nodes) / max(1, len(partition.nodes))
        takes_jobs = partition.up and partition.usable_nodes != 0
        named = "gpu" in partition.name.lower()
        return takes_jobs, share, named, len(partition.gpu_nodes), partition.default

    return max(with_gpus, key=rank)


def suggest_profile(partitions: list[Partition], wanted: str | None = None) -> Suggestion:
    """A one-GPU profile on the chosen partition (see :func:`choose_partition`).

    CPUs and memory are a GPU's fair share of the smallest GPU node (its CPUs and memory
    divided by its GPUs), at most :data:`MAX_CPUS` CPUs and :data:`MAX_GB_PER_CPU` GB per CPU,
    within the partition's limits; the time limit is the partition's maximum, else its default,
    else :data:`NO_LIMIT_MIN`.
    """
    partition = choose_partition(partitions, wanted)
    nodes = partition.gpu_nodes or partition.nodes
    values: dict[str, object] = {"partition": partition.name}
    notes: dict[str, str] = {}
    gpus = 1 if partition.gpu_nodes else 0
    if gpus:
        types = Counter(kind for node in nodes for kind, _ in node.gpus)
        kind = types.most_common(1)[0][0]
        values["gres"] = f"gpu:{kind}:1" if kind else "gpu:1"
        listed = ", ".join(f"{k or 'untyped'} on {n} node(s)" for k, n in types.most_common())
        notes["gres"] = f"one GPU; GPU gres of partition {partition.name}: {listed}"
    else:
        values["gpus_per_node"] = 0
        notes["gpus_per_node"] = f"partition {partition.name} has no GPU nodes: CPU only"
    if nodes:
        smallest = min(nodes, key=lambda node: (node.cpus // max(1, node.gpu_count), node.name))
        share = max(1, gpus and smallest.gpu_count)
        cpus = max(1, min(smallest.cpus // share, MAX_CPUS, partition.max_cpus_per_node or 999))
        mem_mb = smallest.memory_mb // share
        for limit in (partition.max_mem_per_node_mb, (partition.max_mem_per_cpu_mb or 0) * cpus):
            mem_mb = min(mem_mb, limit) if limit else mem_mb
        mem_gb = max(1, min(mem_mb // 1024, MAX_GB_PER_CPU * cpus))
        values.update(cpus_per_task=cpus, mem_gb=mem_gb)
        notes["cpus_per_task"] = (
            f"node {smallest.name}: {smallest.cpus} CPUs, {smallest.gpu_count} GPU(s)"
        )
        notes["mem_gb"] = f"node {smallest.name}: {smallest.memory_mb} MB"
    values["timeout_min"], notes["timeout_min"] = _time_limit(partition)
    others = tuple(p.name for p in partitions if p.gpu_nodes and p.name != partition.name)
    return Suggestion(values, notes, partition, others)


def _time_limit(partition: Partition) -> tuple[int, str]:
    default = _clock(partition.default_time_min) if partition.default_time_min else "none"
    maximum = _clock(partition.max_time_min) if partition.max_time_min else "unlimited"
    said = f"partition {partition.name}: MaxTime {maximum}, DefaultTime {default}"
    if partition.max_time_min:
        return partition.max_time_min, said
    if partition.default_time_min:
        return partition.default_time_min, said
    return NO_LIMIT_MIN, f"{said}; 24 h chosen (shorter limits often start sooner)"


def _clock(minutes: int) -> str:
    """Minutes in SLURM's own notation (``2-00:00:00``, ``4:00:00``)."""
    days, rest = divmod(minutes, 24 * 60)
    hours = f"{rest // 60:02d}" if days else str(rest // 60)
    text = f"{hours}:{rest % 60:02d}:00"
    return f"{days}-{text}" if days else text


def _node(record: dict[str, str]) -> Node:
    cpus = _number(record.get("CPUEfctv")) or _number(record.get("CPUTot")) or 1
    return Node(
        name=record["NodeName"],
        cpus=cpus,
        memory_mb=_number(record.get("RealMemory")) or 0,
        gpus=parse_gpus(record.get("Gres", "")),
        partitions=tuple(p for p in record.get("Partitions", "").split(",") if p),
        state=record.get("State", ""),
    )


def _number(text: str | None) -> int | None:
    """An integer field; None for UNLIMITED, absent or anything else."""
    return int(text) if text and text.isdigit() else None
