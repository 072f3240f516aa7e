"""A profile from what SLURM says about itself: parsing recorded answers of sinfo and scontrol,
choosing a GPU partition and its share of a node, and the commented profile text (golden).

``tests/data/slurm/`` holds the answers (see its README); the real cluster is asked in
tests/test_profiles_new.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from hpc_runner.spec.profile_discovery import (
    DiscoveryError,
    Partition,
    parse_cluster,
    parse_gpus,
    parse_time_min,
    records,
    suggest_profile,
)
from hpc_runner.spec.profile_template import check_rendered, render_profile

DATA = Path(__file__).parent / "data" / "slurm"
GOLDEN = Path(__file__).parent / "golden"


def answers(name: str) -> list[Partition]:
    texts = [(DATA / f"{name}.{part}.txt").read_text() for part in ("sinfo", "partitions", "nodes")]
    return parse_cluster(*texts)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("UNLIMITED", None),
        ("NONE", None),
        ("infinite", None),
        ("30", 30),
        ("45:30", 45),
        ("00:00:20", 1),
        ("04:00:00", 240),
        ("2-00:00:00", 2880),
        ("1-12", 2160),
        ("1-02:30", 1590),
    ],
)
def test_slurm_time_syntax(text: str, minutes: int | None) -> None:
    assert parse_time_min(text) == minutes


def test_gpu_gres_entries() -> None:
    assert parse_gpus("gpu:1") == ((None, 1),)
    assert parse_gpus("gpu:a100:4(S:0-1)") == (("a100", 4),)
    assert parse_gpus("gpu:v100:2(S:0),mps:200") == (("v100", 2),)
    assert parse_gpus("gpu:a100:2(S:0),gpu:MIG-1g.5gb:4") == (("a100", 2), ("MIG-1g.5gb", 4))
    assert parse_gpus("(null)") == () and parse_gpus("mps:100") == ()


def test_records_keep_values_with_spaces_and_equals_signs() -> None:
    (node,) = records((DATA / "test_cluster.nodes.txt").read_text())
    assert node["OS"] == "Linux 6.18.44-fc-v669 #1 SMP PREEMPT_DYNAMIC @0"
    assert node["CfgTRES"] == "cpu=8,mem=21694M,billing=8" and node["Gres"] == "gpu:1"
    site = records((DATA / "site.nodes.txt").read_text())
    assert site[-1]["Reason"] == "burn-in tests [root@2024-01-08T10:00:00]"


def test_the_test_cluster() -> None:
    partitions = answers("test_cluster")
    assert [(p.name, p.default, p.usable_nodes) for p in partitions] == [
        ("cpu", True, 1),
        ("gpu", False, 1),
    ]
    node = partitions[1].nodes[0]
    assert (node.name, node.cpus, node.memory_mb, node.gpus) == ("vm", 8, 21694, ((None, 1),))
    suggestion = suggest_profile(partitions)
    # both partitions hold the GPU node: the one named for GPUs is taken
    assert suggestion.values == {
        "partition": "gpu",
        "gres": "gpu:1",
        "cpus_per_task": 8,
        "mem_gb": 21,
        "timeout_min": 24 * 60,  # neither MaxTime nor DefaultTime: a day
    }
    assert suggestion.others == ("cpu",)
    assert "MaxTime unlimited, DefaultTime none" in suggestion.notes["timeout_min"]


def test_a_site_with_typed_gpus_and_limits() -> None:
    partitions = answers("site")
    usable = {p.name: p.usable_nodes for p in partitions}
    assert usable == {"cpu": 2, "gpu": 3, "gpu_long": 1, "interactive": 2, "h100": 0}
    suggestion = suggest_profile(partitions)
    assert suggestion.values == {
        "partition": "gpu",  # all GPU nodes, and more of them than gpu_long; h100 is inactive
        "gres": "gpu:a100:1",  # the type most of its nodes have
        "cpus_per_task": 8,  # a GPU's share is 16 CPUs: at most 8
        "mem_gb": 32,  # a GPU's share is 125 GB: at most 4 GB per CPU
        "timeout_min": 2 * 24 * 60,  # MaxTime
    }
    assert suggestion.notes["gres"].endswith("a100 on 2 node(s), v100 on 1 node(s)")
    assert suggestion.notes["timeout_min"] == (
        "partition gpu: MaxTime 2-00:00:00, DefaultTime 4:00:00"
    )
    assert suggestion.others == ("gpu_long", "interactive", "h100")

    long = suggest_profile(partitions, "gpu_long").values
    assert (long["gres"], long["timeout_min"]) == ("gpu:v100:1", 7 * 24 * 60)
    interactive = suggest_profile(partitions, "interactive").values
    # MaxCPUsPerNode=4 and MaxMemPerCPU=2000 MB: 4 CPUs, 8000 MB -> 7 GB
    assert (interactive["cpus_per_task"], interactive["mem_gb"]) == (4, 7)
    cpu = suggest_profile(partitions, "cpu")
    assert cpu.values["gpus_per_node"] == 0 and "gres" not in cpu.values
    assert (cpu.values["cpus_per_task"], cpu.values["mem_gb"]) == (8, 32)
    with pytest.raises(DiscoveryError, match=r"no partition 'a100' .*cpu, gpu, gpu_long"):
        suggest_profile(partitions, "a100")


def test_no_partition_is_an_error() -> None:
    with pytest.raises(DiscoveryError, match="listed no partition"):
        parse_cluster("", "", "")


@pytest.mark.parametrize("cluster", ["test_cluster", "site"])
def test_the_written_profile_is_commented_and_valid(cluster: str) -> None:
    command = "hpc-runner profiles new mine --from-slurm"
    text = render_profile("mine", command, suggest_profile(answers(cluster)))
    check_golden(f"profile_new_{cluster}.yaml", text)
    profile = check_rendered("mine", text, "mine.yaml")
    values = yaml.safe_load(text)
    assert profile.partition == values["partition"] and profile.gpus_per_node == 1
    assert profile.account is None and "# account:" in text and "# qos:" in text
    assert '#   - "module load cuda/12.1"' in text  # setup lines as examples only


def test_the_plain_template_is_valid() -> None:
    text = render_profile("mine", "hpc-runner profiles new mine --partition short", None, "short")
    check_golden("profile_new_template.yaml", text)
    profile = check_rendered("mine", text, "mine.yaml")
    assert (profile.partition, profile.gpus_per_node, profile.timeout_min) == ("short", 1, 240)
