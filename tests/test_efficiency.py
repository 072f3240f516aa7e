"""The efficiency report: each suggestion on its threshold (none) and just past it (one), the
issue's own examples, a sweep's combination, and the cells the tables show."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hpc_runner.watch import efficiency as eff
from hpc_runner.watch.efficiency import EfficiencyFacts, combine, findings, memory_size_gb
from hpc_runner.watch.resources import format_bytes, gpu_cell, memory_cell

GB = 1 << 30


def suggestion(facts: EfficiencyFacts, key: str) -> str | None:
    return next(f.suggestion for f in findings(facts) if f.key == key)


def test_the_issues_memory_example() -> None:
    facts = EfficiencyFacts(rss_peak_bytes=int(6.1 * GB), mem_bytes=64 * GB)
    assert suggestion(facts, "memory") == "asked 64 GB, peak 6.1 GB: 8 GB would do"
    assert memory_size_gb(6.1 * GB) == 8  # 6.1 x 1.25 = 7.6, the next usual size


def test_the_issues_gpu_example() -> None:
    facts = EfficiencyFacts(gpus=1, gpu_util_percent=23.0, data_wait_share=0.61)
    assert suggestion(facts, "gpu_util") == (
        "GPU 23 % busy, data wait 61 %: more data-loader workers or cached patches"
    )
    assert suggestion(facts, "data_wait") is None  # said once, with the GPU


def test_memory_thresholds() -> None:
    at = EfficiencyFacts(rss_peak_bytes=32 * GB, mem_bytes=64 * GB)  # exactly half
    assert suggestion(at, "memory") is None
    below = EfficiencyFacts(rss_peak_bytes=32 * GB - 1, mem_bytes=64 * GB)
    assert suggestion(below, "memory") == "asked 64 GB, peak 32.0 GB: 48 GB would do"
    high = EfficiencyFacts(rss_peak_bytes=int(0.9 * 10 * GB), mem_bytes=10 * GB)
    assert suggestion(high, "memory") is None  # exactly 90 %
    over = EfficiencyFacts(rss_peak_bytes=int(0.9 * 10 * GB) + 1, mem_bytes=10 * GB)
    assert "close to being killed for memory; ask for 12 GB" in str(suggestion(over, "memory"))
    tiny_ask = EfficiencyFacts(rss_peak_bytes=GB // 10, mem_bytes=GB)  # 1 GB is the least
    assert suggestion(tiny_ask, "memory") is None


def test_gpu_utilisation_threshold() -> None:
    at = EfficiencyFacts(gpus=1, gpu_util_percent=eff.GPU_UTIL_LOW_PERCENT)
    assert suggestion(at, "gpu_util") is None
    below = EfficiencyFacts(gpus=1, gpu_util_percent=49.9, data_wait_share=0.3)
    assert suggestion(below, "gpu_util") == (  # data wait exactly on its threshold: not slow
        "GPU 50 % busy: a larger batch, or a smaller GPU, would suit"
    )


def test_data_wait_threshold_without_a_gpu() -> None:
    assert suggestion(EfficiencyFacts(data_wait_share=0.3), "data_wait") is None
    assert suggestion(EfficiencyFacts(data_wait_share=0.31), "data_wait") == (
        "data wait 31 %: more data-loader workers (num_workers) or cached patches"
    )


def test_gpu_memory_thresholds() -> None:
    def facts(peak: float) -> EfficiencyFacts:
        return EfficiencyFacts(gpus=1, gpu_mem_peak_bytes=int(peak), gpu_mem_total_bytes=80 * GB)

    assert suggestion(facts(20 * GB), "gpu_memory") is None  # exactly 25 %
    assert "a smaller GPU would do" in str(suggestion(facts(20 * GB - 1), "gpu_memory"))
    assert suggestion(facts(76 * GB), "gpu_memory") is None  # exactly 95 %
    assert "close to out of memory" in str(suggestion(facts(76 * GB + 1), "gpu_memory"))


def test_cpu_threshold() -> None:
    def facts(cpu_time: float) -> EfficiencyFacts:
        return EfficiencyFacts(cpus=8, cpu_time_s=cpu_time, cpu_capacity_s=8 * 100.0)

    assert suggestion(facts(400.0), "cpu") is None  # exactly 50 %
    assert suggestion(facts(399.0), "cpu") == "8 CPUs, 4.0 used on average: 5 would do"
    one = EfficiencyFacts(cpus=1, cpu_time_s=1.0, cpu_capacity_s=100.0)
    assert suggestion(one, "cpu") is None  # one CPU cannot be fewer


def test_time_limit_threshold_and_requeues() -> None:
    at = EfficiencyFacts(wall_s=900.0, time_limit_s=3600.0)  # exactly 25 %
    assert suggestion(at, "wall_time") is None
    below = EfficiencyFacts(wall_s=899.0, time_limit_s=3600.0)
    assert suggestion(below, "wall_time") == (
        "used 14m59s of 1h00m: a limit of 22m28s would start sooner"
    )
    requeued = EfficiencyFacts(wall_s=5400.0, time_limit_s=3600.0, attempts=2)
    assert suggestion(requeued, "wall_time") == (
        "needed 2 attempts: a time limit of 2h15m would finish in one"
    )
    # stopped and resumed (or crashed), 2m12s of a day: the limit was not why (it said that a
    # limit of 3m18s would finish a run stopped at 7 of 150 epochs in one attempt)
    resumed = EfficiencyFacts(wall_s=132.0, time_limit_s=86400.0, attempts=2)
    assert suggestion(resumed, "wall_time") is None


def test_a_sweep_adds_up_its_runs() -> None:
    runs = [
        EfficiencyFacts(
            wall_s=100.0,
            cpus=4,
            cpu_time_s=40.0,
            cpu_capacity_s=400.0,
            rss_peak_bytes=2 * GB,
            mem_bytes=32 * GB,
            gpus=1,
            gpu_util_percent=20.0,
            gpu_mem_peak_bytes=3 * GB,
            gpu_mem_total_bytes=40 * GB,
            weight_s=100.0,
        ),
        EfficiencyFacts(
            wall_s=300.0,
            cpus=4,
            cpu_time_s=360.0,
            cpu_capacity_s=1200.0,
            rss_peak_bytes=5 * GB,
            mem_bytes=32 * GB,
            gpus=1,
            gpu_util_percent=60.0,
            gpu_mem_peak_bytes=9 * GB,
            gpu_mem_total_bytes=40 * GB,
            weight_s=300.0,
        ),
    ]
    sweep = combine(runs)
    assert sweep is not None
    assert (sweep.runs, sweep.wall_s, sweep.rss_peak_bytes) == (2, 300.0, 5 * GB)
    assert sweep.cpu_efficiency == pytest.approx(400.0 / 1600.0)
    assert sweep.gpu_util_percent == pytest.approx(50.0)  # weighted by wall time
    assert (sweep.gpu_mem_peak_bytes, sweep.gpu_mem_total_bytes) == (9 * GB, 40 * GB)
    assert suggestion(sweep, "memory") == "asked 32 GB, peak 5 GB: 8 GB would do"
    assert combine([]) is None
    again = EfficiencyFacts.from_json(eff.efficiency_json(sweep) or {})
    assert again == sweep  # the JSON object carries the facts a sweep is added up from


def test_cells_and_sizes() -> None:
    gpu_run = {
        "latest": {
            "gpu_util_percent": 87.4,
            "gpu_mem_used_bytes": int(5.2 * GB),
            "gpu_mem_total_bytes": 80 * GB,
            "rss_bytes": 3 * GB,
        }
    }
    assert (gpu_cell(gpu_run), memory_cell(gpu_run)) == ("87%", "5.2G/80G")
    cpu_run = {"latest": {"rss_bytes": int(1.2 * GB)}}
    assert (gpu_cell(cpu_run), memory_cell(cpu_run)) == ("-", "1.2G")
    assert (gpu_cell(None), memory_cell(None)) == ("-", "-")
    assert [format_bytes(v) for v in (None, 50 << 20, 6.1 * GB, 128 * GB)] == [
        "-",
        "50 MB",
        "6.1 GB",
        "128 GB",
    ]


def test_values_beyond_any_float_give_unknown_not_a_crash_nor_invalid_json() -> None:
    """Status records may claim anything the schema takes: one run at 1e308 % GPU and another
    at -1e308 made ``fsum`` raise ("-inf + inf"), which stopped ``status --summary``; one at
    1e308 alone gave ``Infinity`` in ``--summary --json``, which strict JSON parsers refuse."""
    import json

    from hpc_runner.stream.text import json_text
    from hpc_runner.watch.efficiency import combine, efficiency_json

    def run(value: float) -> EfficiencyFacts:
        return EfficiencyFacts(wall_s=60.0, gpus=1, gpu_util_percent=value, cpu_time_s=value,
                               cpu_capacity_s=60.0, weight_s=60.0)  # fmt: skip

    both = combine([run(1e308), run(-1e308)])
    assert both is not None and both.gpu_util_percent is None  # (raised: -inf + inf)
    high = combine([run(1e308), run(1e308)])
    assert high is not None and high.gpu_util_percent is None  # the mean overflows: unknown
    text = json_text({"efficiency": efficiency_json(run(1e308)), "nan": math.nan})

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON")

    assert json.loads(text, parse_constant=refuse)["nan"] is None


def test_a_cpu_time_beyond_any_float_is_unknown_and_hides_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One run's system record claiming 1.5e308 s of CPU time made the CPU finding raise
    OverflowError (a NaN: ValueError), which stopped ``status`` for every run of the sweep."""
    from hpc_runner.cli import main

    for cpu_time in (1.5e308, math.nan, 1e308 * 10):
        facts = EfficiencyFacts(wall_s=40.0, cpus=1, cpu_time_s=cpu_time, cpu_capacity_s=40.0)
        assert facts.cpu_efficiency is None
        assert not [f for f in findings(facts) if f.key == "cpu" and f.value], cpu_time
    lines = {
        "good": ['{"type":"state","value":"DONE","v":1,"t":1796000040.0,"seq":1,"attempt":0}'],
        "bad": [
            '{"type":"environment","value":{"cpus":1},"v":1,"t":1796000000.0,"seq":1,"attempt":0}',
            '{"type":"system","value":{"cpu_time_s":1.5e308,"interval_s":1},"v":1,'
            '"t":1796000010.0,"seq":2,"attempt":0}',
            '{"type":"state","value":"DONE","v":1,"t":1796000040.0,"seq":3,"attempt":0}',
        ],
    }
    for name, records in lines.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.yaml").write_text("")
        (tmp_path / name / "status.jsonl").write_text("\n".join(records) + "\n")
    for options in ([], ["--json"], ["--summary"], ["--summary", "--json"]):
        assert main(["status", str(tmp_path), "--no-cache", *options]) == 0, options
        out = capsys.readouterr().out
        assert "good" in out and "bad" in out, (options, out)
